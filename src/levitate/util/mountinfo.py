"""The kernel's mount table, /proc/self/mountinfo (proc(5), mountinfo section), read one way.

The kernel writes space, tab, newline and backslash in paths as `\\ooo` (octal) and every other
byte as it is, so a line is split at single spaces and each field is unescaped as bytes, then
decoded as the file system's names are (UTF-8, undecodable bytes kept as surrogates). Options
stay escaped: there the kernel also escapes `,` and `=`, which split them.
Standard library only: the install tools run with the live system's own python3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo, paths unescaped."""
    mount_id: int
    parent_id: int
    device: str          # major:minor
    fsroot: str          # the path inside the filesystem that is mounted (not / for bind mounts)
    target: str
    options: str         # per-mount options (rw, nosuid, relatime, ...)
    fstype: str
    source: str
    super_options: str   # per-filesystem options (rw, errors=remount-ro, ...)


def _unescape(field: bytes) -> str:
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m[1], 8) & 0xFF]), field))


def unescape(text: str) -> str:
    """\\040 -> space and the like, as the kernel escapes space, tab, newline and backslash
    (in mountinfo, /proc/swaps and fstab alike)."""
    return _unescape(os.fsencode(text))


def parse(text: str | bytes) -> list[MountEntry]:
    """`ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS`; lines
    that do not have this shape are skipped."""
    data = os.fsencode(text) if isinstance(text, str) else text
    entries = []
    for line in data.splitlines():
        fields = line.split(b" ")
        if b"-" not in fields[6:]:
            continue
        sep = fields.index(b"-", 6)
        after = fields[sep + 1:]
        if len(after) < 2:
            continue
        entries.append(MountEntry(
            mount_id=int(fields[0]), parent_id=int(fields[1]), device=fields[2].decode(),
            fsroot=_unescape(fields[3]), target=_unescape(fields[4]), options=os.fsdecode(fields[5]),
            fstype=_unescape(after[0]), source=_unescape(after[1]),
            super_options=os.fsdecode(after[2]) if len(after) > 2 else ""))
    return entries


def read(path: str = MOUNTINFO) -> list[MountEntry]:
    """The mounts as this process sees them, in mount order."""
    with open(path, "rb") as f:
        return parse(f.read())
