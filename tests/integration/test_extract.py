"""The sample set, fetched from the mirror, extracted and configured: what users rely on."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib

import pytest

from tests.cheat_aware import cheat_aware

from tests.support import run_leviso

pytestmark = pytest.mark.slow


def _group_of(rootfs, path):
    gid = os.lstat(rootfs / path).st_gid
    for line in (rootfs / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[2] == str(gid):
            return fields[0]
    return None


def _locked_packages(build):
    return tomllib.loads((build.profile / "leviso.lock").read_text())["package"]


@cheat_aware(protects="the resolved set is recorded as a lock with NEVRA, repo, size and sha256",
             cheats=["write only names", "skip packages that came from AppStream"],
             consequence="`--locked` rebuilds cannot reproduce the image; users cannot audit what shipped")
def test_lock_lists_every_package_with_its_checksum(sample_build):
    packages = _locked_packages(sample_build)
    assert len(packages) > 100
    repos = {p["repo"] for p in packages}
    assert repos == {"BaseOS", "AppStream"}
    for p in packages:
        assert len(p["sha256"]) == 64 and p["size"] > 0 and p["nevra"].startswith(p["name"] + "-")


@cheat_aware(protects="the extracted tree is a usable merged-/usr system with its users",
             cheats=["check only that the directory exists", "copy the host's /etc/passwd"],
             consequence="the image does not boot or nobody can log in")
def test_rootfs_is_a_merged_usr_system(sample_build):
    root = sample_build.rootfs
    assert os.readlink(root / "bin") in ("usr/bin", "/usr/bin")
    assert (root / "usr/bin/bash").is_file() and os.access(root / "usr/bin/bash", os.X_OK)
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    kvers = os.listdir(root / "usr/lib/modules")
    assert kvers and all((root / "usr/lib/modules" / k / "vmlinuz").is_file() for k in kvers)


@cheat_aware(protects="owners come from the package headers by name, after the tree's groups exist; "
                      "set-id bits survive the chown",
             cheats=["leave every file root-owned", "chown by the build host's ids"],
             consequence="chage/unix_chkpwd cannot read /etc/shadow: password changes and logins fail")
def test_owners_by_name_and_setgid_kept(sample_build):
    root = sample_build.rootfs
    chage = root / "usr/bin/chage"
    assert _group_of(root, "usr/bin/chage") == "shadow"
    assert os.lstat(chage).st_mode & stat.S_ISGID


@cheat_aware(protects="the tree was configured by its own tools (depmod, ldconfig, hwdb, presets)",
             cheats=["touch the output files", "run the host's tools on the host's files"],
             consequence="modules do not load, programs miss libraries, devices get no rules, no getty")
def test_configured_by_its_own_tools(sample_build):
    root = sample_build.rootfs
    for kver in os.listdir(root / "usr/lib/modules"):
        assert (root / "usr/lib/modules" / kver / "modules.dep").stat().st_size > 1000
    assert (root / "etc/ld.so.cache").stat().st_size > 1000
    assert any((root / p).is_file() for p in ("etc/udev/hwdb.bin", "usr/lib/udev/hwdb.bin"))
    wants = root / "etc/systemd/system"
    assert any(wants.rglob("*.service")), "systemctl preset-all enabled nothing"


@cheat_aware(protects="`rpm -qa` on the built system lists every installed package",
             cheats=["register only a few packages", "write a fake database"],
             consequence="users cannot query what is installed or which package owns a file")
def test_rpm_database_lists_every_package(sample_build):
    root = sample_build.rootfs
    proc = subprocess.run(["chroot", root, "rpm", "-qa", "--qf", "%{NAME}\n"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = set(proc.stdout.split())
    assert names == {p["name"] for p in _locked_packages(sample_build)}


def test_second_extract_redoes_nothing(sample_build):
    """The tree depends on the lock (every package by digest), not on where packages came from:
    a second run, even naming a source that does not exist, reads nothing and touches nothing."""
    stamp = sample_build.workdir / "rootfs.stamp"
    before = (stamp.stat().st_mtime_ns, sample_build.rootfs.stat().st_ino)
    source = [a for a in sample_build.proc.args if str(a).startswith("mirror:")][0]
    for source in (source, "dir:/nonexistent-proves-no-source-is-read"):
        proc = run_leviso("extract", *sample_build.args("--source", source))
        assert proc.returncode == 0, proc.stderr
        assert "up to date" in proc.stderr
        assert (stamp.stat().st_mtime_ns, sample_build.rootfs.stat().st_ino) == before


def test_changed_lock_redoes_the_tree(sample_build, tmp_path):
    """A lock that names other packages (`leviso download` after a repository update) is new input."""
    lock = sample_build.profile / "leviso.lock"
    original = lock.read_bytes()
    try:
        lock.write_bytes(original + b"\n# changed\n")
        proc = run_leviso("extract", *sample_build.args("--source", "dir:/nonexistent-source"))
        assert proc.returncode != 0 and "nonexistent-source" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        lock.write_bytes(original)
    proc = run_leviso("extract", *sample_build.args("--source", "dir:/nonexistent-source"))
    assert proc.returncode == 0 and "up to date" in proc.stderr, proc.stderr


@cheat_aware(protects="a package that owns `/` (Fedora/RHEL's `filesystem`: `%dir %attr(555,root,root) /`) "
                      "is extracted, and the tree's root gets its mode as rpm gives it",
             cheats=["skip the root entry", "drop `/` from the header's file list before checking"],
             consequence="every real Rocky build stops at `filesystem`, which is in every closure")
def test_package_owning_the_root_extracts(sample_repo, tmp_path):
    from tests.integration import minirepo
    rpm = minirepo.build_rpm(tmp_path, "rootowner", owns_root=True)
    minirepo.rpmsign(sample_repo, rpm)
    mirror = minirepo.make_mirror(sample_repo, tmp_path / "m", [rpm])
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", ["rootowner"])
    proc = run_leviso("extract", "--profile", profile, "--source", f"dir:{mirror}", "--cache", tmp_path / "dl",
                      "--workdir", tmp_path / "work", "--output", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "work" / "rootfs"
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o555
    assert (rootfs / "usr/share/rootowner/README").read_text() == "rootowner\n"
