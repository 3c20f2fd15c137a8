"""The RPM header reader, cross-checked field by field against `rpm -qp --qf` on rpmbuild output."""

from __future__ import annotations

import io
import struct
import time

import pytest

from levitate.rpm.header import (RPMFILE_CONFIG, RPMFILE_GHOST, Header, HeaderError, RpmFile,
                                 SigTag, Tag, read_rpm)
from tests.unit.test_rpm_support import FakeFile, built_rpms, keys, run, workdir, write_rpm

FILE_QF = ("[%{FILENAMES}\t%{FILEMODES}\t%{FILESIZES}\t%{FILEMTIMES}\t%{FILEUSERNAME}\t"
           "%{FILEGROUPNAME}\t%{FILEFLAGS}\t%{FILELINKTOS}\t%{FILEINODES}\t%{FILEDEVICES}\t"
           "%{FILERDEVS}\t%{FILEDIGESTS}\t%{FILECAPS}\n]")


@pytest.fixture(scope="session")
def rpms():
    return built_rpms()


def qf(path, fmt: str) -> str:
    return run("rpm", "-qp", "--nosignature", "--qf", fmt, str(path)).decode()


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2", "none", "zstd-signed"])
def test_identity_and_payload_fields_match_rpm(rpms, kind):
    path = rpms[kind]
    with RpmFile.open(path) as rpm:
        expected = qf(path, "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{PAYLOADCOMPRESSOR}|"
                            "%{PAYLOADFORMAT}|%{PAYLOADDIGEST}|%{PAYLOADDIGESTALGO}|%{PAYLOADDIGESTALT}|"
                            "%{SHA256HEADER}|%{SHA1HEADER}").split("|")
        name, epoch, version, release, arch, comp, fmt, pd, pda, pdalt, sha256, sha1 = expected
        assert (rpm.name, rpm.version, rpm.release, rpm.arch) == (name, version, release, arch)
        assert rpm.epoch is None and epoch == "(none)"
        assert rpm.nevra == "fixture-1.0-1.x86_64"
        # rpmbuild writes no compressor tag for uncompressed payloads; rpm then assumes gzip (and
        # its gzip reader passes plain data through). payload.py sniffs the real format.
        assert rpm.payload_compressor == (comp if comp != "(none)" else "gzip")
        assert rpm.payload_format == fmt == "cpio"
        assert rpm.payload_digest.hexdigest == pd and rpm.payload_digest.algo == int(pda)
        assert rpm.payload_digest_alt.hexdigest == pdalt
        assert rpm.header_sha256 == sha256 and rpm.header_sha1 == sha1
        # The payload starts where the header ends; its size is what is left of the file.
        assert rpm.payload_offset == path.stat().st_size - _payload_length(path)


def _payload_length(path) -> int:
    # rpm records header+payload size in the signature header (SIZE, tag 1000).
    with RpmFile.open(path) as rpm:
        size = rpm.signature.get_int(SigTag.SIZE)
        return size - len(rpm.header.raw)


def test_file_list_matches_rpm(rpms):
    path = rpms["zstd-signed"]
    rpm = read_rpm(path)
    rows = [line.split("\t") for line in qf(path, FILE_QF).splitlines()]
    assert len(rows) == len(rpm.files) == 22
    for row, f in zip(rows, rpm.files):
        (name, mode, size, mtime, user, group, flags, linkto, inode, device, rdev, digest, caps) = row
        assert f.path == name
        assert (f.mode, f.size, f.mtime) == (int(mode), int(size), int(mtime))
        assert (f.user, f.group, f.flags, f.linkto) == (user, group, int(flags), linkto)
        assert (f.inode, f.device, f.rdev) == (int(inode), int(device), int(rdev))
        assert (f.digest, f.caps) == (digest, caps)
    by_path = {f.path: f for f in rpm.files}
    assert by_path["/var/lib/fixture.state"].is_ghost and by_path["/var/lib/fixture.state"].flags & RPMFILE_GHOST
    assert by_path["/etc/fixture.conf"].is_config and by_path["/etc/fixture.conf"].flags & RPMFILE_CONFIG
    assert by_path["/usr/bin/fixture-ping"].caps == "cap_net_raw=ep"
    assert by_path["/usr/bin/fixture-suid"].mode == 0o104755
    assert (by_path["/usr/share/fixture/owned"].user, by_path["/usr/share/fixture/owned"].group) == ("nobody", "nogroup")
    assert by_path["/usr/bin/fixture-link"].linkto == "fixture-exe"
    assert "/usr/share/fixture/naïve file.txt" in by_path
    hl = [by_path[p].index for p in ("/usr/share/fixture/empty/hl3", "/usr/share/fixture/hl1", "/usr/share/fixture/hl2")]
    assert rpm.hardlink_sets[hl[0]] == tuple(sorted(hl))
    assert rpm.file_digest_algo == 8


@pytest.mark.parametrize("kind", ["requires", "provides", "conflicts", "obsoletes"])
def test_dependencies_match_rpm(rpms, kind):
    path = rpms["zstd"]
    tag = kind[:-1].upper()
    rows = [tuple(line.split("\t")) for line in
            qf(path, f"[%{{{tag}NAME}}\t%{{{tag}FLAGS}}\t%{{{tag}VERSION}}\n]").splitlines()]
    deps = read_rpm(path).dependencies(kind)
    assert [(d.name, str(d.flags), d.evr) for d in deps] == rows
    assert rows


def test_requires_carry_versions(rpms):
    deps = {d.name: d for d in read_rpm(rpms["zstd"]).requires}
    assert deps["bash"].evr == "4.0" and deps["bash"].flags & 0xE == 0xC   # >=
    assert ("fixture-cap", 8, "1.0") in read_rpm(rpms["zstd"]).provides


def test_signatures_are_exposed(rpms):
    signed = read_rpm(rpms["zstd-signed"])
    assert [t for t, _ in signed.header_signatures] == [SigTag.RSA]
    blob = signed.header_signatures[0][1]
    assert blob.hex() == qf(rpms["zstd-signed"], "%{RSAHEADER}")
    assert read_rpm(rpms["zstd"]).signatures == []


def test_header_raw_is_the_stored_bytes(rpms):
    path = rpms["zstd-signed"]
    rpm = read_rpm(path)
    data = path.read_bytes()
    assert data[rpm.header_offset:rpm.payload_offset] == rpm.header.raw
    assert rpm.header.raw.startswith(b"\x8e\xad\xe8\x01")
    assert rpm.header_offset % 8 == 0


# -- bad input ---------------------------------------------------------------------------------

def test_not_an_rpm(tmp_path):
    bogus = tmp_path / "bogus.rpm"
    bogus.write_bytes(b"<html>404 not found</html>" * 10)
    with pytest.raises(HeaderError, match="bogus.rpm: not an RPM"):
        read_rpm(bogus)


@pytest.mark.parametrize("cut", [10, 100, 200, 1000, 3000])
def test_truncated_rpm(rpms, tmp_path, cut):
    truncated = tmp_path / "t.rpm"
    truncated.write_bytes(rpms["zstd"].read_bytes()[:cut])
    with pytest.raises(HeaderError, match="t.rpm: corrupt RPM .*truncated"):
        read_rpm(truncated)


def test_absurd_counts_are_refused_before_allocating():
    intro = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", 0x7FFFFFFF, 16)
    with pytest.raises(HeaderError, match="entries"):
        Header.read(io.BytesIO(intro), what="x.rpm")
    intro = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", 10, 0xFFFFFFF0)
    with pytest.raises(HeaderError, match="store"):
        Header.read(io.BytesIO(intro), what="x.rpm")


def test_entry_pointing_outside_the_store_is_refused():
    index = struct.pack(">IIiI", 1000, 6, 5000, 1)
    raw = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", 1, 8) + index + b"abc\0\0\0\0\0"
    with pytest.raises(HeaderError, match="offset"):
        Header(raw)
    index = struct.pack(">IIiI", 1028, 4, 0, 1000)       # 1000 INT32 in an 8-byte store
    raw = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", 1, 8) + index + b"\0" * 8
    with pytest.raises(HeaderError):
        Header(raw)


def test_unterminated_string_array_is_refused():
    index = struct.pack(">IIiI", 1117, 8, 0, 3)
    raw = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", 1, 4) + index + b"a\0b\0"
    with pytest.raises(HeaderError, match="run past"):
        Header(raw)[1117]


def test_large_file_list_is_read_quickly():
    """Tens of thousands of files (kernel-modules, texlive, ...) must not be slow."""
    files = [FakeFile(f"/usr/share/many/dir{i % 300}/file-{i}.txt", data=b"") for i in range(60000)]
    path = write_rpm(workdir() / "many.rpm", files, compressor="identity", name="many")
    start = time.perf_counter()
    rpm = read_rpm(path)
    infos = rpm.files
    elapsed = time.perf_counter() - start
    assert len(infos) == 60000 and infos[-1].path == "/usr/share/many/dir299/file-59999.txt"
    assert elapsed < 2.0, f"reading 60000 file entries took {elapsed:.2f} s"


def test_written_fixture_is_read_by_rpm_too():
    """The test-suite's RPM writer makes packages rpm itself reads (so crafted tests are real)."""
    path = write_rpm(workdir() / "crafted-check.rpm",
                     [FakeFile("/etc/crafted.conf", data=b"x=1\n"),
                      FakeFile("/usr/bin/crafted", mode=0o100755, data=b"#!/bin/sh\n", caps="cap_net_raw=ep")],
                     signer=keys().trusted, name="crafted-check")
    assert qf(path, "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}") == "crafted-check-1.0-1.x86_64"
    assert qf(path, "[%{FILENAMES} %{FILECAPS}\n]") == "/etc/crafted.conf \n/usr/bin/crafted cap_net_raw=ep\n"
    rpm = read_rpm(path)
    assert [f.path for f in rpm.files] == ["/etc/crafted.conf", "/usr/bin/crafted"]
    assert rpm.header.get_str(Tag.SUMMARY) == "crafted test package"
