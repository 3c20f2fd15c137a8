"""The hybrid ISO: one file that boots through UEFI as a CD and, written to a USB stick, as a disk.

    xorriso -as mkisofs            ISO 9660 + Rock Ridge + Joliet from the staged tree
      -append_partition 2 ESP      the ESP image appended once, as GPT partition 2 (EFI system)
      -e --interval:appended_partition_2:all::
                                   the El Torito EFI boot entry points at those same bytes
      -partition_offset 16         the ISO 9660 file system is also GPT partition 1

Firmware booting the CD reads the El Torito EFI image; firmware booting the disk reads the GPT
ESP; both find systemd-boot at /EFI/BOOT/BOOTX64.EFI and the UKIs in /EFI/Linux/. UEFI only: no
BIOS boot record. `iso_report` reads the layout back through xorriso for tests and the manifest.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

from levitate.util.errors import LevitateError
from levitate.util.files import atomic_output
from levitate.util.run import run

log = logging.getLogger("levitate")

ESP_TYPE_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"     # GPT "EFI System"
ESP_PARTITION = 2                                            # partition 1 is the ISO 9660 itself
_VOLID_RE = re.compile(r"[A-Z0-9_]{1,32}")                   # ISO 9660 d-characters
_PLATFORMS = {"BIOS": 0x00, "PPC": 0x01, "Mac": 0x02, "UEFI": 0xEF}   # El Torito platform ids
_GPT_KEYS = ("GPT partname local", "GPT type GUID", "GPT start and size")
_HINT = "install xorriso (`leviso preflight` shows how)"


def xorriso_command(tree: Path, esp_image: Path, out: Path, *, volume_label: str) -> list[str]:
    """The exact `xorriso -as mkisofs` command line `build_iso` runs."""
    return [
        "xorriso", "-as", "mkisofs",
        "-iso-level", "3",                 # files over 4 GiB (a large base image) are allowed
        "-full-iso9660-filenames",
        "-rational-rock",                  # Rock Ridge, owned by root, sane permissions
        "-joliet", "-joliet-long",
        "-volid", volume_label,            # the label the initramfs looks for
        "-preparer", "leviso",
        "-partition_offset", "16",         # the ISO 9660 tree is mountable as GPT partition 1
        "-append_partition", str(ESP_PARTITION), ESP_TYPE_GUID.upper(), str(esp_image),
        "-appended_part_as_gpt",
        "-e", f"--interval:appended_partition_{ESP_PARTITION}:all::",   # El Torito EFI = that partition
        "-no-emul-boot",
        "-no-pad",
        "-output", str(out),
        str(tree),
    ]


def build_iso(tree: Path, esp_image: Path, out: Path, *, volume_label: str) -> Path:
    """Write a UEFI-only hybrid ISO of `tree` booting from `esp_image` to `out` (temporary name, renamed)."""
    tree, esp_image, out = Path(tree), Path(esp_image), Path(out)
    if not _VOLID_RE.fullmatch(volume_label):
        raise LevitateError(f"bad ISO volume label {volume_label!r}",
                            "use 1 to 32 characters of A-Z, 0-9 and _ (the profile's label)")
    if not tree.is_dir():
        raise LevitateError(f"ISO tree {tree} not found", "build the earlier stages first (`leviso build`)")
    if not esp_image.is_file() or esp_image.stat().st_size == 0:
        raise LevitateError(f"ESP image {esp_image} not found", "build the earlier stages first (`leviso build`)")
    with atomic_output(out, perm=0o644) as tmp:
        run(xorriso_command(tree, esp_image, tmp, volume_label=volume_label),
            what="xorriso (writing the ISO)", hint=_HINT)
    log.info("ISO %s: %.1f MiB", out, out.stat().st_size / 2**20)
    return out


def loader_conf(default: str, timeout: int, *, editor: bool = True, console_mode: str = "keep") -> str:
    """systemd-boot's loader.conf. `default` is an entry id: for a UKI in /EFI/Linux/ its file
    name, lower case ("levitateos-live.efi"); a glob matches too. `timeout` 0 boots the default
    without showing the menu (holding a key shows it)."""
    if timeout < 0:
        raise ValueError("timeout must be >= 0")
    if not default or any(c.isspace() for c in default):
        raise ValueError(f"bad default entry {default!r}")
    return (f"timeout {timeout}\n"
            f"default {default.lower()}\n"
            f"console-mode {console_mode}\n"
            f"editor {'yes' if editor else 'no'}\n")


# -- reading the layout back -------------------------------------------------------------------------

def _guid(raw_hex: str) -> str:
    """xorriso prints GPT GUIDs in on-disk byte order; return the usual text form."""
    try:
        return str(uuid.UUID(bytes_le=bytes.fromhex(raw_hex)))
    except ValueError:
        return raw_hex


def iso_report(path: Path) -> dict:
    """El Torito entries and the partition tables of an ISO, as xorriso reports them.

    {"volume_id", "size", "partition_offset", "el_torito": [{"index", "platform" ("UEFI"),
    "platform_id" (0xef), "bootable", "emulation", "load_size", "lba", "blocks", "path" (None for
    an image that is not a file in the tree), "partition" (the GPT partition that is the image)}],
    "mbr": [{"index", "type", "start", "blocks"}], "gpt": [{"index", "name", "type", "start",
    "size", "esp"}], "efi_boot_from_esp": bool}: GPT start/size and MBR start/blocks in 512-byte
    sectors, El Torito lba/blocks in 2048-byte blocks, load_size in 512-byte sectors (0 when the
    image is too large to record: firmware then reads it up to the end of the volume).
    """
    path = Path(path)
    proc = run(["xorriso", "-indev", path, "-report_el_torito", "plain", "-report_system_area", "plain"],
               capture=True, what=f"xorriso (reading {path.name})", hint=_HINT)
    # The reports come on stdout; "Volume id" is among xorriso's messages on stderr.
    text = proc.stdout.decode(errors="replace") + "\n" + proc.stderr.decode(errors="replace")
    report: dict = {"volume_id": None, "size": path.stat().st_size, "el_torito": [], "mbr": [], "gpt": [],
                    "partition_offset": 0}
    torito: dict[int, dict] = {}
    gpt: dict[int, dict] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" : ")
        if not sep:
            continue
        key, fields = key.strip(), value.split()
        if key == "Volume id":
            report["volume_id"] = value.strip().strip("'")
        elif key == "Partition offset" and fields:
            report["partition_offset"] = int(fields[0])
        elif key == "El Torito boot img" and len(fields) >= 8:
            n = int(fields[0])
            torito[n] = {"index": n, "platform": fields[1], "platform_id": _PLATFORMS.get(fields[1]),
                         "bootable": fields[2] == "y", "emulation": fields[3], "load_size": int(fields[6]),
                         "lba": int(fields[7]), "blocks": None, "path": None, "partition": None}
        elif key == "El Torito img blks" and len(fields) >= 2:
            torito.setdefault(int(fields[0]), {})["blocks"] = int(fields[1])
        elif key == "El Torito img path" and len(fields) >= 2:
            torito.setdefault(int(fields[0]), {})["path"] = value.split(None, 1)[1].strip()
        elif key == "MBR partition" and len(fields) >= 5:
            report["mbr"].append({"index": int(fields[0]), "type": int(fields[2], 16), "start": int(fields[3]),
                                  "blocks": int(fields[4])})
        elif key in _GPT_KEYS and fields and fields[0].isdigit():
            entry = gpt.setdefault(int(fields[0]), {"index": int(fields[0])})
            if key == "GPT partname local":
                entry["name"] = value.split(None, 1)[1].strip() if len(fields) > 1 else ""
            elif key == "GPT type GUID" and len(fields) >= 2:
                entry["type"] = _guid(fields[1])
            elif key == "GPT start and size" and len(fields) >= 3:
                entry["start"], entry["size"] = int(fields[1]), int(fields[2])
    report["el_torito"] = [torito[n] for n in sorted(torito)]
    for n in sorted(gpt):
        entry = {"name": "", "type": None, "start": None, "size": None, **gpt[n]}
        entry["esp"] = entry["type"] == ESP_TYPE_GUID
        report["gpt"].append(entry)
    for e in report["el_torito"]:       # the GPT partition whose bytes the boot image is, if any
        e["partition"] = next((p["index"] for p in report["gpt"]
                               if e.get("lba") is not None and p["start"] == e["lba"] * 4
                               and p["size"] == (e.get("blocks") or 0) * 4), None)
    esps = {p["index"] for p in report["gpt"] if p["esp"]}
    report["efi_boot_from_esp"] = any(e.get("platform") == "UEFI" and e["partition"] in esps
                                      for e in report["el_torito"])
    return report
