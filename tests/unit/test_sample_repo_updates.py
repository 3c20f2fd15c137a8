"""The sample output's update repositories (OUTDIR/updates, OUTDIR/updates-other), read back with
the host's rpm, rpmkeys, gpg and the repodata XML itself: what `dnf upgrade` on an installed
LevitateOS will be offered, and who signed it."""

from __future__ import annotations

import gzip
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.sample_repo import build_sample_repo
from tests.sample_repo.el10 import UPDATE_NOTE, UPDATE_SCRIPTLET_LOG

REPO_ROOT = Path(__file__).resolve().parents[2]
NS = {"c": "http://linux.duke.edu/metadata/common", "r": "http://linux.duke.edu/metadata/repo"}
KERNEL_PACKAGES = {"kernel", "kernel-core", "kernel-modules", "kernel-modules-core"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sample():
    return build_sample_repo(Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO_ROOT / ".cache" / "sample-repo")))


def _rpmq(rpm: Path, *args: str) -> list[str]:
    out = subprocess.run(["rpm", "-qp", "--nosignature", *args, rpm], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def vercmp(a: str, b: str) -> int:
    """rpm's own comparison (rpmvercmp through rpm's Lua)."""
    out = subprocess.run(["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def primary(repo: Path) -> list[dict]:
    """Each package of repo's primary.xml: name, evr, location."""
    root = ET.fromstring((repo / "repodata/repomd.xml").read_bytes())
    href = next(d.find("r:location", NS).get("href") for d in root.findall("r:data", NS) if d.get("type") == "primary")
    packages = []
    for p in ET.fromstring(gzip.decompress((repo / href).read_bytes())).findall("c:package", NS):
        v = p.find("c:version", NS)
        epoch = "" if v.get("epoch") in (None, "0") else f"{v.get('epoch')}:"
        packages.append({"name": p.find("c:name", NS).text, "evr": f"{epoch}{v.get('ver')}-{v.get('rel')}",
                         "location": p.find("c:location", NS).get("href")})
    return packages


def evr(rpm: Path) -> str:
    return _rpmq(rpm, "--qf", "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}")[0]


@cheat_aware(protects="the sample update repository offers newer builds of installed packages: a newer kernel "
                      "with its own uname -r, and a rebuilt package whose upgrade shows on disk and runs a scriptlet",
             cheats=["give the update the same EVR (dnf would offer nothing)",
                     "repack the same kernel under a new name only (uname -r would still be the old one)"],
             consequence="the update VM test upgrades nothing, or boots a kernel whose modules it cannot find")
def test_update_repository_offers_newer_builds(sample):
    listed = primary(sample.updates)
    assert {p["name"] for p in listed} == KERNEL_PACKAGES | {"less"} == set(sample.update_packages)
    for p in listed:
        assert (sample.updates / p["location"]).is_file()
        assert vercmp(p["evr"], evr(sample.rpm(p["name"]))) == 1, (p, evr(sample.rpm(p["name"])))
    assert sample.update_kernel_version != sample.kernel_version
    core = sample.updates / sample.update_packages["kernel-core"]
    assert f"kernel-uname-r = {sample.update_kernel_version}" in _rpmq(core, "--provides")
    files = _rpmq(core, "-l")
    assert f"/usr/lib/modules/{sample.update_kernel_version}/vmlinuz" in files
    assert not [f for f in files if sample.kernel_version in f]
    scripts = "\n".join(_rpmq(core, "--scripts"))
    assert f"/bin/kernel-install add {sample.update_kernel_version} " in scripts       # %posttrans, as kernel.spec
    assert f"/bin/kernel-install remove {sample.update_kernel_version} " in scripts    # %preun
    assert f"/sbin/depmod -a {sample.update_kernel_version}" in "\n".join(
        _rpmq(sample.updates / sample.update_packages["kernel-modules-core"], "--scripts"))
    less = sample.updates / sample.update_packages["less"]
    assert UPDATE_NOTE.format(name="less") in _rpmq(less, "-l")
    assert UPDATE_NOTE.format(name="less") not in _rpmq(sample.rpm("less"), "-l")
    assert any(UPDATE_SCRIPTLET_LOG in line for line in _rpmq(less, "--scripts"))


def _rpmkeys_accepts(key: Path, rpm: Path, db: Path) -> bool:
    db.mkdir(exist_ok=True)
    subprocess.run(["rpmkeys", "--dbpath", db, "--import", key], check=True, capture_output=True)
    return subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", rpm], capture_output=True).returncode == 0


def _repomd_signer(repo: Path, key: Path, home: Path) -> str | None:
    """The fingerprint of a good signature on repo's repomd.xml by `key` (gpg's VALIDSIG), or None.
    A fresh gpg home holding only that public key: the sample's own homes are not touched."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--import", key], env=env, check=True, capture_output=True)
    proc = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", repo / "repodata/repomd.xml.asc",
                           repo / "repodata/repomd.xml"], env=env, capture_output=True, text=True)
    return next((line.split()[2] for line in proc.stdout.splitlines() if line.startswith("[GNUPG:] VALIDSIG")), None)


@cheat_aware(protects="the update repository is signed by the sample key (RPMs and repomd.xml), its copy in "
                      "updates-other by the unrelated key only",
             cheats=["leave the copy unsigned (dnf's refusal would then be 'not signed', not 'wrong key')",
                     "sign the copy with both keys"],
             consequence="the VM test's 'signed by another key is refused' proves nothing, or an honest update "
                         "is refused")
def test_update_repositories_are_signed_by_the_right_keys(sample, tmp_path):
    other_key = tmp_path / "other.asc"
    other_key.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export", sample.other_fingerprint],
                                         env=sample.gpg_env(other=True), capture_output=True, check=True).stdout)
    assert _repomd_signer(sample.updates, sample.key, tmp_path / "g1") == sample.fingerprint
    assert _repomd_signer(sample.updates_other, other_key, tmp_path / "g2") == sample.other_fingerprint
    assert _repomd_signer(sample.updates_other, sample.key, tmp_path / "g3") is None
    for name, path in sample.update_packages.items():
        ours, theirs = sample.updates / path, sample.updates_other / path
        assert _rpmkeys_accepts(sample.key, ours, tmp_path / f"{name}-ours")
        assert not _rpmkeys_accepts(sample.key, theirs, tmp_path / f"{name}-mixed")
        assert _rpmkeys_accepts(other_key, theirs, tmp_path / f"{name}-theirs")
