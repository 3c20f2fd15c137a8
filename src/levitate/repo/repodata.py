"""Repository metadata (repodata/): repomd.xml, primary and filelists, read streaming.

`repomd.xml` lists the other files with their checksums; `primary` (gz, xz, zst, bz2 or plain)
lists every package with its dependencies and the "interesting" files (`*bin/*`, `/etc/*`);
`filelists` lists every file and is only read when a file requirement needs it.

Primary is parsed with `xml.etree.ElementTree.iterparse`, one `<package>` at a time (cleared
after use), so memory stays flat however big the repository. Dependency entries and EVRs that
repeat across packages (`libc.so.6()(64bit)`, a package's own EVR) are shared objects.

Every failure to read a repodata file (truncated download, corrupt compression, broken XML)
becomes one `LevitateError` line naming the file and the repository.
"""

from __future__ import annotations

import bz2
import contextlib
import gc
import gzip
import hashlib
import io
import lzma
import os
import re
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree as ET

from ..rpm.vercmp import EQ, EVR, FLAGS_BY_REPODATA
from ..util.errors import LevitateError, VerificationError
from .deps import Dep

NS_REPO = "http://linux.duke.edu/metadata/repo"
NS_COMMON = "http://linux.duke.edu/metadata/common"
NS_RPM = "http://linux.duke.edu/metadata/rpm"
NS_FILELISTS = "http://linux.duke.edu/metadata/filelists"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

MIRROR_HINT = "the mirror may be mid-sync; retry or pick another mirror"
CORRUPT_HINT = ("the download may be truncated or the mirror mid-sync; delete the cached file and "
                "retry, or pick another mirror")

DEP_KINDS = ("provides", "requires", "conflicts", "obsoletes",
             "recommends", "suggests", "supplements", "enhances")


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, slots=True)
class RepomdRecord:
    """One `<data type=...>` entry of repomd.xml."""

    type: str
    location: str                              # href, relative to the repository root
    checksum: tuple[str, str]                  # (algorithm, hex) of the file as stored
    open_checksum: tuple[str, str] | None = None   # of the decompressed content
    size: int | None = None
    open_size: int | None = None
    timestamp: int | None = None
    location_base: str | None = None           # xml:base, rarely used

    @property
    def filename(self) -> str:
        return self.location.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Repomd:
    revision: str | None
    records: dict[str, RepomdRecord]

    def record(self, type: str, *, repo: str = "") -> RepomdRecord:
        """The record of `type` ("primary", "filelists", ...), or a clear error."""
        try:
            return self.records[type]
        except KeyError:
            where = f" of {repo}" if repo else ""
            raise LevitateError(
                f"repomd.xml{where} lists no {type} metadata (it has: {', '.join(sorted(self.records)) or 'nothing'})",
                MIRROR_HINT) from None


@dataclass(slots=True, eq=False)
class Package:
    """One package as primary.xml describes it. Identity-hashed (eq=False): the resolver keys
    sets and dicts by the object."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str
    evr: EVR
    summary: str = ""
    description: str = ""
    size_package: int = 0
    size_installed: int = 0
    location: str = ""                          # href relative to the repository root
    checksum: tuple[str, str] = ("", "")        # (algorithm, hex); hex is also the pkgid
    repo: str = ""                              # repository name, e.g. "BaseOS"
    provides: tuple[Dep, ...] = ()
    requires: tuple[Dep, ...] = ()
    conflicts: tuple[Dep, ...] = ()
    obsoletes: tuple[Dep, ...] = ()
    recommends: tuple[Dep, ...] = ()
    suggests: tuple[Dep, ...] = ()
    supplements: tuple[Dep, ...] = ()
    enhances: tuple[Dep, ...] = ()
    files: tuple[str, ...] = ()                 # only the files primary lists (bin, sbin, etc)
    sourcerpm: str = ""
    location_base: str | None = None            # xml:base of <location>, rarely used

    @property
    def nevra(self) -> str:
        """name-[epoch:]version-release.arch, as rpm and dnf print it."""
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"

    @property
    def nvra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"

    @property
    def self_provide(self) -> Dep:
        """The implicit `name = epoch:version-release` every package provides."""
        return Dep(self.name, EQ, self.evr)

    def __repr__(self) -> str:
        return f"<Package {self.nevra} from {self.repo or '?'}>"


@dataclass(slots=True, eq=False)
class Repository:
    """A named set of packages. `base` is opaque to this module (a URL, a path, an ISO reader:
    whatever the caller needs to fetch `Package.location` later). `filelists`, when set, returns
    the local path of this repository's VERIFIED filelists file; it is called only when a file
    requirement cannot be satisfied from primary data."""

    name: str
    base: object
    packages: list[Package]
    filelists: Callable[[], Path | str] | None = None
    revision: str | None = None
    _by_pkgid: dict[str, Package] | None = field(default=None, init=False, repr=False)

    def by_pkgid(self, pkgid: str) -> Package | None:
        if self._by_pkgid is None:
            self._by_pkgid = {p.checksum[1]: p for p in self.packages}
        return self._by_pkgid.get(pkgid)


@dataclass(frozen=True, slots=True)
class FilelistEntry:
    """One `<package>` of filelists.xml: who it is and every path it owns (files, dirs, ghosts)."""

    pkgid: str
    name: str
    arch: str
    evr: EVR
    files: list[str]


# --------------------------------------------------------------------------------------------
# Helpers


def display_name(path: str | os.PathLike) -> str:
    """`<sha256>-primary.xml.zst` -> `primary.xml.zst`: the name users recognise."""
    return re.sub(r"^[0-9a-fA-F]{32,128}-", "", os.path.basename(os.fspath(path)))


def _label(path: str | os.PathLike, repo: str) -> str:
    where = f" of {repo}" if repo else ""
    return f"repodata {display_name(path)}{where}"


def _corrupt(path, repo: str, exc: BaseException | str) -> LevitateError:
    detail = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    detail = " ".join(str(detail).split())
    return LevitateError(f"{_label(path, repo)} is corrupt: {detail}", CORRUPT_HINT)

@contextlib.contextmanager
def _reported(path, repo: str) -> Iterator[None]:
    """Turn a missing, unreadable or corrupt repodata file into one clear error."""
    try:
        yield
    except FileNotFoundError:
        raise LevitateError(f"{_label(path, repo)} is missing ({path})", CORRUPT_HINT) from None
    except (PermissionError, IsADirectoryError) as exc:
        raise LevitateError(f"{_label(path, repo)} cannot be read: {exc.strerror} ({path})") from None
    except _READ_ERRORS as exc:
        raise _corrupt(path, repo, exc) from None



_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)


def compression_of(head: bytes) -> str:
    """"gzip", "xz", "zstd", "bzip2" or "none", judged by the magic bytes (never the name)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "none"


class _ZstdReader(io.RawIOBase):
    """A stream over zstd data that notices truncation (zstandard's stream_reader returns a
    short read at the end of truncated input instead of failing)."""

    def __init__(self, raw: BinaryIO):
        import zstandard

        self._raw = raw
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._buffer = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        import zstandard

        while not self._buffer and not self._eof:
            chunk = self._raw.read(1 << 18)
            if not chunk:
                self._eof = True
                if not self._dobj.eof:
                    raise EOFError("compressed data ends before the end of the zstd frame")
                break
            parts = []
            while chunk:
                if self._dobj.eof:
                    # Another frame follows (zstd allows concatenation): a fresh decompressor.
                    self._dobj = zstandard.ZstdDecompressor().decompressobj()
                parts.append(self._dobj.decompress(chunk))
                chunk = self._dobj.unused_data if self._dobj.eof else b""
            self._buffer = memoryview(b"".join(parts))
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_decompressed(path: str | os.PathLike) -> BinaryIO:
    """Open a repodata file for reading its decompressed bytes, whatever the compression."""
    raw = open(path, "rb")
    try:
        kind = compression_of(raw.read(6))
        raw.seek(0)
        if kind == "gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")          # type: ignore[return-value]
        if kind == "xz":
            return lzma.LZMAFile(raw, "rb")                       # type: ignore[return-value]
        if kind == "bzip2":
            return bz2.BZ2File(raw, "rb")                         # type: ignore[return-value]
        if kind == "zstd":
            return io.BufferedReader(_ZstdReader(raw), 1 << 18)   # type: ignore[return-value]
        return raw
    except BaseException:
        raw.close()
        raise


def _read_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ET.ParseError, EOFError, OSError, lzma.LZMAError, zlib.error,
                                         ValueError, UnicodeError]
    try:
        import zstandard
        errors.append(zstandard.ZstdError)
    except ImportError:                     # pragma: no cover - zstandard is a dependency
        pass
    return tuple(errors)


_READ_ERRORS = _read_errors()


def verify_file(path: str | os.PathLike, checksum_algo: str, hexdigest: str, *, label: str | None = None) -> None:
    """Check a file's digest; raise VerificationError naming the file, expected and actual."""
    algo = {"sha": "sha1"}.get(checksum_algo.lower(), checksum_algo.lower())
    name = label or display_name(path)
    try:
        digest = hashlib.new(algo)
    except ValueError:
        raise VerificationError(f"{name}: unknown checksum type {checksum_algo!r}", MIRROR_HINT) from None
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise LevitateError(f"{name}: file is missing ({path})", MIRROR_HINT) from None
    got = digest.hexdigest()
    if got != hexdigest.lower():
        raise VerificationError(
            f"{name}: {algo} checksum mismatch: expected {hexdigest.lower()}, got {got}", MIRROR_HINT)


# --------------------------------------------------------------------------------------------
# repomd.xml


def parse_repomd(source: str | os.PathLike | bytes, *, repo: str = "") -> Repomd:
    """Parse repomd.xml from a path or its bytes."""
    label = f"repomd.xml of {repo}" if repo else "repomd.xml"
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except FileNotFoundError:
        raise LevitateError(f"{label} is missing ({source})", "is this a repository? it needs repodata/repomd.xml") from None
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise LevitateError(f"{label} is corrupt: {exc}", MIRROR_HINT) from None
    q = f"{{{NS_REPO}}}"
    if root.tag != f"{q}repomd":
        raise LevitateError(f"{label} is not repository metadata (root element {root.tag!r})", MIRROR_HINT)
    records: dict[str, RepomdRecord] = {}
    try:
        for data_el in root.iterfind(f"{q}data"):
            kind = data_el.get("type")
            loc = data_el.find(f"{q}location")
            csum = data_el.find(f"{q}checksum")
            if not kind or loc is None or not loc.get("href") or csum is None or not (csum.text or "").strip():
                raise ValueError(f"entry {kind or '?'} lacks a type, location or checksum")
            ocsum = data_el.find(f"{q}open-checksum")
            records[kind] = RepomdRecord(
                type=kind,
                location=loc.get("href", ""),
                checksum=(csum.get("type", "sha256"), csum.text.strip().lower()),
                open_checksum=(ocsum.get("type", "sha256"), (ocsum.text or "").strip().lower())
                if ocsum is not None else None,
                size=_int_or_none(data_el.findtext(f"{q}size")),
                open_size=_int_or_none(data_el.findtext(f"{q}open-size")),
                timestamp=_int_or_none(data_el.findtext(f"{q}timestamp")),
                location_base=loc.get(_XML_BASE),
            )
    except ValueError as exc:
        raise LevitateError(f"{label} is corrupt: {exc}", MIRROR_HINT) from None
    revision = root.findtext(f"{q}revision")
    return Repomd(revision.strip() if revision else None, records)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip() else None


# --------------------------------------------------------------------------------------------
# primary.xml


_C = f"{{{NS_COMMON}}}"
_R = f"{{{NS_RPM}}}"
_TAG_PACKAGE = f"{_C}package"
_TAG_FORMAT = f"{_C}format"
_DEP_TAGS = {f"{_R}{kind}": kind for kind in DEP_KINDS}
_TAG_FILE = f"{_C}file"
_TAG_SOURCERPM = f"{_R}sourcerpm"


_new_dep = tuple.__new__     # Dep is a NamedTuple: this skips its Python-level __new__


class _Interner:
    """Shares Dep and EVR objects that repeat across packages."""

    def __init__(self):
        self.deps: dict[tuple, Dep] = {}
        self.simple: dict[str, Dep] = {}        # unversioned deps, by name
        self.by_items: dict[tuple, Dep] = {}    # versioned deps, by their attributes
        self.evrs: dict[tuple, EVR] = {}

    def evr(self, epoch: str | None, ver: str | None, rel: str | None) -> EVR:
        key = (epoch, ver, rel)
        evr = self.evrs.get(key)
        if evr is None:
            evr = self.evrs[key] = EVR(int(epoch) if epoch else 0, ver or "", rel)
        return evr

    def dep(self, attrib: dict) -> Dep:
        get = attrib.get
        name, flags = get("name"), get("flags")
        if flags is None:
            dep = self.simple.get(name)       # type: ignore[arg-type]
            if dep is None:
                if not name:
                    raise ValueError("a dependency entry has no name")
                dep = self.simple[name] = _new_dep(Dep, (name, 0, None))   # type: ignore[index]
            return dep
        key = (name, flags, get("epoch"), get("ver"), get("rel"))
        dep = self.deps.get(key)
        if dep is None:
            if not name:
                raise ValueError("a dependency entry has no name")
            try:
                bits = FLAGS_BY_REPODATA[flags]
            except KeyError:
                raise ValueError(f"unknown dependency flags {flags!r} on {name!r}") from None
            ver = key[3]
            evr = self.evr(key[2], ver, key[4]) if ver is not None else None
            dep = self.deps[key] = _new_dep(Dep, (name, bits, evr))
        return dep


_T_NAME, _T_ARCH, _T_VERSION, _T_CHECKSUM = f"{_C}name", f"{_C}arch", f"{_C}version", f"{_C}checksum"
_T_SUMMARY, _T_DESCRIPTION, _T_SIZE, _T_LOCATION = f"{_C}summary", f"{_C}description", f"{_C}size", f"{_C}location"


def _parse_package(el: ET.Element, interner: _Interner, repo: str) -> Package:
    name = arch = summary = description = location = sourcerpm = ""
    evr: EVR | None = None
    epoch, ver, rel = "0", "", ""
    checksum = ("", "")
    size_package = size_installed = 0
    location_base = None
    deps: dict[str, tuple[Dep, ...]] = {}
    files: list[str] = []
    for child in el:
        tag = child.tag
        if tag == _T_NAME:
            name = child.text or ""
        elif tag == _T_ARCH:
            arch = child.text or ""
        elif tag == _T_VERSION:
            a = child.attrib
            epoch, ver, rel = a.get("epoch") or "0", a.get("ver") or "", a.get("rel") or ""
            evr = interner.evr(epoch, ver, rel)
        elif tag == _T_CHECKSUM:
            checksum = (child.get("type", "sha256"), (child.text or "").strip().lower())
        elif tag == _T_SUMMARY:
            summary = child.text or ""
        elif tag == _T_DESCRIPTION:
            description = child.text or ""
        elif tag == _T_SIZE:
            a = child.attrib
            size_package = int(a.get("package") or 0)
            size_installed = int(a.get("installed") or 0)
        elif tag == _T_LOCATION:
            location = child.get("href", "")
            location_base = child.get(_XML_BASE)
        elif tag == _TAG_FORMAT:
            simple = interner.simple
            by_items = interner.by_items
            dep_of = interner.dep
            for f in child:
                ftag = f.tag
                kind = _DEP_TAGS.get(ftag)
                if kind is not None:
                    out = []
                    for e in f:
                        a = e.attrib
                        if len(a) == 1:
                            # The common case, `<rpm:entry name="libc.so.6()(64bit)"/>`.
                            dname = a.get("name")
                            d = simple.get(dname)   # type: ignore[arg-type]
                            if d is None:
                                if not dname:
                                    raise ValueError("a dependency entry has no name")
                                d = simple[dname] = _new_dep(Dep, (dname, 0, None))
                        else:
                            key = tuple(a.items())
                            d = by_items.get(key)
                            if d is None:
                                d = by_items[key] = dep_of(a)
                        out.append(d)
                    deps[kind] = tuple(out)
                elif ftag == _TAG_FILE:
                    if f.text:
                        files.append(f.text)
                elif ftag == _TAG_SOURCERPM:
                    sourcerpm = f.text or ""
    if not name or not ver or evr is None:
        raise ValueError(f"a package entry lacks its name or version (name={name!r})")
    return Package(
        name, int(epoch), ver, rel, arch, evr, summary, description,
        size_package, size_installed, location, checksum, repo,
        deps.get("provides", ()), deps.get("requires", ()),
        deps.get("conflicts", ()), deps.get("obsoletes", ()),
        deps.get("recommends", ()), deps.get("suggests", ()),
        deps.get("supplements", ()), deps.get("enhances", ()),
        tuple(files), sourcerpm, location_base,
    )


def _event_batches(stream: BinaryIO, parser: ET.XMLPullParser) -> Iterator[Iterator[tuple[str, ET.Element]]]:
    """Feed `stream` to `parser` in large chunks; yield, per chunk, the events it completed.
    (Batches, not single events: one generator step per event costs a tenth of the parse.)"""
    read = stream.read
    while chunk := read(1 << 18):
        parser.feed(chunk)
        yield parser.read_events()
    parser.close()
    yield parser.read_events()


def iter_primary(path: str | os.PathLike, *, repo: str = "") -> Iterator[Package]:
    """Yield every package of a primary.xml[.gz|.xz|.zst|.bz2], streaming. `repo` names the
    repository in errors and is stored in `Package.repo`."""
    interner = _Interner()
    count = 0
    with _reported(path, repo):
        with open_decompressed(path) as stream:
            last = None
            for events in _event_batches(stream, ET.XMLPullParser(events=("end",))):
                for _, el in events:
                    if el.tag == _TAG_PACKAGE:
                        if el.get("type", "rpm") == "rpm":
                            pkg = _parse_package(el, interner, repo)
                            count += 1
                            yield pkg
                        el.clear()
                    elif last is None and not el.tag.startswith(_C):
                        raise ValueError(f"not a primary.xml (element {el.tag!r})")
                    last = el
            if last is None or last.tag != f"{_C}metadata":
                raise ValueError(f"not a primary.xml (root element {last.tag if last is not None else None!r})")
            expected = last.get("packages")
            if expected is not None and expected.isdigit() and int(expected) != count:
                raise ValueError(f"it announces {expected} packages but holds {count}")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects: it would
    otherwise rescan them over and over (it doubled the time to read a Rocky-sized primary)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_primary(path: str | os.PathLike, *, repo: str = "") -> list[Package]:
    """All packages of a primary file (see iter_primary)."""
    with gc_paused():
        return list(iter_primary(path, repo=repo))


# --------------------------------------------------------------------------------------------
# filelists.xml


_F = f"{{{NS_FILELISTS}}}"
_TAG_FL_PACKAGE = f"{_F}package"
_TAG_FL_FILE = f"{_F}file"
_TAG_FL_VERSION = f"{_F}version"


def iter_filelists(path: str | os.PathLike, *, repo: str = "") -> Iterator[FilelistEntry]:
    """Yield every package of a filelists.xml[.gz|...] with all its paths, streaming."""
    interner = _Interner()
    with _reported(path, repo):
        with open_decompressed(path) as stream:
            last = None
            for el in (el for events in _event_batches(stream, ET.XMLPullParser(events=("end",)))
                       for _, el in events):
                if last is None and not el.tag.startswith(_F):
                    raise ValueError(f"not a filelists.xml (element {el.tag!r})")
                last = el
                if el.tag != _TAG_FL_PACKAGE:
                    continue
                evr = None
                files: list[str] = []
                for child in el:
                    if child.tag == _TAG_FL_FILE:
                        if child.text:
                            files.append(child.text)
                    elif child.tag == _TAG_FL_VERSION:
                        a = child.attrib
                        evr = interner.evr(a.get("epoch") or "0", a.get("ver") or "", a.get("rel") or "")
                name = el.get("name")
                if not name or evr is None:
                    raise ValueError(f"a package entry lacks its name or version (name={name!r})")
                yield FilelistEntry(el.get("pkgid", "").lower(), name, el.get("arch", ""), evr, files)
                el.clear()
            if last is None or last.tag != f"{_F}filelists":
                raise ValueError("not a filelists.xml (no <filelists> root)")


def _plain_path(path: str) -> bool:
    """Printable ASCII without XML specials: written verbatim in filelists.xml."""
    return all(" " <= c <= "~" and c not in "&<>" for c in path)


def _scan_filelists(path: str | os.PathLike, paths: Collection[str], repo: str) -> Iterator[FilelistEntry]:
    """Yield the filelists entries that may own one of `paths`, fast: the decompressed bytes are
    searched for `>PATH</file>` and only the `<package>` blocks around a hit are parsed (and
    re-checked). A full XML parse of a Rocky-sized filelists takes seconds; this a fraction."""
    needles = [f">{p}</file>".encode() for p in paths]
    end_tag = b"</package>"
    wrapper = f'<filelists xmlns="{NS_FILELISTS}">'.encode()
    with _reported(path, repo):
        with open_decompressed(path) as stream:
            buf = b""
            saw_root = False
            while True:
                chunk = stream.read(1 << 20)
                buf += chunk
                cut = len(buf) if not chunk else buf.rfind(end_tag)
                if cut < 0:
                    continue
                cut = cut if not chunk else cut + len(end_tag)
                region, buf = buf[:cut], buf[cut:]
                if not saw_root and region:
                    if b"<filelists" not in region[:4096]:
                        raise ValueError("not a filelists.xml (no <filelists> root)")
                    saw_root = True
                starts: set[int] = set()
                for needle in needles:
                    at = region.find(needle)
                    while at >= 0:
                        start = region.rfind(b"<package ", 0, at)
                        if start >= 0:
                            starts.add(start)
                        at = region.find(needle, at + 1)
                for start in sorted(starts):
                    stop = region.find(end_tag, start)
                    if stop < 0:
                        raise ValueError("a <package> entry is cut short")
                    el = ET.fromstring(wrapper + region[start:stop + len(end_tag)] + b"</filelists>")[0]
                    version = el.find(_TAG_FL_VERSION)
                    if version is None or not el.get("name"):
                        raise ValueError("a package entry lacks its name or version")
                    a = version.attrib
                    evr = EVR(int(a.get("epoch") or 0), a.get("ver") or "", a.get("rel") or "")
                    files = [f.text for f in el.iter(_TAG_FL_FILE) if f.text]
                    yield FilelistEntry(el.get("pkgid", "").lower(), el.get("name", ""), el.get("arch", ""), evr, files)
                if not chunk:
                    break
            if not saw_root:
                raise ValueError("no element found")


def lookup_files(repo: Repository, filelists_path: str | os.PathLike,
                 paths: Collection[str]) -> dict[str, list[Package]]:
    """Return, for each of `paths` found in `repo`'s filelists, the packages owning it (matched
    to the repository's Package objects by pkgid, else by name/arch/EVR). Streams the file."""
    found: dict[str, list[Package]] = {}
    if not paths:
        return found
    wanted = frozenset(paths)
    if all(_plain_path(p) for p in wanted):
        entries = _scan_filelists(filelists_path, wanted, repo.name)
    else:
        entries = iter_filelists(filelists_path, repo=repo.name)
    by_nae: dict[tuple[str, str, EVR], Package] | None = None
    for entry in entries:
        hits = [f for f in entry.files if f in wanted]
        if not hits:
            continue
        pkg = repo.by_pkgid(entry.pkgid)
        if pkg is None:
            if by_nae is None:
                by_nae = {(p.name, p.arch, p.evr): p for p in repo.packages}
            pkg = by_nae.get((entry.name, entry.arch, entry.evr))
        if pkg is None:
            continue                    # filelists and primary disagree: ignore the stray entry
        for f in hits:
            if pkg not in found.setdefault(f, []):
                found[f].append(pkg)
    return found


# --------------------------------------------------------------------------------------------
# A repository on local disk (a dir: source, a DVD tree, a cached mirror copy)


def read_local_repository(name: str, root: str | os.PathLike, *, base: object = None,
                          verify: bool = True) -> Repository:
    """Read `root/repodata/repomd.xml`, verify and parse primary. Filelists are verified and
    read later, only if the resolver asks for them. `base` defaults to `root`."""
    root = Path(root)
    repomd = parse_repomd(root / "repodata" / "repomd.xml", repo=name)
    primary = repomd.record("primary", repo=name)
    primary_path = root / primary.location
    if verify:
        verify_file(primary_path, *primary.checksum, label=f"repodata {display_name(primary_path)} of {name}")
    packages = read_primary(primary_path, repo=name)
    filelists = None
    if "filelists" in repomd.records:
        filelists = _verified_once(root / repomd.records["filelists"].location,
                                   repomd.records["filelists"].checksum if verify else None, name)
    return Repository(name, root if base is None else base, packages, filelists, repomd.revision)


def _verified_once(path: Path, checksum: tuple[str, str] | None, repo: str) -> Callable[[], Path]:
    """A callable returning `path`, verified against `checksum` on first use."""
    verified: list[bool] = []

    def get() -> Path:
        if checksum is not None and not verified:
            verify_file(path, *checksum, label=f"repodata {display_name(path)} of {repo}")
            verified.append(True)
        return path

    return get
