"""Locks on what several prefixes share: a recipe file (its state records one prefix) and a
build directory (`BUILD_ROOT/NAME-VERSION`, shared by every recipes directory and prefix that
use the same --build-dir).

The prefix lock (transaction.PrefixLock) keeps two operations off one prefix; it does not stop
the same recipe being installed into two prefixes at once, which would leave the state naming
one of them and the other's files orphaned, or one run deleting the other's build directory.
`EntryLock` is an flock on a hidden file beside the thing locked (`.NAME.rhai.lock`,
`NAME-VERSION.lock`), held for one recipe's step and removed after it. A second caller is
refused at once, as by the prefix lock. The file is unlinked while still locked, so a caller that
opened it before the unlink checks, once it holds the flock, that the name still leads to the
file it locked, and starts over otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..util.errors import LevitateError
from .transaction import LockedError, flock_or_refuse


class EntryLock:
    """Exclusive use of `what` (a description for the message) through the lock file `path`."""

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what
        self.fd: int | None = None

    def __enter__(self) -> "EntryLock":
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise LevitateError(f"cannot lock {self.what}: {e.strerror}: {self.path}",
                                    "the directory must be writable by the user running recipe"
                                    ) from None
            flock_or_refuse(fd, f"{self.what} is in use by another recipe operation",
                            "wait for it to finish, then run the command again")
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)                    # unlinked by its holder meanwhile: take the new one
        raise LockedError(f"cannot lock {self.what}: its lock file {self.path} keeps changing",
                          "wait for the other recipe operations to finish")

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
