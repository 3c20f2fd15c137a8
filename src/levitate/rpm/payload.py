"""Open an RPM payload as a decompressed stream and check its digest on the way.

PAYLOADDIGEST in the (signed) main header is the digest of the payload exactly as stored, i.e. of
the compressed bytes from the end of the header to the end of the file. `PayloadReader` hashes
those bytes as the decompressor consumes them, so one sequential pass both extracts and
verifies; `finish()` drains whatever the archive did not need and compares the digest. Until
`finish()` succeeds, nothing read from the stream may be trusted.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import zlib
from typing import BinaryIO, Callable

from levitate.util.errors import VerificationError

CHUNK = 1024 * 1024

# Magic numbers, checked before trusting the header's compressor name.
_MAGICS = [
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"070701", "identity"),
    (b"070702", "identity"),
    (b"07070X", "identity"),
    (b"\x5d\x00\x00", "lzma"),
]
COMPRESSORS = ("zstd", "xz", "lzma", "gzip", "bzip2", "identity")


class PayloadError(VerificationError):
    """The payload cannot be decompressed or does not match its digest."""


def sniff_compressor(head: bytes) -> str | None:
    for magic, name in _MAGICS:
        if head.startswith(magic):
            return name
    return None


class _HashingSource:
    """The compressed bytes: read from the RPM file, hashed, counted, reported."""

    def __init__(self, fileobj: BinaryIO, hashers: list, on_bytes: Callable[[int], None] | None,
                 head: bytes = b""):
        self.fileobj = fileobj
        self.hashers = hashers
        self.on_bytes = on_bytes
        self.count = 0
        self._head = head
        for h in hashers:
            h.update(head)
        self.count = len(head)
        if on_bytes and head:
            on_bytes(len(head))

    def read(self, n: int = CHUNK) -> bytes:
        if self._head:  # bytes already read (and hashed) to sniff the format
            data, self._head = self._head[:n], self._head[n:]
            return data
        data = self.fileobj.read(n if n and n > 0 else CHUNK)
        if data:
            for h in self.hashers:
                h.update(data)
            self.count += len(data)
            if self.on_bytes:
                self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        """Read (and hash) the rest of the file."""
        self._head = b""              # already hashed when it was read
        while self.read(CHUNK):
            pass


class _Decompressor:
    """Incremental decompression with bounded output per call (zip bombs stay bounded)."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind in ("xz", "lzma"):
            self._d = lzma.LZMADecompressor(lzma.FORMAT_AUTO)
        elif kind == "bzip2":
            self._d = bz2.BZ2Decompressor()
        elif kind == "gzip":
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            raise ValueError(kind)
        self._pending = b""   # zlib's unconsumed input

    @property
    def eof(self) -> bool:
        return self._d.eof

    def needs_input(self) -> bool:
        if self.kind == "gzip":
            return not self._d.unconsumed_tail
        return self._d.needs_input

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self.kind == "gzip":
            data = self._d.unconsumed_tail + data if self._d.unconsumed_tail else data
            return self._d.decompress(data, max_length)
        return self._d.decompress(data, max_length)


class PayloadReader(io.RawIOBase):
    """The decompressed payload of an RPM as a raw stream (wrap in io.BufferedReader).

    `digest` is (hashlib name, expected hex) of the compressed bytes; `alt_digest` the same for
    the decompressed bytes (PAYLOADDIGESTALT), used when no compressed digest is given.
    `hashers` receive the compressed bytes too (legacy header+payload signatures).
    `on_bytes(n)` is called with each count of compressed bytes consumed (progress).
    """

    def __init__(self, fileobj: BinaryIO, compressor: str | None = None, *, what: str = "rpm",
                 digest: tuple[str, str] | None = None, alt_digest: tuple[str, str] | None = None,
                 hashers: list | None = None, on_bytes: Callable[[int], None] | None = None):
        super().__init__()
        self.what = what
        self._digest = digest
        self._alt = alt_digest if digest is None else None
        self._digest_h = hashlib.new(digest[0]) if digest else None
        self._alt_h = hashlib.new(self._alt[0]) if self._alt else None
        all_hashers = list(hashers or [])
        if self._digest_h is not None:
            all_hashers.append(self._digest_h)
        head = fileobj.read(8)
        sniffed = sniff_compressor(head)
        if sniffed is None and head:
            raise PayloadError(f"{what}: payload is in an unknown compression format "
                               f"(header says {compressor or 'nothing'})",
                               "the package is damaged or uses a format this tool does not read")
        kind = sniffed or (compressor or "identity")
        if kind not in COMPRESSORS:
            raise PayloadError(f"{what}: unsupported payload compressor {kind!r}",
                               f"supported: {', '.join(COMPRESSORS)}")
        self.compressor = kind
        self._src = _HashingSource(fileobj, all_hashers, on_bytes, head)
        self._zstd = None
        self._dec = None
        if kind == "zstd":
            import zstandard
            self._zstd = zstandard.ZstdDecompressor().stream_reader(
                self._src, read_size=CHUNK, read_across_frames=True, closefd=False)
        elif kind != "identity":
            self._dec = _Decompressor(kind)
        self._eof = False
        self.decompressed = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def _garbled(self, exc: Exception) -> PayloadError:
        """Undecodable data: report the digest mismatch when that is the cause."""
        self.check_digest_after_error()
        return self._error(exc)

    def _error(self, exc: Exception) -> PayloadError:
        return PayloadError(f"{self.what}: payload cannot be decompressed ({self.compressor}: {exc})",
                            "the package is damaged or was tampered with; download it again")

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        if self._eof or not len(view):
            return 0
        try:
            if self._zstd is not None:
                n = self._zstd.readinto(view)
            elif self._dec is None:
                data = self._src.read(len(view))
                n = len(data)
                view[:n] = data
            else:
                n = self._inflate_into(view)
        except (lzma.LZMAError, OSError, zlib.error, EOFError, ValueError) as exc:
            raise self._garbled(exc) from None
        except Exception as exc:  # zstandard.ZstdError
            if type(exc).__name__ == "ZstdError":
                raise self._garbled(exc) from None
            raise
        if n == 0:
            self._eof = True
        elif self._alt_h is not None:
            self._alt_h.update(view[:n])
        self.decompressed += n
        return n

    def _inflate_into(self, view: memoryview) -> int:
        dec = self._dec
        while True:
            if dec.eof:
                return 0
            data = b""
            if dec.needs_input():
                data = self._src.read(CHUNK)
                if not data:
                    raise EOFError("compressed payload ends before its end-of-stream marker")
            out = dec.decompress(data, len(view))
            if out:
                view[:len(out)] = out
                return len(out)

    def finish(self) -> None:
        """Consume the rest of the payload and check its digest(s). Raises PayloadError."""
        if self._finished:
            return
        while self.readinto(bytearray(CHUNK)):
            pass
        self._src.drain()
        self._finished = True
        if self._digest_h is not None:
            self._check(self._digest_h, self._digest, "payload digest")
        elif self._alt_h is not None:
            self._check(self._alt_h, self._alt, "uncompressed payload digest")

    def check_digest_after_error(self) -> None:
        """After a failure mid-stream: read the rest of the compressed payload and raise the
        digest mismatch if there is one (the real cause of garbled data), else return."""
        if self._finished or self._digest_h is None:
            return
        try:
            self._src.drain()
        except OSError:
            return
        self._finished = True
        self._check(self._digest_h, self._digest, "payload digest")

    def _check(self, h, expected: tuple[str, str], label: str) -> None:
        if h.hexdigest() != expected[1].lower():
            raise PayloadError(f"{self.what}: {label} mismatch (tampered?): expected {expected[0]} "
                               f"{expected[1].lower()}, got {h.hexdigest()}",
                               "do not use this package; download it again from a trusted source")

    @property
    def compressed_bytes(self) -> int:
        return self._src.count


def check_payload_format(rpm) -> None:
    if rpm.payload_format not in ("cpio", ""):
        raise PayloadError(f"{rpm.name_hint}: unsupported payload format {rpm.payload_format!r}",
                           "only cpio payloads exist in Rocky packages")


def open_payload(rpm, *, verify: bool = True, hashers: list | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> PayloadReader:
    """A PayloadReader for an RpmFile whose fileobj sits at the payload start.

    With verify=True the header's PAYLOADDIGEST (or, lacking it, PAYLOADDIGESTALT) is checked by
    `finish()`; a package with neither is read unchecked here (its files' digests remain).
    """
    digest = alt = None
    if verify:
        pd, pa = rpm.payload_digest, rpm.payload_digest_alt
        digest = (pd.hash_name, pd.hexdigest) if pd else None
        alt = (pa.hash_name, pa.hexdigest) if pa else None
    check_payload_format(rpm)
    return PayloadReader(rpm.fileobj, rpm.payload_compressor, what=rpm.name_hint, digest=digest,
                         alt_digest=alt, hashers=hashers, on_bytes=on_bytes)
