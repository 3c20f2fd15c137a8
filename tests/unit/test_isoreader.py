"""IsoReader against real images built with xorriso (Rock Ridge + Joliet, Joliet only, plain ISO 9660)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from levitate.repo.isoreader import IsoReader
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

pytestmark = pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso is not installed")

BIG = 80 * 1024 * 1024 + 12345   # bigger than any buffer, not a multiple of the block size
DEEP = "/deep/" + "/".join(f"d{i}" for i in range(1, 11))   # deeper than ISO 9660's 8 levels


def make_iso(tree: Path, out: Path, *flags: str) -> Path:
    subprocess.run(["xorriso", "-as", "mkisofs", *flags, "-V", "TEST_DVD", "-o", str(out), str(tree)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def dvd(tmp_path_factory):
    """A DVD-shaped tree: ~300 files in nested directories, one 80 MB file; and its ISO."""
    root = tmp_path_factory.mktemp("iso")
    tree = root / "tree"
    files: dict[str, bytes] = {}
    for repo in ("BaseOS", "AppStream"):
        files[f"/{repo}/repodata/repomd.xml"] = f"<repomd>{repo}</repomd>\n".encode()
        for i in range(145):
            name = f"pkg-with-a-rather-long-name-{i}-1.0-1.el10.x86_64.rpm"
            files[f"/{repo}/Packages/{name[0]}/{name}"] = os.urandom(100 + i * 53)
    files["/RPM-GPG-KEY-Rocky-10"] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    files["/Mixed Case Name.TXT"] = b"mixed"
    files["/empty"] = b""
    files[DEEP + "/leaf.txt"] = b"deep"
    files["/images/install.img"] = os.urandom(1 << 20) * (BIG >> 20) + os.urandom(BIG & ((1 << 20) - 1))
    for path, data in files.items():
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (tree / "BaseOS" / "link-to-repodata").symlink_to("repodata")
    start = time.monotonic()
    iso = make_iso(tree, root / "dvd.iso", "-R", "-J")
    built = time.monotonic() - start
    return {"iso": iso, "tree": tree, "files": files, "build_seconds": built}


@cheat_aware(protects="files are read from the ISO, byte for byte, with their real (Rock Ridge) names",
             cheats=["mounting the image", "reading 8.3 ISO names only", "returning data of the wrong extent"],
             consequence="repodata or RPMs read from the DVD are wrong or missing; the build needs root")
def test_reads_every_file_exactly(dvd):
    with IsoReader(dvd["iso"]) as iso:
        assert iso.namespace == "rockridge"
        assert iso.volume_id == "TEST_DVD"
        for path, data in dvd["files"].items():
            assert iso.exists(path), path
            assert iso.stat(path).size == len(data)
            if len(data) < 1 << 20:
                assert iso.read_bytes(path) == data, path


def test_listdir_walk_exists(dvd):
    with IsoReader(dvd["iso"]) as iso:
        assert iso.listdir("/") == sorted(["AppStream", "BaseOS", "Mixed Case Name.TXT", "RPM-GPG-KEY-Rocky-10",
                                           "deep", "empty", "images"])
        assert iso.listdir("/BaseOS") == ["Packages", "link-to-repodata", "repodata"]
        assert iso.listdir("BaseOS/repodata/") == ["repomd.xml"]
        assert iso.is_dir("/BaseOS/Packages") and not iso.is_dir("/empty")
        assert not iso.exists("/BaseOS/nope") and not iso.exists("/mixed case name.txt")
        walked = {f"{d.rstrip('/')}/{f}" for d, _, files in iso.walk() for f in files}
        assert walked == set(dvd["files"]) | {"/BaseOS/link-to-repodata"}
        assert [d for d, _, _ in iso.walk(DEEP)] == [DEEP]
        # symlinks are followed, also in the middle of a path
        assert iso.read_bytes("/BaseOS/link-to-repodata/repomd.xml") == dvd["files"]["/BaseOS/repodata/repomd.xml"]
        with pytest.raises(LevitateError, match="/BaseOS/nope not found on dvd.iso"):
            iso.open("/BaseOS/nope")
        with pytest.raises(LevitateError, match="is a directory"):
            iso.open("/BaseOS")
        with pytest.raises(LevitateError, match="not a directory"):
            iso.listdir("/empty")


def test_big_file_streams_and_seeks(dvd, tmp_path):
    data = dvd["files"]["/images/install.img"]
    with IsoReader(dvd["iso"]) as iso:
        with iso.open("/images/install.img") as f:
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
            assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
            f.seek(BIG - 10)
            assert f.read() == data[-10:]
            f.seek(-5, os.SEEK_END)
            assert f.tell() == BIG - 5 and f.read(100) == data[-5:]
            f.seek(12_345_678)
            assert f.read(16) == data[12_345_678:12_345_694]
        out = iso.extract("/images/install.img", tmp_path / "out" / "install.img")
        assert out.stat().st_size == BIG and out.read_bytes() == data
        assert [p.name for p in out.parent.iterdir()] == ["install.img"]   # no temp file left
        assert iso.read_bytes("/empty") == b""


def test_extract_tree(dvd, tmp_path):
    with IsoReader(dvd["iso"]) as iso:
        iso.extract_tree("/BaseOS", tmp_path / "BaseOS")
    for path, data in dvd["files"].items():
        if path.startswith("/BaseOS/"):
            assert (tmp_path / path.lstrip("/")).read_bytes() == data
    assert os.readlink(tmp_path / "BaseOS" / "link-to-repodata") == "repodata"


def test_parallel_reads(dvd):
    """Files are read with pread: threads never disturb each other's position."""
    packages = [p for p in dvd["files"] if p.endswith(".rpm")]
    errors = []
    with IsoReader(dvd["iso"]) as iso:
        def worker(paths):
            for path in paths:
                with iso.open(path) as f:
                    got = b"".join(iter(lambda: f.read(7), b""))
                if got != dvd["files"][path]:
                    errors.append(path)
        threads = [threading.Thread(target=worker, args=(packages[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


@pytest.mark.parametrize("flags,namespace", [(["--norock", "-J"], "joliet"), (["--norock"], "iso9660")])
def test_without_rock_ridge(tmp_path, flags, namespace):
    tree = tmp_path / "tree"
    (tree / "BaseOS" / "repodata").mkdir(parents=True)
    (tree / "BaseOS" / "repodata" / "repomd.xml").write_bytes(b"<repomd/>")
    (tree / "BaseOS" / "repodata" / "primary.xml.gz").write_bytes(b"gz")
    iso = make_iso(tree, tmp_path / "x.iso", *flags)
    with IsoReader(iso) as reader:
        assert reader.namespace == namespace
        assert reader.read_bytes("/BaseOS/repodata/repomd.xml") == b"<repomd/>"
        names = reader.listdir("/BaseOS/repodata")
        if namespace == "joliet":
            assert names == ["primary.xml.gz", "repomd.xml"]
        else:   # level-1 names (8.3, upper case) shown in lower case, as Linux mounts them
            assert "repomd.xml" in names and len(names) == 2
            assert reader.read_bytes("/BASEOS/REPODATA/REPOMD.XML") == b"<repomd/>"


@cheat_aware(protects="a file that is not an ISO (or a truncated one) fails with one clear line",
             cheats=["letting pycdlib's exception through", "returning an empty listing"],
             consequence="a traceback, or a build that silently finds no packages on a broken download")
def test_not_an_iso(tmp_path, dvd):
    junk = tmp_path / "junk.iso"
    junk.write_bytes(os.urandom(100_000))
    with pytest.raises(LevitateError) as err:
        IsoReader(junk)
    assert str(err.value).startswith(f"{junk} is not an ISO 9660 image (hint: ")
    with pytest.raises(LevitateError, match="no such ISO image"):
        IsoReader(tmp_path / "missing.iso")
    with pytest.raises(LevitateError, match="is a directory"):
        IsoReader(tmp_path)
    # an interrupted download: the directory tree is complete, the big file is cut
    with IsoReader(dvd["iso"]) as iso:
        (offset, length), = iso.stat("/images/install.img").extents
        assert offset + length <= dvd["iso"].stat().st_size
    cut = tmp_path / "cut.iso"
    with open(dvd["iso"], "rb") as src, open(cut, "wb") as out:
        out.write(src.read(offset + length // 2))
    with pytest.raises(LevitateError, match=rf"{cut} is truncated: {offset + length // 2} of \d+ bytes"):
        IsoReader(cut)   # (pycdlib alone would serve the cut file, shortened, without a word)


def test_open_time_of_a_100mb_iso(dvd, capsys):
    """Measured, not just asserted: the README quotes it. ~300 files, ~100 MB."""
    start = time.monotonic()
    with IsoReader(dvd["iso"]) as iso:
        opened = time.monotonic() - start
        count = sum(len(f) for _, _, f in iso.walk())
    size_mb = dvd["iso"].stat().st_size / 1e6
    with capsys.disabled():
        print(f"\n[isoreader] {size_mb:.0f} MB ISO, {count} files: opened in {opened * 1000:.0f} ms "
              f"(xorriso built it in {dvd['build_seconds']:.1f} s)")
    assert count > 290 and size_mb > 80
    assert opened < 2.0


def test_relocated_deep_directories(tmp_path):
    """mkisofs-style images move directories deeper than 8 levels to rr_moved/; Rock Ridge puts them back."""
    tree = tmp_path / "tree"
    leaf = tree / "a/b/c/d/e/f/g/h/i/j/leaf.txt"
    leaf.parent.mkdir(parents=True)
    leaf.write_bytes(b"leaf")
    (tree / "top.txt").write_bytes(b"top")
    iso = tmp_path / "deep.iso"
    subprocess.run(["xorriso", "-compliance", "deep_paths_off:long_paths_off", "-rr_reloc_dir", "rr_moved",
                    "-outdev", str(iso), "-map", str(tree), "/"], check=True, capture_output=True)
    with IsoReader(iso) as reader:
        assert reader.listdir("/") == ["a", "top.txt"]
        assert reader.read_bytes("/a/b/c/d/e/f/g/h/i/j/leaf.txt") == b"leaf"
        assert [f for _, _, files in reader.walk() for f in files] == ["top.txt", "leaf.txt"]
