"""Payload decompression and the payload digest, checked against rpm2cpio."""

from __future__ import annotations

import io

import pytest

from levitate.rpm.header import RpmFile
from levitate.rpm.payload import PayloadError, PayloadReader, open_payload
from tests.cheat_aware import cheat_aware
from tests.unit.test_rpm_support import built_rpms, copy_rpm, run


@pytest.fixture(scope="session")
def rpms():
    return built_rpms()


def read_all(path, **kw) -> tuple[bytes, PayloadReader]:
    with RpmFile.open(path) as rpm:
        reader = open_payload(rpm, **kw)
        data = io.BufferedReader(reader, 1 << 20).read()
        reader.finish()
        return data, reader


@pytest.mark.parametrize("kind,compressor", [("zstd", "zstd"), ("xz", "xz"), ("gzip", "gzip"),
                                             ("bzip2", "bzip2"), ("none", "identity")])
def test_decompressed_payload_equals_rpm2cpio(rpms, kind, compressor):
    data, reader = read_all(rpms[kind])
    assert data == run("rpm2cpio", str(rpms[kind]))
    assert reader.compressor == compressor
    assert reader.compressed_bytes == rpms[kind].stat().st_size - RpmFile.open(rpms[kind]).payload_offset


def test_progress_reports_compressed_bytes(rpms):
    seen = []
    read_all(rpms["xz"], on_bytes=seen.append)
    with RpmFile.open(rpms["xz"]) as rpm:
        assert sum(seen) == rpms["xz"].stat().st_size - rpm.payload_offset


def tamper(path, tmp_path, offset_from_end: int):
    copy = copy_rpm(path, tmp_path)
    data = bytearray(copy.read_bytes())
    data[-offset_from_end] ^= 0x40
    copy.write_bytes(bytes(data))
    return copy


@cheat_aware(protects="a changed payload byte is detected by PAYLOADDIGEST",
             cheats=["computing the digest over the decompressed data instead of the stored bytes",
                     "not comparing the digest at the end of the stream"],
             consequence="a package whose files were altered would be extracted as if genuine")
@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2", "none"])
@pytest.mark.parametrize("where", [50, 2000])
def test_tampered_payload_is_detected(rpms, tmp_path, kind, where):
    bad = tamper(rpms[kind], tmp_path, where)
    with pytest.raises(PayloadError, match=r"fixture-1.0-1.x86_64.rpm: payload digest mismatch \(tampered\?\)"):
        read_all(bad)


def test_appended_bytes_are_detected(rpms, tmp_path):
    bad = copy_rpm(rpms["zstd"], tmp_path)
    bad.write_bytes(bad.read_bytes() + b"\0")
    with pytest.raises(PayloadError, match="payload digest mismatch"):
        read_all(bad)


def test_truncated_payload(rpms, tmp_path):
    bad = copy_rpm(rpms["xz"], tmp_path)
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(PayloadError, match="payload digest mismatch"):
        read_all(bad)
    # Without a digest to compare, the decompressor still says what is wrong.
    with pytest.raises(PayloadError, match="cannot be decompressed"):
        read_all(bad, verify=False)


def test_unknown_format_is_a_clear_error():
    with pytest.raises(PayloadError, match="unknown compression format"):
        PayloadReader(io.BytesIO(b"PK\x03\x04 not a payload"), "zstd", what="x.rpm")


def test_alt_digest_checks_uncompressed_data(rpms):
    with RpmFile.open(rpms["gzip"]) as rpm:
        alt = rpm.payload_digest_alt
        reader = PayloadReader(rpm.fileobj, rpm.payload_compressor, what="x.rpm",
                               alt_digest=(alt.hash_name, alt.hexdigest))
        io.BufferedReader(reader).read()
        reader.finish()
    with RpmFile.open(rpms["gzip"]) as rpm:
        reader = PayloadReader(rpm.fileobj, rpm.payload_compressor, what="x.rpm",
                               alt_digest=("sha256", "00" * 32))
        with pytest.raises(PayloadError, match="uncompressed payload digest mismatch"):
            reader.finish()
