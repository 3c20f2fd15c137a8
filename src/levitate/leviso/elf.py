"""ELF dependencies of a root tree, found without executing anything (the seed's "readelf, not ldd").

`ldd` runs a binary under the host's dynamic linker: it answers for the host, not for the tree, it
executes code from packages we have not booted yet, and it cannot look at another architecture.
Here the ELF headers are read directly (ELF32/ELF64, either byte order): PT_INTERP, PT_DYNAMIC and
from the dynamic section DT_NEEDED, DT_RUNPATH, DT_RPATH, DT_SONAME (strings through DT_STRTAB,
whose address is mapped to a file offset through the PT_LOAD segments). Each DT_NEEDED is then
resolved inside the tree the way glibc's ld.so would resolve it after a `chroot`:

1. DT_RPATH of the requesting object, then of the object that loaded it, and so on up to the
   executable -- all of it skipped when the requesting object has DT_RUNPATH (and an object that
   has DT_RUNPATH contributes no DT_RPATH of its own);
2. LD_LIBRARY_PATH: ignored (it belongs to a run, not to the tree);
3. DT_RUNPATH of the requesting object only (it is not inherited by dependencies);
4. the directories of ROOT/etc/ld.so.conf (and its `include`s), standing in for ld.so.cache;
5. the default directories: /lib64, /usr/lib64 for 64-bit objects, /lib, /usr/lib for 32-bit
   ones (none of them when the requesting object is linked with -z nodefaultlib).

$ORIGIN, ${ORIGIN}, $LIB and $PLATFORM are expanded; a candidate of another ELF class, machine or
byte order is skipped as ld.so skips it; a name already loaded (by the name it was asked for, by its
DT_SONAME, or as the same file) is reused; symlinks, absolute ones included, are resolved relative
to ROOT and never leave it.

Why a small reader of our own rather than pyelftools: we need a few dynamic tags and two program
headers. Reading them costs three `pread`s and a few `struct.unpack_from` calls per file (about
20-45 us); pyelftools builds generic section and segment objects through its `construct`-style
structs: 1.6-3.3 ms per file measured on the same 1,045 files, 75 times slower, i.e. 25-50 s
instead of well under a second for the 15,000 ELF files of a Rocky tree (bench/bench_elf.py
--pyelftools). Everything is cached per resolver (headers per real path, directory listings,
search results per name and ABI, each object's direct resolution), so checking a whole tree reads
each file once; single-threaded is fast enough (about 2 s for 15,000 ELF files, warm cache).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import stat
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from ..util.files import atomic_output

log = logging.getLogger("levitate")

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29
DT_FLAGS_1, DF_1_NODEFLIB = 0x6FFFFFFB, 0x800
PN_XNUM = 0xFFFF

EM_386, EM_PPC, EM_PPC64, EM_S390, EM_ARM = 3, 20, 21, 22, 40
EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 62, 183, 243, 258

# $PLATFORM as glibc reports it (AT_PLATFORM); only matters for the rare RPATH that uses it.
_PLATFORM = {EM_X86_64: "x86_64", EM_386: "i686", EM_AARCH64: "aarch64", EM_PPC64: "ppc64le",
             EM_S390: "s390x", EM_RISCV: "riscv64", EM_ARM: "arm", EM_PPC: "ppc",
             EM_LOONGARCH: "loongarch64"}

_HEAD = 2048              # one read covers the ELF header and, nearly always, the program headers
_STR_MAX = 4096           # longest string we expect in .dynstr (a RUNPATH); longer ones are re-read
_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")
_MAXLINKS = 40            # as the kernel's MAXSYMLINKS


class ElfFormatError(LevitateError):
    """An ELF file whose dynamic information cannot be read (truncated or inconsistent)."""


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic linker needs from one ELF file."""
    path: str
    machine: int                      # e_machine (EM_X86_64 = 62, EM_AARCH64 = 183, EM_386 = 3)
    elf_class: int                    # ELFCLASS32 = 1, ELFCLASS64 = 2
    interpreter: str | None           # PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2
    needed: tuple[str, ...]           # DT_NEEDED, in order
    runpath: tuple[str, ...]          # DT_RUNPATH split on ':', tokens not expanded
    rpath: tuple[str, ...]            # DT_RPATH, idem (ld.so ignores it when runpath is set)
    soname: str | None                # DT_SONAME
    big_endian: bool = False          # EI_DATA: ppc64 and ppc64le share e_machine
    nodeflib: bool = False            # DF_1_NODEFLIB: skip the default directories

    @property
    def abi(self) -> tuple[int, int, bool]:
        """What must match between an object and a library it loads."""
        return (self.elf_class, self.machine, self.big_endian)


def is_elf(path) -> bool:
    """True if the file starts with the ELF magic (follows symlinks on the host)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo | None:
    """The dynamic information of one ELF file; None for a non-ELF file and for an ELF file without
    a dynamic section (static executables, object files, core files). Raises ElfFormatError for an
    ELF file whose dynamic section cannot be read."""
    parsed = _read(os.fspath(path), str(path), follow=True)
    if parsed is None or not parsed[1]:
        return None
    return parsed[0]


def _read(host_path: str, name: str, *, follow: bool = False) -> tuple[ElfInfo, bool] | None:
    """(info, has a dynamic section) or None when not ELF; ElfFormatError when malformed. Paths
    inside a tree are resolved before they get here: a final link is then not followed, so that
    nothing outside the tree is ever read."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(host_path, flags)
    except OSError:
        return None
    try:
        head = os.pread(fd, _HEAD, 0)
        if head[:4] != ELF_MAGIC:
            return None
        return _parse(fd, head, name)
    except (struct.error, ValueError, OSError, IndexError) as exc:
        raise ElfFormatError(f"{name}: cannot read its ELF headers ({exc})",
                             "the file is truncated or corrupt; reinstall the package that owns it")
    finally:
        os.close(fd)


def _pread(fd: int, head: bytes, size: int, offset: int) -> bytes:
    if offset + size <= len(head):
        return head[offset:offset + size]
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise ValueError(f"{size} bytes at offset {offset} lie past the end of the file")
    return data


def _parse(fd: int, head: bytes, name: str) -> tuple[ElfInfo, bool]:
    if len(head) < 52:
        raise ValueError("shorter than an ELF header")
    cls, data = head[4], head[5]
    if data == ELFDATA2LSB:
        e = "<"
    elif data == ELFDATA2MSB:
        e = ">"
    else:
        raise ValueError(f"unknown EI_DATA {data}")
    if cls == ELFCLASS64:
        (machine, phoff, shoff, phentsize, phnum) = _unpack(e + "2xH12xQQ6xHH", head, 16)
        ph_fmt, ph_size, dyn_fmt, dyn_size = e + "IIQQ8xQ16x", 56, "Q", 16
    elif cls == ELFCLASS32:
        (machine, phoff, shoff, phentsize, phnum) = _unpack(e + "2xH4x4xII6xHH", head, 16)
        ph_fmt, ph_size, dyn_fmt, dyn_size = e + "III4xI12x", 32, "I", 8
    else:
        raise ValueError(f"unknown EI_CLASS {cls}")
    big = e == ">"
    bare = ElfInfo(name, machine, cls, None, (), (), (), None, big)
    if phnum == PN_XNUM and shoff:            # the real count is in section header 0's sh_info
        sh0 = _pread(fd, head, 64 if cls == ELFCLASS64 else 40, shoff)
        phnum = struct.unpack_from(e + ("44xI" if cls == ELFCLASS64 else "28xI"), sh0)[0]
    if not phoff or not phnum:
        return bare, False
    if phentsize < ph_size:
        raise ValueError(f"e_phentsize {phentsize} is too small")
    table = _pread(fd, head, phentsize * phnum, phoff)
    loads: list[tuple[int, int, int]] = []
    dynamic = interp = None
    for i in range(phnum):
        fields = struct.unpack_from(ph_fmt, table, i * phentsize)
        if cls == ELFCLASS64:
            p_type, _flags, p_offset, p_vaddr, p_filesz = fields
        else:
            p_type, p_offset, p_vaddr, p_filesz = fields
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_filesz, p_offset))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            interp = (p_offset, p_filesz)
    interpreter = None
    if interp is not None:
        interpreter = os.fsdecode(_pread(fd, head, interp[1], interp[0]).split(b"\0", 1)[0])
    if dynamic is None:
        return ElfInfo(name, machine, cls, interpreter, (), (), (), None, big), False

    n = dynamic[1] // dyn_size
    raw = _pread(fd, head, n * dyn_size, dynamic[0])
    values = struct.unpack(f"{e}{2 * n}{dyn_fmt}", raw)
    needed: list[int] = []
    strtab = strsz = soname = runpath = rpath = None
    flags_1 = 0
    for i in range(0, 2 * n, 2):
        tag, val = values[i], values[i + 1]
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed.append(val)
        elif tag == DT_STRTAB:
            strtab = val
        elif tag == DT_STRSZ:
            strsz = val
        elif tag == DT_SONAME:
            soname = val
        elif tag == DT_RUNPATH:
            runpath = val
        elif tag == DT_RPATH:
            rpath = val
        elif tag == DT_FLAGS_1:
            flags_1 = val
    wanted = [v for v in (*needed, soname, runpath, rpath) if v is not None]
    strings: dict[int, str] = {}
    if wanted:
        if strtab is None:
            raise ValueError("DT_NEEDED/DT_SONAME/DT_*PATH without DT_STRTAB")
        base = _vaddr_to_offset(strtab, loads)
        strings = _strings(fd, head, base, strsz, wanted)
    return ElfInfo(
        path=name, machine=machine, elf_class=cls, interpreter=interpreter,
        needed=tuple(strings[v] for v in needed),
        runpath=_split_path(strings[runpath]) if runpath is not None else (),
        rpath=_split_path(strings[rpath]) if rpath is not None else (),
        soname=strings[soname] if soname is not None else None,
        big_endian=big, nodeflib=bool(flags_1 & DF_1_NODEFLIB),
    ), True


def _unpack(fmt: str, buf: bytes, offset: int) -> tuple:
    return struct.unpack_from(fmt, buf, offset)


def _vaddr_to_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int:
    for p_vaddr, p_filesz, p_offset in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise ValueError(f"DT_STRTAB address {vaddr:#x} is in no PT_LOAD segment")


def _strings(fd: int, head: bytes, base: int, strsz: int | None, offsets: list[int]) -> dict[int, str]:
    """NUL-terminated strings of .dynstr at the given offsets, reading only the span they cover."""
    lo, hi = min(offsets), max(offsets)
    if strsz is not None and hi >= strsz:
        raise ValueError(f"string offset {hi} is past DT_STRSZ {strsz}")
    end = hi + _STR_MAX if strsz is None else min(strsz, hi + _STR_MAX)
    if end - lo <= 1 << 20:
        blob = os.pread(fd, end - lo, base + lo) if base + end > len(head) else head[base + lo:base + end]
        chunks = {off: (blob, off - lo) for off in offsets}
    else:                                   # far-apart strings in a huge .dynstr: read each one
        chunks = {off: (os.pread(fd, min(_STR_MAX, end - off), base + off), 0) for off in offsets}
    out = {}
    for off, (blob, start) in chunks.items():
        stop = blob.find(b"\0", start)
        if stop < 0:
            # a string longer than _STR_MAX (or no terminator): read until its NUL
            rest = bytearray(blob[start:])
            pos = base + off + len(rest)
            while (stop := rest.find(b"\0")) < 0:
                more = os.pread(fd, 65536, pos)
                if not more:
                    raise ValueError(f"unterminated string at .dynstr offset {off}")
                rest += more
                pos += len(more)
            out[off] = os.fsdecode(bytes(rest[:stop]))
        else:
            out[off] = os.fsdecode(blob[start:stop])
    return out


def _split_path(value: str) -> tuple[str, ...]:
    return tuple(value.split(":")) if value else ()


# --------------------------------------------------------------------------------------------------
# A tree seen as if it were `/`


class _Root:
    """Paths inside a root directory, resolved like the kernel would after chroot(ROOT)."""

    def __init__(self, root: Path):
        self.host = os.path.abspath(os.fspath(root))
        self._prefix = "" if self.host == "/" else self.host
        self._real: dict[str, str | None] = {}
        self._listings: dict[str, tuple[str | None, frozenset[str]]] = {}

    def host_path(self, path: str) -> str:
        """The host path of an in-root path (which must already be resolved: no symlinks)."""
        return self._prefix + path if path != "/" else self.host

    def realpath(self, path: str) -> str | None:
        """The symlink-free in-root path of `path` (absolute, in-root), or None if it does not
        exist. `..` at the root stays at the root; absolute link targets start over at ROOT."""
        try:
            return self._real[path]
        except KeyError:
            pass
        result = self._resolve(path)
        self._real[path] = result
        return result

    def _resolve(self, path: str) -> str | None:
        pending = [c for c in reversed(path.split("/")) if c and c != "."]
        cur = ""
        links = 0
        while pending:
            c = pending.pop()
            if c == "..":
                cur = cur.rpartition("/")[0]
                continue
            nxt = f"{cur}/{c}"
            if self._real.get(nxt) == nxt:
                cur = nxt                    # a directory met before, not a link
                continue
            try:
                st = os.lstat(self._prefix + nxt)
            except OSError:
                return None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAXLINKS:
                    return None
                target = os.readlink(self._prefix + nxt)
                if target.startswith("/"):
                    cur = ""
                pending.extend(c for c in reversed(target.split("/")) if c and c != ".")
            elif pending and not stat.S_ISDIR(st.st_mode):
                return None                   # ENOTDIR
            else:
                if stat.S_ISDIR(st.st_mode):
                    self._real[nxt] = nxt
                cur = nxt
        return cur or "/"

    def listing(self, directory: str) -> tuple[str | None, frozenset[str]]:
        """(the real path of an in-root directory, the names in it); (None, {}) if missing."""
        try:
            return self._listings[directory]
        except KeyError:
            pass
        real = self.realpath(directory)
        names: frozenset[str] = frozenset()
        if real is not None:
            try:
                names = frozenset(os.listdir(self.host_path(real)))
            except OSError:
                real = None
        self._listings[directory] = (real, names)
        return real, names

    def glob(self, pattern: str) -> list[str]:
        """In-root paths matching an absolute pattern (wildcards in any component), sorted."""
        paths = ["/"]
        for part in [p for p in pattern.split("/") if p]:
            nxt = []
            for base in paths:
                parent = base.rstrip("/")
                if any(ch in part for ch in "*?["):
                    _real, names = self.listing(base)
                    nxt.extend(f"{parent}/{n}" for n in sorted(names) if fnmatch.fnmatchcase(n, part)
                               and (part.startswith(".") or not n.startswith(".")))
                else:
                    nxt.append(f"{parent}/{part}")
            paths = nxt
        return [p for p in paths if self.realpath(p) is not None]


def _read_ld_so_conf(root: _Root, path: str = "/etc/ld.so.conf", seen: set[str] | None = None) -> list[str]:
    """The directories of ld.so.conf, with `include` (relative patterns are relative to the
    including file's directory, as ldconfig does) and without `hwcap` lines or `=TYPE` suffixes."""
    seen = set() if seen is None else seen
    real = root.realpath(path)
    if real is None or real in seen:
        return []
    seen.add(real)
    try:
        text = Path(root.host_path(real)).read_text(errors="replace")
    except OSError:
        return []
    dirs: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include" and len(words) > 1:
            for pattern in words[1:]:
                if not pattern.startswith("/"):
                    pattern = f"{os.path.dirname(path)}/{pattern}"
                for conf in root.glob(pattern):
                    dirs.extend(_read_ld_so_conf(root, conf, seen))
            continue
        if words[0] == "hwcap":
            continue
        for word in re.split(r"[\s:,]+", line):
            word = word.split("=", 1)[0].rstrip("/")
            if word.startswith("/"):
                dirs.append(word)
    return dirs


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------------
# Resolution


@dataclass
class Resolution:
    """The closure of one object, as ld.so would load it."""
    binary: str                                   # the path asked for
    path: str                                     # its real path inside the root
    info: ElfInfo | None                          # None: not a dynamic ELF file
    libraries: dict[str, str] = field(default_factory=dict)    # needed name -> path in root
    missing: list[str] = field(default_factory=list)           # names (or the interpreter path)
    needed_by: dict[str, str] = field(default_factory=dict)    # missing name -> who needs it
    interpreter: str | None = None                # PT_INTERP as written, when it exists in the tree
    objects: dict[str, str] = field(default_factory=dict)      # real path -> path as loaded
    unmet: set[str] = field(default_factory=set)  # objects (as loaded) with a need not met


class LibraryResolver:
    """Resolves DT_NEEDED inside ROOT as glibc's ld.so would after chroot(ROOT); caches everything
    it reads, so one resolver can answer for a whole tree quickly."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._fs = _Root(self.root)
        self.conf_dirs: tuple[str, ...] = _dedupe(_read_ld_so_conf(self._fs))
        self._elves: dict[str, tuple[ElfInfo, bool] | None] = {}
        self._errors: dict[str, str] = {}
        self._found: dict[tuple, tuple | None] = {}
        self._deps: dict[tuple, tuple] = {}

    # -- reading ---------------------------------------------------------------------------------

    def default_dirs(self, elf_class: int) -> tuple[str, ...]:
        return ("/lib64", "/usr/lib64") if elf_class == ELFCLASS64 else ("/lib", "/usr/lib")

    def _elf(self, real: str) -> tuple[ElfInfo, bool] | None:
        try:
            return self._elves[real]
        except KeyError:
            pass
        try:
            parsed = _read(self._fs.host_path(real), real)
        except ElfFormatError as exc:
            self._errors[real] = exc.message
            parsed = None
        self._elves[real] = parsed
        return parsed

    def info(self, path: str) -> ElfInfo | None:
        """read_elf for an in-root path (symlinks resolved inside the root)."""
        real = self._fs.realpath(_absolute(path))
        parsed = self._elf(real) if real is not None else None
        return parsed[0] if parsed and parsed[1] else None

    # -- searching -------------------------------------------------------------------------------

    def _expand(self, entries: tuple[str, ...], origin: str, info: ElfInfo) -> tuple[str, ...]:
        """RPATH/RUNPATH entries with $ORIGIN, $LIB, $PLATFORM expanded; empty and relative
        entries (they name the working directory of a run, not a place in the tree) dropped."""
        out = []
        for entry in entries:
            entry = _expand_dst(entry, origin, info).rstrip("/") or "/"
            if entry.startswith("/"):
                out.append(entry)
        return tuple(out)

    def _in_dir(self, directory: str, name: str, abi: tuple) -> tuple | None:
        """A loadable `name` in `directory` as (path as ld.so names it, real path, its ElfInfo
        if it has a dynamic section else None, its $ORIGIN), or None."""
        key = (directory, name, abi)
        try:
            return self._found[key]
        except KeyError:
            pass
        hit = None
        real_dir, names = self._fs.listing(directory)
        if real_dir is not None and name in names:
            real = self._fs.realpath(f"{real_dir.rstrip('/')}/{name}")
            parsed = self._elf(real) if real is not None else None
            if parsed is not None and parsed[0].abi == abi:
                origin = directory.rstrip("/") or "/"
                hit = (f"{origin.rstrip('/')}/{name}", real, parsed[0] if parsed[1] else None, origin)
        self._found[key] = hit
        return hit

    def _search(self, name: str, dirs: Iterable[str], abi: tuple) -> tuple | None:
        for directory in dirs:
            hit = self._in_dir(directory, name, abi)
            if hit is not None:
                return hit
        return None

    def _system(self, name: str, info: ElfInfo) -> tuple | None:
        key = ("", name, info.abi, info.nodeflib)
        try:
            return self._found[key]
        except KeyError:
            pass
        defaults = self.default_dirs(info.elf_class)
        if info.nodeflib:
            dirs: tuple[str, ...] = tuple(d for d in self.conf_dirs if d not in defaults)
        else:
            dirs = self.conf_dirs + defaults
        hit = self._search(name, dirs, info.abi)
        self._found[key] = hit
        return hit

    def _direct(self, info: ElfInfo, origin: str, chain: tuple[str, ...]) -> tuple:
        """[(needed name, hit or None)] for one object; `chain` is the DT_RPATH list it inherits
        (its own first), already expanded."""
        key = (info.path, origin, chain)
        try:
            return self._deps[key]
        except KeyError:
            pass
        runpath = self._expand(info.runpath, origin, info) if info.runpath else ()
        out = []
        for name in info.needed:
            if "/" in name:                      # a path ($ORIGIN expanded): no search
                path = _expand_dst(name, origin, info)
                real = self._fs.realpath(_absolute(path))
                parsed = self._elf(real) if real is not None else None
                hit = None
                if parsed and parsed[0].abi == info.abi:
                    hit = (path, real, parsed[0] if parsed[1] else None,
                           path.rpartition("/")[0] or "/")
            else:
                hit = None
                if not info.runpath and chain:
                    hit = self._search(name, chain, info.abi)
                if hit is None and runpath:
                    hit = self._search(name, runpath, info.abi)
                if hit is None:
                    hit = self._system(name, info)
            out.append((name, hit))
        result = tuple(out)
        self._deps[key] = result
        return result

    # -- the closure -----------------------------------------------------------------------------

    def closure(self, binary: str) -> Resolution:
        """Everything ld.so would load for `binary` (an in-root path), breadth first as ld.so
        does; a name is loaded once, by the first object that asks for it."""
        wanted = _absolute(binary)
        real = self._fs.realpath(wanted)
        if real is None:
            raise LevitateError(f"{wanted} is not in {self.root}",
                                "check the path (it is resolved inside the tree, not on the host)")
        parsed = self._elf(real)
        res = Resolution(binary=wanted, path=real, info=parsed[0] if parsed and parsed[1] else None)
        if parsed is None or not parsed[1]:
            return res
        info = parsed[0]
        loaded: dict[str, str] = {}             # names (asked-for and sonames) -> path
        by_real = res.objects
        by_real[real] = wanted
        if info.soname:
            loaded[info.soname] = wanted
        if info.interpreter:
            interp_real = self._fs.realpath(_absolute(info.interpreter))
            if interp_real is None or not os.path.isfile(self._fs.host_path(interp_real)):
                res.missing.append(info.interpreter)
                res.needed_by[info.interpreter] = wanted
                res.unmet.add(wanted)
            else:
                res.interpreter = info.interpreter
                loaded[info.interpreter] = info.interpreter
                by_real.setdefault(interp_real, info.interpreter)
                ld = self._elf(interp_real)
                if ld and ld[0].soname:
                    loaded.setdefault(ld[0].soname, info.interpreter)
        origin = real.rpartition("/")[0] or "/"  # the executable's: /proc/self/exe, links resolved
        own = () if info.runpath else self._expand(info.rpath, origin, info)
        queue = deque([(info, wanted, origin, own)])
        missing = res.missing
        while queue:
            node, node_path, node_origin, chain = queue.popleft()
            for name, hit in self._direct(node, node_origin, chain):
                if name in loaded:
                    res.libraries.setdefault(name, loaded[name])
                    continue
                if hit is None:
                    res.unmet.add(node_path)
                    if name not in res.needed_by:
                        missing.append(name)
                        res.needed_by[name] = node_path
                    continue
                path, lib_real, child, child_origin = hit
                if lib_real in by_real:          # the same file under another name
                    loaded[name] = by_real[lib_real]
                    res.libraries[name] = by_real[lib_real]
                    continue
                by_real[lib_real] = path
                loaded[name] = path
                res.libraries[name] = path
                if child is None:                # not dynamic: nothing more to load
                    continue
                if child.soname:
                    loaded.setdefault(child.soname, path)
                # child_origin: ld.so takes the directory it was found in, links not resolved
                child_chain = chain if child.runpath or not child.rpath else \
                    self._expand(child.rpath, child_origin, child) + chain
                queue.append((child, path, child_origin, child_chain))
        return res

    def resolve(self, binary: str) -> tuple[dict[str, str], list[str]]:
        """(needed name -> path inside root, over the whole closure; names not found). The ELF
        interpreter is not among the names unless a library lists it (libc does, by its soname);
        an interpreter missing from the tree is reported by its PT_INTERP path."""
        res = self.closure(binary)
        return dict(res.libraries), list(res.missing)


def _expand_dst(entry: str, origin: str, info: ElfInfo) -> str:
    if "$" not in entry:
        return entry
    values = {"ORIGIN": origin, "LIB": "lib64" if info.elf_class == ELFCLASS64 else "lib",
              "PLATFORM": _PLATFORM.get(info.machine, "")}
    return _DST.sub(lambda m: values[m.group(1) or m.group(2)], entry)


def _absolute(path: str) -> str:
    path = os.fspath(path)
    return path if path.startswith("/") else "/" + path


# --------------------------------------------------------------------------------------------------
# The whole tree


@dataclass
class ElfReport:
    checked: int                                   # ELF files looked at
    missing: dict[str, list[str]]                  # ELF file -> names missing from its closure
    dynamic: int = 0                               # of which dynamically linked
    needed_by: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> name -> needer
    unreadable: dict[str, str] = field(default_factory=dict)            # file -> why
    loads_in_context: dict[str, list[str]] = field(default_factory=dict)
    # ^ libraries that miss these names on their own but load fully inside some other file's closure
    root: str = ""
    seconds: float = 0.0

    def describe(self, binary: str, name: str) -> str:
        via = self.needed_by.get(binary, {}).get(name, binary)
        through = f", through {via}" if via != binary else ""
        return f"{binary} needs {name} (not found in {self.root}{through})"

    def warnings(self) -> list[str]:
        lines = [self.describe(b, n) for b in sorted(self.missing) for n in self.missing[b]]
        lines += [f"{path}: {why}" for path, why in sorted(self.unreadable.items())]
        return lines


_SKIP_DIRS = {"/proc", "/sys", "/dev", "/usr/lib/firmware", "/lib/firmware", "/usr/lib/debug"}
_KMOD = re.compile(r"\.ko(\.(xz|zst|gz|bz2))?$")
# Names that are never ELF files; not opening them makes the walk of a full tree (most of whose
# files are Python, man pages, locales, headers, icons) several times cheaper on a cold cache.
_NOT_ELF = frozenset("""
    py pyc pyi pyo pth pl pm pod rb tcl lua sh bash csh zsh awk sed
    txt md rst html htm css js mjs json xml xsl xsd dtd svg svgz png jpg jpeg gif ico bmp xpm
    mo po pot gz xz bz2 zst lz4 lzma zip tar gmo
    h hh hpp hxx c cc cpp cxx inc f90 mk cmake pc la a o am in m4 ac
    conf cfg ini toml yaml yml rules service socket target timer mount automount path slice
    preset network netdev link desc pem crt cer der key pub asc gpg sig p12 ttf otf pcf pfb afm
    enc map hwdb policy typelib gir vapi rng
    """.split())


def iter_elf_candidates(root: Path) -> Iterable[str]:
    """In-root paths of the regular files that may be ELF files: the whole tree without /proc,
    /sys, /dev, firmware, debuginfo and kernel modules; symlinks are not followed."""
    host = os.path.abspath(os.fspath(root))
    prefix = "" if host == "/" else host
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(prefix + rel if rel else host)
        except OSError:
            continue
        with it:
            dirs = []
            for entry in it:
                name = entry.name
                try:
                    if entry.is_file(follow_symlinks=False):
                        dot = name.rfind(".")
                        if dot > 0 and (name[dot + 1:] in _NOT_ELF
                                        or (".ko" in name and _KMOD.search(name))):
                            continue
                        yield f"{rel}/{name}"
                    elif entry.is_dir(follow_symlinks=False):
                        path = f"{rel}/{name}"
                        if path not in _SKIP_DIRS:
                            dirs.append(path)
                except OSError:
                    continue
            stack.extend(sorted(dirs, reverse=True))


def check_tree(root: Path, *, required: Iterable[str] = (),
               resolver: LibraryResolver | None = None) -> ElfReport:
    """Resolve every ELF file of the tree. A missing library of a `required` binary (an in-root
    path, or a bare name looked up in /usr/bin, /usr/sbin, /bin, /sbin) raises LevitateError
    listing all of them; the rest is in the report (see ElfReport.warnings)."""
    started = time.perf_counter()
    resolver = resolver or LibraryResolver(root)
    report = ElfReport(checked=0, missing={}, root=str(root))
    loads_fine: set[str] = set()             # objects whose needs were met inside some closure
    for path in iter_elf_candidates(root):
        parsed = resolver._elf(path)
        if parsed is None:
            if path in resolver._errors:
                report.checked += 1
                report.unreadable[path] = resolver._errors[path]
            continue
        report.checked += 1
        if not parsed[1]:
            continue
        report.dynamic += 1
        res = resolver.closure(path)
        if not res.unmet:
            loads_fine.update(res.objects)
            continue
        report.missing[path] = res.missing
        report.needed_by[path] = res.needed_by
        loads_fine.update(real for real, as_loaded in res.objects.items() if as_loaded not in res.unmet)
    # A library that misses something on its own but loads fine where it is used (a private
    # library that relies on its loader having loaded a sibling, like systemd's libsystemd-core
    # with libsystemd-shared) is not a problem of the tree: set it aside instead of warning.
    for path in [p for p in report.missing if p in loads_fine and not resolver._elf(p)[0].interpreter]:
        report.loads_in_context[path] = report.missing.pop(path)
        report.needed_by.pop(path, None)
    report.seconds = time.perf_counter() - started
    for line in report.warnings():
        log.warning("%s", line)
    required = list(required)
    if required:
        problems = required_binaries_missing(report, required, resolver=resolver)
        if problems:
            raise LevitateError(
                "a binary the profile lists misses libraries: " + "; ".join(problems),
                "add the packages that provide them to packages.txt (`dnf provides '*/NAME'` on a "
                "Rocky system names them), or drop the binary from the profile")
    return report


_BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


def find_binary(resolver: LibraryResolver, name: str) -> str | None:
    """The in-root path of a binary named by path or by bare name (looked up like PATH would)."""
    candidates = [name] if "/" in name else [f"{d}/{name}" for d in _BIN_DIRS]
    for cand in candidates:
        real = resolver._fs.realpath(_absolute(cand))
        if real is not None and os.path.isfile(resolver._fs.host_path(real)):
            return _absolute(cand)
    return None


def required_binaries_missing(report: ElfReport, required: Iterable[str], *,
                              resolver: LibraryResolver | None = None) -> list[str]:
    """One line per problem of a required binary: absent from the tree, or missing libraries
    ("/usr/bin/foo needs libbar.so.1 (not found in ROOT)")."""
    resolver = resolver or LibraryResolver(Path(report.root))
    problems = []
    for name in required:
        path = find_binary(resolver, name)
        if path is None:
            problems.append(f"{name} is not in {report.root}")
            continue
        res = resolver.closure(path)          # cached: cheap after check_tree
        for lib in res.missing:
            via = res.needed_by.get(lib, path)
            through = f", through {via}" if via != path else ""
            problems.append(f"{path} needs {lib} (not found in {report.root}{through})")
    return problems


# --------------------------------------------------------------------------------------------------
# Copying a binary with what it needs


def copy_with_libraries(root: Path, binary: str, dest_root: Path, *,
                        resolver: LibraryResolver | None = None) -> list[str]:
    """Copy `binary`, its ELF interpreter and its library closure from ROOT into DEST_ROOT at the
    same paths. Symlinks are recreated as links (libz.so.1 -> libz.so.1.3.1, /lib64 -> usr/lib64)
    and their targets copied too; a directory DEST_ROOT lacks is created as ROOT has it (a link
    if it is a link there), and one it has is followed, inside DEST_ROOT, even when an absolute
    link. Returns the in-root paths of the files and links that make up the copy."""
    resolver = resolver or LibraryResolver(root)
    res = resolver.closure(binary)
    if res.missing:
        raise LevitateError(
            f"cannot copy {binary}: " + "; ".join(
                f"{n} (needed by {res.needed_by[n]}) is not in {root}" for n in res.missing),
            "add the package that provides it to the profile")
    Path(dest_root).mkdir(parents=True, exist_ok=True)
    copier = _Copier(resolver._fs, _Root(Path(dest_root)))
    copier.copy(res.binary)
    if res.interpreter:
        copier.copy(res.interpreter)
    for path in res.libraries.values():
        copier.copy(path)
    return copier.done


class _Copier:
    def __init__(self, src: _Root, dest: _Root):
        self.src, self.dest = src, dest
        self.done: list[str] = []
        self._seen: set[str] = set()

    def copy(self, path: str, depth: int = 0) -> None:
        """Copy the entry at in-root `path` (not following a final symlink: it is recreated and
        its target copied in turn)."""
        if path in self._seen:
            return
        self._seen.add(path)
        if depth > _MAXLINKS:
            raise LevitateError(f"too many levels of symbolic links at {path} in {self.src.host}")
        parent, name = path.rsplit("/", 1)
        src_parent = self.src.realpath(parent or "/")
        if src_parent is None:
            raise LevitateError(f"{path} is not in {self.src.host}")
        src_host = self.src.host_path(f"{src_parent.rstrip('/')}/{name}")
        st = os.lstat(src_host)
        dest_parent = self._dest_dir(parent or "/", depth)
        dest_host = self.dest.host_path(f"{dest_parent.rstrip('/')}/{name}")
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(src_host)
            if os.path.islink(dest_host):
                if os.readlink(dest_host) != target:
                    raise LevitateError(
                        f"{path} in {self.dest.host} links to {os.readlink(dest_host)}, "
                        f"not to {target} as in {self.src.host}", "start from an empty destination")
            elif os.path.lexists(dest_host):
                raise LevitateError(f"{path} in {self.dest.host} is not a link as in {self.src.host}",
                                    "start from an empty destination")
            else:
                os.symlink(target, dest_host)
                _chown(st, dest_host)
            self.done.append(path)
            follow = target if target.startswith("/") else f"{src_parent.rstrip('/')}/{target}"
            self.copy(_normalize(follow, self.src), depth + 1)
        elif stat.S_ISREG(st.st_mode):
            if os.path.islink(dest_host) or (os.path.lexists(dest_host)
                                             and not os.path.isfile(dest_host)):
                raise LevitateError(f"{path} in {self.dest.host} is not a regular file",
                                    "start from an empty destination")
            dst_st = os.stat(dest_host) if os.path.exists(dest_host) else None
            if dst_st is None or (dst_st.st_size, int(dst_st.st_mtime)) != (st.st_size, int(st.st_mtime)):
                with atomic_output(dest_host) as tmp:
                    shutil.copy2(src_host, tmp)
                    _chown(st, tmp)
                    os.chmod(tmp, stat.S_IMODE(st.st_mode))
            self.done.append(path)
        else:
            raise LevitateError(f"{path} in {self.src.host} is not a file or a link")

    def _dest_dir(self, directory: str, depth: int) -> str:
        """The real in-dest path of `directory`, creating what is missing as the source has it."""
        cur = ""
        pending = [c for c in reversed(directory.split("/")) if c and c != "."]
        src_text = ""                         # the same prefix, as text, for looking at the source
        links = depth
        while pending:
            c = pending.pop()
            if c == "..":
                cur = cur.rpartition("/")[0]
                src_text = src_text.rpartition("/")[0]
                continue
            nxt = f"{cur}/{c}"
            src_text = f"{src_text}/{c}"
            host = self.dest.host_path(nxt)
            if not os.path.lexists(host):
                src_parent = self.src.realpath(src_text.rpartition("/")[0] or "/")
                src_host = self.src.host_path(f"{(src_parent or '').rstrip('/')}/{c}") \
                    if src_parent is not None else None
                try:
                    st = os.lstat(src_host) if src_host else None
                except OSError:
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src_host), host)
                    _chown(st, host)
                else:
                    os.mkdir(host)
                    if st is not None:
                        os.chmod(host, stat.S_IMODE(st.st_mode))
                        _chown(st, host)
            if os.path.islink(host):
                links += 1
                if links > _MAXLINKS:
                    raise LevitateError(f"too many levels of symbolic links at {directory} in "
                                        f"{self.dest.host}")
                target = os.readlink(host)
                src_text = "" if target.startswith("/") else src_text.rpartition("/")[0]
                if target.startswith("/"):
                    cur = ""
                pending.extend(x for x in reversed(target.split("/")) if x and x != ".")
            elif os.path.isdir(host):
                cur = nxt
            else:
                raise LevitateError(f"{nxt} in {self.dest.host} is not a directory")
        return cur or "/"


def _normalize(path: str, fs: _Root) -> str:
    """An absolute in-root path with its directory part resolved and the last name kept."""
    parent, name = path.rsplit("/", 1)
    real = fs.realpath(parent or "/")
    if real is None or not name or name in (".", ".."):
        resolved = fs.realpath(path)
        if resolved is None:
            raise LevitateError(f"{path} is not in {fs.host}")
        return resolved
    return f"{real.rstrip('/')}/{name}"


def _chown(st: os.stat_result, path: str) -> None:
    try:
        os.lchown(path, st.st_uid, st.st_gid)
    except PermissionError:
        pass
