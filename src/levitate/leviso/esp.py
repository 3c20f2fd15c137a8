"""The EFI system partition image: a FAT file system sized to its content, filled with mtools.

No mounting and no root: `mkfs.fat -C` creates the image (FAT12, 16 or 32, whichever fits its
size), `mmd -i` and `mcopy -i` put the files in. The image becomes the ISO's El Torito EFI boot
image and, the same bytes, its appended GPT EFI system partition.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from levitate.util.epoch import source_date_epoch
from levitate.util.errors import LevitateError
from levitate.util.files import atomic_output
from levitate.util.run import run

log = logging.getLogger("levitate")

DEFAULT_LABEL = "LEVISO_EFI"          # FAT labels are at most 11 characters
KIB = 1024
MIB = 1024 * KIB
# Sizing: each file and directory is counted in 32 KiB units (no larger than any cluster mkfs.fat
# picks for an image this size), plus 1/64 for the FATs and 1 MiB for reserved sectors and the
# root directory, rounded up to whole MiB.
SIZE_UNIT = 32 * KIB
_LABEL_RE = re.compile(r"[A-Z0-9_-]{1,11}")


def _mtools_env() -> dict[str, str]:
    # The image is a plain file, not a floppy: skip mtools' geometry sanity check.
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def _esp_path(name: str) -> PurePosixPath:
    p = PurePosixPath(name.lstrip("/"))
    if not p.parts or any(part in ("", ".", "..") for part in p.parts) or "\\" in name:
        raise LevitateError(f"bad path for the ESP: {name!r}", "use relative paths like EFI/BOOT/BOOTX64.EFI")
    return p


def esp_size(files: Mapping[str, Path]) -> int:
    """Bytes for a FAT image holding `files` with a small margin (a whole number of MiB)."""
    dirs = {parent for name in files for parent in _esp_path(name).parents if parent != PurePosixPath(".")}
    data = sum(-(-Path(src).stat().st_size // SIZE_UNIT) * SIZE_UNIT for src in files.values())
    data += (len(dirs) + 1) * SIZE_UNIT
    total = data + data // 64 + MIB
    return -(-total // MIB) * MIB


def build_esp(files: Mapping[str, Path], out: Path, *, label: str = DEFAULT_LABEL,
              volume_id: int | None = None) -> Path:
    """Create a FAT image at `out` holding `files` ({path on the ESP: host file}).

    Written under a temporary name and renamed. `volume_id` (32 bits) defaults to one derived from
    SOURCE_DATE_EPOCH when that is set, so rebuilds give the same serial number.
    """
    out = Path(out)
    if not _LABEL_RE.fullmatch(label):
        raise LevitateError(f"bad FAT label {label!r}", "use 1 to 11 of A-Z, 0-9, _ and -")
    if not files:
        raise LevitateError("nothing to put on the ESP", "pass at least the boot loader")
    folded: dict[str, str] = {}
    for name, src in files.items():
        key = str(_esp_path(name)).casefold()        # FAT compares names without case
        if key in folded:
            raise LevitateError(f"{name!r} and {folded[key]!r} are the same file on FAT", "rename one of them")
        folded[key] = name
        if not Path(src).is_file():
            raise LevitateError(f"{src} (for {name} on the ESP) not found", "build the earlier stages first")
    if volume_id is None:
        volume_id = source_date_epoch()

    size = esp_size(files)
    env = _mtools_env()
    with atomic_output(out, perm=0o644) as tmp:
        cmd = ["mkfs.fat", "-C", "-n", label]
        if volume_id is not None:
            cmd += ["-i", f"{volume_id:08X}"]
        run([*cmd, tmp, str(size // KIB)], what="mkfs.fat (ESP image)",
            hint="install dosfstools (`leviso preflight` shows how)")
        dirs = sorted({str(parent) for name in files for parent in _esp_path(name).parents
                       if parent != PurePosixPath(".")}, key=lambda d: (d.count("/"), d))
        if dirs:
            run(["mmd", "-i", tmp, *[f"::/{d}" for d in dirs]], env=env, what="mmd (ESP directories)",
                hint="install mtools (`leviso preflight` shows how)")
        for name in sorted(files, key=lambda n: str(_esp_path(n))):
            run(["mcopy", "-m", "-i", tmp, Path(files[name]), f"::/{_esp_path(name)}"], env=env,
                what=f"mcopy {name} into the ESP image", hint="install mtools; check free space on the build disk")
    log.info("ESP image %s: %d MiB, %d files", out.name, size // MIB, len(files))
    return out


def esp_files(image: Path) -> list[str]:
    """Paths of the files (not directories) in a FAT image, as "EFI/BOOT/BOOTX64.EFI"."""
    proc = run(["mdir", "-i", image, "-/", "-b", "::/"], capture=True, env=_mtools_env(),
               what=f"mdir {image}")
    out = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("::/") and not line.endswith("/"):
            out.append(line[3:])
    return sorted(out)


def esp_read(image: Path, name: str) -> bytes:
    """The content of one file in a FAT image."""
    return run(["mtype", "-i", image, f"::/{_esp_path(name)}"], capture=True, env=_mtools_env(),
               what=f"mtype {name} from {image}").stdout
