"""Extract one RPM into a root directory: streaming, in one pass, never writing outside the root.

What this does instead of `rpm2cpio | cpio -idm` (and why):
- The signed header, not the payload, says what a file is: its path must be in the header's file
  list, and mode, mtime, link target and capabilities come from the header. A tampered payload
  can therefore not add files or setuid bits; its content is caught by the payload digest at the
  end of the pass (the caller must discard the tree when extraction raises).
- Paths are resolved inside the root, component by component: symlinks already in the tree are
  followed as a chroot would (an absolute target such as /lib -> /usr/lib is relative to the
  root, never the host's /), ".." that would climb above the root is refused, and the final
  component is never followed (O_NOFOLLOW | O_EXCL after unlinking what was there). Directories
  are never removed or replaced, so a path checked once stays free of symlinks.
- Owners are not applied here: the payload's ids are the build host's, and the tree's users only
  exist once its own /etc/passwd does. Non-root owners are returned BY NAME, with the mode to
  restore (chown clears setuid bits and file capabilities); `apply_ownership` does that later.
- `%ghost` files are skipped, hardlink sets are linked to the member carrying the data, file
  capabilities become security.capability xattrs (fcaps.py), directory modes and mtimes are set
  after their content.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from levitate.rpm import fcaps
from levitate.rpm.cpio import CpioReader, normalize_name
from levitate.rpm.header import HASH_NAMES, FileInfo, RpmFile
from levitate.rpm.openpgp import PublicKey
from levitate.rpm.verify import open_verified_payload, verify_header
from levitate.util.errors import LevitateError, VerificationError

log = logging.getLogger("levitate.rpm")

BUFSIZE = 1024 * 1024
MAX_SYMLINKS = 40
_O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class ExtractError(LevitateError):
    """An entry could not be extracted safely; the tree must not be used."""


@dataclass(frozen=True, slots=True)
class Ownership:
    """A file whose owner is not root: apply once the tree's users exist (see apply_ownership)."""

    path: str          # absolute in the tree, as the package names it ("/usr/bin/x")
    user: str
    group: str
    mode: int          # permission bits incl. setuid/setgid/sticky, restored after chown
    is_symlink: bool = False


@dataclass(frozen=True, slots=True)
class FileCapability:
    path: str          # absolute in the tree
    text: str          # as rpm records it, "cap_net_raw=ep"
    value: bytes       # the security.capability xattr value


@dataclass
class ExtractResult:
    nevra: str
    name: str
    owners: list[Ownership] = field(default_factory=list)
    capabilities: list[FileCapability] = field(default_factory=list)
    files: int = 0                 # entries created (files, dirs, links, nodes)
    bytes_written: int = 0
    skipped: list[str] = field(default_factory=list)   # ghosts and nodes not created
    signer: PublicKey | None = None


# -- path resolution inside the root ---------------------------------------------------------

class TreeResolver:
    """Maps paths as packages name them to real directories inside root, chroot-style.

    Cache keys are logical paths ("lib/modules"), values real paths relative to the root that
    contain no symlinks ("usr/lib/modules"). Missing directories are created (0755, as rpm does).
    """

    def __init__(self, root: str, what: str):
        self.root = os.path.abspath(root)
        self.what = what
        self._cache: dict[str, str] = {"": ""}
        self._entry: str | None = None

    def host(self, real: str) -> str:
        return f"{self.root}/{real}" if real else self.root

    def _refuse(self, logical: str, detail: str) -> ExtractError:
        return ExtractError(f"{self.what}: refusing /{self._entry or logical}: {detail}",
                            "the package tries to write outside the target tree; do not use it")

    def directory(self, logical: str, *, create: bool = True, entry: str | None = None) -> str:
        """Real relative path of the directory `logical` (no "." or ".." inside). `entry` names
        the package entry being placed, for error messages."""
        cached = self._cache.get(logical)
        if cached is not None:
            return cached
        self._entry = entry
        return self._directory(logical, create)

    def _directory(self, logical: str, create: bool) -> str:
        cached = self._cache.get(logical)
        if cached is not None:
            return cached
        head, _, last = logical.rpartition("/")
        real = self._step(self._directory(head, create), last, logical, [0], create)
        self._cache[logical] = real
        return real

    def _step(self, base: str, name: str, logical: str, links: list[int], create: bool) -> str:
        rel = f"{base}/{name}" if base else name
        path = self.host(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)
            except FileExistsError:      # another extraction made it meanwhile
                return self._step(base, name, logical, links, create)
            return rel
        if stat.S_ISDIR(st.st_mode):
            return rel
        if stat.S_ISLNK(st.st_mode):
            links[0] += 1
            if links[0] > MAX_SYMLINKS:
                raise self._refuse(logical, "too many levels of symbolic links")
            target = os.readlink(path)
            start = "" if target.startswith("/") else base      # absolute: relative to the root
            return self._walk(start, target, logical, links, create)
        raise ExtractError(f"{self.what}: cannot use /{rel} as a directory: it is a file",
                           "another package put a file where this one needs a directory")

    def _walk(self, base: str, target: str, logical: str, links: list[int], create: bool) -> str:
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not base:
                    raise self._refuse(logical, "a symlink on its way leads outside the root")
                base = base.rpartition("/")[0]
                continue
            base = self._step(base, part, logical, links, create)
        return base

    def forget(self) -> None:
        """Drop cached resolutions (after a symlink in the tree was replaced)."""
        self._cache = {"": ""}


def safe_relpath(name: str, what: str, *, absolute: bool = False) -> str:
    """An archive member name ("./usr/bin/x"), or with absolute=True a header path
    ("/usr/bin/x"), as a relative path without "." components; ".." and (for members)
    absolute names are refused."""
    if absolute:
        if not name.startswith("/"):
            raise ExtractError(f"{what}: refusing file {name!r}: the header's paths must be absolute",
                               "the package is malformed; do not use it")
        rel = normalize_name(name.lstrip("/"))
    else:
        rel = normalize_name(name)
    if rel.startswith("/"):
        raise ExtractError(f"{what}: refusing entry {name!r}: absolute path",
                           "the package tries to write outside the target tree; do not use it")
    if rel == ".." or rel.startswith("../") or "/../" in rel or rel.endswith("/.."):
        raise ExtractError(f"{what}: refusing entry {name!r}: '..' in its path",
                           "the package tries to write outside the target tree; do not use it")
    return rel


# -- the extractor ---------------------------------------------------------------------------

class _Extractor:
    def __init__(self, rpm: RpmFile, root: Path, result: ExtractResult,
                 verify_file_digests: bool, set_caps: bool):
        self.rpm = rpm
        self.what = rpm.name_hint
        self.result = result
        self.tree = TreeResolver(os.fspath(root), self.what)
        self.set_caps = set_caps
        self.buf = bytearray(BUFSIZE)
        self.by_path: dict[str, FileInfo] = {}
        for info in rpm.files:
            self.by_path[safe_relpath(info.path, self.what, absolute=True)] = info
        self.seen: set[int] = set()
        self.hardlinks = rpm.hardlink_sets
        self.link_done: dict[tuple[int, ...], str] = {}       # set -> host path with the data
        self.link_pending: dict[tuple[int, ...], list[str]] = {}
        self.dirs: list[tuple[str, FileInfo]] = []
        self.digest_name = HASH_NAMES.get(rpm.file_digest_algo) if verify_file_digests else None

    def error(self, rel: str, detail: str, hint: str | None = None) -> ExtractError:
        return ExtractError(f"{self.what}: /{rel}: {detail}", hint)

    # entries

    def entry(self, reader: CpioReader, entry) -> None:
        rel = safe_relpath(entry.name, self.what)
        info = self.by_path.get(rel)
        if info is None:
            raise self.error(rel, "in the payload but not in the package's file list (tampered?)",
                             "do not use this package")
        if info.index in self.seen:
            raise self.error(rel, "appears twice in the payload (tampered?)")
        self.seen.add(info.index)
        if info.is_ghost:
            self.result.skipped.append(info.path)
            return
        kind = stat.S_IFMT(info.mode)
        if entry.mode and stat.S_IFMT(entry.mode) != kind:
            raise self.error(rel, "payload and header disagree on the file type (tampered?)")
        if not rel:
            if kind != stat.S_IFDIR:
                raise self.error(rel, "the package's entry for the root is not a directory (tampered?)",
                                 "do not use this package")
            self.root_dir(info)
            return
        parent, _, base = rel.rpartition("/")
        if kind == stat.S_IFDIR:
            self.make_dir(rel, info)
            return
        real_parent = self.tree.directory(parent, entry=rel)
        path = f"{self.tree.host(real_parent)}/{base}"
        if kind == stat.S_IFREG:
            self.regular(reader, entry, rel, path, info)
        elif kind == stat.S_IFLNK:
            self.symlink(reader, entry, rel, path, info)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            self.node(entry, rel, path, info)
            return
        else:
            self.result.skipped.append(info.path)
            return
        self.result.files += 1
        self.note_owner(info)

    def note_owner(self, info: FileInfo) -> None:
        if info.user != "root" or info.group != "root":
            self.result.owners.append(Ownership(info.path, info.user, info.group, info.mode & 0o7777,
                                                stat.S_ISLNK(info.mode)))

    def _clear(self, rel: str, path: str) -> None:
        """Remove a non-directory at path (the final component is never followed)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self.error(rel, "a directory is in the way",
                             "another package has a directory here; extract the package that "
                             "owns the symlink or file first (e.g. filesystem)")
        try:
            os.unlink(path)
        except FileNotFoundError:     # removed meanwhile by a parallel extraction
            pass
        if stat.S_ISLNK(st.st_mode):
            self.tree.forget()

    def regular(self, reader: CpioReader, entry, rel: str, path: str, info: FileInfo) -> None:
        members = self.hardlinks.get(info.index)
        if members is not None and info.index != members[-1]:
            # Data comes with the last member of the set: link this one to it.
            if entry.size:
                raise self.error(rel, "hardlink member carries data it should not (tampered?)")
            if members in self.link_done:
                self.link(rel, self.link_done[members], path)
            else:
                self.link_pending.setdefault(members, []).append(path)
            return
        if entry.size != info.size:
            raise self.error(rel, f"payload has {entry.size} bytes, the header says {info.size} (tampered?)")
        fd = self._create(rel, path, lambda: os.open(path, _O_CREATE, 0o600))
        try:
            h = hashlib.new(self.digest_name) if self.digest_name and info.digest else None
            view = memoryview(self.buf)
            while True:
                n = reader.readinto(view)
                if not n:
                    break
                chunk = view[:n]
                if h is not None:
                    h.update(chunk)
                while chunk:
                    written = os.write(fd, chunk)
                    chunk = chunk[written:]
            self.result.bytes_written += info.size
            if h is not None and h.hexdigest() != info.digest.lower():
                raise self.error(rel, "file digest mismatch (tampered?)", "do not use this package")
            os.fchmod(fd, info.mode & 0o7777)
            if info.caps:
                self.apply_caps(fd, rel, info)
            os.utime(fd, ns=(info.mtime * 1_000_000_000,) * 2)
        finally:
            os.close(fd)
        if members is not None:
            self.link_done[members] = path
            for other in self.link_pending.pop(members, []):
                self.link(rel, path, other)

    def apply_caps(self, fd: int, rel: str, info: FileInfo) -> None:
        try:
            value = fcaps.caps_to_xattr(info.caps)
        except fcaps.CapsError as exc:
            raise self.error(rel, exc.message, exc.hint) from None
        self.result.capabilities.append(FileCapability(info.path, info.caps, value))
        if not self.set_caps:
            return
        try:
            os.setxattr(fd, fcaps.XATTR_NAME, value)
        except OSError as exc:
            raise self.error(rel, f"cannot set file capabilities {info.caps!r}: {exc.strerror}",
                             "extract as root onto a filesystem with xattr support "
                             "(ping and friends need their capabilities)") from None

    def _create(self, rel: str, path: str, make):
        """make() a new entry at path, replacing a non-directory that is there. Packages
        extracted in parallel may own the same file: retry when one of them wins the race."""
        for attempt in range(8):
            try:
                return make()
            except FileExistsError:
                if attempt == 7:
                    raise
                self._clear(rel, path)

    def link(self, rel: str, target: str, path: str) -> None:
        self._create(rel, path, lambda: os.link(target, path, follow_symlinks=False))

    def symlink(self, reader: CpioReader, entry, rel: str, path: str, info: FileInfo) -> None:
        data = reader.read(entry.size) if entry.size <= 65536 else None
        target = info.linkto
        if data is None or data.decode("utf-8", "surrogateescape") != target:
            raise self.error(rel, "payload and header disagree on the symlink target (tampered?)")
        self._create(rel, path, lambda: os.symlink(target, path))
        os.utime(path, ns=(info.mtime * 1_000_000_000,) * 2, follow_symlinks=False)

    def make_dir(self, rel: str, info: FileInfo) -> None:
        parent, _, base = rel.rpartition("/")
        real_parent = self.tree.directory(parent, entry=rel)
        path = f"{self.tree.host(real_parent)}/{base}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                # rpm keeps a symlink to a directory where a package has a directory
                # (merged /usr: /lib -> usr/lib). Resolve it inside the root; leave it be.
                self.tree.directory(rel, entry=rel)
                self.result.files += 1
                return
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(path)
                os.mkdir(path, 0o700)
        self.tree._cache[rel] = f"{real_parent}/{base}" if real_parent else base
        self.dirs.append((path, info))
        self.result.files += 1
        self.note_owner(info)

    def root_dir(self, info: FileInfo) -> None:
        """The tree's root itself: Fedora/RHEL's `filesystem` owns it (`%dir %attr(555,root,root) /`).
        Like rpm, give the root the package's mode and time once the package is in."""
        self.dirs.append((self.tree.root, info))
        self.result.files += 1
        self.note_owner(info)

    def node(self, entry, rel: str, path: str, info: FileInfo) -> None:
        kind = stat.S_IFMT(info.mode)
        if kind != stat.S_IFIFO and not _IS_ROOT:
            log.debug("%s: skipping device node %s (not root)", self.what, info.path)
            self.result.skipped.append(info.path)
            return
        if entry.rdevmajor or entry.rdevminor:
            dev = os.makedev(entry.rdevmajor, entry.rdevminor)
        else:
            dev = os.makedev((info.rdev >> 8) & 0xFF, info.rdev & 0xFF)
        self._create(rel, path, lambda: os.mknod(path, info.mode, dev))
        os.chmod(path, info.mode & 0o7777)
        os.utime(path, ns=(info.mtime * 1_000_000_000,) * 2, follow_symlinks=False)
        self.result.files += 1
        self.note_owner(info)

    # end of archive

    def finish_links(self) -> None:
        for members, paths in self.link_pending.items():
            raise self.error(paths[0][len(self.tree.root) + 1:],
                             "hardlink set without the member carrying its data (truncated or tampered?)")

    def check_complete(self) -> None:
        missing = [f.path for f in self.rpm.files if not f.is_ghost and f.index not in self.seen]
        if missing:
            raise ExtractError(f"{self.what}: payload lacks {len(missing)} file(s) the header lists, "
                               f"e.g. {missing[0]} (truncated or tampered?)", "do not use this package")

    def finish_dirs(self) -> None:
        for path, info in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            os.chmod(path, info.mode & 0o7777)
            os.utime(path, ns=(info.mtime * 1_000_000_000,) * 2, follow_symlinks=False)


def _stripped_lookup(rpm: RpmFile) -> Callable[[int], tuple[str, int]]:
    """For 07070X payloads: file index -> (name, bytes stored), by rpm's rules."""
    files, links = rpm.files, rpm.hardlink_sets

    def lookup(index: int) -> tuple[str, int]:
        info = files[index]
        kind = stat.S_IFMT(info.mode)
        if kind == stat.S_IFREG:
            members = links.get(index)
            size = 0 if members is not None and members[-1] != index else info.size
        elif kind == stat.S_IFLNK:
            size = info.size
        else:
            size = 0
        return "." + info.path, size

    return lookup


def extract_rpm(path: str | os.PathLike, root: str | os.PathLike, *,
                trusted_keys: Iterable[PublicKey] | None = None,
                on_bytes: Callable[[int], None] | None = None,
                allow_sha1: bool = False,
                verify_file_digests: bool | None = None,
                set_caps: bool = True) -> ExtractResult:
    """Extract one package into root in a single streaming pass; see the module docstring.

    trusted_keys=None skips the signature check (header and payload digests are still checked).
    on_bytes(n) reports compressed bytes read (progress against the file size).
    verify_file_digests: check each file against the header's digest; default only when the
    package has no payload digest (its content is then covered by nothing else).
    Raises VerificationError (signature, digests) or ExtractError/LevitateError; on any error the
    tree holds a partial package and must be discarded by the caller.
    """
    path = Path(path)
    root = Path(root)
    if not root.is_dir():
        raise ExtractError(f"extraction root {root} is not a directory")
    with RpmFile.open(path) as rpm:
        what = rpm.name_hint
        check = verify_header(rpm, trusted_keys, allow_sha1=allow_sha1)
        if verify_file_digests is None:
            verify_file_digests = not check.payload_covered
        result = ExtractResult(nevra=rpm.nevra, name=rpm.name)
        ex = _Extractor(rpm, root, result, verify_file_digests, set_caps)
        payload = open_verified_payload(rpm, check, on_bytes=on_bytes)
        buffered = io.BufferedReader(payload, BUFSIZE)
        reader = CpioReader(buffered, what=what, stripped_sizes=_stripped_lookup(rpm))
        entry_name = "?"
        try:
            for entry in reader:
                entry_name = entry.name
                ex.entry(reader, entry)
            entry_name = "(end of payload)"
            # The payload's digest is the last word on its content: check it before anything
            # else is reported as done.
            payload.finish()
            ex.finish_links()
            ex.check_complete()
            ex.finish_dirs()
        except (VerificationError, ExtractError):
            # Garbled data usually means a tampered payload: say so when the digest agrees.
            payload.check_digest_after_error()
            raise
        except OSError as exc:
            hint = ("free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                    else "check permissions on the target tree")
            raise ExtractError(f"{what}: cannot extract {entry_name}: {exc.strerror or exc}", hint) from None
        result.signer = check.signer
        return result


# -- owners, applied once the tree's users exist -----------------------------------------------

def read_id_map(path: str | os.PathLike) -> dict[str, int]:
    """name -> id from a passwd or group file."""
    ids: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[0] and fields[2].isdigit():
                    ids.setdefault(fields[0], int(fields[2]))
    except FileNotFoundError:
        pass
    return ids


def apply_ownership(root: str | os.PathLike, owners: Iterable[Ownership],
                    capabilities: Iterable[FileCapability] = (), *,
                    users: dict[str, int] | None = None,
                    groups: dict[str, int] | None = None) -> None:
    """chown files by name using the TREE's /etc/passwd and /etc/group (not the host's), then
    restore their modes (chown clears setuid/setgid) and file capabilities (chown drops them).

    Pass every ExtractResult's owners and capabilities; capabilities of files that were not
    chowned are left alone. Unknown names raise LevitateError naming the file.
    """
    root = os.path.abspath(root)
    users = users if users is not None else read_id_map(os.path.join(root, "etc/passwd"))
    groups = groups if groups is not None else read_id_map(os.path.join(root, "etc/group"))
    tree = TreeResolver(root, "ownership")
    changed: set[str] = set()
    for o in owners:
        if o.user not in users:
            raise LevitateError(f"{o.path}: owner {o.user!r} does not exist in the tree's /etc/passwd",
                                "the package creating this user (setup, or a sysusers.d entry) must "
                                "be installed before owners are applied")
        if o.group not in groups:
            raise LevitateError(f"{o.path}: group {o.group!r} does not exist in the tree's /etc/group",
                                "the package creating this group must be installed before owners are applied")
        rel = safe_relpath(o.path, "ownership", absolute=True)
        parent, _, base = rel.rpartition("/")
        try:
            host = f"{tree.host(tree.directory(parent, create=False))}/{base}"
            os.lchown(host, users[o.user], groups[o.group])
            if not o.is_symlink and not stat.S_ISLNK(os.lstat(host).st_mode):
                os.chmod(host, o.mode)
        except FileNotFoundError:
            continue                      # removed since (e.g. replaced by another package)
        changed.add(o.path)
    for cap in capabilities:
        if cap.path in changed:
            rel = safe_relpath(cap.path, "capabilities", absolute=True)
            parent, _, base = rel.rpartition("/")
            host = f"{tree.host(tree.directory(parent, create=False))}/{base}"
            if stat.S_ISREG(os.lstat(host).st_mode):
                os.setxattr(host, fcaps.XATTR_NAME, cap.value, follow_symlinks=False)
