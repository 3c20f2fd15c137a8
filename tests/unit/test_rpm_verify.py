"""Package verification (signature, header digest, payload digest), cross-checked with rpmkeys."""

from __future__ import annotations

import subprocess

import pytest

from levitate.rpm.header import RpmFile
from levitate.rpm.openpgp import load_keyring
from levitate.rpm.payload import PayloadError
from levitate.rpm.verify import PackageVerificationError, verify_header, verify_rpm
from levitate.util.errors import VerificationError
from tests.cheat_aware import cheat_aware
from tests.unit.test_rpm_support import (RPM_NAME, FakeFile, V6Key, built_rpms, copy_rpm, keys, run,
                                         workdir, write_rpm)


@pytest.fixture(scope="session")
def rpms():
    return built_rpms()


@pytest.fixture(scope="session")
def trusted():
    return load_keyring(keys().trusted.public())


@pytest.fixture(scope="session")
def rpmdb():
    """A private rpm database holding the trusted test key, for rpmkeys --checksig."""
    db = workdir() / "rpmdb"
    db.mkdir(exist_ok=True)
    key = workdir() / "trusted.asc"
    key.write_bytes(keys().trusted.public())
    run("rpmkeys", "--dbpath", str(db), "--import", str(key))
    return db


def rpm_says_ok(rpmdb, path) -> bool:
    proc = subprocess.run(["rpmkeys", "--dbpath", str(rpmdb), "--checksig", str(path)],
                          capture_output=True, text=True)
    return proc.returncode == 0


def tampered_header(src, tmp_path):
    dest = copy_rpm(src, tmp_path)
    with RpmFile.open(dest) as rpm:
        summary = rpm.summary.encode()
    data = dest.read_bytes()
    at = data.index(summary)
    data = data[:at] + summary.replace(b"LevitateOS", b"LevitateOZ") + data[at + len(summary):]
    dest.write_bytes(data)
    return dest


def tampered_payload(src, tmp_path):
    dest = copy_rpm(src, tmp_path)
    data = bytearray(dest.read_bytes())
    data[-1000] ^= 0x01
    dest.write_bytes(bytes(data))
    return dest


@cheat_aware(protects="genuine packages signed by the pinned key are accepted (as rpmkeys does)",
             cheats=["accepting everything", "checking the signature over the wrong byte range"],
             consequence="real Rocky packages would be refused, or forged ones accepted")
@pytest.mark.parametrize("kind", ["zstd-signed", "xz-signed", "gzip-signed"])
def test_signed_package_verifies(rpms, trusted, rpmdb, kind):
    assert rpm_says_ok(rpmdb, rpms[kind])
    check = verify_rpm(rpms[kind], trusted)
    assert check.signer.fingerprint == keys().trusted.fingerprint
    assert check.signature.hash_name == "SHA512"


@cheat_aware(protects="an unsigned package is refused with an error naming it",
             cheats=["treating a missing signature as 'nothing to check'"],
             consequence="anyone could slip an unsigned package into the mirror")
def test_unsigned_is_refused(rpms, trusted, rpmdb):
    with pytest.raises(PackageVerificationError) as info:
        verify_rpm(rpms["zstd"], trusted)
    assert str(info.value).startswith(f"{RPM_NAME}: not signed")
    assert info.value.kind == "unsigned"


@cheat_aware(protects="a package signed by another key is refused, naming the key",
             cheats=["accepting any valid signature"],
             consequence="packages re-signed by an attacker's key would be installed")
def test_other_key_is_refused_and_named(rpms, trusted, rpmdb):
    assert not rpm_says_ok(rpmdb, rpms["zstd-other"])
    with pytest.raises(PackageVerificationError) as info:
        verify_rpm(rpms["zstd-other"], trusted)
    other = keys().other.key_id
    assert str(info.value).startswith(f"{RPM_NAME}: signed with key {other} which is not trusted")
    assert info.value.kind == "untrusted" and info.value.key_id == other


@cheat_aware(protects="a changed header byte breaks the header signature",
             cheats=["verifying the signature over a copy of the header re-serialised from parsed tags",
                     "checking only the SHA256 digest, which an attacker can recompute"],
             consequence="an attacker could change file modes, dependencies or digests in a signed package")
def test_tampered_header_is_a_bad_signature(rpms, trusted, rpmdb, tmp_path):
    bad = tampered_header(rpms["zstd-signed"], tmp_path)
    assert not rpm_says_ok(rpmdb, bad)
    with pytest.raises(PackageVerificationError) as info:
        verify_rpm(bad, trusted)
    assert str(info.value).startswith(f"{RPM_NAME}: BAD header signature (tampered?)")
    # Without signature checking the header digest still catches it.
    with pytest.raises(PackageVerificationError, match="header SHA256 digest mismatch"):
        verify_rpm(bad, None)


@cheat_aware(protects="a changed payload byte in a signed package is detected",
             cheats=["trusting the payload because the header signature is good"],
             consequence="the files of a signed package could be swapped")
def test_tampered_payload_is_detected(rpms, trusted, rpmdb, tmp_path):
    bad = tampered_payload(rpms["zstd-signed"], tmp_path)
    assert not rpm_says_ok(rpmdb, bad)
    with RpmFile.open(bad) as rpm:
        verify_header(rpm, trusted)          # the header is fine ...
    with pytest.raises(PayloadError) as info:  # ... the payload is not
        verify_rpm(bad, trusted)
    assert str(info.value).startswith(f"{RPM_NAME}: payload digest mismatch (tampered?)")


def test_no_keys_means_no_signature_check(rpms):
    assert verify_rpm(rpms["zstd"], None).signature is None
    assert verify_rpm(rpms["zstd-other"], None).signature is None


def test_empty_key_list_trusts_nothing(rpms):
    with pytest.raises(PackageVerificationError, match="not trusted"):
        verify_rpm(rpms["zstd-signed"], [])


def test_crafted_signed_package_agrees_with_rpmkeys(trusted, rpmdb, tmp_path):
    """The signed range (header from magic to end of store) is the one rpm uses."""
    path = write_rpm(tmp_path / "crafted-1.0-1.x86_64.rpm", [FakeFile("/etc/x", data=b"x")],
                     signer=keys().trusted, compressor="zstd")
    assert rpm_says_ok(rpmdb, path)
    assert verify_rpm(path, trusted).signer.fingerprint == keys().trusted.fingerprint


def test_legacy_header_and_payload_signature(trusted, rpmdb, tmp_path):
    """rpm < 4.14 packages: no payload digest, one signature over header + payload."""
    files = [FakeFile("/etc/legacy", data=b"old but signed\n" * 100)]
    path = write_rpm(tmp_path / "legacy-1.0-1.x86_64.rpm", files, name="legacy",
                     payload_digest=False, legacy_signer=keys().trusted)
    assert rpm_says_ok(rpmdb, path)
    assert verify_rpm(path, trusted).signer.fingerprint == keys().trusted.fingerprint
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01                        # inside the gzip payload's trailer
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        verify_rpm(path, trusted)
    other = write_rpm(tmp_path / "legacy-other.rpm", files, name="legacy",
                      payload_digest=False, legacy_signer=keys().other)
    with pytest.raises(PackageVerificationError, match="not trusted"):
        verify_rpm(other, trusted)


def test_header_digest_mismatch_in_signature_header(trusted, tmp_path):
    """The signature header is not signed: a wrong SHA256 there must still be noticed."""
    path = write_rpm(tmp_path / "d-1.0-1.x86_64.rpm", [FakeFile("/etc/x", data=b"x")], signer=keys().trusted)
    with RpmFile.open(path) as rpm:
        good = rpm.header_sha256
    data = path.read_bytes().replace(good.encode(), b"0" * 64)
    path.write_bytes(data)
    with pytest.raises(PackageVerificationError, match="header SHA256 digest mismatch"):
        verify_rpm(path, trusted)


# -- rpm 6's OPENPGP tag (278): RHEL 10.1's v6 post-quantum signature beside the v4 RSA one ---------

def rpm6_package(tmp_path, name: str, **signatures):
    return write_rpm(tmp_path / f"{name}-1.0-1.x86_64.rpm", [FakeFile("/etc/x", data=b"x")], name=name,
                     compressor="zstd", **signatures)


@cheat_aware(protects="packages signed as RHEL 10.1 signs them (v4 RSA and v6 ML-DSA) verify by the v4 signature",
             cheats=["accepting any package with a tag 278", "reading only tag 268"],
             consequence="Rocky/RHEL packages signed in rpm 6's tag would be refused as unsigned, or forged ones accepted")
@pytest.mark.parametrize("layout", ["268 + 278", "278 only"])
def test_v4_signature_beside_a_v6_one_verifies(trusted, rpmdb, tmp_path, layout):
    v6 = V6Key().signature()
    signer = keys().trusted if layout == "268 + 278" else None
    path = rpm6_package(tmp_path, "dual", signer=signer, openpgp=[keys().trusted, v6])
    with RpmFile.open(path) as rpm:       # the identical v4 signature of 268 and 278 is checked once
        assert [t for t, _ in rpm.header_signatures] == ([278, 278] if signer is None else [268, 278])
    if signer is not None:
        assert rpm_says_ok(rpmdb, path)   # rpm 4.18 knows no tag 278 and checks 268, as we do
    assert verify_rpm(path, trusted).signer.fingerprint == keys().trusted.fingerprint
    path.write_bytes(path.read_bytes().replace(b"crafted test package", b"crafted test packagE"))
    with pytest.raises(PackageVerificationError) as info:
        verify_rpm(path, trusted)
    assert str(info.value).startswith("dual-1.0-1.x86_64.rpm: BAD header signature (tampered?)")
    other = rpm6_package(tmp_path, "other", openpgp=[v6, keys().other])
    with pytest.raises(PackageVerificationError, match=f"signed with key {keys().other.key_id} which is not trusted"):
        verify_rpm(other, trusted)


@cheat_aware(protects="a package signed only with v6 signatures is refused as such, naming the package",
             cheats=["treating v6 signatures as valid", "calling the package unsigned"],
             consequence="v6-only packages would pass unchecked, or the user would chase a missing signature")
def test_only_v6_signatures_are_unsupported(trusted, tmp_path):
    v6 = V6Key()
    path = rpm6_package(tmp_path, "pqc", openpgp=[v6.signature()])
    with pytest.raises(PackageVerificationError) as info:
        verify_rpm(path, trusted)
    assert info.value.message == f"pqc-1.0-1.x86_64.rpm: unsupported v6 signature (ML-DSA-87+Ed448 by key {v6.key_id})"
    assert info.value.kind == "unsupported" and "v4" in info.value.hint
