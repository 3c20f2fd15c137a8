"""Reading a .deb: the ar container, control.tar (fields, conffiles, maintainer scripts) and a
streaming view of data.tar. Standard library plus zstandard, so no dpkg-deb is needed."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_AR_MAGIC = b"!<arch>\n"
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
_XZ_TOOL_ABOVE = 4 << 20   # below this, starting a process costs more than it saves


class DebError(Exception):
    pass


@dataclass(frozen=True)
class Control:
    """What the repacker needs from control.tar."""

    fields: dict[str, str]
    conffiles: tuple[str, ...]
    scripts: tuple[str, ...]  # the maintainer scripts present (preinst, postinst, ...)

    @property
    def name(self) -> str:
        return self.fields["Package"]

    @property
    def version(self) -> str:
        return self.fields["Version"]

    @property
    def arch(self) -> str:
        return self.fields["Architecture"]


def _ar_members(f: BinaryIO) -> Iterator[tuple[str, int]]:
    """Yield (name, size) with `f` positioned at each member's data."""
    if f.read(8) != _AR_MAGIC:
        raise DebError("not an ar archive")
    while True:
        header = f.read(60)
        if not header:
            return
        if len(header) != 60 or header[58:60] != b"`\n":
            raise DebError("truncated or corrupt ar header")
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        start = f.tell()
        yield name, size
        f.seek(start + size + (size & 1))


def _decompressor(name: str, raw: BinaryIO) -> BinaryIO:
    if name.endswith(".xz"):
        return lzma.open(raw)
    if name.endswith(".gz"):
        return gzip.open(raw)
    if name.endswith(".zst"):
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(raw)
    if name.endswith(".tar"):
        return raw
    raise DebError(f"unsupported member compression: {name}")


class _Window(io.RawIOBase):
    """A read-only view of `size` bytes of `f` from its current position."""

    def __init__(self, f: BinaryIO, size: int):
        self._f, self._left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._left)
        if n <= 0:
            return 0
        data = self._f.read(n)
        b[:len(data)] = data
        self._left -= len(data)
        return len(data)


@contextmanager
def _xz_process(raw: BinaryIO) -> Iterator[BinaryIO]:
    """Decompress through the xz tool: multithreaded (dpkg-deb writes multi-block .xz), and
    off this process, so decompressing overlaps with writing the files out."""
    proc = subprocess.Popen(["xz", "-dc", "-T2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def feed():
        try:
            while chunk := raw.read(1 << 20):
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield proc.stdout
        while proc.stdout.read(1 << 20):   # tar's end-of-archive padding: let xz finish
            pass
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.stdout.close()
        feeder.join()
        proc.wait()
    if proc.returncode != 0:
        raise DebError(f"xz -d failed (exit {proc.returncode})")


@contextmanager
def _member_tar(path: Path, prefix: str) -> Iterator[tarfile.TarFile]:
    with open(path, "rb") as f:
        for name, size in _ar_members(f):
            if name.startswith(prefix):
                raw = io.BufferedReader(_Window(f, size), 1 << 20)
                if name.endswith(".xz") and size > _XZ_TOOL_ABOVE and shutil.which("xz"):
                    with _xz_process(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                        yield tar
                else:
                    with tarfile.open(fileobj=_decompressor(name, raw), mode="r|") as tar:
                        yield tar
                return
    raise DebError(f"{path.name}: no {prefix}* member")


def parse_fields(text: str) -> dict[str, str]:
    """One deb822 stanza; continuation lines are kept with their newlines."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def read_control(path: Path) -> Control:
    fields: dict[str, str] | None = None
    conffiles: list[str] = []
    scripts = []
    with _member_tar(path, "control.tar") as tar:
        for m in tar:
            base = m.name.removeprefix("./")
            if not m.isreg():
                continue
            if base == "control":
                fields = parse_fields(tar.extractfile(m).read().decode())
            elif base == "conffiles":
                for line in tar.extractfile(m).read().decode().splitlines():
                    if line.strip():
                        # "remove-on-upgrade /etc/foo" (dpkg >= 1.20.1): the path is last
                        conffiles.append(line.split()[-1])
            elif base in MAINTAINER_SCRIPTS:
                scripts.append(base)
    if fields is None:
        raise DebError(f"{path.name}: no control file")
    return Control(fields, tuple(conffiles), tuple(sorted(scripts)))


@contextmanager
def open_data(path: Path) -> Iterator[tarfile.TarFile]:
    """data.tar as a streaming TarFile: iterate it once, reading each member as it comes."""
    with _member_tar(path, "data.tar") as tar:
        yield tar
