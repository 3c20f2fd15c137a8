"""Read an RPM package's metadata: the lead, the signature header and the main header.

An RPM file is a 96-byte lead, a signature header (padded to 8 bytes), the main header and the
compressed cpio payload. Both headers share one structure: a 16-byte intro (magic, entry count,
store size), 16-byte index entries (tag, type, offset, count) and a data store. This module parses
that structure without rpm, checks its limits before allocating, and exposes the fields the
builder needs: NEVRA, payload compressor and digest, header digests and OpenPGP signatures, the
file list and the dependencies. `Header.raw` keeps the main header's bytes exactly as stored,
because the header signature and digests are computed over them.

Format reference: rpm's docs/manual/format.md and tags.md; lib/header.c for the limits.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import BinaryIO, NamedTuple

from levitate.util.errors import VerificationError

LEAD_MAGIC = b"\xed\xab\xee\xdb"
LEAD_SIZE = 96
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
INTRO_SIZE = 16  # magic (3 bytes + version byte), 4 reserved bytes, entry count, store size
ENTRY_SIZE = 16

# rpm's own sanity limits (lib/header.c hdrchkTags/hdrchkData and hdrblobRead for signatures):
# anything above them is not an RPM rpm itself would read.
MAX_ENTRIES = 0xFFFF
MAX_STORE = 256 * 1024 * 1024
MAX_SIG_ENTRIES = 64
MAX_SIG_STORE = 64 * 1024 * 1024


class TagType(IntEnum):
    NULL = 0
    CHAR = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    STRING = 6
    BIN = 7
    STRING_ARRAY = 8
    I18NSTRING = 9


_INT_FORMATS = {TagType.CHAR: ("B", 1), TagType.INT8: ("B", 1), TagType.INT16: ("H", 2),
                TagType.INT32: ("I", 4), TagType.INT64: ("Q", 8)}


class Tag(IntEnum):
    """Main header tags used here (rpm's include/rpm/rpmtag.h)."""

    HEADERSIGNATURES = 62
    HEADERIMMUTABLE = 63
    HEADERI18NTABLE = 100
    NAME = 1000
    VERSION = 1001
    RELEASE = 1002
    EPOCH = 1003
    SUMMARY = 1004
    BUILDTIME = 1006
    SIZE = 1009
    LICENSE = 1014
    OS = 1021
    ARCH = 1022
    OLDFILENAMES = 1027
    FILESIZES = 1028
    FILEMODES = 1030
    FILERDEVS = 1033
    FILEMTIMES = 1034
    FILEDIGESTS = 1035
    FILELINKTOS = 1036
    FILEFLAGS = 1037
    FILEUSERNAME = 1039
    FILEGROUPNAME = 1040
    SOURCERPM = 1044
    PROVIDENAME = 1047
    REQUIREFLAGS = 1048
    REQUIRENAME = 1049
    REQUIREVERSION = 1050
    CONFLICTFLAGS = 1053
    CONFLICTNAME = 1054
    CONFLICTVERSION = 1055
    OBSOLETENAME = 1090
    FILEDEVICES = 1095
    FILEINODES = 1096
    FILELANGS = 1097
    PROVIDEFLAGS = 1112
    PROVIDEVERSION = 1113
    OBSOLETEFLAGS = 1114
    OBSOLETEVERSION = 1115
    DIRINDEXES = 1116
    BASENAMES = 1117
    DIRNAMES = 1118
    PAYLOADFORMAT = 1124
    PAYLOADCOMPRESSOR = 1125
    PAYLOADFLAGS = 1126
    LONGFILESIZES = 5008
    LONGSIZE = 5009
    FILECAPS = 5010
    FILEDIGESTALGO = 5011
    RECOMMENDNAME = 5046
    RECOMMENDVERSION = 5047
    RECOMMENDFLAGS = 5048
    SUGGESTNAME = 5049
    SUGGESTVERSION = 5050
    SUGGESTFLAGS = 5051
    SUPPLEMENTNAME = 5052
    SUPPLEMENTVERSION = 5053
    SUPPLEMENTFLAGS = 5054
    ENHANCENAME = 5055
    ENHANCEVERSION = 5056
    ENHANCEFLAGS = 5057
    PAYLOADDIGEST = 5092
    PAYLOADDIGESTALGO = 5093
    PAYLOADDIGESTALT = 5097


class SigTag(IntEnum):
    """Signature header tags (rpm's lib/signature.h, rpmtag.h RPMSIGTAG_*)."""

    HEADERSIGNATURES = 62
    DSA = 267          # OpenPGP DSA signature over the main header
    RSA = 268          # OpenPGP signature over the main header (RSA, and also EdDSA/ECDSA)
    SHA1 = 269         # hex SHA1 of the main header
    LONGSIZE = 270
    LONGARCHIVESIZE = 271
    SHA256 = 273       # hex SHA256 of the main header
    OPENPGP = 278      # rpm 6: base64 OpenPGP signatures over the main header, one a string (v4 and v6)
    SIZE = 1000        # header + payload size
    MD5 = 1004         # MD5 of header + payload (binary)
    PGP = 1002         # legacy OpenPGP RSA signature over header + payload
    GPG = 1005         # legacy OpenPGP DSA signature over header + payload
    PAYLOADSIZE = 1007
    RESERVEDSPACE = 1008


# FILEFLAGS bits (rpmfiles.h)
RPMFILE_CONFIG = 1 << 0
RPMFILE_DOC = 1 << 1
RPMFILE_MISSINGOK = 1 << 3
RPMFILE_NOREPLACE = 1 << 4
RPMFILE_GHOST = 1 << 6
RPMFILE_LICENSE = 1 << 7
RPMFILE_README = 1 << 8

# OpenPGP hash algorithm ids, as used by FILEDIGESTALGO and PAYLOADDIGESTALGO.
HASH_NAMES = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224",
              12: "sha3_256", 14: "sha3_512"}

# rpm's default when a package predates the PAYLOADCOMPRESSOR tag.
DEFAULT_COMPRESSOR = "gzip"


class HeaderError(VerificationError):
    """The file is not a well-formed RPM (truncated, corrupt or absurd)."""


def _corrupt(what: str, detail: str) -> HeaderError:
    return HeaderError(f"{what}: corrupt RPM ({detail})",
                       "the file is damaged or not an RPM package; download it again")


def read_exact(f: BinaryIO, n: int, what: str, part: str) -> bytes:
    """Read exactly n bytes or fail with a clear 'truncated' error."""
    data = f.read(n)
    if len(data) != n:
        raise _corrupt(what, f"truncated {part}: wanted {n} bytes, got {len(data)}")
    return data


@dataclass(frozen=True, slots=True)
class Lead:
    """The legacy 96-byte lead. Only its magic and signature type still matter."""

    major: int
    minor: int
    type: int          # 0 binary, 1 source
    name: str
    signature_type: int

    @classmethod
    def parse(cls, data: bytes, what: str = "rpm") -> "Lead":
        if len(data) < LEAD_SIZE or data[:4] != LEAD_MAGIC:
            raise HeaderError(f"{what}: not an RPM package (bad lead magic)",
                              "check that the file is an .rpm and was downloaded completely")
        major, minor, kind = data[4], data[5], struct.unpack_from(">H", data, 6)[0]
        name = data[10:76].split(b"\0", 1)[0].decode("utf-8", "replace")
        sigtype = struct.unpack_from(">H", data, 78)[0]
        if major not in (3, 4):
            raise _corrupt(what, f"unsupported lead version {major}.{minor}")
        if sigtype != 5:
            raise _corrupt(what, f"unsupported signature type {sigtype} (only header signatures exist today)")
        return cls(major, minor, kind, name, sigtype)


class Header:
    """One header structure (the signature header or the main header) over its raw bytes.

    Values are decoded on first access: integers as tuples, STRING as str, BIN as bytes,
    STRING_ARRAY and I18NSTRING as tuples of str (undecodable bytes kept via surrogateescape,
    so paths round-trip through os functions).
    """

    def __init__(self, raw: bytes, *, what: str = "rpm", kind: str = "header",
                 max_entries: int = MAX_ENTRIES, max_store: int = MAX_STORE):
        self.raw = bytes(raw)
        self.what = what
        self.kind = kind
        if len(raw) < INTRO_SIZE or raw[:4] != HEADER_MAGIC:
            raise _corrupt(what, f"bad {kind} magic")
        count, store_size = struct.unpack_from(">II", raw, 8)
        self._check_sizes(count, store_size, max_entries, max_store)
        self.store_start = INTRO_SIZE + count * ENTRY_SIZE
        if len(raw) != self.store_start + store_size:
            raise _corrupt(what, f"{kind} is {len(raw)} bytes, its intro says {self.store_start + store_size}")
        self.store_size = store_size
        entries: dict[int, tuple[int, int, int]] = {}
        for tag, typ, offset, cnt in struct.iter_unpack(">IIiI", raw[INTRO_SIZE:self.store_start]):
            if tag in entries:
                raise _corrupt(what, f"{kind} has tag {tag} twice")
            if not (0 < typ <= TagType.I18NSTRING) or not (0 <= offset < store_size):
                raise _corrupt(what, f"{kind} tag {tag}: bad type {typ} or offset {offset}")
            if cnt == 0 or cnt > store_size:
                raise _corrupt(what, f"{kind} tag {tag}: absurd count {cnt}")
            if typ in _INT_FORMATS:
                size = _INT_FORMATS[typ][1]
                if offset + cnt * size > store_size:
                    raise _corrupt(what, f"{kind} tag {tag}: data runs past the store")
            elif typ == TagType.BIN and offset + cnt > store_size:
                raise _corrupt(what, f"{kind} tag {tag}: data runs past the store")
            elif typ == TagType.STRING and cnt != 1:
                raise _corrupt(what, f"{kind} tag {tag}: STRING with count {cnt}")
            entries[tag] = (typ, offset, cnt)
        self._entries = entries
        self._cache: dict[int, object] = {}
        self._ends: list[int] | None = None

    @staticmethod
    def _check_sizes(count: int, store_size: int, max_entries: int, max_store: int,
                     what: str = "rpm", kind: str = "header") -> None:
        if count == 0 or count > max_entries:
            raise _corrupt(what, f"{kind} claims {count} entries (limit {max_entries})")
        if store_size > max_store:
            raise _corrupt(what, f"{kind} claims a {store_size}-byte store (limit {max_store})")

    @classmethod
    def read(cls, f: BinaryIO, *, what: str = "rpm", kind: str = "header",
             max_entries: int = MAX_ENTRIES, max_store: int = MAX_STORE) -> "Header":
        """Read one header from f, checking the intro's counts before reading the rest."""
        intro = read_exact(f, INTRO_SIZE, what, kind)
        if intro[:4] != HEADER_MAGIC:
            raise _corrupt(what, f"bad {kind} magic")
        count, store_size = struct.unpack_from(">II", intro, 8)
        cls._check_sizes(count, store_size, max_entries, max_store, what, kind)
        rest = read_exact(f, count * ENTRY_SIZE + store_size, what, kind)
        return cls(intro + rest, what=what, kind=kind, max_entries=max_entries, max_store=max_store)

    # -- access ---------------------------------------------------------------------------

    def __contains__(self, tag: int) -> bool:
        return tag in self._entries

    def tags(self) -> list[int]:
        return sorted(self._entries)

    def type_of(self, tag: int) -> TagType | None:
        entry = self._entries.get(tag)
        return TagType(entry[0]) if entry else None

    def __getitem__(self, tag: int):
        if tag not in self._entries:
            raise KeyError(tag)
        try:
            return self._cache[tag]
        except KeyError:
            value = self._cache[tag] = self._decode(tag)
            return value

    def get(self, tag: int, default=None):
        return self[tag] if tag in self._entries else default

    def get_int(self, tag: int, default: int | None = None) -> int | None:
        """The first integer of an integer tag."""
        value = self.get(tag)
        if value is None:
            return default
        if not isinstance(value, tuple) or not value or not isinstance(value[0], int):
            raise _corrupt(self.what, f"{self.kind} tag {tag} is not an integer")
        return value[0]

    def get_str(self, tag: int, default: str | None = None) -> str | None:
        """A STRING tag, or the first element of a string array / i18n string."""
        value = self.get(tag)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            return value[0]
        raise _corrupt(self.what, f"{self.kind} tag {tag} is not a string")

    def get_list(self, tag: int, count: int | None = None) -> tuple:
        """An array tag as a tuple (empty when absent); checks the count when given."""
        value = self.get(tag)
        if value is None:
            return ()
        if isinstance(value, (str, bytes)):
            value = (value,)
        if count is not None and len(value) != count:
            raise _corrupt(self.what, f"{self.kind} tag {tag} has {len(value)} elements, expected {count}")
        return value

    def get_bytes(self, tag: int) -> bytes | None:
        value = self.get(tag)
        if value is None or isinstance(value, bytes):
            return value
        raise _corrupt(self.what, f"{self.kind} tag {tag} is not binary")

    # -- decoding -------------------------------------------------------------------------

    def _string_end_bound(self, offset: int) -> int:
        """The smallest entry offset after `offset` (or the store end): strings end before it."""
        if self._ends is None:
            self._ends = sorted({off for _, off, _ in self._entries.values()} | {self.store_size})
        i = bisect.bisect_right(self._ends, offset)
        return self._ends[i] if i < len(self._ends) else self.store_size

    def _decode(self, tag: int):
        typ, offset, count = self._entries[tag]
        raw, start = self.raw, self.store_start + offset
        if typ in _INT_FORMATS:
            code, size = _INT_FORMATS[typ]
            return struct.unpack_from(f">{count}{code}", raw, start)
        if typ == TagType.BIN:
            return raw[start:start + count]
        end_of_store = self.store_start + self.store_size
        if typ == TagType.STRING:
            end = raw.find(b"\0", start, end_of_store)
            if end < 0:
                raise _corrupt(self.what, f"{self.kind} tag {tag}: unterminated string")
            return raw[start:end].decode("utf-8", "surrogateescape")
        # STRING_ARRAY / I18NSTRING: count NUL-terminated strings. Split the region up to the
        # next entry's data in one C call; fall back to the whole store for odd layouts.
        bound = self.store_start + self._string_end_bound(offset)
        parts = raw[start:bound].split(b"\0", count)
        if len(parts) <= count:
            parts = raw[start:end_of_store].split(b"\0", count)
            if len(parts) <= count:
                raise _corrupt(self.what, f"{self.kind} tag {tag}: {count} strings run past the store")
        del parts[count:]
        return tuple(p.decode("utf-8", "surrogateescape") for p in parts)


class Dependency(NamedTuple):
    """One Requires/Provides/... entry: name, RPMSENSE flags, and `[epoch:]version[-release]`."""

    name: str
    flags: int
    evr: str


@dataclass(frozen=True, slots=True)
class PayloadDigest:
    """A payload digest from the main header: OpenPGP hash id, hashlib name and hex value."""

    algo: int
    hash_name: str
    hexdigest: str


@dataclass(slots=True)
class FileInfo:
    """One file of the package as the (signed) header describes it."""

    index: int
    path: str            # absolute, e.g. "/usr/bin/ping"
    mode: int
    size: int
    mtime: int
    user: str
    group: str
    flags: int
    linkto: str
    inode: int
    device: int
    rdev: int
    digest: str          # hex, "" for non-regular files
    caps: str            # "cap_net_raw=ep" or ""

    @property
    def is_ghost(self) -> bool:
        return bool(self.flags & RPMFILE_GHOST)

    @property
    def is_config(self) -> bool:
        return bool(self.flags & RPMFILE_CONFIG)

    @property
    def file_type(self) -> int:
        return self.mode & 0o170000


_DEP_TAGS = {
    "provides": (Tag.PROVIDENAME, Tag.PROVIDEFLAGS, Tag.PROVIDEVERSION),
    "requires": (Tag.REQUIRENAME, Tag.REQUIREFLAGS, Tag.REQUIREVERSION),
    "conflicts": (Tag.CONFLICTNAME, Tag.CONFLICTFLAGS, Tag.CONFLICTVERSION),
    "obsoletes": (Tag.OBSOLETENAME, Tag.OBSOLETEFLAGS, Tag.OBSOLETEVERSION),
    "recommends": (Tag.RECOMMENDNAME, Tag.RECOMMENDFLAGS, Tag.RECOMMENDVERSION),
    "suggests": (Tag.SUGGESTNAME, Tag.SUGGESTFLAGS, Tag.SUGGESTVERSION),
    "supplements": (Tag.SUPPLEMENTNAME, Tag.SUPPLEMENTFLAGS, Tag.SUPPLEMENTVERSION),
    "enhances": (Tag.ENHANCENAME, Tag.ENHANCEFLAGS, Tag.ENHANCEVERSION),
}


class RpmFile:
    """An RPM package over a binary file object, positioned at the payload after parsing.

    `RpmFile.open(path)` owns the file (use it as a context manager); `RpmFile(fileobj)` reads
    from a caller's file object. Only the lead and the two headers are read here; the payload is
    streamed later from `fileobj` (see payload.py), starting at `payload_offset`.
    """

    def __init__(self, fileobj: BinaryIO, name: str | None = None):
        self.fileobj = fileobj
        self.name_hint = name or os.path.basename(getattr(fileobj, "name", "") or "") or "rpm"
        what = self.name_hint
        start = fileobj.tell() if fileobj.seekable() else 0
        self.lead = Lead.parse(read_exact(fileobj, LEAD_SIZE, what, "lead"), what)
        self.signature = Header.read(fileobj, what=what, kind="signature header",
                                     max_entries=MAX_SIG_ENTRIES, max_store=MAX_SIG_STORE)
        pad = -len(self.signature.raw) % 8
        if pad:
            read_exact(fileobj, pad, what, "signature padding")
        self.header_offset = start + LEAD_SIZE + len(self.signature.raw) + pad
        self.header = Header.read(fileobj, what=what, kind="header")
        self.payload_offset = self.header_offset + len(self.header.raw)
        self._owns = False

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RpmFile":
        f = open(path, "rb", buffering=1024 * 1024)
        try:
            rpm = cls(f, os.path.basename(os.fspath(path)))
        except BaseException:
            f.close()
            raise
        rpm._owns = True
        return rpm

    def close(self) -> None:
        if self._owns:
            self.fileobj.close()

    def __enter__(self) -> "RpmFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RpmFile {self.nevra}>"

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.header.get_str(Tag.NAME) or ""

    @property
    def epoch(self) -> int | None:
        return self.header.get_int(Tag.EPOCH)

    @property
    def version(self) -> str:
        return self.header.get_str(Tag.VERSION) or ""

    @property
    def release(self) -> str:
        return self.header.get_str(Tag.RELEASE) or ""

    @property
    def arch(self) -> str:
        if self.is_source:
            return "src"
        return self.header.get_str(Tag.ARCH) or ""

    @property
    def is_source(self) -> bool:
        return Tag.SOURCERPM not in self.header

    @property
    def evr(self) -> str:
        ev = f"{self.epoch}:{self.version}" if self.epoch else self.version
        return f"{ev}-{self.release}"

    @property
    def nevra(self) -> str:
        """name-[epoch:]version-release.arch, as dnf prints it."""
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def summary(self) -> str:
        return self.header.get_str(Tag.SUMMARY) or ""

    # -- payload --------------------------------------------------------------------------

    @property
    def payload_format(self) -> str:
        return self.header.get_str(Tag.PAYLOADFORMAT) or "cpio"

    @property
    def payload_compressor(self) -> str:
        """What the header says: gzip, bzip2, xz, lzma, zstd or identity; gzip when the tag is
        absent, as rpm assumes (rpmbuild omits it for uncompressed payloads; payload.py sniffs
        the actual format from the data)."""
        value = self.header.get_str(Tag.PAYLOADCOMPRESSOR) or DEFAULT_COMPRESSOR
        return "identity" if value in ("", "none", "identity") else value

    def _payload_digest(self, tag: int) -> PayloadDigest | None:
        values = self.header.get_list(tag)
        if not values:
            return None
        algo = self.header.get_int(Tag.PAYLOADDIGESTALGO, 8)
        name = HASH_NAMES.get(algo)
        if name is None:
            raise _corrupt(self.name_hint, f"unknown payload digest algorithm {algo}")
        return PayloadDigest(algo, name, values[0].lower())

    @property
    def payload_digest(self) -> PayloadDigest | None:
        """Digest of the compressed payload bytes (rpm >= 4.14)."""
        return self._payload_digest(Tag.PAYLOADDIGEST)

    @property
    def payload_digest_alt(self) -> PayloadDigest | None:
        """Digest of the uncompressed payload (rpm >= 4.16)."""
        return self._payload_digest(Tag.PAYLOADDIGESTALT)

    @property
    def archive_size(self) -> int | None:
        """Uncompressed payload size, when the signature header records it."""
        return self.signature.get_int(SigTag.LONGARCHIVESIZE, self.signature.get_int(SigTag.PAYLOADSIZE))

    # -- signature header -----------------------------------------------------------------

    @property
    def header_sha256(self) -> str | None:
        value = self.signature.get(SigTag.SHA256)
        return value.lower() if isinstance(value, str) else None

    @property
    def header_sha1(self) -> str | None:
        value = self.signature.get(SigTag.SHA1)
        return value.lower() if isinstance(value, str) else None

    @property
    def header_signatures(self) -> list[tuple[int, bytes]]:
        """OpenPGP signatures over the main header only: (tag, packet bytes), each once.

        rpm 6 (and RHEL 10.1's rpmsign) also writes each signature base64-encoded into the string
        array OPENPGP, where the v6 post-quantum one lives; RHEL puts its v4 RSA signature both
        there and in RSA (rpm's sign/rpmgensig.cc, putSignature)."""
        sigs = [(tag, self.signature.get_bytes(tag)) for tag in (SigTag.RSA, SigTag.DSA)
                if tag in self.signature]
        for text in self.signature.get_list(SigTag.OPENPGP):
            try:
                blob = base64.b64decode(text, validate=True)
            except (ValueError, binascii.Error):
                raise _corrupt(self.name_hint, f"signature tag {int(SigTag.OPENPGP)} holds a string "
                                               "that is not base64") from None
            if blob not in (b for _, b in sigs):
                sigs.append((SigTag.OPENPGP, blob))
        return sigs

    @property
    def legacy_signatures(self) -> list[tuple[int, bytes]]:
        """OpenPGP signatures over header + compressed payload (rpm < 4.14 packages)."""
        return [(tag, self.signature.get_bytes(tag)) for tag in (SigTag.PGP, SigTag.GPG)
                if tag in self.signature]

    @property
    def signatures(self) -> list[tuple[int, bytes]]:
        return self.header_signatures + self.legacy_signatures

    # -- files ----------------------------------------------------------------------------

    @cached_property
    def file_paths(self) -> tuple[str, ...]:
        """Absolute paths of all files, in header order (cheap: no per-file objects)."""
        h = self.header
        if Tag.BASENAMES in h:
            basenames = h.get_list(Tag.BASENAMES)
            dirnames = h.get_list(Tag.DIRNAMES)
            indexes = h.get_list(Tag.DIRINDEXES, len(basenames))
            ndirs = len(dirnames)
            if indexes and max(indexes) >= ndirs:
                raise _corrupt(self.name_hint, "file list refers to a directory that does not exist")
            return tuple([dirnames[i] + b for i, b in zip(indexes, basenames)])
        return tuple(h.get_list(Tag.OLDFILENAMES))

    @cached_property
    def files(self) -> list[FileInfo]:
        """The file list joined from the header's per-file arrays, ghosts included."""
        h = self.header
        paths = self.file_paths
        n = len(paths)
        if not n:
            return []

        def column(tag: int, default):
            values = h.get_list(tag)
            if not values:
                return (default,) * n
            if len(values) != n:
                raise _corrupt(self.name_hint, f"file tag {int(tag)} has {len(values)} entries for {n} files")
            return values

        sizes = h.get_list(Tag.LONGFILESIZES) or column(Tag.FILESIZES, 0)
        if len(sizes) != n:
            raise _corrupt(self.name_hint, "file size list does not match the file list")
        cols = zip(range(n), paths, column(Tag.FILEMODES, 0o100644), sizes,
                   column(Tag.FILEMTIMES, 0), column(Tag.FILEUSERNAME, "root"),
                   column(Tag.FILEGROUPNAME, "root"), column(Tag.FILEFLAGS, 0),
                   column(Tag.FILELINKTOS, ""), column(Tag.FILEINODES, 0),
                   column(Tag.FILEDEVICES, 0), column(Tag.FILERDEVS, 0),
                   column(Tag.FILEDIGESTS, ""), column(Tag.FILECAPS, ""))
        return [FileInfo(*c) for c in cols]

    @property
    def file_digest_algo(self) -> int:
        """OpenPGP hash id of FILEDIGESTS (MD5 when the tag is absent, as in rpm)."""
        return self.header.get_int(Tag.FILEDIGESTALGO, 1)

    @cached_property
    def hardlink_sets(self) -> dict[int, tuple[int, ...]]:
        """File index -> all indexes of its hardlink set (rpm's rule: regular, non-ghost files
        sharing device and inode). The payload carries the data with the LAST of each set."""
        groups: dict[tuple[int, int], list[int]] = {}
        for f in self.files:
            if f.file_type == 0o100000 and not f.is_ghost and f.inode > 0:
                groups.setdefault((f.device, f.inode), []).append(f.index)
        result: dict[int, tuple[int, ...]] = {}
        for members in groups.values():
            if len(members) > 1:
                t = tuple(members)
                for i in members:
                    result[i] = t
        return result

    # -- dependencies ---------------------------------------------------------------------

    def dependencies(self, kind: str) -> list[Dependency]:
        """One of provides, requires, conflicts, obsoletes, recommends, suggests, supplements,
        enhances."""
        name_tag, flags_tag, version_tag = _DEP_TAGS[kind]
        names = self.header.get_list(name_tag)
        if not names:
            return []
        flags = self.header.get_list(flags_tag) or (0,) * len(names)
        versions = self.header.get_list(version_tag) or ("",) * len(names)
        if not (len(flags) == len(versions) == len(names)):
            raise _corrupt(self.name_hint, f"{kind} lists have different lengths")
        return [Dependency(*t) for t in zip(names, flags, versions)]

    @property
    def provides(self) -> list[Dependency]:
        return self.dependencies("provides")

    @property
    def requires(self) -> list[Dependency]:
        return self.dependencies("requires")

    @property
    def conflicts(self) -> list[Dependency]:
        return self.dependencies("conflicts")

    @property
    def obsoletes(self) -> list[Dependency]:
        return self.dependencies("obsoletes")


def read_rpm(path: str | os.PathLike) -> RpmFile:
    """Parse an RPM's headers and close the file (for metadata only)."""
    with RpmFile.open(path) as rpm:
        return rpm


__all__ = ["RpmFile", "Header", "Lead", "Tag", "SigTag", "TagType", "FileInfo", "Dependency",
           "PayloadDigest", "HeaderError", "RPMFILE_CONFIG", "RPMFILE_GHOST", "HASH_NAMES",
           "read_rpm"]
