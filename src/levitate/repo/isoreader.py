"""Read files out of an ISO 9660 image (the Rocky DVD) without mounting it: no root, no loop device.

    with IsoReader("Rocky-10.0-x86_64-dvd1.iso") as iso:
        iso.listdir("/BaseOS/repodata")
        with iso.open("/BaseOS/repodata/repomd.xml") as f: ...
        iso.extract("/RPM-GPG-KEY-Rocky-10", cache / "RPM-GPG-KEY-Rocky-10")

pycdlib parses the volume descriptors and the directory tree once, at open (a DVD-sized tree of
~7,000 entries takes ~0.2 s); names come from Rock Ridge when present, else Joliet, else the plain
ISO 9660 names (`;1` versions dropped, looked up case-insensitively). File contents are then read
here with os.pread at the extents pycdlib reports, so any number of files can be read at once,
from several threads, without seeking a shared file object; images beyond 4 GiB (a 9 GB DVD) and
multi-extent files are handled, as offsets are plain integers.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from levitate.util.errors import LevitateError
from levitate.util.files import atomic_write

log = logging.getLogger("levitate")

CHUNK_SIZE = 1024 * 1024
_MAX_SYMLINK_HOPS = 40


@dataclass(frozen=True)
class IsoEntry:
    """One file, directory or symlink on the image."""

    path: str                          # absolute, "/"-separated, as listed
    is_dir: bool
    size: int                          # bytes of content (0 for directories and symlinks)
    extents: tuple[tuple[int, int], ...] = ()   # (byte offset in the image, length), in file order
    symlink: str | None = None         # Rock Ridge symlink target

    @property
    def name(self) -> str:
        return posixpath.basename(self.path) or "/"


class IsoReader:
    """An ISO 9660 image opened for reading. Use as a context manager; not for writing."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise LevitateError(f"no such ISO image: {self.path}", "check the path") from None
        except PermissionError:
            raise LevitateError(f"cannot read {self.path}: permission denied", "check its permissions") from None
        st = os.fstat(self._fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(self._fd)
            raise LevitateError(f"{self.path} is a directory, not an ISO image",
                                "give the .iso file, or use --source dir:PATH for an unpacked tree")
        self.image_size = st.st_size
        self._check_complete()
        self._entries: dict[str, IsoEntry] = {}
        self._children: dict[str, list[str]] = {}
        iso = pycdlib.PyCdlib()
        try:
            iso.open(str(self.path))
            try:
                self.volume_id = iso.pvd.volume_identifier.decode("ascii", "replace").strip()
                self.namespace = ("rockridge" if iso.has_rock_ridge() else
                                  "joliet" if iso.has_joliet() else "iso9660")
                self._index(iso)
            finally:
                iso.close()
        except (PyCdlibException, UnicodeError, ValueError, OSError, AttributeError) as e:
            os.close(self._fd)
            log.debug("pycdlib cannot read %s: %s", self.path, e)
            raise LevitateError(f"{self.path} is not an ISO 9660 image",
                                "check the file: it may be incomplete or not an ISO at all; "
                                "download it again") from None
        except BaseException:
            os.close(self._fd)
            raise

    def _check_complete(self) -> None:
        """Refuse an image shorter than its primary volume descriptor says (an interrupted download).

        pycdlib would silently cut files short at the end of the image instead.
        """
        pvd = os.pread(self._fd, 2048, 16 * 2048)
        if len(pvd) < 2048 or pvd[0] != 1 or pvd[1:6] != b"CD001":
            os.close(self._fd)
            raise LevitateError(f"{self.path} is not an ISO 9660 image",
                                "check the file: it may be incomplete or not an ISO at all; download it again")
        blocks, block_size = int.from_bytes(pvd[80:84], "little"), int.from_bytes(pvd[128:130], "little")
        if self.image_size < blocks * block_size:
            os.close(self._fd)
            raise LevitateError(f"{self.path} is truncated: {self.image_size} of {blocks * block_size} bytes",
                                "the download was interrupted; download it again (it resumes)")

    # --- building the index -------------------------------------------------------------------

    def _index(self, iso: pycdlib.PyCdlib) -> None:
        """Read the whole directory tree of the chosen namespace into memory."""
        key = {"rockridge": "rr_path", "joliet": "joliet_path", "iso9660": "iso_path"}[self.namespace]
        block = iso.logical_block_size
        self._entries["/"] = IsoEntry("/", True, 0)
        pending = [("/", "/")]   # (path as listed, path as pycdlib looks it up)
        while pending:
            path, lookup = pending.pop()
            names: list[str] = []
            for rec in iso.list_children(**{key: lookup}):
                if rec.is_dot() or rec.is_dotdot():
                    continue
                if self.namespace == "rockridge" and rec.rock_ridge is not None \
                        and rec.rock_ridge.relocated_record() and rec.parent is not None \
                        and lookup == _record_dir(rec, iso):
                    continue   # a deep directory moved into rr_moved/: it is listed where it belongs
                name, raw = self._name_of(rec)
                if not name or name in (".", "..") or "/" in name:
                    continue
                child = posixpath.join(path, name)
                if child in self._entries:   # e.g. ISO 9660 names differing only by version
                    continue
                names.append(name)
                if rec.is_dir():
                    self._entries[child] = IsoEntry(child, True, 0)
                    pending.append((child, posixpath.join(lookup, raw)))
                elif rec.is_symlink():
                    target = rec.rock_ridge.symlink_path().decode("utf-8", "surrogateescape")
                    self._entries[child] = IsoEntry(child, False, 0, (), target)
                else:
                    extents = _extents(rec, block)
                    self._entries[child] = IsoEntry(child, False, sum(n for _, n in extents), extents)
            self._children[path] = sorted(names)

    def _name_of(self, rec) -> tuple[str, str]:
        """(name to show, name pycdlib looks the entry up by)."""
        if self.namespace == "rockridge" and rec.rock_ridge is not None:
            name = rec.rock_ridge.name().decode("utf-8", "surrogateescape")
            return name, name
        if self.namespace == "joliet":
            name = rec.file_identifier().decode("utf-16_be", "surrogatepass")
            return _strip_version(name), name
        raw = rec.file_identifier().decode("latin-1")
        return _strip_version(raw).lower(), raw

    # --- lookups ------------------------------------------------------------------------------

    def _lookup(self, path: str, *, follow: bool = True) -> IsoEntry:
        norm = _normalize(path)
        for _ in range(_MAX_SYMLINK_HOPS):
            entry = self._entries.get(norm if self.namespace != "iso9660" else norm.lower())
            if entry is None:
                # a symlinked directory in the middle of the path
                parent, base = posixpath.split(norm)
                if parent != norm and base:
                    try:
                        parent_entry = self._lookup(parent)
                    except LevitateError:
                        parent_entry = None
                    if parent_entry is not None and parent_entry.path != parent:
                        norm = posixpath.join(parent_entry.path, base)
                        continue
                raise LevitateError(f"{path} not found on {self.path.name}",
                                    "the image may not be a Rocky DVD, or a different release")
            if not (follow and entry.symlink is not None):
                return entry
            norm = _normalize(posixpath.join(posixpath.dirname(entry.path), entry.symlink))
        raise LevitateError(f"{path} on {self.path.name}: too many levels of symbolic links", None)

    def exists(self, path: str) -> bool:
        try:
            self._lookup(path)
            return True
        except LevitateError:
            return False

    def is_dir(self, path: str) -> bool:
        return self.exists(path) and self._lookup(path).is_dir

    def stat(self, path: str) -> IsoEntry:
        """The entry at `path`, symlinks followed."""
        return self._lookup(path)

    def listdir(self, path: str = "/") -> list[str]:
        """Names in a directory, sorted."""
        entry = self._lookup(path)
        if not entry.is_dir:
            raise LevitateError(f"{path} on {self.path.name} is not a directory", None)
        return list(self._children[entry.path])

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like os.walk (top-down; prune by editing the list of directories)."""
        entry = self._lookup(top)
        if not entry.is_dir:
            raise LevitateError(f"{top} on {self.path.name} is not a directory", None)
        stack = [entry.path]
        while stack:
            path = stack.pop()
            dirs, files = [], []
            for name in self._children[path]:
                (dirs if self._entries[posixpath.join(path, name)].is_dir else files).append(name)
            yield path, dirs, files
            stack.extend(posixpath.join(path, d) for d in reversed(dirs))

    # --- contents -----------------------------------------------------------------------------

    def open(self, path: str) -> io.BufferedReader:
        """A seekable binary file object for a file on the image (read while the reader is open)."""
        entry = self._lookup(path)
        if entry.is_dir:
            raise LevitateError(f"{path} on {self.path.name} is a directory, not a file", None)
        for offset, length in entry.extents:
            if offset + length > self.image_size:
                raise LevitateError(f"{self.path} is truncated: {entry.path} lies beyond its end",
                                    "the image is incomplete; download it again")
        return io.BufferedReader(_ExtentFile(self._fd, entry), buffer_size=64 * 1024)

    def read_bytes(self, path: str) -> bytes:
        with self.open(path) as f:
            return f.read()

    def extract(self, path: str, dest: str | os.PathLike) -> Path:
        """Copy a file out of the image to `dest` (via a temporary name, then renamed)."""
        dest = Path(dest)
        with self.open(path) as src, atomic_write(dest, perm=0o644) as out:
            while chunk := src.read(CHUNK_SIZE):
                out.write(chunk)
        return dest

    def extract_tree(self, path: str, dest: str | os.PathLike) -> Path:
        """Copy a directory of the image, recursively, under `dest` (each file via a temporary name)."""
        dest = Path(dest)
        top = self._lookup(path).path
        for dirpath, _, files in self.walk(top):
            rel = posixpath.relpath(dirpath, top)
            target = dest if rel == "." else dest / rel
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                entry = self._entries[posixpath.join(dirpath, name)]
                if entry.symlink is not None:
                    link = target / name
                    link.unlink(missing_ok=True)
                    link.symlink_to(entry.symlink)
                else:
                    self.extract(entry.path, target / name)
        return dest

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "IsoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IsoReader({str(self.path)!r}, {self.namespace}, {len(self._entries)} entries)"


class _ExtentFile(io.RawIOBase):
    """A file's extents in the image, read with os.pread (no shared file position)."""

    def __init__(self, fd: int, entry: IsoEntry):
        super().__init__()
        self._fd, self._extents, self._size = fd, entry.extents, entry.size
        self._pos = 0
        self.name = entry.path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        start = 0
        for offset, length in self._extents:   # find the extent holding self._pos
            if self._pos < start + length:
                within = self._pos - start
                want = min(len(view), length - within)
                data = os.pread(self._fd, want, offset + within)
                if len(data) < want:
                    raise OSError(f"{self.name}: the image ends early (truncated?)")
                view[:len(data)] = data
                self._pos += len(data)
                return len(data)
            start += length
        return 0


def _extents(rec, block: int) -> tuple[tuple[int, int], ...]:
    """(byte offset, length) runs of a file record, following multi-extent continuations."""
    runs = []
    while rec is not None:
        length = rec.get_data_length()
        if not length:
            break
        location = rec.inode.extent_location() if rec.inode is not None else rec.extent_location()
        runs.append(((location + getattr(rec, "data_extent_offset", 0)) * block, length))
        rec = getattr(rec, "data_continuation", None)
    return tuple(runs)


def _record_dir(rec, iso) -> str | None:
    """The Rock Ridge path of the directory physically holding `rec` (for relocated directories)."""
    try:
        return iso.full_path_from_dirrecord(rec.parent, rockridge=True)
    except PyCdlibException:
        return None


def _strip_version(name: str) -> str:
    """ISO 9660 'NAME.EXT;1' -> 'NAME.EXT'; 'NAME.;1' -> 'NAME'."""
    name = name.split(";", 1)[0]
    return name[:-1] if name.endswith(".") else name


def _normalize(path: str) -> str:
    return posixpath.normpath("/" + str(path).lstrip("/")).replace("//", "/")
