"""recipe's `rpm_install` beside dnf, on the built image (docs/recipe.md, "recipe and dnf"): the
image's own `recipe`, `rpm` and RPM database (/usr/lib/sysimage/rpm), in a chroot of the shared
sample build's base image under an overlay, installing from a small signed repository made with
minirepo and served on loopback: a new package (`lonepkg`), the image's release package (dnf has
it installed) and a decoy shipping a file the release package owns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.httpserver import serve
from tests.integration.minirepo import build_rpm, build_spec, make_mirror, rpmsign
from tests.sample_repo.el10 import RELEASE_NAME

from .test_base_settings import chroot, overlay

pytestmark = pytest.mark.slow

RECIPES = "/root/r"
OWNED = "/usr/lib/systemd/system-preset/90-default.preset"      # the release package's file
RECIPE = '''let name = "{name}";
let version = "1.0";
let installed = false;
fn acquire() {{ }}
fn install() {{ rpm_install("{package}"); }}
'''
DECOY_SPEC = f"""Name: presetdecoy
Version: 1.0
Release: 1
Summary: ships a file the release package owns
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{{buildroot}}{os.path.dirname(OWNED)}
echo decoy > %{{buildroot}}{OWNED}
%files
{OWNED}
"""


@pytest.fixture(scope="module")
def mini(sample_repo, tmp_path_factory):
    """The small repository, signed with the sample key, served: (server, sample_repo)."""
    base = tmp_path_factory.mktemp("mini")
    lone, decoy = build_rpm(base, "lonepkg"), build_spec(base, "presetdecoy", DECOY_SPEC)
    for rpm in (lone, decoy):
        rpmsign(sample_repo, rpm)
    mirror = make_mirror(sample_repo, base / "mirror", [lone, decoy, sample_repo.rpm(RELEASE_NAME)])
    with serve(mirror) as server:
        yield server


@pytest.fixture
def system(sample_iso, sample_build, sample_repo, mini, tmp_path):
    """The image's root, writable, with /root/r holding the recipes and recipe.toml."""
    with overlay(sample_build, tmp_path) as (root, _upper):
        recipes = root / RECIPES.lstrip("/")
        recipes.mkdir(parents=True)
        (recipes / "recipe.toml").write_text(
            f'[rocky]\nmirror = "{mini.url("")}"\nkey = "RPM-GPG-KEY-sample"\n'
            f'fingerprint = "{sample_repo.fingerprint}"\nrepos = ["BaseOS"]\n')
        for name, package in (("lonepkg", "lonepkg"), ("release", RELEASE_NAME), ("decoy", "presetdecoy")):
            (recipes / f"{name}.rhai").write_text(RECIPE.format(name=name, package=package))
        mini.reset_log()
        yield root


def recipe(root: Path, prefix: str, *args: str):
    return chroot(root, ["recipe", "--recipes", RECIPES, "--prefix", prefix, *args])


def rpms_fetched(server) -> list[str]:
    return [r.path for r in server.log() if r.path.endswith(".rpm")]


def error_line(proc) -> str:
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("recipe: error:")]
    return line


@cheat_aware(protects="rpm_install into a user's prefix installs what dnf lacks and skips, without fetching it, "
                      "what the system's RPM database (the image's /usr/lib/sysimage/rpm) already has, saying "
                      "that dnf provides it",
             cheats=["read a database other than rpm's own (--dbpath, the host's)", "skip by a hard-coded list"],
             consequence="a recipe installs a second copy of a Rocky package dnf already keeps up to date, "
                         "which then shadows it on PATH and is never updated")
def test_rpm_install_in_a_user_prefix_beside_dnf(system, mini):
    root = system
    proc = recipe(root, "/root/.local", "install", "lonepkg")
    assert proc.returncode == 0, proc.stderr
    assert (root / "root/.local/share/lonepkg/README").read_text() == "lonepkg\n"
    proc = recipe(root, "/root/.local", "install", "release")
    assert proc.returncode == 0, proc.stderr
    assert f"installed system-wide, dnf provides them (not installed again): {RELEASE_NAME}" in proc.stderr
    assert rpms_fetched(mini) == ["/BaseOS/x86_64/os/Packages/lonepkg-1.0-1.noarch.rpm"]
    assert not (root / "root/.local/etc/levitate-sample-release").exists()
    info = json.loads(recipe(root, "/root/.local", "--json", "info", "release").stdout)
    assert info["installed"] is True and info["installed_files"] == []


@cheat_aware(protects="rpm_install refuses the system's prefix however it is written (`..`, a trailing slash, "
                      "a symlink to /usr or to /), in one line naming `dnf install`, before fetching anything",
             cheats=["compare the prefix's text with \"/usr\"", "refuse every prefix under /usr, /usr/local too"],
             consequence="recipe writes Rocky packages over dnf's /usr: dnf later replaces them without a "
                         "word, or `rpm -V` reports the system's own files as changed")
def test_rpm_install_refuses_the_systems_prefix(system, mini):
    root = system
    os.symlink("/usr", root / "root/sysusr")
    os.symlink("/", root / "root/sysroot")
    for prefix in ("/usr", "/usr/", "/usr/../usr", "/usr/bin/..", "/", "//", "/root/sysusr", "/root/sysroot/",
                   "/root/sysusr/lib/.."):
        proc = recipe(root, prefix, "install", "lonepkg")
        assert proc.returncode == 1, (prefix, proc.stderr)
        line = error_line(proc)
        assert "is the system's prefix, where dnf installs Rocky packages" in line, line
        assert "run `dnf install lonepkg`" in line, line
        assert "Traceback" not in proc.stderr
    assert rpms_fetched(mini) == []
    assert not (root / "usr/share/lonepkg").exists() and not (root / "share/lonepkg").exists()
    dry = recipe(root, "/usr", "install", "--dry-run", "lonepkg")
    assert dry.returncode == 0 and "rocky packages: lonepkg (closure not resolved: rpm_install: /usr is the " \
        "system's prefix" in dry.stdout, dry.stdout + dry.stderr
    assert recipe(root, "/usr/local", "install", "lonepkg").returncode == 0      # the local hierarchy is not dnf's
    assert (root / "usr/local/share/lonepkg/README").is_file()


@cheat_aware(protects="rpm_install refuses to put a file where the system's RPM database lists one, reached "
                      "through a symlink in the prefix, whether or not the file is on disk",
             cheats=["rely on the commit's file-conflict check (an owned file left out by tsflags=nodocs, or "
                     "deleted, is not on disk)", "compare paths without resolving the prefix's symlinks"],
             consequence="a recipe's copy lands over a file of a Rocky package; dnf's next update overwrites it "
                         "or `rpm -V` reports the package changed")
def test_rpm_install_refuses_the_files_dnf_owns(system, mini):
    root = system
    (root / "root/p").mkdir()
    os.symlink("/usr/lib", root / "root/p/lib")
    owned = root / OWNED.lstrip("/")
    before = owned.read_bytes()
    proc = recipe(root, "/root/p", "install", "decoy")
    assert proc.returncode == 1, proc.stderr
    assert (f"rpm_install: /root/p/lib/systemd/system-preset/90-default.preset leads to {OWNED}, which the "
            f"system's package {RELEASE_NAME} owns") in error_line(proc)
    assert owned.read_bytes() == before
    owned.unlink()                                    # as dnf's tsflags=nodocs leaves an owned path absent
    proc = recipe(root, "/root/p", "install", "decoy")
    assert proc.returncode == 1 and f"leads to {OWNED}, which the system's package" in error_line(proc)
    assert not owned.exists()


@cheat_aware(protects="an RPM database rpm cannot read stops rpm_install in one line, instead of counting as an "
                      "empty system",
             cheats=["treat rpm's failure as no packages installed (the old behaviour)"],
             consequence="with a damaged database, recipe installs second copies of every Rocky package of the "
                         "closure, glibc included, into the prefix")
def test_rpm_install_stops_on_an_unreadable_rpm_database(system, mini):
    root = system
    db = root / "usr/lib/sysimage/rpm"
    for leftover in db.glob("rpmdb.sqlite-*"):
        leftover.unlink()
    (db / "rpmdb.sqlite").write_bytes(b"not a database\n" * 512)
    proc = recipe(root, "/root/.local", "install", "lonepkg")
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc)
    assert "rpm_install: cannot read the system's RPM database: error: cannot open Packages database in " \
           "/usr/lib/sysimage/rpm" in line and "rpm --rebuilddb" in line, line
    assert rpms_fetched(mini) == [] and not (root / "root/.local/share/lonepkg").exists()
