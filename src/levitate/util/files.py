"""Small file helpers shared by every stage.

Every output file is written under a temporary name in its own directory and renamed over the
final name (`os.replace`, atomic on one file system): a reader, or the next run after a crash,
sees the old file or the whole new one, never a half-written one. The data is fsynced before
the rename (otherwise a crash can leave the new name pointing at an empty file on ext4/xfs), and
with `sync_dir` the directory too, so the rename itself survives a power cut: used where a lost
rename loses something (a recipe's state, a lock file, a boot entry), not for rebuildable output.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new file with a unique name beside `path` (as mkstemp, but created 0666 minus the umask,
    as a plain open() would, so the result has the permissions the old writers gave)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _publish(tmp: Path, path: Path, perm: int | None, owner: tuple[int, int] | None, sync_dir: bool) -> None:
    if owner is not None:
        os.chown(tmp, *owner, follow_symlinks=False)
    if perm is not None:
        os.chmod(tmp, perm)
    os.replace(tmp, path)
    if sync_dir:
        _fsync_dir(path.parent)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, perm: int | None = None,
                 owner: tuple[int, int] | None = None, sync_dir: bool = False,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing ("wb" or "w"); when the block ends without
    an exception the file is fsynced, given `perm` and `owner` (uid, gid) and renamed to `path`.
    On any exception the temporary file is removed and `path` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None,
                       errors=errors, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, perm, owner, sync_dir)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str, *, perm: int | None = None,
                 owner: tuple[int, int] | None = None, sync_dir: bool = False) -> None:
    """Replace `path` with `data` (str is written as UTF-8, newlines as given), see atomic_write."""
    if isinstance(data, str):
        with atomic_write(path, "w", perm=perm, owner=owner, sync_dir=sync_dir,
                          encoding="utf-8", newline="") as f:
            f.write(data)
    else:
        with atomic_write(path, "wb", perm=perm, owner=owner, sync_dir=sync_dir) as f:
            f.write(data)


@contextmanager
def atomic_output(path: str | os.PathLike, *, perm: int | None = None, owner: tuple[int, int] | None = None,
                  sync_dir: bool = False) -> Iterator[Path]:
    """A name that does not exist yet, for a tool that creates the file itself (mkfs, xorriso,
    qemu-img, a copy): it lies in a private directory beside `path`, so the name is unique
    and the rename stays on one file system. When the block ends without an exception the result
    (a file, or a symbolic link) is fsynced and renamed to `path`; the private directory goes on
    every exit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = workdir / path.name
        yield tmp
        if not tmp.is_symlink():
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _publish(tmp, path, perm, owner, sync_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def in_tree(root: Path, path: Path) -> Path | None:
    """What `path` (inside the tree `root`) names once its links are followed as inside a chroot
    at `root` (an absolute target is relative to the tree, never the host's /); None when it does
    not exist or leads out of the tree."""
    root = root.resolve()
    for _ in range(40):
        if not path.is_symlink():
            break
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    try:
        real = path.resolve(strict=True)
        real.relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return None
    return real
