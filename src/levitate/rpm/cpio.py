"""Stream the cpio archive inside an RPM payload, one entry at a time.

RPM payloads are SVR4 cpio: "newc" (070701) or "crc" (070702, same layout plus a checksum rpm
never fills), 110-byte ASCII-hex headers, the NUL-terminated name, and the data, each padded to 4
bytes; the archive ends at an entry named TRAILER!!!. rpm >= 4.12 writes a "stripped" variant
(07070X) for packages with files over 4 GiB: its headers carry only an index into the RPM header's
file list, so reading it needs that list (`stripped_sizes`). Like tarfile, entries come from one
sequential pass over a file object; data is read or skipped before moving to the next entry.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from levitate.util.errors import VerificationError

NEWC_MAGIC = b"070701"
CRC_MAGIC = b"070702"
STRIPPED_MAGIC = b"07070X"
TRAILER = "TRAILER!!!"
HEADER_SIZE = 110
STRIPPED_HEADER_SIZE = 14

MAX_NAME = 64 * 1024          # PATH_MAX is 4096; anything far beyond is corrupt or hostile
CHUNK = 1024 * 1024


class CpioError(VerificationError):
    """The payload is not a well-formed cpio archive."""


@dataclass(slots=True)
class CpioEntry:
    """One archive member. `name` is as stored (rpm writes "./usr/bin/x"); see `normalized`."""

    name: str
    mode: int
    ino: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    size: int
    devmajor: int
    devminor: int
    rdevmajor: int
    rdevminor: int
    check: int
    index: int = -1               # file index in the RPM header (stripped format only)

    def isreg(self) -> bool:
        return stat.S_ISREG(self.mode)

    def isdir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def issym(self) -> bool:
        return stat.S_ISLNK(self.mode)

    def normalized(self) -> str:
        """The member path without a leading "./", with "." and empty components removed.

        Leading "/" and ".." components are kept so that callers can refuse them.
        """
        return normalize_name(self.name)


def normalize_name(name: str) -> str:
    absolute = name.startswith("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    text = "/".join(parts)
    return "/" + text if absolute else text


_HEX_HEADER = re.compile(rb"[0-9A-Fa-f]{104}")
_HEX8 = re.compile(rb"[0-9A-Fa-f]{8}")


def _hex_fields(raw: bytes) -> list[int] | None:
    """The 13 numeric fields of a newc/crc header, or None when they are not plain hex
    (int() alone would accept signs, spaces and underscores)."""
    if not _HEX_HEADER.fullmatch(raw, 6):
        return None
    return [int(raw[i:i + 8], 16) for i in range(6, HEADER_SIZE, 8)]


class CpioReader:
    """Iterate the entries of a cpio stream.

    fileobj needs only `read(n)`; wrap unbuffered streams in io.BufferedReader for speed.
    For the stripped format pass `stripped_sizes(index) -> (name, size)`, which maps a header
    file index to its path and the size of the data stored for it in the payload.
    """

    def __init__(self, fileobj: BinaryIO, *, what: str = "payload",
                 stripped_sizes: Callable[[int], tuple[str, int]] | None = None):
        self.fileobj = fileobj
        self.what = what
        self.stripped_sizes = stripped_sizes
        self.offset = 0              # bytes consumed from fileobj
        self._remaining = 0          # data bytes of the current entry not yet read
        self._pad = 0                # padding after the current entry's data
        self._done = False
        self.current: CpioEntry | None = None

    def _error(self, detail: str) -> CpioError:
        return CpioError(f"{self.what}: corrupt payload ({detail} at offset {self.offset})",
                         "the package is damaged or was tampered with; download it again")

    def _read(self, n: int) -> bytes:
        data = self.fileobj.read(n)
        if len(data) != n:
            raise self._error(f"truncated: wanted {n} bytes, got {len(data)}")
        self.offset += n
        return data

    # -- entries --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[CpioEntry]:
        while (entry := self.next()) is not None:
            yield entry

    def next(self) -> CpioEntry | None:
        """Skip what is left of the current entry and return the next one (None at the end)."""
        if self._done:
            return None
        if self._remaining or self._pad:
            self.skip()
        magic = self._read(6)
        if magic == STRIPPED_MAGIC:
            entry = self._next_stripped()
        elif magic in (NEWC_MAGIC, CRC_MAGIC):
            entry = self._next_newc(magic)
        else:
            raise self._error(f"bad cpio magic {magic!r}")
        if entry is None:
            self._done = True
        self.current = entry
        return entry

    def _next_newc(self, magic: bytes) -> CpioEntry | None:
        raw = magic + self._read(HEADER_SIZE - 6)
        fields = _hex_fields(raw)
        if fields is None:
            raise self._error("non-hex cpio header field")
        (ino, mode, uid, gid, nlink, mtime, size, devmaj, devmin, rdevmaj, rdevmin,
         namesize, check) = fields
        if namesize == 0 or namesize > MAX_NAME:
            raise self._error(f"absurd cpio name size {namesize}")
        name_bytes = self._read(namesize)
        if name_bytes[-1:] != b"\0":
            raise self._error("cpio name is not NUL-terminated")
        name = name_bytes[:-1].decode("utf-8", "surrogateescape")
        if "\0" in name:
            raise self._error("NUL inside a cpio name")
        pad = -(HEADER_SIZE + namesize) % 4
        if pad:
            self._read(pad)
        if name == TRAILER:
            return None
        self._remaining = size
        self._pad = -size % 4
        return CpioEntry(name, mode, ino, uid, gid, nlink, mtime, size, devmaj, devmin,
                         rdevmaj, rdevmin, check)

    def _next_stripped(self) -> CpioEntry | None:
        if self.stripped_sizes is None:
            raise CpioError(f"{self.what}: stripped cpio payload (07070X) needs the RPM header's file list",
                            "read it through levitate.rpm.payload / extract_rpm, which pass the header")
        raw = self._read(8)
        if not _HEX8.fullmatch(raw):
            raise self._error("non-hex stripped cpio index")
        index = int(raw, 16)
        self._read(-STRIPPED_HEADER_SIZE % 4)
        try:
            name, size = self.stripped_sizes(index)
        except (IndexError, KeyError):
            raise self._error(f"stripped cpio entry refers to file #{index}, which the header lacks") from None
        self._remaining = size
        self._pad = -size % 4
        # Metadata lives in the header; the entry only says which file this is.
        return CpioEntry(name, 0, 0, 0, 0, 1, 0, size, 0, 0, 0, 0, 0, index)

    # -- data -----------------------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        """Read up to n bytes of the current entry's data (all that is left when n < 0)."""
        if n < 0 or n > self._remaining:
            n = self._remaining
        if not n:
            return b""
        data = self._read(n)
        self._remaining -= n
        if not self._remaining and self._pad:
            self._read(self._pad)
            self._pad = 0
        return data

    def readinto(self, buf) -> int:
        """Fill (a prefix of) a writable buffer with the current entry's data; 0 at its end."""
        view = memoryview(buf)
        n = min(len(view), self._remaining)
        if not n:
            return 0
        got = self.fileobj.readinto(view[:n])
        if got != n:
            raise self._error(f"truncated: wanted {n} bytes, got {got}")
        self.offset += n
        self._remaining -= n
        if not self._remaining and self._pad:
            self._read(self._pad)
            self._pad = 0
        return n

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """Yield the rest of the current entry's data in chunks."""
        while self._remaining:
            yield self.read(min(size, self._remaining))

    def skip(self) -> None:
        """Discard the rest of the current entry's data and its padding."""
        while self._remaining:
            self.read(min(CHUNK, self._remaining))
        if self._pad:
            self._read(self._pad)
            self._pad = 0

    @property
    def at_end(self) -> bool:
        return self._done
