"""The kernel's mount table (/proc/self/mountinfo) and the escaping it and fstab share.

Standard library only: the install tools run with the live system's own python3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..util.run import run

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")
_SPECIAL = re.compile(r"[\s\\]")           # what fstab(5) and the kernel write as \ooo


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo(5), paths unescaped."""
    mount_id: int
    parent_id: int
    device: str          # major:minor
    fsroot: str          # the path inside the filesystem that is mounted (not / for bind mounts)
    target: str
    options: str         # per-mount options (rw, nosuid, relatime, ...)
    fstype: str
    source: str
    super_options: str   # per-filesystem options (rw, errors=remount-ro, ...)


def unescape(text: str) -> str:
    """\\040 -> space and the like, as the kernel escapes space, tab, newline and backslash."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def escape(text: str) -> str:
    """The inverse, as fstab(5) wants: whitespace and backslashes as \\ooo."""
    return _SPECIAL.sub(lambda m: f"\\{ord(m.group(0)):03o}", text)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """mountinfo(5): `ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS`."""
    entries = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        after = fields[sep + 1:]
        if len(after) < 2:
            continue
        entries.append(MountEntry(
            mount_id=int(fields[0]), parent_id=int(fields[1]), device=fields[2],
            fsroot=unescape(fields[3]), target=unescape(fields[4]), options=fields[5],
            fstype=unescape(after[0]), source=unescape(after[1]),
            super_options=after[2] if len(after) > 2 else ""))
    return entries


def mount_table(path: str = MOUNTINFO) -> list[MountEntry]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def under(path: str, root: str) -> bool:
    """`path` is `root` or inside it (by path components, not string prefix)."""
    root = root.rstrip("/") or "/"
    return path == root or root == "/" or path.startswith(root + "/")


def mounts_under(root: str, table: list[MountEntry] | None = None) -> list[MountEntry]:
    """The mounts at or below `root` (a real path), in mount order; where a later mount hides an
    earlier one on the same target, only the later one."""
    table = mount_table() if table is None else table
    visible: dict[str, MountEntry] = {}
    for entry in table:
        if under(entry.target, root):
            visible.pop(entry.target, None)
            visible[entry.target] = entry
    return list(visible.values())


def is_mount_point(path: str, table: list[MountEntry] | None = None) -> bool:
    real = os.path.realpath(path)
    table = mount_table() if table is None else table
    return any(entry.target == real for entry in table)


def umount(target: str, *, lazy_fallback: bool = True) -> bool:
    """Unmount `target`; when it is busy, detach it lazily. True if it is gone."""
    if run(["umount", target], check=False).returncode == 0:
        return True
    return lazy_fallback and run(["umount", "-l", target], check=False).returncode == 0
