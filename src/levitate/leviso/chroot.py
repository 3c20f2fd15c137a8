"""Run a tree's own tools inside it: the API filesystems are mounted for the duration and always
unmounted again, also on failure and Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..util.run import run

log = logging.getLogger("levitate")

# What the configuration tools need: device nodes, /proc for ldconfig/systemctl, a private /run
# and /tmp so nothing they write there ends up in the image.
MOUNTS = (
    ("dev", ["--bind", "/dev"]),
    ("proc", ["-t", "proc", "proc"]),
    ("sys", ["-t", "sysfs", "sysfs"]),
    ("run", ["-t", "tmpfs", "tmpfs"]),
    ("tmp", ["-t", "tmpfs", "tmpfs"]),
)


@contextlib.contextmanager
def chroot_mounts(root: Path, binds: Sequence[tuple[Path, str]] = ()) -> Iterator[None]:
    """Mount API filesystems (and extra read-only `binds`: host dir -> path inside) under `root`."""
    mounted: list[Path] = []
    try:
        for name, args in MOUNTS:
            target = root / name
            if target.is_symlink():
                continue
            target.mkdir(mode=0o755, exist_ok=True)
            run(["mount", *args, target], what=f"mounting {name} in the chroot")
            mounted.append(target)
        for host_dir, inside in binds:
            target = root / inside.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            run(["mount", "--bind", "-o", "ro", host_dir, target], what=f"bind-mounting {host_dir}")
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            proc = run(["umount", target], check=False)
            if proc.returncode != 0:
                run(["umount", "--lazy", target], check=False)


def in_chroot(root: Path, argv: Sequence[str], **kwargs):
    """Run `argv` with `root` as /, with a clean, predictable environment."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "SYSTEMD_OFFLINE": "1"}
    return run(["chroot", root, *argv], env=env, **kwargs)


def tree_has(root: Path, *candidates: str) -> str | None:
    """The first of `candidates` (absolute paths inside the tree) that exists there, if any."""
    for candidate in candidates:
        if os.path.lexists(root / candidate.lstrip("/")):
            return candidate
    return None
