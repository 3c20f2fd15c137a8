"""The built sample repository (tests/sample_repo): every link of its chain of trust verifies
with the standard tools, its layout is Rocky's, its package set installs under rpm itself, and
a second build with the same inputs does nothing."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.sample_repo import build_sample_repo

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_sample():
    """Built once per run (and cached across runs by its inputs), like the integration tests'."""
    outdir = Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO_ROOT / ".cache" / "sample-repo"))
    return build_sample_repo(outdir)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def keyring(built_sample, tmp_path) -> Path:
    """The public key as a gpgv keyring: verification with no agent and no trust database."""
    ring = tmp_path / "sample.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", ring, built_sample.key], check=True)
    return ring


def _gpgv(ring: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["gpgv", "--keyring", ring, *args], capture_output=True, text=True)


@cheat_aware(protects="the sample RPMs carry OpenPGP signatures made with the sample key",
             cheats=["leave RPMs unsigned", "sign with a key the profile does not pin"],
             consequence="the signature checks of the real build are tested against nothing: a "
                         "tampered or unsigned Rocky package could pass unnoticed")
def test_rpm_signatures_verify_with_the_generated_key(built_sample, tmp_path):
    db = tmp_path / "rpmdb"
    subprocess.run(["rpmkeys", "--dbpath", db, "--import", built_sample.key], check=True)
    for name in ("bash", "kernel-core", "setup"):
        proc = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", "-v", built_sample.rpm(name)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        short_id = built_sample.fingerprint[-8:].lower()
        assert re.search(rf"Header V4 RSA/SHA\d+ Signature, key ID {short_id}: OK", proc.stdout), proc.stdout
    assert built_sample.other_fingerprint != built_sample.fingerprint


def test_other_key_signs_rpms_the_sample_key_rejects(built_sample, tmp_path):
    """OUTDIR/gnupg-other is usable as is, for the "signed by another key" cases."""
    rpm = tmp_path / "bash.rpm"
    rpm.write_bytes(built_sample.rpm("bash").read_bytes())
    env = built_sample.gpg_env(other=True)
    try:
        subprocess.run(["rpmsign", "--define", "__gpg /usr/bin/gpg", "--define",
                        f"_gpg_name {built_sample.other_fingerprint}", "--resign", rpm],
                       env=env, check=True, capture_output=True)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env)
    db = tmp_path / "rpmdb"
    subprocess.run(["rpmkeys", "--dbpath", db, "--import", built_sample.key], check=True)
    proc = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", "-v", rpm], capture_output=True, text=True)
    assert proc.returncode != 0 and "NOKEY" in proc.stdout, proc.stdout


@cheat_aware(protects="each repository's repomd.xml has a detached signature by the sample key",
             cheats=["ship repomd.xml.asc signed by another key", "sign a different file"],
             consequence="repodata verification is never exercised: a forged package list goes unnoticed")
def test_repomd_signatures_verify(built_sample, keyring):
    for repo in ("BaseOS", "AppStream"):
        repodata = built_sample.repo(repo) / "repodata"
        assert (repodata / "repomd.xml.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
        proc = _gpgv(keyring, repodata / "repomd.xml.asc", repodata / "repomd.xml")
        assert proc.returncode == 0, proc.stderr
        assert any((repodata).glob("*-primary.xml.*")) and any((repodata).glob("*-filelists.xml.*"))


@cheat_aware(protects="the ISO directory carries Rocky's CHECKSUM format, clearsigned by the sample key",
             cheats=["write a CHECKSUM for a different ISO", "detach-sign instead of clearsign"],
             consequence="`--source iso` verification is tested against a format Rocky does not publish")
def test_checksum_is_clearsigned_and_matches_the_iso(built_sample, keyring):
    checksum = (built_sample.isos / "CHECKSUM").read_text()
    iso = built_sample.iso
    assert fnmatch.fnmatch(iso.name, "LevitateSample-10.*-x86_64-dvd1.iso")
    assert f"# {iso.name}: {iso.stat().st_size} bytes\n" in checksum
    assert f"SHA256 ({iso.name}) = {_sha256(iso)}\n" in checksum
    asc = (built_sample.isos / "CHECKSUM.asc").read_text()
    assert asc.startswith("-----BEGIN PGP SIGNED MESSAGE-----") and checksum.strip() in asc
    proc = _gpgv(keyring, built_sample.isos / "CHECKSUM.asc")
    assert proc.returncode == 0, proc.stderr


def test_iso_has_the_dvd_layout_and_the_mirror_bytes(built_sample, tmp_path):
    listing = subprocess.run(["xorriso", "-indev", built_sample.iso, "-find", "/", "-maxdepth", "3"],
                             capture_output=True, text=True, check=True).stdout
    paths = set(listing.splitlines())
    for path in ("/BaseOS/repodata/repomd.xml", "/AppStream/repodata/repomd.xml", "/RPM-GPG-KEY-sample",
                 "/BaseOS/Packages", "/AppStream/Packages", "/media.repo", "/.treeinfo"):
        assert f"'{path}'" in paths, path
    assert not any("x86_64/os" in p for p in paths), "a DVD has no x86_64/os level"
    bash = built_sample.rpm("bash")
    inside = "/BaseOS/" + str(bash.relative_to(built_sample.repo("BaseOS")))
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", built_sample.iso, "-extract", inside, tmp_path / "bash.rpm"],
                   check=True, capture_output=True)
    assert _sha256(tmp_path / "bash.rpm") == _sha256(bash)


@cheat_aware(protects="the kernel RPM puts vmlinuz and config where Rocky's kernel does",
             cheats=["leave them only under /boot", "ship an empty vmlinuz"],
             consequence="the image builder is tested against a layout real Rocky kernels do not have")
def test_kernel_rpm_is_rocky_shaped(built_sample):
    kver = built_sample.kernel_version
    files = subprocess.run(["rpm", "-qp", "--nosignature", "--qf", "[%{FILESIZES} %{FILENAMES}\n]",
                            built_sample.rpm("kernel-core")], capture_output=True, text=True, check=True)
    sizes = {line.split(" ", 1)[1]: int(line.split(" ", 1)[0]) for line in files.stdout.splitlines()}
    assert sizes[f"/usr/lib/modules/{kver}/vmlinuz"] > 1_000_000
    assert sizes[f"/usr/lib/modules/{kver}/config"] > 10_000
    assert not any(p.startswith(("/boot/", "/lib/")) for p in sizes)


@cheat_aware(protects="the sample set is consistent under rpm's own rules: every Requires (incl. rich "
                      "and file dependencies) met, no Conflicts, no file conflicts",
             cheats=["drop dependencies that do not resolve", "install with --nodeps"],
             consequence="resolver tests chase breakage in the test data instead of the code")
def test_whole_set_installs_under_rpm(built_sample, tmp_path):
    rpms = sorted(built_sample.mirror.rglob("*.rpm"))
    assert len(rpms) == len(built_sample.packages) > 100
    proc = subprocess.run(["rpm", "--root", tmp_path / "root", "--initdb"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["rpm", "--root", tmp_path / "root", "--nosignature", "-i", "--test", *rpms],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_profile_pins_the_generated_key(built_sample):
    profile = tomllib.loads((built_sample.profile / "profile.toml").read_text())
    assert profile["key"]["fingerprint"].replace(" ", "") == built_sample.fingerprint
    colons = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys", built_sample.key],
                            capture_output=True, text=True, check=True).stdout
    assert f"fpr:::::::::{built_sample.fingerprint}:" in colons
    assert fnmatch.fnmatch(built_sample.iso.name, profile["source"]["iso_pattern"])
    assert profile["source"]["repos"] == ["BaseOS", "AppStream"]
    wanted = [l for l in (built_sample.profile / "packages.txt").read_text().splitlines()
              if l and not l.startswith("#")]
    assert set(wanted) <= set(built_sample.packages)
    assert (built_sample.mirror / "RPM-GPG-KEY-sample").read_bytes() == built_sample.key.read_bytes()


def test_second_build_returns_at_once(built_sample):
    started = time.monotonic()
    again = build_sample_repo(built_sample.root)
    assert time.monotonic() - started < 2
    assert again == built_sample
