"""The cpio reader against GNU cpio's own archives and rpm2cpio output."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from levitate.rpm.cpio import CpioError, CpioReader
from levitate.rpm.header import read_rpm
from tests.unit.test_rpm_support import FakeFile, built_rpms, run, write_rpm


@pytest.fixture(scope="session")
def rpms():
    return built_rpms()


def rpm2cpio(path) -> bytes:
    return run("rpm2cpio", str(path))


def members(data: bytes, **kw) -> list[tuple[str, int, bytes]]:
    reader = CpioReader(io.BufferedReader(io.BytesIO(data)), **kw)
    return [(e.name, e.mode, reader.read()) for e in reader]


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2", "none"])
def test_member_names_match_cpio_t(rpms, kind):
    data = rpm2cpio(rpms[kind])
    listed = run("cpio", "-t", "--quiet", input=data).decode().splitlines()
    assert [name for name, _, _ in members(data)] == listed


def test_member_data_matches_gnu_cpio(rpms, tmp_path):
    data = rpm2cpio(rpms["zstd"])
    subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=tmp_path, check=True)
    found = 0
    for name, mode, content in members(data):
        path = tmp_path / name
        if (mode & 0o170000) == 0o100000 and content:
            assert path.read_bytes() == content
            found += 1
        elif (mode & 0o170000) == 0o120000:
            assert os.readlink(path) == content.decode()
    assert found >= 8


@pytest.mark.parametrize("fmt", ["newc", "crc"])
def test_gnu_cpio_archives(tmp_path, fmt):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    sizes = [0, 1, 2, 3, 4, 5, 1023, 65537, 1024 * 1024 + 3]
    for n in sizes:
        (src / "d" / f"f{n}").write_bytes(os.urandom(n))
    (src / "link").symlink_to("d/f1")
    names = "\n".join(sorted(str(p.relative_to(src)) for p in src.rglob("*"))) + "\n"
    archive = run("cpio", "-o", "--quiet", "-H", fmt, input=names.encode(), cwd=src)
    if fmt == "crc":
        assert archive.startswith(b"070702")
    got = {name: (mode, data) for name, mode, data in members(archive)}
    for n in sizes:
        assert got[f"d/f{n}"][1] == (src / "d" / f"f{n}").read_bytes()
    assert got["link"][1] == b"d/f1"


def test_reading_in_pieces_and_skipping(rpms):
    data = rpm2cpio(rpms["gzip"])
    whole = {name: content for name, _, content in members(data)}
    reader = CpioReader(io.BytesIO(data))
    seen = {}
    for i, entry in enumerate(reader):
        if i % 2:
            continue                      # never read: next() skips data and padding
        chunks = []
        buf = bytearray(7)
        while n := reader.readinto(buf):
            chunks.append(bytes(buf[:n]))
        seen[entry.name] = b"".join(chunks)
    assert seen and all(whole[name] == content for name, content in seen.items())
    assert reader.at_end


def test_stripped_format_needs_the_header(tmp_path):
    files = [FakeFile("/usr/share/big/a", data=b"alpha"), FakeFile("/usr/share/big/b", data=b"bee!"),
             FakeFile("/usr/share/big/link", mode=0o120777, linkto="a")]
    path = write_rpm(tmp_path / "stripped.rpm", files, compressor="identity", stripped=True)
    rpm = read_rpm(path)
    data = path.read_bytes()[rpm.payload_offset:]
    assert data.startswith(b"07070X")
    with pytest.raises(CpioError, match="stripped"):
        members(data)

    def lookup(i):
        f = rpm.files[i]
        return "." + f.path, f.size

    assert [(n, d) for n, _, d in members(data, stripped_sizes=lookup)] == [
        ("./usr/share/big/a", b"alpha"), ("./usr/share/big/b", b"bee!"), ("./usr/share/big/link", b"a")]


@pytest.mark.parametrize("damage", ["magic", "hex", "truncate", "namesize"])
def test_corrupt_archives_are_clear_errors(rpms, damage):
    data = bytearray(rpm2cpio(rpms["none"]))
    if damage == "magic":
        data[0:6] = b"070707"
    elif damage == "hex":
        data[10:12] = b"zz"
    elif damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[94:102] = b"7FFFFFFF"
    with pytest.raises(CpioError, match="corrupt payload"):
        members(bytes(data), what="x.rpm")
