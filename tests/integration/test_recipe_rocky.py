"""A Rocky package installed by name (`rpm_install`) from the sample repository over HTTP, with
the same chain of trust leviso uses, into a temporary prefix; and removed again."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.cheat_aware import cheat_aware
from tests.integration.minirepo import gpg_home
from tests.recipe_support import World

pytestmark = pytest.mark.slow

RECIPE = '''// {name}: the Rocky package, by name
let name = "{name}";
let version = "{version}";
let installed = false;

fn acquire() {{ }}

fn install() {{
    rpm_install("{name}");
}}
'''


@pytest.fixture
def rocky_world(tmp_path, sample_repo, sample_server):
    (tmp_path / "recipes").mkdir()
    w = World(tmp_path, sample_server)
    (w.recipes / "recipe.toml").write_text(
        "[rocky]\n"
        f'mirror = "{sample_server.url("mirror")}"\n'
        f'key = "{sample_repo.root / "RPM-GPG-KEY-sample"}"\n'
        f'fingerprint = "{sample_repo.fingerprint_spaced}"\n')
    return w


def _rpm_requests(server, name: str) -> int:
    return sum(1 for r in server.log() if r.path.rsplit("/", 1)[-1].startswith(f"{name}-")
               and r.path.endswith(".rpm"))


def test_rocky_package_by_name(rocky_world, sample_server):
    w = rocky_world
    (w.recipes / "libtinfo6.rhai").write_text(RECIPE.format(name="libtinfo6", version="6.4"))
    (w.recipes / "less.rhai").write_text(RECIPE.format(name="less", version="590"))
    w.ok("install", "libtinfo6")
    tinfo_files = json.loads(w.ok("--json", "info", "libtinfo6").stdout)["installed_files"]
    assert any("libtinfo.so.6" in f for f in tinfo_files)
    before = _rpm_requests(sample_server, "libtinfo6")
    proc = w.ok("install", "less")
    # the installed recipe provides libtinfo6: not fetched again, not installed twice
    assert _rpm_requests(sample_server, "libtinfo6") == before
    assert "libtinfo6" not in proc.stderr.split("fetching", 1)[1].splitlines()[0]
    less = w.prefix / "bin" / "less"
    assert less.is_file() and less.read_bytes()[:4] == b"\x7fELF"
    info = json.loads(w.ok("--json", "info", "less").stdout)
    assert str(less) in info["installed_files"]
    assert not (w.prefix / "usr").exists()              # /usr/X went to PREFIX/X
    w.ok("remove", "less")
    w.ok("remove", "libtinfo6")
    assert w.files() == set()


def test_rocky_package_with_a_bad_signature_key_is_refused(rocky_world, sample_repo):
    w = rocky_world
    toml = w.recipes / "recipe.toml"
    toml.write_text(toml.read_text().replace(sample_repo.fingerprint_spaced, sample_repo.other_fingerprint))
    (w.recipes / "less.rhai").write_text(RECIPE.format(name="less", version="590"))
    proc = w.run("install", "less")
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("recipe: error:")]
    assert proc.returncode != 0 and "no release key with the pinned fingerprint" in line
    assert f"{sample_repo.root / 'RPM-GPG-KEY-sample'} has fingerprint" in line
    assert w.files() == set()


@cheat_aware(protects="rpm_install looks for the release key where leviso does, through the same code: "
                      "the cached key first, then the mirror's root, then the configured location, and "
                      "caches a key it found elsewhere",
             cheats=["reading only the configured key location (recipe's old copy of the chain)",
                     "a recipe-only key loader that happens to accept this layout"],
             consequence="recipe and leviso trust different keys for the same Rocky repositories, and "
                         "recipe breaks when the configured key location is unreachable although the "
                         "pinned key is cached")
def test_rocky_release_key_is_found_where_leviso_finds_it(rocky_world, sample_repo, sample_server):
    w = rocky_world
    # The configured location holds another key under the same name: a key from there is refused.
    wrong = w.root / "wrong" / "RPM-GPG-KEY-sample"
    wrong.parent.mkdir()
    with gpg_home(sample_repo, other=True) as env:
        wrong.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export", sample_repo.other_fingerprint],
                                         env=env, check=True, capture_output=True).stdout)
    toml = w.recipes / "recipe.toml"
    toml.write_text(toml.read_text().replace(str(sample_repo.root / "RPM-GPG-KEY-sample"), str(wrong)))
    cached = w.root / "cache" / "recipe" / "rpm" / "keys" / "RPM-GPG-KEY-sample"
    cached.parent.mkdir(parents=True)
    shutil.copy(sample_repo.root / "RPM-GPG-KEY-sample", cached)
    (w.recipes / "less.rhai").write_text(RECIPE.format(name="less", version="590"))
    mirror_key = "/mirror/RPM-GPG-KEY-sample"
    sample_server.reset_log()
    w.ok("install", "less")                                  # the cached key, first
    assert sample_server.count(mirror_key) == 0
    assert (w.prefix / "bin" / "less").is_file()
    w.ok("remove", "less")
    cached.unlink()
    w.ok("install", "--dry-run", "less")                     # then the mirror's root, before `key`
    assert sample_server.count(mirror_key) == 1
    assert cached.read_bytes() == (sample_repo.root / "RPM-GPG-KEY-sample").read_bytes()


def test_rocky_dry_run_resolves_the_closure_without_fetching_rpms(rocky_world, sample_server, sample_repo):
    w = rocky_world
    less = sample_repo.rpm("less").name.split("-")[1]          # the sample's version, e.g. 668
    (w.recipes / "less.rhai").write_text(RECIPE.format(name="less", version=less))
    snap = w.snapshot()
    sample_server.reset_log()
    proc = w.ok("install", "--dry-run", "less")
    assert proc.stdout.splitlines()[0] == f"1. less: install {less}"
    rocky = proc.stdout.splitlines()[1]
    assert rocky.startswith("     rocky packages: less -> ") and f" less-{less}" in rocky
    plan = json.loads(w.ok("--json", "install", "--dry-run", "less").stdout)
    [step] = plan
    assert step["rpm"][0]["names"] == ["less"] and step["rpm"][0]["note"] is None
    fetched = {f["dest"].split("-")[0] for f in step["fetch"]}
    assert {"less", "libtinfo6"} <= fetched                  # the closure, from repodata
    assert all(f["kind"] == "rpm" and f["url"].endswith(".rpm") and f["checksum"]
               for f in step["fetch"])
    assert not any(r.path.endswith(".rpm") for r in sample_server.log())   # metadata only
    assert w.snapshot() == snap and not (w.prefix / "var").exists()
    # not configured: the names, and why the closure is unknown
    (w.recipes / "recipe.toml").unlink()
    proc = w.ok("install", "--dry-run", "less")
    assert "rocky packages: less (closure not resolved: rpm_install: no Rocky repositories" in proc.stdout
