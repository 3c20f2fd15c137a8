"""Small file helpers shared by every stage."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write under a temporary name, then rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


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
