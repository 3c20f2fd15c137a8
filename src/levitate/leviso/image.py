"""Read-only root images: EROFS (mkfs.erofs), or squashfs where the kernel cannot mount EROFS.

The kernel's own config decides: a live system whose kernel lacks EROFS (or its compression)
would build fine and then fail at boot, so that is checked before anything is built.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from ..util.epoch import source_date_epoch
from ..util.errors import LevitateError
from ..util.files import atomic_output
from ..util.run import run
from .profile import ImageSettings

log = logging.getLogger("levitate")

EROFS_COMPRESSION_OPTION = {"lz4": "CONFIG_EROFS_FS_ZIP", "lz4hc": "CONFIG_EROFS_FS_ZIP",
                            "lzma": "CONFIG_EROFS_FS_ZIP_LZMA"}
MAGIC = {"erofs": (1024, bytes.fromhex("e2e1f5e0")), "squashfs": (0, b"hsqs")}


def kernel_config(root: Path, kver: str) -> dict[str, str]:
    """CONFIG_X -> value ('y', 'm', ...) from /usr/lib/modules/KVER/config (or /boot/config-KVER)."""
    for candidate in (root / "usr/lib/modules" / kver / "config", root / "boot" / f"config-{kver}"):
        if candidate.is_file():
            config = {}
            for line in candidate.read_text(errors="replace").splitlines():
                if line.startswith("CONFIG_") and "=" in line:
                    key, value = line.split("=", 1)
                    config[key] = value.strip('"')
            return config
    raise LevitateError(f"kernel {kver} ships no config (usr/lib/modules/{kver}/config)",
                        "leviso reads it to check the kernel can mount the image; is the kernel package complete?")


def choose_format(config: dict[str, str], settings: ImageSettings) -> str:
    """'erofs' when the kernel mounts EROFS with the profile's compression, else 'squashfs'."""
    wanted = EROFS_COMPRESSION_OPTION.get(settings.compression)
    if wanted is None:
        raise LevitateError(f"unknown EROFS compression '{settings.compression}'", "use lz4hc or lz4")
    missing = [opt for opt in ("CONFIG_EROFS_FS", wanted) if config.get(opt) not in ("y", "m")]
    if not missing:
        return "erofs"
    if not settings.allow_squashfs:
        raise LevitateError(f"the kernel cannot mount EROFS with {settings.compression} (not set: "
                            f"{', '.join(missing)}) and the profile forbids squashfs",
                            "set [image] allow_squashfs = true or use a kernel with EROFS")
    if config.get("CONFIG_SQUASHFS") not in ("y", "m") or config.get("CONFIG_SQUASHFS_ZSTD") != "y":
        raise LevitateError("the kernel can mount neither EROFS nor zstd squashfs", "use another kernel")
    log.warning("WARNING: the kernel cannot mount EROFS with %s (%s): building squashfs instead",
                settings.compression, ", ".join(missing))
    return "squashfs"


def build_image(tree: Path, out: Path, fmt: str, compression: str = "lz4hc") -> Path:
    """Build `out` from `tree` (owners kept as in the tree); written to a temporary name first.

    With SOURCE_DATE_EPOCH set, timestamps and the filesystem UUID are fixed, so the same tree
    gives the same image.
    """
    epoch = source_date_epoch()
    if fmt not in ("erofs", "squashfs"):
        raise LevitateError(f"unknown image format {fmt}")
    with atomic_output(out) as tmp:
        if fmt == "erofs":
            argv = ["mkfs.erofs", "--quiet", f"-z{compression}"]
            if epoch is not None:
                argv += [f"-T{epoch}", f"-U{uuid.uuid5(uuid.NAMESPACE_URL, f'levitateos:{out.name}:{epoch}')}"]
            argv += [tmp, tree]
        else:
            # mksquashfs reads SOURCE_DATE_EPOCH itself (and refuses time options beside it).
            argv = ["mksquashfs", tree, tmp, "-comp", "zstd", "-noappend", "-quiet", "-no-progress"]
        run(argv, what=f"building {out.name}", hint="see `leviso preflight` for the image tools")
    return out


def image_format(path: Path) -> str | None:
    """'erofs' or 'squashfs' by the superblock magic, None otherwise."""
    with open(path, "rb") as f:
        for fmt, (offset, magic) in MAGIC.items():
            f.seek(offset)
            if f.read(len(magic)) == magic:
                return fmt
    return None


def tree_size(root: Path) -> int:
    """Apparent size of a tree's files (for the manifest and the installer's space check)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total
