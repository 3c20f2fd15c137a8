"""Questions about the kernel's mount table (read by util/mountinfo.py), fstab escaping, umount.

Standard library only: the install tools run with the live system's own python3.
"""

from __future__ import annotations

import os
import re

from ..util import mountinfo
from ..util.run import run

_SPECIAL = re.compile(r"[\s\\]", re.ASCII)   # what fstab(5) and the kernel write as \ooo (bytes: ASCII only)


def escape(text: str) -> str:
    """The inverse of mountinfo.unescape, as fstab(5) wants: whitespace and backslashes as \\ooo."""
    return _SPECIAL.sub(lambda m: f"\\{ord(m.group(0)):03o}", text)


def under(path: str, root: str) -> bool:
    """`path` is `root` or inside it (by path components, not string prefix)."""
    root = root.rstrip("/") or "/"
    return path == root or root == "/" or path.startswith(root + "/")


def mounts_under(root: str, table: list[mountinfo.MountEntry] | None = None) -> list[mountinfo.MountEntry]:
    """The mounts at or below `root` (a real path), in mount order; where a later mount hides an
    earlier one on the same target, only the later one."""
    table = mountinfo.read() if table is None else table
    visible: dict[str, mountinfo.MountEntry] = {}
    for entry in table:
        if under(entry.target, root):
            visible.pop(entry.target, None)
            visible[entry.target] = entry
    return list(visible.values())


def is_mount_point(path: str, table: list[mountinfo.MountEntry] | None = None) -> bool:
    real = os.path.realpath(path)
    table = mountinfo.read() if table is None else table
    return any(entry.target == real for entry in table)


def umount(target: str, *, lazy_fallback: bool = True) -> bool:
    """Unmount `target`; when it is busy, detach it lazily. True if it is gone."""
    if run(["umount", target], check=False).returncode == 0:
        return True
    return lazy_fallback and run(["umount", "-l", target], check=False).returncode == 0
