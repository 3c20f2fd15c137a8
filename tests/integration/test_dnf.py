"""dnf on the built image: the RPM database leviso writes is one Rocky's own tools accept as it is.

The sample set's rpm keeps its database where EL10's does (%_dbpath /usr/lib/sysimage/rpm,
/var/lib/rpm a link to it). The base image of the shared sample build is mounted under an
overlay and dnf and rpm run in a chroot of it, offline (no repository is reachable from here).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from levitate.leviso.chroot import chroot_mounts
from tests.sample_repo.el10 import RELEASE_KEY, SAMPLE_HOST_VAR, UPDATE_SCRIPTLET_LOG

from .test_base_settings import TOOL_ENV, chroot, overlay

pytestmark = pytest.mark.slow

OFFLINE = ["--disablerepo=*", "--cacheonly", "--quiet"]
RPMDB = "/usr/lib/sysimage/rpm"

# What `rpm -Va` may report on the base image: files a build step changes on purpose, each with
# the step and why. Anything else differing from its package is a bug in the build.
BUILD_CHANGED = {
    "/etc/passwd": "configure: systemd-sysusers adds every package's sysusers.d users to setup's file",
    "/etc/group": "configure: systemd-sysusers adds every package's sysusers.d groups to setup's file",
    "/etc/shadow": "configure: systemd-sysusers adds the new users; base settings lock an unprovisioned root",
    "/etc/gshadow": "configure: systemd-sysusers adds the new groups",
    "/etc/credstore": "configure: systemd-tmpfiles --create applies tmpfiles.d/credstore.conf's mode",
    "/etc/credstore.encrypted": "configure: systemd-tmpfiles --create applies tmpfiles.d/credstore.conf's mode",
    "/usr/lib/os-release": "base settings: LevitateOS's os-release replaces the release package's",
}
# One line of `rpm -V`: nine flags (or "missing"), an optional file attribute letter, the path.
VERIFY_LINE = re.compile(r"^(?P<flags>[.?SM5DLUGTP]{9}|missing)\s+(?P<attr>[cdglr] )?\s*(?P<path>/.*)$")


@pytest.fixture(scope="module")
def image(sample_iso, sample_build):
    """The shared sample build's base image (`leviso iso` made it) and its manifest."""
    manifest = json.loads((sample_build.output / "manifest.json").read_text())
    return sample_build, manifest


def dnf(root, *args: str):
    proc = chroot(root, ["dnf", *OFFLINE, *args])
    assert proc.returncode == 0, f"dnf {' '.join(args)}: {proc.stderr}"
    assert proc.stderr == "", f"dnf {' '.join(args)} complained: {proc.stderr}"
    return proc.stdout


def installed(listing: str) -> set[str]:
    """NEVRAs from `dnf list --installed` (name.arch, [epoch:]version-release, @System)."""
    nevras = set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == "@System":
            name, _, arch = fields[0].rpartition(".")
            nevras.add(f"{name}-{fields[1]}.{arch}")
    return nevras


@cheat_aware(protects="dnf on the installed system reads the image's RPM database as it is: every package "
                      "the manifest lists, every dependency met",
             cheats=["compare names only with rpm -qa (dnf's own reading of the database is the point)",
                     "run dnf with --dbpath or --installroot pointing at wherever the build wrote",
                     "leave repositories enabled and accept a network error as success"],
             consequence="`dnf upgrade` on an installed LevitateOS fails, or sees an empty system and "
                         "reinstalls or removes packages")
def test_dnf_accepts_the_rpm_database(image, tmp_path):
    build, manifest = image
    with overlay(build, tmp_path) as (root, _upper):
        assert chroot(root, ["rpm", "--eval", "%_dbpath"]).stdout.strip() == RPMDB
        assert os.readlink(root / "var/lib/rpm") == "../.." + RPMDB
        assert (root / RPMDB.lstrip("/") / "rpmdb.sqlite").is_file()
        assert re.fullmatch(r"4\.\d+\.\d+", dnf(root, "--version").splitlines()[0])
        assert installed(dnf(root, "list", "--installed")) == {p["nevra"] for p in manifest["packages"]}
        assert dnf(root, "check") == ""


def dumped(text: str) -> dict[str, str]:
    """`dnf config-manager --dump`'s `key = value` lines."""
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)


@cheat_aware(protects="dnf's configuration is EL10's: gpgcheck on, three kernels kept, and every repository of "
                      "the release package checked against the release key installed under /etc/pki/rpm-gpg",
             cheats=["check the .repo file's text instead of what dnf makes of it", "turn gpgcheck off to get an "
                     "update through"],
             consequence="unsigned or foreign packages install without a word, or old kernels fill the ESP")
def test_dnf_checks_signatures_with_the_release_key(image, sample_repo, tmp_path):
    build, _manifest = image
    with overlay(build, tmp_path) as (root, _upper):
        main = dumped(dnf(root, "config-manager", "--dump"))
        assert (main["gpgcheck"], main["installonly_limit"], main["best"]) == ("1", "3", "1")
        for repo in ("baseos", "appstream", "updates"):
            conf = dumped(dnf(root, "--enablerepo", repo, "config-manager", "--dump", repo))
            assert (conf["gpgcheck"], conf["repo_gpgcheck"]) == ("1", "1"), repo
            assert conf["gpgkey"] == "file://" + RELEASE_KEY, repo
        assert (root / RELEASE_KEY.lstrip("/")).read_bytes() == sample_repo.key.read_bytes()


@cheat_aware(protects="rpm -Va on the installed system names only the files the build changes on purpose",
             cheats=["filter rpm -Va's output with a pattern instead of listing each file",
                     "register the packages with --noverify or without file digests"],
             consequence="users cannot tell a tampered or broken file from the build's own changes, and "
                         "an update's %config handling (.rpmnew) misjudges what they edited")
def test_rpm_verify_finds_only_the_builds_changes(image, tmp_path):
    build, _manifest = image
    with overlay(build, tmp_path) as (root, _upper):
        # The overlay's root directory has its upper directory's mode, and mounting /proc, /sys
        # and /run would show their file systems' modes: neither is the image's. rpm needs neither.
        os.chmod(root, (tmp_path / "lower0").stat().st_mode & 0o7777)
        proc = subprocess.run(["chroot", root, "rpm", "-Va"], env=TOOL_ENV, capture_output=True, text=True,
                              timeout=600)
    changed = {}
    for line in proc.stdout.splitlines():
        m = VERIFY_LINE.match(line)
        assert m, f"rpm -Va said something else than a changed file: {line!r}\n{proc.stderr}"
        changed[m["path"]] = m["flags"]
    assert sorted(changed) == sorted(BUILD_CHANGED), proc.stdout
    assert "missing" not in changed.values()


def _stop_leftovers(root) -> None:
    """dnf's repo_gpgcheck leaves a gpg-agent per repository running inside the tree (libdnf
    imports the key into /var/cache/dnf/REPO/pubring): stop those this test started."""
    stopped = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root") == str(root):
                os.kill(int(pid), signal.SIGTERM)
                stopped.append(pid)
        except OSError:
            continue
    deadline = time.monotonic() + 10          # gone before the mounts they hold are unmounted
    while any(os.path.exists(f"/proc/{pid}") for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.1)


@cheat_aware(protects="the image's own dnf takes the sample update repository as a Rocky system takes Rocky's: "
                      "signed metadata and packages accepted, the newer kernel installed beside the old one with "
                      "its scriptlets run, the rebuilt package upgraded; the copy signed by another key refused",
             cheats=["set repo_gpgcheck=0 or gpgcheck=0 for the test", "use rpm -U instead of dnf"],
             consequence="the update VM test fails for reasons of the sample set, or passes with packages "
                         "nobody signed")
def test_dnf_upgrades_from_the_update_repository(image, sample_repo, tmp_path):
    build, _manifest = image
    with overlay(build, tmp_path) as (root, _upper):
        (root / f"etc/dnf/vars/{SAMPLE_HOST_VAR}").write_text("file:///run/sample\n")
        other = "--setopt=updates.baseurl=file:///run/sample/updates-other/x86_64/os/"
        with chroot_mounts(root, binds=[(sample_repo.root, "/run/sample")]):
            try:
                run = lambda *args: subprocess.run(["chroot", root, *args], env=TOOL_ENV, capture_output=True,
                                                   text=True, timeout=900)
                refused = run("dnf", "-y", other, "check-update")
                assert refused.returncode == 1
                assert "repomd.xml GPG signature verification error" in refused.stderr, refused.stderr
                refused = run("dnf", "-y", other, "--setopt=updates.repo_gpgcheck=0", "upgrade", "less")
                assert refused.returncode == 1
                assert "GPG check FAILED" in refused.stderr, refused.stderr
                upgrade = run("dnf", "-y", "upgrade")
                assert upgrade.returncode == 0, upgrade.stderr
                rpmq = run("rpm", "-q", "less", "kernel-core")
            finally:
                _stop_leftovers(root)
        nevra = lambda path: Path(path).name.removesuffix(".rpm")
        assert set(rpmq.stdout.split()) == {nevra(sample_repo.update_packages["less"]),
                                            nevra(sample_repo.packages["kernel-core"]),
                                            nevra(sample_repo.update_packages["kernel-core"])}
        assert (root / UPDATE_SCRIPTLET_LOG.lstrip("/")).read_text().endswith(" post 2\n")   # %post, as an upgrade
        assert (root / f"usr/lib/modules/{sample_repo.update_kernel_version}/modules.dep").is_file()  # depmod %post
