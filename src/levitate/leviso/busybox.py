"""The static busybox the initramfs runs on: a pinned download or a package of the set."""

from __future__ import annotations

import os
from pathlib import Path

from ..util import download as dl
from ..util.errors import LevitateError
from .context import BuildContext


def _is_static_elf(path: Path) -> bool:
    """An x86-64 ELF executable without a program interpreter (PT_INTERP = 3)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(int.from_bytes(table[i:i + 4], "little") != 3 for i in range(0, len(table), phentsize))


def acquire_busybox(ctx: BuildContext) -> tuple[Path, str]:
    """(path of a verified static busybox, where it came from)."""
    settings = ctx.profile.busybox
    if settings.package:
        path = ctx.rootfs / settings.path.lstrip("/")
        origin = f"package {settings.package} ({settings.path})"
        if not path.is_file():
            raise LevitateError(f"{settings.path} is not in the extracted tree",
                                f"add {settings.package} to packages.txt or fix [busybox] in profile.toml")
    else:
        if not (settings.url and len(settings.sha256) == 64):
            raise LevitateError("[busybox] needs a url with its sha256, or a package",
                                "pin the download's SHA-256 in profile.toml")
        path = ctx.cache / "busybox" / f"busybox-{settings.sha256[:16]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        dl.download(settings.url, path, expected=("sha256", settings.sha256), progress_label="busybox")
        os.chmod(path, 0o755)
        origin = f"{settings.url} (sha256 {settings.sha256})"
    if not _is_static_elf(path):
        raise LevitateError(f"busybox from {origin} is not a static x86-64 executable",
                            "the initramfs has no libraries: use a static build")
    return path, origin
