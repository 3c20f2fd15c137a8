"""Copy a directory tree exactly, in parallel: owners, modes (setuid included), hardlinks,
symlinks, xattrs (security.capability, system.posix_acl_* ACLs), nanosecond timestamps, sparse
files, device nodes, fifos and sockets.

Why worker processes: reading a compressed EROFS image costs kernel CPU per file, and Python's
per-file work holds the GIL, so threads would serialise it; forked workers share the file list
for free (copy-on-write) and spread both over every core. EROFS does not keep holes (a sparse
file is stored as compressed zeros, or as zeros in an uncompressed image), so every file is read
and its all-zero blocks are skipped: sparse files come out sparse again, as with `cp --sparse=always`.

Order matters for exactness: content first, then owner (chown clears setuid bits and
capabilities), then xattrs, then mode, then times; directories get theirs last, deepest first,
so neither new children nor a default ACL disturb them.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import mmap
import os
import select
import signal
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

BLOCK = 4096
CHUNK = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)
_SLOT = struct.Struct("QQ")                   # per worker: bytes copied, entries done
PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class CopyError(Exception):
    """Copying one entry failed; the message names it."""


@dataclass
class Plan:
    """What a walk of the source found: every entry once, hardlinks as (path, first path)."""
    dirs: list[tuple[str, os.stat_result]] = field(default_factory=list)
    items: list[tuple[str, os.stat_result]] = field(default_factory=list)   # files, symlinks, nodes
    links: list[tuple[str, str]] = field(default_factory=list)
    data_bytes: int = 0

    @property
    def entries(self) -> int:
        return len(self.dirs) + len(self.items) + len(self.links)

    def space_needed(self, block: int) -> int:
        """Bytes the copy takes on a filesystem with `block`-sized blocks (apparent sizes rounded up;
        one block per directory and per symlink too long to live in the inode)."""
        total = len(self.dirs) * block
        for _, st in self.items:
            if stat.S_ISREG(st.st_mode):
                total += -(-st.st_size // block) * block
            elif stat.S_ISLNK(st.st_mode) and st.st_size > 59:
                total += block
        return total


def walk(source: str) -> Plan:
    """lstat every entry under `source` (one filesystem: mount points below it are not entered)."""
    plan = Plan()
    root_st = os.lstat(source)
    plan.dirs.append(("", root_st))
    seen: dict[tuple[int, int], str] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(source, rel) if rel else source) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev == root_st.st_dev:
                        plan.dirs.append((path, st))
                        stack.append(path)
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    first = seen.get(key)
                    if first is not None:
                        plan.links.append((path, first))
                        continue
                    seen[key] = path
                plan.items.append((path, st))
                if stat.S_ISREG(st.st_mode):
                    plan.data_bytes += st.st_size
    return plan


def _copy_xattrs(src, dst, follow: bool) -> None:
    """Every extended attribute, security.capability and the ACLs included."""
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=follow), follow_symlinks=follow)


def _copy_sparse(sfd: int, dfd: int, size: int, buf: bytearray) -> None:
    """Read everything; write only blocks that are not all zeros, so holes stay holes. Each block
    is compared with a zero block where it starts (a memcmp that stops at the first non-zero
    byte): searching a chunk for a zero block costs several times more."""
    view = memoryview(buf)
    offset = end = 0                          # end: how far the destination file reaches
    while offset < size:
        n = os.preadv(sfd, [view], offset)
        if n == 0:
            break
        start = None                          # start of the current run of data blocks
        for pos in range(0, n, BLOCK):
            if buf.startswith(_ZERO_BLOCK[:n - pos], pos):
                if start is not None:
                    end = _write_all(dfd, view[start:pos], offset + start)
                    start = None
            elif start is None:
                start = pos
        if start is not None:
            end = _write_all(dfd, view[start:n], offset + start)
        offset += n
    if end < offset:                          # it ends in a hole
        os.ftruncate(dfd, offset)
    # Each file is read once: dropping its pages now keeps the image's decompressed copy out of
    # the live system's memory, and leaves the unmount (which runs alone) nothing to evict.
    try:
        os.posix_fadvise(sfd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:                           # only advice
        pass


def _write_all(fd: int, data: memoryview, offset: int) -> int:
    """pwrite all of `data` at `offset`; returns where it ended."""
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written
    return offset


def _clear(dst: str) -> None:
    """--force over an earlier copy: remove what is in the way (never follow it)."""
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise CopyError(f"{dst} is a directory where the image has a file: remove it and retry")
    os.unlink(dst)


def copy_item(src: str, dst: str, st: os.stat_result, buf: bytearray, replace: bool, plain: bool = False) -> None:
    """One non-directory entry, with everything about it. A `plain` destination (a filesystem
    without Unix owners, links or xattrs: the ESP at /boot) keeps a file's content and times;
    anything else cannot be stored there, and saying so beats losing it."""
    if replace:
        _clear(dst)
    mode = st.st_mode
    if plain and not stat.S_ISREG(mode):
        raise CopyError(f"{dst}: a {_kind(mode)} cannot be stored on this filesystem (FAT?); "
                        "mount it after recstrap, or not under the new root")
    if stat.S_ISREG(mode):
        sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                if st.st_size:
                    _copy_sparse(sfd, dfd, st.st_size, buf)
                if not plain:
                    os.fchown(dfd, st.st_uid, st.st_gid)
                    _copy_xattrs(sfd, dfd, True)
                    os.fchmod(dfd, stat.S_IMODE(mode))
                os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        _copy_xattrs(src, dst, False)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)   # char/block devices, fifos, sockets
    os.chown(dst, st.st_uid, st.st_gid)
    _copy_xattrs(src, dst, False)
    os.chmod(dst, stat.S_IMODE(mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _kind(mode: int) -> str:
    return {stat.S_IFLNK: "symlink", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
            stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}.get(stat.S_IFMT(mode), "special file")


def is_plain(rel: str, plain: tuple[str, ...]) -> bool:
    """`rel` lies in one of the `plain` subtrees (relative paths, "" is the whole tree)."""
    return any(p == "" or rel == p or rel.startswith(p + "/") for p in plain)


def _make_dirs(source: str, target: str, plan: Plan, replace: bool) -> None:
    """Every directory; one already there is used as it is (the empty mount points recstrap
    allows, such as the ESP at /boot), anything else in the way only with `replace`."""
    for rel, _ in plan.dirs[1:]:
        dst = f"{target}/{rel}"
        try:
            os.mkdir(dst, 0o700)
        except FileExistsError:
            if stat.S_ISDIR(os.lstat(dst).st_mode):      # never follow a symlink in the way
                continue
            if not replace:
                raise
            os.unlink(dst)
            os.mkdir(dst, 0o700)


def _finish_dirs(source: str, target: str, plan: Plan, plain: tuple[str, ...]) -> None:
    for rel, st in reversed(plan.dirs):                  # children before parents
        src = f"{source}/{rel}" if rel else source
        dst = f"{target}/{rel}" if rel else target
        if is_plain(rel, plain):
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            continue
        os.chown(dst, st.st_uid, st.st_gid)
        _copy_xattrs(src, dst, True)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _share(items: list[tuple[str, os.stat_result]], workers: int) -> list[list[tuple[str, os.stat_result]]]:
    """Largest first to the least loaded worker; a small per-entry cost keeps file counts even too."""
    shares: list[list[tuple[str, os.stat_result]]] = [[] for _ in range(workers)]
    heap = [(0, i) for i in range(workers)]
    for item in sorted(items, key=lambda it: it[1].st_size, reverse=True):
        load, i = heapq.heappop(heap)
        shares[i].append(item)
        heapq.heappush(heap, (load + item[1].st_size + 16384, i))
    return shares


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _worker(source: str, target: str, share, replace: bool, plain: tuple[str, ...], counters: mmap.mmap,
            slot: int, errw: int) -> None:
    """In a forked child: copy `share`, count progress into the shared page, report the first failure."""
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _die_with_parent()
    buf = bytearray(CHUNK)
    done = copied = 0
    rel = ""
    try:
        for rel, st in share:
            copy_item(f"{source}/{rel}", f"{target}/{rel}", st, buf, replace, is_plain(rel, plain))
            done += 1
            if stat.S_ISREG(st.st_mode):
                copied += st.st_size
            _SLOT.pack_into(counters, slot * _SLOT.size, copied, done)
    except BaseException as exc:                           # noqa: BLE001 - reported to the parent
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        os.write(errw, f"/{rel}: {reason}\n".encode(errors="replace"))
        os._exit(1)
    os._exit(0)


def copy_tree(source: str, target: str, plan: Plan, *, workers: int | None = None, replace: bool = False,
              plain: tuple[str, ...] = (), progress: Callable[[int, int], None] | None = None) -> None:
    """Copy `plan` (a walk of `source`) into the existing directory `target`.

    `replace` (recstrap --force): entries already there are replaced, never written through.
    `plain`: subtrees (relative paths) on filesystems without Unix metadata, where files get their
    content and times only and anything that is not a file or directory is an error.
    `progress(bytes, entries)` is called a few times a second. Raises CopyError naming the entry
    that failed; on any exception (Ctrl-C included) every worker is stopped before it propagates.
    """
    workers = max(1, min(workers or (os.cpu_count() or 1) * 2, len(plan.items) or 1))
    _make_dirs(source, target, plan, replace)
    counters = mmap.mmap(-1, _SLOT.size * workers)
    errr, errw = os.pipe()
    pids = []
    try:
        for slot, share in enumerate(_share(plan.items, workers)):
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)   # no Python handler runs in a child
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(errr)
                    _worker(source, target, share, replace, plain, counters, slot, errw)
                finally:
                    os._exit(1)
            pids.append(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        # Forget errw before closing it: a Ctrl-C landing between the two would otherwise make the
        # finally close it again, and its EBADF would replace the KeyboardInterrupt.
        errw, parent_end = -1, errw
        os.close(parent_end)
        message = b""
        while True:                                        # EOF on the pipe: every worker has exited
            ready, _, _ = select.select([errr], [], [], 0.25)
            if ready:
                data = os.read(errr, 4096)
                if not data:
                    break
                message += data
                break
            if progress:
                progress(*_totals(counters, workers))
        if message:
            raise CopyError(message.decode(errors="replace").splitlines()[0])
        while pids:
            _, status = os.waitpid(pids.pop(), 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise CopyError(f"a copy worker died ({_describe(status)})")
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(errr)
        if errw >= 0:
            os.close(errw)
    for rel, first in plan.links:
        dst = f"{target}/{rel}"
        if replace:
            _clear(dst)
        if is_plain(rel, plain) or is_plain(first, plain):
            raise CopyError(f"{dst}: a hardlink to /{first} cannot be stored on this filesystem (FAT?); "
                            "mount it after recstrap, or not under the new root")
        os.link(f"{target}/{first}", dst, follow_symlinks=False)
    _finish_dirs(source, target, plan, plain)
    if progress:
        progress(*_totals(counters, workers))
    counters.close()


def _totals(counters: mmap.mmap, workers: int) -> tuple[int, int]:
    copied = done = 0
    for slot in range(workers):
        b, n = _SLOT.unpack_from(counters, slot * _SLOT.size)
        copied += b
        done += n
    return copied, done


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {-code}" if code < 0 else f"exit {code}"
