"""Real boots of a UKI assembled by leviso.uki: OVMF -> systemd-boot -> UKI (systemd stub) -> the
sample repository's real kernel -> a tiny busybox initramfs that prints a marker with the kernel
command line and powers off. The same hybrid ISO is booted as a CD and as a disk.

The ESP holds two UKIs: `levitateos-zz-decoy.efi`, which systemd-boot would pick if it ignored
loader.conf (it lists entries by id, descending: the decoy comes first), and
`levitateos-live.efi`, the loader.conf default. It is also padded past 32 MiB, as the real ESP
with three UKIs is, where the El Torito entry can no longer record the image's size.

The kernel tree comes from the session's `sample_build`; LEVITATE_TEST_ROOTFS=DIR points at an
already extracted tree instead. Each boot takes ~20-30 s under TCG here.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from levitate.leviso.esp import build_esp, esp_files
from levitate.leviso.iso import build_iso, iso_report, loader_conf
from levitate.leviso.uki import build_uki
from tests.cheat_aware import cheat_aware

pytestmark = pytest.mark.slow

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path(os.environ.get("OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd"))
OVMF_VARS = Path(os.environ.get("OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"))
STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
SDBOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
MARKER = "UKI-TEST-MARKER"
LIVE_CMDLINE = "console=ttyS0,115200 panic=-1 levitate.test=live"
DECOY_CMDLINE = "console=ttyS0,115200 panic=-1 levitate.test=decoy"
BOOT_TIMEOUT = 150

_missing = [t for t in (QEMU, "xorriso", "mkfs.fat", "mcopy") if shutil.which(t) is None]
_missing += [str(p) for p in (OVMF_CODE, OVMF_VARS) if not p.is_file()]
if _missing:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"missing: {', '.join(_missing)}")]


# -- a tiny initramfs ---------------------------------------------------------------------------------

def _newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio "newc" archive of (path, mode, data, rdev-major<<8|minor)."""
    out = io.BytesIO()

    def member(ino: int, name: str, mode: int, data: bytes, rdev: int = 0) -> None:
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xFF, len(name) + 1, 0)
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        out.write(bytes(-out.tell() % 4))
        out.write(data)
        out.write(bytes(-out.tell() % 4))

    for ino, (name, mode, data, rdev) in enumerate(entries, 1):
        member(ino, name, mode, data, rdev)
    member(0, "TRAILER!!!", 0, b"")
    return out.getvalue()


INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "{MARKER} $(/bin/busybox cat /proc/cmdline) END" > /dev/console
/bin/busybox poweroff -f
"""


def make_initramfs(busybox: Path, out: Path) -> Path:
    entries = [
        ("bin", stat.S_IFDIR | 0o755, b"", 0),
        ("dev", stat.S_IFDIR | 0o755, b"", 0),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5 << 8) | 1),
        ("proc", stat.S_IFDIR | 0o755, b"", 0),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), 0),
        ("init", stat.S_IFREG | 0o755, INIT.encode(), 0),
    ]
    out.write_bytes(gzip.compress(_newc(entries), compresslevel=6, mtime=0))
    return out


# -- the medium ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Medium:
    iso: Path
    esp: Path
    tree: Path
    live: Path


def _kernel_tree(request) -> tuple[Path, Path, str, Path]:
    override = os.environ.get("LEVITATE_TEST_ROOTFS")
    rootfs = Path(override) if override else request.getfixturevalue("sample_build").rootfs
    kernels = sorted((rootfs / "usr/lib/modules").glob("*/vmlinuz"))
    assert kernels, f"no kernel in {rootfs}"
    busybox = next((rootfs / p for p in ("usr/bin/busybox", "usr/sbin/busybox") if (rootfs / p).is_file()), None)
    assert busybox, f"no busybox in {rootfs}"
    return rootfs, kernels[-1], kernels[-1].parent.name, busybox


@pytest.fixture(scope="module")
def medium(request, tmp_path_factory) -> Medium:
    if not (STUB.is_file() and SDBOOT.is_file()):
        pytest.skip("the host has no systemd-boot (Debian: apt-get install systemd-boot-efi)")
    rootfs, vmlinuz, kver, busybox = _kernel_tree(request)
    work = tmp_path_factory.mktemp("uki-boot")
    initrd = make_initramfs(busybox, work / "initramfs.img")
    os_release = (b'NAME="LevitateOS"\nID=levitateos\nID_LIKE="rhel centos fedora"\n'
                  b'VERSION_ID=test\nPRETTY_NAME="LevitateOS (UKI boot test)"\n')
    live = build_uki(STUB, vmlinuz, initrd, LIVE_CMDLINE, os_release, kver, work / "levitateos-live.efi").path
    decoy = build_uki(STUB, vmlinuz, initrd, DECOY_CMDLINE, os_release, kver, work / "decoy.efi").path
    # timeout 1: the menu is drawn (on the serial console too) for a second, then the default boots.
    (work / "loader.conf").write_text(loader_conf("levitateos-live.efi", 1))
    (work / "padding.bin").write_bytes(os.urandom(16 << 20))     # push the ESP past 32 MiB
    esp = build_esp({
        "EFI/BOOT/BOOTX64.EFI": SDBOOT,
        "EFI/Linux/levitateos-live.efi": live,
        "EFI/Linux/levitateos-zz-decoy.efi": decoy,
        "loader/loader.conf": work / "loader.conf",
        "padding.bin": work / "padding.bin",
    }, work / "esp.img")
    tree = work / "tree"
    (tree / "live").mkdir(parents=True)
    (tree / "live" / "filesystem.erofs").write_bytes(os.urandom(1 << 20))
    iso = build_iso(tree, esp, work / "levitateos.iso", volume_label="LEVITATEOS")
    return Medium(iso, esp, tree, live)


# -- booting ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Boot:
    log: str
    seconds: float
    cmdline: str | None


def boot(medium: Medium, how: str, work: Path) -> Boot:
    """Boot the ISO once with OVMF under TCG; return the serial log when the marker (or nothing)
    came. A fresh copy of the VARS file for every VM; QEMU is always killed."""
    work.mkdir(parents=True, exist_ok=True)
    vars_copy = work / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    log = work / "serial.log"
    log.unlink(missing_ok=True)
    if how == "cdrom":
        drive = ["-drive", f"file={medium.iso},media=cdrom,if=none,id=boot,readonly=on,format=raw",
                 "-device", "ide-cd,drive=boot"]
    else:   # a disk (a USB stick written with dd): the ISO file as a raw virtio disk, writes discarded
        drive = ["-drive", f"file={medium.iso},if=virtio,format=raw,snapshot=on"]
    cmd = [QEMU, "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1",
           "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
           "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
           *drive, "-display", "none", "-monitor", "none", "-serial", f"file:{log}",
           "-net", "none", "-no-reboot"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pattern = re.compile(rf"{MARKER} (.*?) END")
    text, found = "", None
    try:
        while time.monotonic() - started < BOOT_TIMEOUT:
            text = log.read_text(errors="replace") if log.exists() else ""
            if (found := pattern.search(text)) or proc.poll() is not None:
                break
            time.sleep(0.5)
        if found is None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            found = pattern.search(text)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            err = b""
    seconds = time.monotonic() - started
    if found is None and err:
        text += "\n[qemu stderr] " + err.decode(errors="replace")
    return Boot(text, seconds, found.group(1).strip() if found else None)


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?=]*[A-Za-z]", " ", text)


def _tail(text: str, n: int = 30) -> str:
    return "\n".join(_plain(text).splitlines()[-n:])


@cheat_aware(
    protects="the hybrid ISO boots through UEFI from a CD: El Torito EFI entry -> ESP -> systemd-boot "
             "-> the default UKI in /EFI/Linux -> its kernel, initramfs and command line",
    cheats=["booting the kernel with -kernel/-initrd instead of the firmware",
            "checking only that QEMU started, or that some kernel output appeared",
            "accepting any entry's command line (the decoy would pass)"],
    consequence="the live ISO does not boot on real machines, or boots the wrong entry",
)
def test_boots_as_cdrom(medium, tmp_path):
    result = boot(medium, "cdrom", tmp_path / "cdrom")
    print(f"CD boot: {result.seconds:.1f} s")
    assert result.cmdline is not None, f"no {MARKER} within {BOOT_TIMEOUT} s; serial log:\n{_tail(result.log)}"
    assert result.cmdline == LIVE_CMDLINE, "systemd-boot did not boot loader.conf's default entry"
    # systemd-boot found both UKIs in /EFI/Linux by itself (same title: it shows the ids to tell them apart)
    menu = _plain(result.log).split("Linux version", 1)[0]
    assert "LevitateOS (UKI boot test)" in menu
    assert "levitateos-live.efi" in menu and "levitateos-zz-decoy.efi" in menu, _tail(menu)


@cheat_aware(
    protects="the same ISO file, written to a USB stick, boots through its GPT EFI system partition",
    cheats=["booting a separate disk image instead of the ISO file",
            "attaching the ISO as a CD in this test"],
    consequence="`dd if=levitateos.iso of=/dev/sdX` gives a stick that does not boot",
)
def test_boots_as_disk(medium, tmp_path):
    result = boot(medium, "disk", tmp_path / "disk")
    print(f"disk boot: {result.seconds:.1f} s")
    assert result.cmdline is not None, f"no {MARKER} within {BOOT_TIMEOUT} s; serial log:\n{_tail(result.log)}"
    assert result.cmdline == LIVE_CMDLINE, "systemd-boot did not boot loader.conf's default entry"


def test_medium_layout(medium):
    """What the boots above went through: the ESP's files, one copy of the ESP, El Torito -> ESP."""
    assert esp_files(medium.esp) == sorted(["EFI/BOOT/BOOTX64.EFI", "EFI/Linux/levitateos-live.efi",
                                            "EFI/Linux/levitateos-zz-decoy.efi", "loader/loader.conf",
                                            "padding.bin"])
    report = iso_report(medium.iso)
    assert report["volume_id"] == "LEVITATEOS"
    assert report["efi_boot_from_esp"], report
    assert medium.esp.stat().st_size > 32 << 20
    assert medium.iso.stat().st_size < medium.esp.stat().st_size + (4 << 20), "the ESP is stored twice"
