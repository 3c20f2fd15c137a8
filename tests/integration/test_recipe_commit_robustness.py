"""The commit attacked (issue 15, items 3, 4, 6): a package that ships recipe's own state
directory, a forged journal, SIGKILL at every step of an install and an upgrade (including the
moment between the state write and the end of the journal), a state write that fails after the
files are in place, and a prefix file system that fills up."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.httpserver import http_serve  # noqa: F401 - fixture
from tests.recipe_support import World, tarball


@pytest.fixture
def world(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "recipes").mkdir()
    (tmp_path / "srv").mkdir()
    return World(tmp_path, http_serve(tmp_path / "srv"))


@contextlib.contextmanager
def small_fs(where: Path, mib: int):
    """A tmpfs of `mib` MiB mounted on `where` (the tests run as root)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _killed_at(world: World, step: int, command: str, hook_body: str = "os._exit(9)") -> int:
    """Run `command` ("install"/"upgrade") of multi in a child whose commit hook runs
    `hook_body` at `step`; returns the child's exit code (0: the step was never reached)."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from levitate.recipe.manager import Manager\n"
        "from levitate.recipe.registry import Registry\n"
        "def hook(step):\n"
        f"    if step == {step}:\n"
        f"        {hook_body}\n"
        f"m = Manager(Registry([Path({str(world.recipes)!r})]), Path({str(world.prefix)!r}),"
        f" Path({str(world.root / 'build')!r}), out=lambda t: None, on_step=hook)\n"
        f"m.{command}(['multi'])\n")
    return subprocess.run([sys.executable, "-c", script], env=world.env(),
                          capture_output=True).returncode


def _state(world: World) -> tuple[bool, str | None]:
    info = json.loads(world.ok("--json", "info", "multi").stdout)
    return info["installed"], info["installed_version"]


def _bump(world: World, files: dict) -> None:
    path = world.recipes / "multi.rhai"
    sha = tarball(world.srv / "multi-2.0.tar.gz", "multi-2.0", files)
    text = path.read_text()
    old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
    path.write_text(text.replace('let version = "1.0";', 'let version = "2.0";')
                    .replace(old_sha, sha))


V1 = {f"bin/t{i}": (f"#!/bin/sh\necho {i}\n", 0o755) for i in range(4)}
V2 = {f"bin/t{i}": (f"#!/bin/sh\necho new {i}\n", 0o755) for i in range(2, 6)}


def _sub_world(world: World, n: int) -> World:
    """A fresh recipes dir, prefix and build dir that share the served directory."""
    sub = World(world.root / f"n{n}", world.server)
    sub.recipes.mkdir(parents=True)
    sub.srv.symlink_to(world.srv)
    return sub


@cheat_aware(protects="a package cannot ship recipe's own state directory (journal, lock)",
             cheats=["check only the prefix, not the state directory inside it"],
             consequence="a package replaces the live journal; a crash then makes the next run "
                         "'roll back' the forged journal and delete files outside the prefix")
def test_a_package_that_ships_the_journal_is_refused(world):
    victim = world.root / "victim"
    victim.write_text("precious\n")
    forged = json.dumps(["place", str(victim)]) + "\n"
    world.add("evil", "1.0", {"journal": (forged, 0o644), "bin/evil": ("x\n", 0o755)},
              install='install_bin("bin/*"); install_to_dir("journal", "var/lib/recipe");')
    world.add("one", "1.0")
    snap = world.snapshot()
    proc = world.run("install", "evil")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"evil installs {world.prefix}/var/lib/recipe/journal, inside recipe's own state " \
           "directory" in proc.stderr
    assert world.snapshot() == snap
    # the attack in full: killed at the last step of the commit (the forged journal in place)
    mgr = (f"from pathlib import Path\nfrom levitate.recipe.manager import Manager\n"
           f"from levitate.recipe.registry import Registry\nimport os\n"
           f"def hook(step):\n    if step >= 4: os._exit(9)\n"
           f"Manager(Registry([Path({str(world.recipes)!r})]), Path({str(world.prefix)!r}), "
           f"Path({str(world.root / 'build')!r}), on_step=hook).install(['evil'])\n")
    subprocess.run([sys.executable, "-c", mgr], env=world.env(), capture_output=True)
    world.run("install", "one")
    assert victim.read_text() == "precious\n"


@cheat_aware(protects="recovery acts only on paths under the prefix being committed",
             cheats=["replay whatever the journal says"],
             consequence="a forged or foreign journal deletes or moves files anywhere")
@pytest.mark.parametrize("step", [["place", "{victim}"], ["place", "{prefix}/../victim"],
                                  ["backup", "{prefix}/x", "{victim}"],
                                  ["begin", "{prefix}/var"], ["rm", "{prefix}/x"], [["place"]]])
def test_recovery_refuses_a_journal_that_names_anything_else(world, step):
    victim = world.root / "victim"
    victim.write_text("precious\n")
    world.add("one", "1.0")
    journal = world.prefix / "var/lib/recipe/journal"
    journal.parent.mkdir(parents=True)
    lines = [["begin", str(journal.parent / "backup-1")],
             [p.format(victim=victim, prefix=world.prefix) if isinstance(p, str) else p
              for p in step]]
    journal.write_text("".join(json.dumps(s) + "\n" for s in lines))
    proc = world.run("install", "one")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"the journal {journal} names " in proc.stderr
    assert "not written by recipe" in proc.stderr
    assert victim.read_text() == "precious\n" and world.files() == set()


@cheat_aware(protects="every crash point of an install ends in the old or the new state",
             cheats=["drop the journal before the state is written", "roll back a commit whose "
                     "state was written"],
             consequence="files in the prefix while the recipe says not installed; no command "
                         "repairs it (install: exists on disk, remove: not installed)")
def test_sigkill_at_every_step_of_an_install(world):
    seen = set()
    for n in range(1, 40):
        sub = _sub_world(world, n)
        sub.add("multi", "1.0", V1)
        sub.add("one", "1.0")
        code = _killed_at(sub, n, "install")
        if code == 0:
            break
        assert code == 9
        sub.ok("install", "one")                        # recovers first
        installed, _ = _state(sub)
        files = sub.files() - {"bin/one"}
        assert files == (set(V1) if installed else set()), (n, installed, files)
        seen.add(installed)
        sub.ok("remove" if installed else "install", "multi")    # either way repairable
    else:
        pytest.fail("the install never completed")
    assert n > 6 and seen == {True, False}


@cheat_aware(protects="every crash point of an upgrade ends in the old or the new version",
             cheats=["drop the journal before the state is written"],
             consequence="a package stuck between two versions")
def test_sigkill_at_every_step_of_an_upgrade(world):
    seen = set()
    for n in range(1, 40):
        sub = _sub_world(world, n)
        sub.add("multi", "1.0", V1)
        sub.ok("install", "multi")
        _bump(sub, V2)
        code = _killed_at(sub, n, "upgrade")
        if code == 0:
            break
        assert code == 9
        sub.add("one", "1.0")
        with (sub.recipes / "multi.rhai").open("a") as f:    # an edit of other lines meanwhile
            f.write("// edited\n")
        sub.ok("install", "one")                        # recovers first
        installed, version = _state(sub)
        assert installed and not list((sub.prefix / "var/lib/recipe").glob("backup-*"))
        want = {"1.0": V1, "2.0": V2}[version]
        assert sub.files() - {"bin/one"} == set(want), (n, version)
        for rel, (content, _mode) in want.items():
            assert (sub.prefix / rel).read_text() == content
        seen.add(version)
        sub.ok("upgrade")
        assert _state(sub) == (True, "2.0")
    else:
        pytest.fail("the upgrade never completed")
    assert seen == {"1.0", "2.0"}


@cheat_aware(protects="a state write that fails after the files are moved rolls the files back",
             cheats=["write the state after the journal is gone"],
             consequence="files committed, the recipe says they are not")
def test_a_failing_state_write_rolls_the_commit_back(world):
    journal = world.prefix / "var/lib/recipe/journal"
    with small_fs(world.recipes, 1):
        world.add("multi", "1.0", V1)
        snap = world.snapshot()
        fill = world.recipes / "fill"
        # once the journal names the state write, the recipes directory's file system fills up
        script = (
            "import sys\nfrom pathlib import Path\n"
            "from levitate.recipe.manager import Manager\n"
            "from levitate.recipe.registry import Registry\n"
            "from levitate.util.errors import LevitateError\n"
            "def hook(step):\n"
            f"    if '\"state\"' in Path({str(journal)!r}).read_text():\n"
            f"        with open({str(fill)!r}, 'ab', buffering=0) as f:\n"
            "            try:\n"
            "                while True: f.write(b'x' * 65536)\n"
            "            except OSError: pass\n"
            f"m = Manager(Registry([Path({str(world.recipes)!r})]), Path({str(world.prefix)!r}),"
            f" Path({str(world.root / 'build')!r}), out=lambda t: None, on_step=hook)\n"
            "try:\n    m.install(['multi'])\n"
            "except LevitateError as e:\n    print(e.message); sys.exit(3)\n")
        proc = subprocess.run([sys.executable, "-c", script], env=world.env(),
                              capture_output=True, text=True)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"no space left on {world.recipes}" in proc.stdout
        assert world.files() == set() and not journal.exists()
        fill.unlink()
        assert world.snapshot() == snap
        assert _state(world) == (False, None)
        world.ok("install", "multi")
        assert world.files() == set(V1)


@cheat_aware(protects="a full prefix file system is reported as such and left as it was",
             cheats=["leave the half-copied temporary file", "blame permissions"],
             consequence="the file system stays full after 'everything was rolled back'")
def test_a_full_prefix_file_system(world, tmp_path):
    big = {"share/big/blob": ("\0" * (6 << 20), 0o644), "bin/small": ("x\n", 0o755)}
    world.add("multi", "1.0", big, install='install_bin("bin/small"); '
                                           'install_to_dir("share/big/blob", "share/big");')
    world.add("one", "1.0")
    with small_fs(world.prefix, 4):
        world.ok("install", "one")
        free = os.statvfs(world.prefix).f_bfree
        snap = world.snapshot()
        proc = world.run("install", "multi")
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert f"multi: no space left on {world.prefix}" in proc.stderr
        assert "everything was rolled back" in proc.stderr and "lsattr" not in proc.stderr
        leftovers = [str(p) for p in world.prefix.rglob("*") if "recipe-tmp" in p.name]
        assert leftovers == []
        assert world.snapshot() == snap
        assert os.statvfs(world.prefix).f_bfree == free
