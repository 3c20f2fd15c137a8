"""`recipe` against state and prefixes it did not make itself (issue 15, items 7-10 and 13): a
user's directory where a packaged file was, the same recipe run into two prefixes at once,
malformed or hostile state values in a recipe file, and the messages of upgrade and remove."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from levitate.recipe.state import write_state
from tests.cheat_aware import cheat_aware
from tests.httpserver import http_serve  # noqa: F401 - fixture
from tests.recipe_support import World, tarball


@pytest.fixture
def world(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "recipes").mkdir()
    (tmp_path / "srv").mkdir()
    return World(tmp_path, http_serve(tmp_path / "srv"))


def _bump(world: World, name: str, version: str, files: dict) -> None:
    """Serve NAME-VERSION.tar.gz and point recipes/NAME.rhai at it."""
    sha = tarball(world.srv / f"{name}-{version}.tar.gz", f"{name}-{version}", files)
    path = world.recipes / f"{name}.rhai"
    text = path.read_text()
    old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
    path.write_text(re.sub(r'let version = "[^"]*";', f'let version = "{version}";', text)
                    .replace(old_sha, sha))


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("recipe: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


# -- item 7: a packaged file the user replaced by a directory -----------------------------------
DATA = {"bin/lib-a": ("#!/bin/sh\n", 0o755), "share/data.txt": ("packaged\n", 0o644)}
INSTALL_DATA = 'install_bin("bin/*"); if exists("share/data.txt") { install_to_dir("share/data.txt", "share/lib-a"); }'


def _user_dir(world: World) -> Path:
    world.add("lib-a", "1.0", DATA, install=INSTALL_DATA)
    world.ok("install", "lib-a")
    data = world.prefix / "share/lib-a/data.txt"
    data.unlink()
    data.mkdir()
    (data / "mine.txt").write_text("the user's work\n")
    return data


@cheat_aware(protects="remove and upgrade never delete a directory the user put where a packaged "
                      "file was",
             cheats=["rmtree whatever path the state names", "keep it without saying so"],
             consequence="a user's files vanish silently on remove or upgrade")
def test_remove_keeps_a_users_directory_in_place_of_a_packaged_file(world):
    data = _user_dir(world)
    proc = world.ok("remove", "lib-a")
    assert (data / "mine.txt").read_text() == "the user's work\n"
    assert f"{data} is no longer the file lib-a installed (it is a directory): kept" in proc.stderr
    assert not (world.prefix / "bin/lib-a").exists()
    assert json.loads(world.ok("--json", "info", "lib-a").stdout)["installed_files"] == []


def test_upgrade_refuses_to_replace_a_users_directory(world):
    data = _user_dir(world)
    _bump(world, "lib-a", "1.1", {**DATA, "share/data.txt": ("packaged 1.1\n", 0o644)})
    snap = world.snapshot()
    proc = world.run("upgrade", "lib-a")
    assert proc.returncode == 7
    assert f"lib-a: file conflict: {data} exists and is a directory" in _one_line_error(proc)
    assert world.snapshot() == snap


def test_upgrade_that_drops_the_file_keeps_the_users_directory(world):
    data = _user_dir(world)
    _bump(world, "lib-a", "1.1", {"bin/lib-a": ("#!/bin/sh\n# 1.1\n", 0o755)})
    proc = world.ok("upgrade", "lib-a")
    assert (data / "mine.txt").read_text() == "the user's work\n"
    assert f"{data} is no longer the file lib-a installed (it is a directory): kept" in proc.stderr


# -- item 8: the same recipe into two prefixes at once --------------------------------------------
def _slow(world: World, started: Path, go: Path) -> None:
    world.add("slow", "1.0", build=f'    run("touch {started}; while [ ! -e {go} ]; do sleep 0.05; done");\n'
                                   f'    extract("tar.gz");\n    cd(`slow-${{version}}`);\n')


def _into(world: World, prefix: Path, *args, recipes: Path | None = None) -> list[str]:
    cmd = world.cmd(*args)
    cmd[cmd.index("--prefix") + 1] = str(prefix)
    if recipes:
        cmd[cmd.index("--recipes") + 1] = str(recipes)
    return cmd


@cheat_aware(protects="one recipe is installed by one operation at a time, whatever the prefix",
             cheats=["lock only the prefix", "check the recorded prefix before the lock only"],
             consequence="the state records one prefix and the other's files are orphaned")
def test_same_recipe_into_two_prefixes_at_once(world, tmp_path):
    started, go = world.root / "started", world.root / "go"
    _slow(world, started, go)
    other = tmp_path / "other-prefix"
    first = subprocess.Popen(world.cmd("install", "slow"), env=world.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(started, first)
        second = subprocess.run(_into(world, other, "install", "slow"), env=world.env(),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 8
        line = _one_line_error(second)
        assert f"recipe slow ({world.recipes / 'slow.rhai'}) is in use by another recipe " \
               f"operation (pid {first.pid})" in line
        assert not (other / "bin/slow").exists()
    finally:
        go.touch()
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    info = json.loads(world.ok("--json", "info", "slow").stdout)
    assert info["installed_prefix"] == str(world.prefix)
    assert (world.prefix / "bin/slow").exists()
    assert not list(world.recipes.glob(".*lock*"))                  # the entry lock is gone


def test_recorded_prefix_is_checked_again_under_the_lock(world, tmp_path, monkeypatch):
    """A plan made before another run installed the recipe elsewhere is refused, not run."""
    from levitate.recipe.manager import Manager
    from levitate.recipe.recipe import RecipeError
    from levitate.recipe.registry import Registry
    world.add("tool-b", "1.0")
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    other = tmp_path / "other-prefix"
    late = Manager(Registry([world.recipes]), other, world.root / "build", out=lambda _t: None)
    steps = late.plan(["tool-b"])                    # not installed anywhere yet
    world.ok("install", "tool-b")                    # another run installs it into world.prefix
    with pytest.raises(RecipeError, match=f"tool-b is installed in {world.prefix}, not in {other}"):
        late.run_steps(steps)
    assert not (other / "bin/tool-b").exists()
    assert json.loads(world.ok("--json", "info", "tool-b").stdout)["installed_prefix"] == str(world.prefix)


def test_a_shared_build_directory_is_not_taken_by_another_run(world, tmp_path):
    started, go = world.root / "started", world.root / "go"
    _slow(world, started, go)
    copy = tmp_path / "recipes-copy"
    shutil.copytree(world.recipes, copy)
    first = subprocess.Popen(world.cmd("install", "slow"), env=world.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(started, first)
        second = subprocess.run(_into(world, tmp_path / "p2", "install", "slow", recipes=copy),
                                env=world.env(), capture_output=True, text=True, timeout=60)
        assert second.returncode == 8
        assert f"the build directory {world.root / 'build' / 'slow-1.0'} is in use by another " \
               f"recipe operation (pid {first.pid})" in _one_line_error(second)
        assert (world.root / "build" / "slow-1.0" / "slow-1.0.tar.gz").exists()
    finally:
        go.touch()
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert (world.prefix / "bin/slow").exists()


# -- item 9: malformed state values ----------------------------------------------------------------
@cheat_aware(protects="a recipe with malformed state is reported in one line; the others still work",
             cheats=["catch every exception", "coerce bad values silently"],
             consequence="one bad recipe file breaks `recipe list` for every recipe")
@pytest.mark.parametrize("variable, value, kind", [
    ("installed_files", "5", "an array of strings"),
    ("installed_config", '"x"', "a map of paths to sha256 strings"),
    ("installed_rpms", "#{}", "an array of strings"),
])
def test_malformed_state_values(world, variable, value, kind):
    world.add("good", "1.0")
    bad = world.add("bad", "1.0")
    bad.write_text(bad.read_text().replace("let installed = false;",
                                           f"let installed = true;\nlet {variable} = {value};"))
    expected = f"{bad}: state variable `{variable}` must be {kind}"
    for args in (("list",), ("--json", "list")):
        proc = world.ok(*args)
        assert "good 1.0" in proc.stdout or '"name": "good"' in proc.stdout
        assert "Traceback" not in proc.stderr and expected in proc.stderr
    for args in (("remove", "bad"), ("info", "bad"), ("install", "bad")):
        proc = world.run(*args)
        assert proc.returncode != 0
        assert expected in _one_line_error(proc)


# -- item 10: installed_files outside the prefix ------------------------------------------------------
@cheat_aware(protects="remove deletes only paths under the recorded prefix",
             cheats=["trust installed_files", "check the prefix by string prefix only"],
             consequence="a recipe file's state deletes files anywhere, even in the caller's cwd")
def test_remove_only_touches_paths_under_the_prefix(world, tmp_path):
    world.add("tool-b", "1.0")
    world.ok("install", "tool-b")
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "abs", outside / "dotdot", outside / "via-link", outside / "rel"]
    for v in victims:
        v.write_text("not recipe's\n")
    (world.prefix / "link").symlink_to(outside)
    path = world.recipes / "tool-b.rhai"
    info = json.loads(world.ok("--json", "info", "tool-b").stdout)
    hostile = [str(outside / "abs"), f"{world.prefix}/../outside/dotdot",
               str(world.prefix / "link" / "via-link"), "rel"]
    write_state(path, {"installed_files": info["installed_files"] + hostile})
    proc = subprocess.run(world.cmd("remove", "tool-b"), env=world.env(), capture_output=True,
                          text=True, cwd=outside)
    assert proc.returncode == 0, proc.stderr
    for v in victims:
        assert v.read_text() == "not recipe's\n", v
    assert not (world.prefix / "bin/tool-b").exists()
    for h in hostile:
        assert f"not removing {h}: not a path under the prefix {world.prefix}" in proc.stderr


# -- item 13: messages -----------------------------------------------------------------------------
def test_upgrade_and_remove_messages(world):
    world.add("tool-b", "1.0")
    world.ok("install", "tool-b")
    _bump(world, "tool-b", "1.1", {"bin/tool-b": ("#!/bin/sh\n# 1.1\n", 0o755)})
    dry = world.ok("upgrade", "--dry-run").stdout
    assert "1. tool-b: upgrade 1.0 -> 1.1\n" in dry and "(dependency)" not in dry
    proc = world.ok("upgrade")
    assert "==> upgrading tool-b 1.1\n" in proc.stderr and "(dependency)" not in proc.stderr
    path = world.recipes / "tool-b.rhai"
    path.write_text(path.read_text().replace('let installed_version = "1.1";\n', ""))
    proc = world.ok("remove", "tool-b")
    assert "==> removing tool-b\n" in proc.stderr and "None" not in proc.stderr
