"""`recipe` through its real command line: recipes downloading release tarballs from a loopback
server, installed into a temporary prefix, with dependencies, upgrades, failures and rollbacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.cheat_aware import cheat_aware
from tests.httpserver import closed_port_url, http_serve  # noqa: F401 - fixture
from tests.recipe_support import FIXTURES, World, tarball


@pytest.fixture
def world(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "recipes").mkdir()
    (tmp_path / "srv").mkdir()
    return World(tmp_path, http_serve(tmp_path / "srv"))


def _abc(world: World, lib_version: str = "1.0", conf: str = "setting = 1\n") -> None:
    """lib-a <- tool-b (lib-a >= 1.0) <- app-c (tool-b ^1.0, lib-a): a small diamond."""
    world.add("lib-a", lib_version, {"lib/liba.so": (f"liba {lib_version}\n", 0o644),
                                     "etc/a.conf": (conf, 0o644)},
              install='install_lib("lib/liba.so"); install_to_dir("etc/a.conf", "etc");')
    world.add("tool-b", "1.0", deps=["lib-a >= 1.0"])
    world.add("app-c", "2.0", deps=["tool-b ^1.0", "lib-a"])


def _without_state(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("let installed"))


@cheat_aware(protects="install and remove of packages with dependencies leave exactly their files",
             cheats=["skip dependencies", "leave files behind", "rewrite the whole recipe file"],
             consequence="broken tools, stale files, users' recipe edits lost")
def test_install_remove_cycle_with_dependencies(world):
    _abc(world)
    before = {p.name: p.read_text() for p in world.recipes.iterdir()}
    proc = world.ok("install", "app-c")
    order = re.findall(r"==> installing (\S+)", proc.stderr)
    assert order == ["lib-a", "tool-b", "app-c"]
    assert world.files() == {"lib/liba.so", "etc/a.conf", "bin/tool-b", "bin/app-c"}
    assert subprocess.run([world.prefix / "bin" / "app-c"], capture_output=True,
                          text=True).stdout == "app-c 2.0\n"
    for p in world.recipes.iterdir():
        after = p.read_text()
        assert _without_state(after) == _without_state(before[p.name])   # byte for byte
        assert "installed = true;" in after
    listed = json.loads(world.ok("--json", "list", "--installed").stdout)
    by_name = {r["name"]: r for r in listed}
    assert by_name["app-c"]["installed_as_dep"] is False
    assert by_name["lib-a"]["installed_as_dep"] is True
    assert by_name["tool-b"]["installed_files"] == [str(world.prefix / "bin" / "tool-b")]
    grep = subprocess.run(["grep", "-l", "installed = true", *sorted(world.recipes.glob("*.rhai"))],
                          capture_output=True, text=True).stdout.split()
    assert len(grep) == 3
    assert json.loads(world.ok("--json", "why", "lib-a").stdout) == ["app-c", "tool-b"]
    assert json.loads(world.ok("--json", "impact", "lib-a").stdout) == ["app-c", "tool-b"]
    refused = world.run("remove", "lib-a")
    assert refused.returncode != 0 and "app-c, tool-b depend on it" in refused.stderr
    assert "Traceback" not in refused.stderr
    world.ok("remove", "app-c")
    assert json.loads(world.ok("--json", "orphans").stdout) == ["lib-a", "tool-b"]
    assert "would remove lib-a" in world.ok("autoremove", "--dry-run").stdout
    assert (world.prefix / "lib" / "liba.so").exists()
    world.ok("autoremove")
    assert world.files() == set()
    assert sorted(os.listdir(world.prefix)) == ["var"]          # emptied directories pruned
    for p in world.recipes.iterdir():
        assert "let installed = false;" in p.read_text()
        assert "let installed_files = [];" in p.read_text()


def test_state_round_trip_and_dry_run(world):
    _abc(world)
    snap = world.snapshot()
    proc = world.ok("install", "--dry-run", "app-c")
    assert [line.split(":")[0] for line in proc.stdout.splitlines()
            if not line.startswith(" ")] == ["1. lib-a", "2. tool-b", "3. app-c"]
    assert world.snapshot() == snap and world.server.requests == []
    nodeps = json.loads(world.ok("--json", "install", "--dry-run", "--no-deps", "app-c").stdout)
    assert [s["name"] for s in nodeps] == ["app-c"]
    world.ok("install", "tool-b")
    info = json.loads(world.ok("--json", "info", "tool-b").stdout)
    assert info["installed"] is True and info["installed_version"] == "1.0"
    assert info["installed_prefix"] == str(world.prefix)
    assert abs(info["installed_at"] - time.time()) < 120
    assert json.loads(world.ok("--json", "deps", "app-c").stdout) == ["tool-b ^1.0", "lib-a"]
    tree = world.ok("tree", "app-c").stdout.splitlines()
    assert tree[0] == "app-c (2.0)" and tree[1].strip() == "tool-b ^1.0 (1.0, installed)"
    again = world.ok("install", "tool-b")
    assert "already installed" in again.stderr


@cheat_aware(protects="--dry-run shows what each package would fetch, in order, and changes nothing",
             cheats=["list only the names", "download to find out", "write state or the lock"],
             consequence="users cannot review what an install fetches, or a preview changes the system")
def test_dry_run_shows_what_would_be_fetched_and_changes_nothing(world):
    _abc(world)
    world.ok("lock", "update")
    snap = world.snapshot()                  # the recipes (byte for byte) and recipe.lock
    assert (world.recipes / "recipe.lock").as_posix() in snap
    shas = {n: re.search(r'verify_sha256\("(\w+)"\)', (world.recipes / f"{n}.rhai").read_text()).group(1)
            for n in ("lib-a", "tool-b", "app-c")}
    proc = world.ok("install", "--dry-run", "app-c")
    lines = proc.stdout.splitlines()
    assert lines == [
        "1. lib-a: install 1.0 (dependency)",
        f"     fetch {world.server.url('lib-a-1.0.tar.gz')} -> lib-a-1.0.tar.gz  (sha256 {shas['lib-a']})",
        "2. tool-b: install 1.0 (dependency)",
        f"     fetch {world.server.url('tool-b-1.0.tar.gz')} -> tool-b-1.0.tar.gz  (sha256 {shas['tool-b']})",
        "3. app-c: install 2.0",
        f"     fetch {world.server.url('app-c-2.0.tar.gz')} -> app-c-2.0.tar.gz  (sha256 {shas['app-c']})"]
    plan = json.loads(world.ok("--json", "install", "--dry-run", "app-c").stdout)
    assert [(s["name"], s["version"], s["explicit"]) for s in plan] == \
        [("lib-a", "1.0", False), ("tool-b", "1.0", False), ("app-c", "2.0", True)]
    for s in plan:
        assert s["fetch"] == [{"kind": "download", "url": world.server.url(f"{s['name']}-{s['version']}.tar.gz"),
                               "dest": f"{s['name']}-{s['version']}.tar.gz", "checksum": {"sha256": shas[s["name"]]}}]
        assert s["note"] is None and s["recipe"] == str(world.recipes / f"{s['name']}.rhai")
        assert s["skipped"][:2] == ["extract(tar.gz)", f"cd({s['name']}-{s['version']})"]
    assert world.server.requests == []                                   # nothing downloaded
    assert world.snapshot() == snap                                      # recipes, lock unchanged
    assert not world.prefix.exists() and not (world.root / "build").exists()
    assert not (world.root / "cache").exists()                           # no partial downloads
    # once lib-a is installed it drops out of the plan; the prefix lock is never taken by a dry run
    world.ok("install", "lib-a")
    lock_file = world.prefix / "var/lib/recipe/lock"
    stamp = os.stat(lock_file).st_mtime_ns if lock_file.exists() else None
    snap = world.snapshot()
    assert [s["name"] for s in json.loads(world.ok("--json", "install", "--dry-run", "app-c").stdout)] == \
        ["tool-b", "app-c"]
    assert world.snapshot() == snap
    assert (os.stat(lock_file).st_mtime_ns if lock_file.exists() else None) == stamp


def test_dry_run_of_a_recipe_that_needs_real_content(world, tmp_path):
    """acquire() that reads what it downloaded cannot be dry-run: what was recorded up to there,
    then a clear note (no traceback); the other packages are still shown. Metadata look-ups are
    done for real, git clones and commands are not."""
    api = world.srv / "api" / "repos" / "acme" / "tool" / "releases"
    api.mkdir(parents=True)
    (api / "latest").write_text(json.dumps({"tag_name": "v3.1.0"}))
    world.add("lib-a", "1.0")
    (world.recipes / "needs.rhai").write_text(
        'let name = "needs";\nlet version = "0.1";\nlet deps = ["lib-a"];\nlet installed = false;\n'
        'fn acquire() {\n'
        '    download(`${env("SRV")}/needs-${version}.tar.gz`);\n'
        '    extract("tar.gz");\n'
        '    let v = read_file(`needs-${version}/PATCH_VERSION`);\n'
        '    download(`${env("SRV")}/needs-${v}.patch`);\n'
        '}\nfn install() { install_bin("needs"); }\n')
    (world.recipes / "latest.rhai").write_text(
        'let name = "latest";\nlet version = "3";\nlet installed = false;\n'
        'fn acquire() {\n'
        '    let v = github_latest_release("acme/tool");\n'
        '    download(`${env("SRV")}/tool-${v}.tar.gz`, `${BUILD_DIR}/src/`);\n'
        '    git_clone(`${env("SRV")}/tool.git`);\n'
        '}\nfn build() {\n'
        '    if run_output("uname -m") != "" { throw "run_output ran"; }\n'
        '    run(`touch ${env("MARKER")}`);\n'
        '}\nfn install() { rpm_install(["zlib", "tree"]); }\n')
    marker = tmp_path / "ran"
    snap = world.snapshot()
    env = world.env(RECIPE_GITHUB_API=world.server.url("api"), MARKER=str(marker))
    proc = world.ok("install", "--dry-run", "needs", "latest", env=env)
    assert "Traceback" not in proc.stderr + proc.stdout
    out = proc.stdout.splitlines()
    assert out[0] == "1. lib-a: install 1.0 (dependency)"
    assert out[2] == "2. needs: install 0.1"
    assert out[3] == f"     fetch {world.server.url('needs-0.1.tar.gz')} -> needs-0.1.tar.gz  (no checksum verified)"
    assert out[4].startswith("     note: acquire() cannot be dry-run: ") and "needs.rhai:8:" in out[4]
    assert "read_file needs-0.1/PATCH_VERSION" in out[4] and "(nothing is downloaded in a dry run)" in out[4]
    assert out[5:] == [
        "3. latest: install 3",
        "     read GitHub: latest release of acme/tool (metadata, read now)",
        "     rocky packages: zlib, tree (closure not resolved: rpm_install: no Rocky repositories are configured)",
        f"     fetch {world.server.url('tool-3.1.0.tar.gz')} -> tool-3.1.0.tar.gz  (no checksum verified)",
        f"     clone {world.server.url('tool.git')} -> tool"]
    plan = json.loads(world.ok("--json", "install", "--dry-run", "needs", "latest", env=env).stdout)
    assert plan[1]["note"].startswith("acquire() cannot be dry-run: ") and plan[0]["note"] is None
    assert plan[2]["rpm"] == [{"names": ["zlib", "tree"], "packages": None,
                               "note": "closure not resolved: rpm_install: no Rocky repositories are configured"}]
    assert "run(touch " + str(marker) + ")" in plan[2]["skipped"]
    assert not marker.exists()                                             # no command ran
    assert {r.path for r in world.server.log()} == {"/api/repos/acme/tool/releases/latest"}
    assert world.snapshot() == snap and not world.prefix.exists()


@cheat_aware(protects="upgrades replace files, drop stale ones and keep users' config edits",
             cheats=["overwrite config files", "leave the old version's files"],
             consequence="users lose configuration or keep stale files")
def test_upgrade_cycle(world):
    files_v1 = {"lib/liba.so": ("liba 1.0\n", 0o644), "etc/a.conf": ("a = 1\n", 0o644),
                "etc/b.conf": ("b = 1\n", 0o644), "share/old.txt": ("old\n", 0o644)}
    files_v2 = {"lib/liba.so": ("liba 1.1\n", 0o644), "etc/a.conf": ("a = 2\n", 0o644),
                "etc/b.conf": ("b = 2\n", 0o644)}
    install = ('install_lib("lib/liba.so"); install_to_dir("etc/*.conf", "etc"); '
               'if exists("share/old.txt") { install_to_dir("share/old.txt", "share/lib-a"); }')
    world.add("lib-a", "1.0", files_v1, install=install)
    world.ok("install", "lib-a")
    assert (world.prefix / "share/lib-a/old.txt").exists()
    (world.prefix / "etc" / "a.conf").write_text("a = 1  # mine\n")
    sha = tarball(world.srv / "lib-a-1.1.tar.gz", "lib-a-1.1", files_v2)
    path = world.recipes / "lib-a.rhai"
    text = path.read_text()
    old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
    path.write_text(text.replace('let version = "1.0";', 'let version = "1.1";').replace(old_sha, sha))
    dry = json.loads(world.ok("--json", "upgrade", "--dry-run").stdout)
    assert [(d["name"], d["upgrade"], d["from"], d["version"]) for d in dry] == [("lib-a", True, "1.0", "1.1")]
    assert [(f["url"], f["checksum"]) for f in dry[0]["fetch"]] == \
        [(world.server.url("lib-a-1.1.tar.gz"), {"sha256": sha})]
    assert "1. lib-a: upgrade 1.0 -> 1.1" in world.ok("upgrade", "--dry-run").stdout
    assert not any(r.path == "/lib-a-1.1.tar.gz" for r in world.server.log())
    proc = world.ok("upgrade")
    assert "upgrading lib-a 1.1" in proc.stderr
    assert (world.prefix / "lib/liba.so").read_text() == "liba 1.1\n"
    assert (world.prefix / "etc/b.conf").read_text() == "b = 2\n"          # unchanged: replaced
    assert (world.prefix / "etc/a.conf").read_text() == "a = 1  # mine\n"  # changed: kept
    assert (world.prefix / "etc/a.conf.recipenew").read_text() == "a = 2\n"
    assert "a.conf.recipenew" in proc.stderr
    assert not (world.prefix / "share").exists()                            # old file gone
    info = json.loads(world.ok("--json", "info", "lib-a").stdout)
    assert info["installed_version"] == "1.1" and info["installed_as_dep"] is False
    world.ok("remove", "lib-a")
    assert (world.prefix / "etc/a.conf.recipesave").read_text() == "a = 1  # mine\n"
    assert not (world.prefix / "etc/a.conf").exists() and not (world.prefix / "etc/b.conf").exists()


def test_update_rewrites_version_from_check_update(world):
    api = world.srv / "api" / "repos" / "acme" / "tool" / "releases"
    api.mkdir(parents=True)
    (api / "latest").write_text(json.dumps({"tag_name": "v1.4.0"}))
    (api.parent / "tags").write_text(json.dumps([{"name": "v1.4.1-rc1"}, {"name": "v1.4.0"}]))
    world.add("tool", "1.2.0", extra='\nfn check_update() {\n'
              '    if github_latest_tag("acme/tool") != "1.4.1-rc1" { throw "tag"; }\n'
              '    github_latest_release("acme/tool")\n}\n')
    path = world.recipes / "tool.rhai"
    before = path.read_text()
    proc = world.ok("update", env=world.env(RECIPE_GITHUB_API=world.server.url("api")))
    assert "tool: 1.2.0 -> 1.4.0" in proc.stderr
    assert path.read_text() == before.replace('let version = "1.2.0";', 'let version = "1.4.0";')
    assert "no updates found" in world.ok("update", env=world.env(
        RECIPE_GITHUB_API=world.server.url("api"))).stdout
    world.add("offline", "1.0", extra='\nfn check_update() {\n    github_latest_release("no/such")\n}\n')
    proc = world.run("update", env=world.env(RECIPE_GITHUB_API=world.server.url("api")))
    assert proc.returncode == 1 and "warning: offline: cannot check for updates" in proc.stderr
    assert "could not check offline for updates" in proc.stderr


@cheat_aware(protects="a failing recipe changes nothing",
             cheats=["write state before the install is complete", "install straight into PREFIX"],
             consequence="half-installed packages and recipe files that lie about what is installed")
@pytest.mark.parametrize("phase", ["acquire", "build", "install", "pre_install"])
def test_failure_in_any_phase_changes_nothing(world, phase):
    _abc(world)
    world.ok("install", "lib-a")
    body = {"acquire": 'download(`${env("SRV")}/tool-b-1.0.tar.gz`); throw "boom in acquire";',
            "build": 'extract("tar.gz"); throw "boom in build";',
            "install": 'install_bin("bin/*"); throw "boom in install";',
            "pre_install": 'throw "boom in pre_install";'}[phase]
    path = world.recipes / "tool-b.rhai"
    text = path.read_text()
    if phase == "pre_install":
        text += f"\nfn pre_install() {{\n    {body}\n}}\n"
    else:
        text = re.sub(rf"fn {phase}\(\) \{{\n", f"fn {phase}() {{\n    {body}\n", text, count=1)
    path.write_text(text)
    snap = world.snapshot()
    proc = world.run("install", "tool-b")
    assert proc.returncode != 0
    assert f"{phase}() failed" in proc.stderr and f"boom in {phase}" in proc.stderr
    assert re.search(r"tool-b\.rhai:\d+:\d+", proc.stderr)
    assert "Traceback" not in proc.stderr
    assert world.snapshot() == snap


@cheat_aware(protects="Ctrl-C or a failure in the middle of moving files rolls everything back",
             cheats=["move files without a journal", "skip the rollback"],
             consequence="a prefix with half of two versions of a package")
@pytest.mark.parametrize("at", [1, 2, 4, 7])
def test_interrupt_mid_upgrade_commit_restores_old_version(world, at, monkeypatch):
    from levitate.recipe.manager import Manager
    from levitate.recipe.registry import Registry
    world.add("multi", "1.0", {f"bin/t{i}": (f"#!/bin/sh\necho {i}\n", 0o755) for i in range(4)})
    world.ok("install", "multi")
    path = world.recipes / "multi.rhai"
    sha = tarball(world.srv / "multi-2.0.tar.gz", "multi-2.0",
                  {f"bin/t{i}": (f"#!/bin/sh\necho new {i}\n", 0o755) for i in range(2, 6)})
    text = path.read_text()
    old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
    path.write_text(text.replace('let version = "1.0";', 'let version = "2.0";').replace(old_sha, sha))
    snap = world.snapshot()
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)

    def hook(step):
        if step == at:
            raise KeyboardInterrupt

    mgr = Manager(Registry([world.recipes]), world.prefix, world.root / "build",
                  out=lambda text: None, on_step=hook)
    with pytest.raises(KeyboardInterrupt):
        mgr.upgrade()
    assert world.snapshot() == snap
    assert not (world.prefix / "var/lib/recipe/journal").exists()
    mgr.on_step = None
    mgr.registry.reload()
    mgr.upgrade()
    assert world.files() == {f"bin/t{i}" for i in range(2, 6)}


def test_crash_mid_commit_is_rolled_back_by_the_next_run(world):
    """A process killed mid-commit (no chance to roll back) leaves a journal; the next operation
    on the prefix replays it backwards before doing anything."""
    world.add("one", "1.0")
    world.add("multi", "1.0", {f"bin/t{i}": ("x\n", 0o755) for i in range(5)})
    snap = world.snapshot()
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from levitate.recipe.manager import Manager\n"
        "from levitate.recipe.registry import Registry\n"
        "def hook(step):\n"
        "    if step == 4: os._exit(9)\n"
        f"m = Manager(Registry([Path({str(world.recipes)!r})]), Path({str(world.prefix)!r}),"
        f" Path({str(world.root / 'build')!r}), on_step=hook)\n"
        "m.install(['multi'])\n")
    proc = subprocess.run([sys.executable, "-c", script], env=world.env(), capture_output=True)
    assert proc.returncode == 9
    assert (world.prefix / "var/lib/recipe/journal").exists()
    assert len(world.files()) > 0                       # the crash left files behind...
    world.ok("install", "one")                          # ...the next run rolls them back first
    assert world.files() == {"bin/one"}
    snap2 = world.snapshot()
    assert {k for k in snap2 if "prefix" in k} == {str(world.prefix / "bin/one")}
    assert snap2[str(world.recipes / "multi.rhai")] == snap[str(world.recipes / "multi.rhai")]


def test_checksum_mismatch(world):
    world.add("tool-b", "1.0", sha="0" * 64)
    snap = world.snapshot()
    proc = world.run("install", "tool-b")
    assert proc.returncode == 3                      # VerificationError's exit status
    assert "sha256 mismatch for tool-b-1.0.tar.gz" in proc.stderr
    assert world.snapshot() == snap


@pytest.mark.parametrize("how", ["404", "refused"])
def test_download_failure(world, how):
    world.add("tool-b", "1.0")
    env = world.env()
    if how == "404":
        (world.srv / "tool-b-1.0.tar.gz").unlink()
    else:
        env["SRV"] = closed_port_url()
    snap = world.snapshot()
    proc = world.run("install", "tool-b", env=env)
    assert proc.returncode != 0
    assert ("404" in proc.stderr) if how == "404" else ("refused" in proc.stderr.lower())
    assert "acquire() failed" in proc.stderr and "Traceback" not in proc.stderr
    assert world.snapshot() == snap


@pytest.mark.parametrize("broken, marker", [("fn build() {", "fn build( {"),
                                            ('let version = "1.0";', 'let version = "1.0"')])
def test_malformed_recipe_reports_line_and_column(world, broken, marker):
    _abc(world)
    path = world.recipes / "tool-b.rhai"
    path.write_text(path.read_text().replace(broken, marker))
    snap = world.snapshot()
    proc = world.run("install", "tool-b")
    assert proc.returncode != 0
    m = re.search(r"tool-b\.rhai:(\d+):(\d+): ", proc.stderr)
    assert m, proc.stderr
    lines = path.read_text().splitlines()
    assert marker.split("(")[0] in lines[int(m.group(1)) - 1] + lines[int(m.group(1)) - 2]
    assert "Traceback" not in proc.stderr
    assert world.snapshot() == snap


def test_recipe_missing_install(world):
    path = world.add("tool-b", "1.0")
    path.write_text(path.read_text().replace("fn install()", "fn install_it()"))
    snap = world.snapshot()
    proc = world.run("install", "tool-b")
    assert proc.returncode != 0 and "has no install()" in proc.stderr
    assert world.snapshot() == snap and world.server.requests == []


def test_dependency_cycle(world):
    world.add("a", "1.0", deps=["b"])
    world.add("b", "1.0", deps=["c"])
    world.add("c", "1.0", deps=["a"])
    proc = world.run("install", "a")
    assert proc.returncode != 0
    assert "dependency cycle: a -> b -> c -> a" in proc.stderr
    assert world.server.requests == []


def test_unsatisfiable_constraint_and_missing_dependency(world):
    _abc(world)
    world.add("needy", "1.0", deps=["tool-b", "app-c >= 3"])
    proc = world.run("install", "needy")
    assert proc.returncode != 0
    assert "unsatisfiable constraint: needy -> app-c >= 3, but recipe app-c has version 2.0" in proc.stderr
    world.add("lost", "1.0", deps=["tool-b", "nowhere >= 1"])
    proc = world.run("install", "lost")
    assert "no recipe named 'nowhere' (needed by lost -> nowhere >= 1)" in proc.stderr
    assert world.server.requests == [] and world.files() == set()


def test_locked_install(world):
    _abc(world)
    world.ok("lock", "update")
    assert "tool-b 1.0" in world.ok("lock", "show").stdout
    world.ok("lock", "verify")
    path = world.recipes / "tool-b.rhai"
    path.write_text(path.read_text().replace('let version = "1.0";', 'let version = "1.1";'))
    verify = world.run("lock", "verify")
    assert verify.returncode != 0 and "tool-b: locked at 1.0, recipe has 1.1" in verify.stderr
    proc = world.run("install", "--locked", "app-c")
    assert proc.returncode != 0 and "--locked: tool-b: locked at 1.0, recipe has 1.1" in proc.stderr
    assert world.files() == set() and world.server.requests == []
    world.ok("install", "--locked", "lib-a")            # not involved: fine
    assert "lib/liba.so" in world.files()


@cheat_aware(protects="two recipe operations never run on one prefix at once",
             cheats=["no lock", "a lock file that is never checked"],
             consequence="interleaved installs corrupt the prefix and the recipes' state")
def test_two_concurrent_installs(world):
    started, go = world.root / "started", world.root / "go"
    world.add("slow", "1.0", build=f'    run("touch {started}; while [ ! -e {go} ]; do sleep 0.05; done");\n'
                                   f'    extract("tar.gz");\n    cd(`slow-${{version}}`);\n')
    world.add("quick", "1.0")
    first = subprocess.Popen(world.cmd("install", "slow"), env=world.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = world.run("install", "quick")
        assert second.returncode == 8
        assert f"another recipe operation is running on {world.prefix} (pid {first.pid})" in second.stderr
        assert "bin/quick" not in world.files()
    finally:
        go.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    world.ok("install", "quick")
    assert world.files() == {"bin/slow", "bin/quick"}


@pytest.mark.parametrize("where", ["disk", "recipe"])
def test_file_conflicts(world, where):
    world.add("tool-b", "1.0")
    if where == "disk":
        (world.prefix / "bin").mkdir(parents=True)
        (world.prefix / "bin" / "tool-b").write_text("the user's own\n")
        expected = "exists on disk"
    else:
        world.add("other", "1.0", {"bin/tool-b": ("other's\n", 0o755)})
        world.ok("install", "other")
        expected = "is owned by recipe other"
    snap = world.snapshot()
    proc = world.run("install", "tool-b")
    assert proc.returncode == 7
    assert f"tool-b: file conflict: {world.prefix / 'bin/tool-b'} {expected}" in proc.stderr
    assert world.snapshot() == snap


def test_prefix_is_recorded_and_enforced(world, tmp_path):
    world.add("tool-b", "1.0")
    world.ok("install", "tool-b")
    other = tmp_path / "other-prefix"
    cmd = world.cmd("install", "--reinstall", "tool-b")
    cmd[cmd.index("--prefix") + 1] = str(other)
    proc = subprocess.run(cmd, env=world.env(), capture_output=True, text=True)
    assert proc.returncode != 0
    assert f"tool-b is installed in {world.prefix}, not in {other}" in proc.stderr


@cheat_aware(protects="recipes written for the original LevitateOS run unchanged",
             cheats=["special-case the fixture names", "helpers with other semantics"],
             consequence="users' existing recipes break")
def test_original_levitateos_recipes(world):
    for name in ("ripgrep.rhai", "bash.rhai", "hello-faq.rhai"):
        shutil.copy(FIXTURES / name, world.recipes / name)
    rg_top = "ripgrep-14.1.1-x86_64-unknown-linux-musl"
    tarball(world.srv / "BurntSushi/ripgrep/releases/download/14.1.1" / f"{rg_top}.tar.gz", rg_top,
            {"rg": ("#!/bin/sh\necho ripgrep 14.1.1\n", 0o755), "doc/rg.1": (".TH RG 1\n", 0o644)})
    tarball(world.srv / "gnu/bash/bash-5.2.37.tar.gz", "bash-5.2.37", {
        "configure": ('#!/bin/sh\nfor a; do case "$a" in --prefix=*) p="${a#--prefix=}";; esac; done\n'
                      'echo "PREFIX_DIR = $p" > config.mk\n', 0o755),
        "Makefile": ("include config.mk\n"
                     "all: mybash\n"
                     "mybash:\n\tprintf '#!/bin/sh\\necho built for $(PREFIX_DIR)\\n' > mybash\n"
                     "install: mybash\n\tmkdir -p $(DESTDIR)$(PREFIX_DIR)/bin\n"
                     "\tcp mybash $(DESTDIR)$(PREFIX_DIR)/bin/mybash\n\tchmod 755 $(DESTDIR)$(PREFIX_DIR)/bin/mybash\n",
                     0o644)})
    tarball(world.srv / "hello-faq-1.0.0.tar.gz", "hello-faq-1.0.0",
            {"hello-faq": ("#!/bin/sh\necho faq\n", 0o755)})
    world.ok("install", "ripgrep", "bash", "hello-faq")
    assert world.files() == {"bin/rg", "share/man/man1/rg.1", "bin/mybash", "bin/hello-faq"}
    assert os.stat(world.prefix / "bin/rg").st_mode & 0o777 == 0o755
    assert os.stat(world.prefix / "share/man/man1/rg.1").st_mode & 0o777 == 0o644
    # configure --prefix=${PREFIX} saw the real prefix; make install went through DESTDIR
    out = subprocess.run([world.prefix / "bin/mybash"], capture_output=True, text=True).stdout
    assert out == f"built for {world.prefix}\n"
    faq = (world.recipes / "hello-faq.rhai").read_text()
    assert faq.startswith((FIXTURES / "hello-faq.rhai").read_text().split("fn install")[0].split("};")[0])
    assert "let installed = true;" in faq
    world.ok("remove", "ripgrep", "bash", "hello-faq")
    assert world.files() == set()


def test_helpers_semantics(world):
    """cd persists across phases, env() is "" when unset, run() has PREFIX/BUILD_DIR/NPROC,
    read helpers see the stage, extract(archive, dest), copy, glob_list, file helpers."""
    tarball(world.srv / "h-1.0.tar.gz", "h-1.0", {"a.txt": ("A\n", 0o644), "sub/b.txt": ("B\n", 0o644),
                                                "tool.1.gz": ("x", 0o644)})
    (world.srv / "hello.txt").write_text("served text\n")
    repo = world.root / "gitrepo"
    repo.mkdir()
    (repo / "README").write_text("from git\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (world.recipes / "h.rhai").write_text(r'''
let name = "h";
let version = "1.0";
let installed = false;

fn check(cond, what) { if !cond { throw `check failed: ${what}`; } }

fn acquire() {
    let f = download(`${env("SRV")}/h-${version}.tar.gz`);
    check(f == `${BUILD_DIR}/h-1.0.tar.gz`, "download path");
    check(env("SURELY_UNSET_VARIABLE") == "", "env unset");
    set_env("MY_VAR", "42");
}

fn build() {
    extract("tar.gz");
    cd("h-1.0");
    check(file_exists("a.txt"), "cd relative to BUILD_DIR");
    check(glob_list("*.txt") == ["a.txt"], "glob_list");
    let out = run_output("echo $PREFIX:$BUILD_DIR:$NPROC:$MY_VAR:$(pwd)");
    check(out == `${PREFIX}:${BUILD_DIR}:${NPROC}:42:${BUILD_DIR}/h-1.0` + "\n", `run env: ${out}`);
    check(run_status("exit 3") == 3, "run_status");
    mkdir(`${BUILD_DIR}/x`);
    extract(`${BUILD_DIR}/h-1.0.tar.gz`, `${BUILD_DIR}/x`);
    check(read_file(`${BUILD_DIR}/x/h-1.0/sub/b.txt`) == "B\n", "extract(archive, dest)");
    write_file("gen.txt", "generated");
    mv("gen.txt", "moved.txt");
    ln("moved.txt", "link.txt");
    check(exists("link.txt") && !exists("gen.txt"), "mv/ln");
    rm(`${BUILD_DIR}/x`);
    check(!dir_exists(`${BUILD_DIR}/x`), "rm");
    check(basename("/a/b.c") == "b.c" && dirname("/a/b.c") == "/a" && join_path("a", "b") == "a/b", "paths");
    check(http_get(`${env("SRV")}/hello.txt`) == "served text\n", "http_get");
    let cloned = git_clone(env("GITREPO"));
    check(cloned == `${BUILD_DIR}/gitrepo` && read_file(`${cloned}/README`) == "from git\n", "git_clone");
    copy(`${BUILD_DIR}/h-1.0.tar.gz`, `${BUILD_DIR}/copies`);
    verify_sha256(`${BUILD_DIR}/copies/h-1.0.tar.gz`, env("H_SHA"));
    verify_blake3(`${BUILD_DIR}/copies/h-1.0.tar.gz`, env("H_B3"));
}

fn install() {
    check(file_exists("moved.txt"), "cd holds across phases");
    install_to_dir("moved.txt", "share/h", 0o600);
    install_man("tool.1.gz");
    write_file(`${PREFIX}/share/h/written.txt`, "w");
    check(file_exists(`${PREFIX}/share/h/written.txt`), "reads see the stage");
    check(!exists(`${PREFIX}/share/h/nothing`), "exists");
}
''')
    import hashlib
    import blake3
    data = (world.srv / "h-1.0.tar.gz").read_bytes()
    world.ok("install", "h", env=world.env(GITREPO=f"file://{repo}", H_SHA=hashlib.sha256(data).hexdigest(),
                                           H_B3=blake3.blake3(data).hexdigest()))
    assert world.files() == {"share/h/moved.txt", "share/man/man1/tool.1.gz", "share/h/written.txt"}
    assert os.stat(world.prefix / "share/h/moved.txt").st_mode & 0o777 == 0o600


def test_extract_refuses_escaping_entries(world):
    import io
    import tarfile
    bad = world.srv / "evil-1.0.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    (world.recipes / "evil.rhai").write_text(
        'let name = "evil";\nlet version = "1.0";\nlet installed = false;\n'
        'fn acquire() { download(`${env("SRV")}/evil-1.0.tar.gz`); }\n'
        'fn build() { extract("tar.gz"); }\nfn install() { }\n')
    proc = world.run("install", "evil")
    assert proc.returncode != 0 and "would be written outside" in proc.stderr
    assert not list(world.root.rglob("escaped.txt"))


def test_hash_command(world, tmp_path):
    f = tmp_path / "abc"
    f.write_bytes(b"abc")
    out = json.loads(world.ok("--json", "hash", f).stdout)
    assert out["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert out["blake3"] == "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert out["sha512"].startswith("ddaf35a193617aba")


def test_search_path_and_search(world, tmp_path):
    world.add("tool-b", "1.0")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zeta").mkdir()
    (extra / "zeta" / "zeta.rhai").write_text(
        'let name = "zeta";\nlet version = "0.1";\nlet description = "last letter";\n'
        'fn acquire() {}\nfn install() {}\n')
    env = world.env(RECIPE_PATH=str(extra))
    assert "zeta 0.1  last letter" in world.ok("search", "letter", env=env).stdout
    assert world.run("search", "nothing-like-this", env=env).returncode == 1
    names = [r["name"] for r in json.loads(world.ok("--json", "list", env=env).stdout)]
    assert names == ["tool-b", "zeta"]


def test_remove_force_leaves_dependents_installed(world):
    _abc(world)
    world.ok("install", "tool-b")
    world.ok("remove", "--force", "lib-a")
    assert world.files() == {"bin/tool-b"}
    listed = {r["name"]: r["installed"] for r in json.loads(world.ok("--json", "list").stdout)}
    assert listed == {"lib-a": False, "tool-b": True, "app-c": False}


def test_a_broken_dependency_stops_the_plan_before_anything_runs(world):
    _abc(world)
    path = world.recipes / "app-c.rhai"
    path.write_text(path.read_text().replace("fn install()", "fn install_later()"))
    proc = world.run("install", "app-c")
    assert proc.returncode != 0 and "recipe app-c has no install()" in proc.stderr
    assert world.files() == set() and world.server.requests == []


def test_interrupted_download_resumes_in_the_next_run(world):
    world.add("big", "1.0", {"bin/big": ("#!/bin/sh\n" + "# padding\n" * 20000, 0o755)})
    path = "/big-1.0.tar.gz"
    size = (world.srv / "big-1.0.tar.gz").stat().st_size
    world.server.faults.add(path, truncate_after=size // 2)
    first = world.run("install", "big")
    assert first.returncode == 4 and "Traceback" not in first.stderr
    assert world.files() == set()
    world.ok("install", "big")
    assert world.server.ranges(path) == [None, f"bytes={size // 2}-"]
    assert "bin/big" in world.files()


def test_upgrading_a_dependency_keeps_it_a_dependency(world):
    _abc(world)
    world.ok("install", "tool-b")
    sha = tarball(world.srv / "lib-a-1.2.tar.gz", "lib-a-1.2",
                  {"lib/liba.so": ("liba 1.2\n", 0o644), "etc/a.conf": ("setting = 1\n", 0o644)})
    path = world.recipes / "lib-a.rhai"
    text = path.read_text()
    old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
    path.write_text(text.replace('let version = "1.0";', 'let version = "1.2";').replace(old_sha, sha))
    world.ok("upgrade", "lib-a")
    info = json.loads(world.ok("--json", "info", "lib-a").stdout)
    assert (info["installed_version"], info["installed_as_dep"]) == ("1.2", True)
    assert (world.prefix / "lib/liba.so").read_text() == "liba 1.2\n"


@cheat_aware(protects="Ctrl-C, SIGTERM or SIGHUP during a build changes nothing: the build's process is "
                      "stopped and the prefix lock released (util/cli.py turns the signals into an exception)",
             cheats=["leave SIGTERM at Python's default, which dies without running any cleanup",
                     "catch only KeyboardInterrupt"],
             consequence="`systemctl stop` or a closed terminal leaves the build running and the lock "
                         "naming a dead process")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_during_a_build_changes_nothing(world, sig):
    import signal
    started, never, pid_file = world.root / "started", world.root / "never", world.root / "build.pid"
    world.add("tool-b", "1.0")
    world.ok("install", "tool-b")
    world.add("slow", "1.0", build=f'    extract("tar.gz");\n    cd(`slow-${{version}}`);\n'
                                   f'    run("echo $$ > {pid_file}; touch {started}; '
                                   f'while [ ! -e {never} ]; do sleep 0.05; done");\n')
    snap = world.snapshot()
    proc = subprocess.Popen(world.cmd("install", "slow"), env=world.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(getattr(signal, sig))
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert world.snapshot() == snap                    # the lock file names no holder either
        with pytest.raises(ProcessLookupError):            # the build's shell was stopped and reaped
            os.kill(int(pid_file.read_text()), 0)
        world.ok("install", "tool-b")                      # the lock was released
    finally:
        never.touch()                                      # a shell left behind ends


def test_update_of_a_pkg_map_recipe(world):
    (world.recipes / "faq.rhai").write_text(
        '// the FAQ shape\nlet pkg = #{\n    name: "faq",\n    version: "1.0.0",\n};\n\n'
        'fn install() { }\n\nfn check_update() {\n    "1.1.0"\n}\n')
    world.ok("update")
    info = json.loads(world.ok("--json", "info", "faq").stdout)
    assert info["version"] == "1.1.0"
    assert (world.recipes / "faq.rhai").read_text().startswith("// the FAQ shape\nlet pkg = #{")


def test_a_file_that_cannot_be_moved_mid_commit_rolls_back(world):
    """A real failure in the middle of an upgrade's commit: an immutable file (chattr +i; even
    root cannot rename it) that the new version replaces."""
    world.add("multi", "1.0", {f"bin/t{i}": (f"#!/bin/sh\necho {i}\n", 0o755) for i in range(4)})
    world.ok("install", "multi")
    stuck = world.prefix / "bin" / "t3"
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root on ext4/xfs/btrfs)")
    try:
        path = world.recipes / "multi.rhai"
        sha = tarball(world.srv / "multi-2.0.tar.gz", "multi-2.0",
                      {f"bin/t{i}": (f"#!/bin/sh\necho new {i}\n", 0o755) for i in range(6)})
        text = path.read_text()
        old_sha = re.search(r'verify_sha256\("(\w+)"\)', text).group(1)
        path.write_text(text.replace('let version = "1.0";', 'let version = "2.0";').replace(old_sha, sha))
        snap = world.snapshot()
        proc = world.run("upgrade")
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert f"multi: cannot install {stuck}: Operation not permitted; everything was rolled back" \
            in proc.stderr
        assert world.snapshot() == snap                 # t0..t2 were replaced, then put back
        assert (world.prefix / "bin/t0").read_text() == "#!/bin/sh\necho 0\n"
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    world.ok("upgrade")
    assert (world.prefix / "bin/t5").exists()
