"""The complete sample live ISO (session fixture `sample_iso`), booted for real under QEMU: `leviso
test` passes as a CD and as a USB stick, systemd-boot's emergency entry stops in the initramfs's
shell, a corrupted base image and a wrong medium label end in the initramfs's error and a shell
that answers. Without booting: the ESP's UKIs and loader.conf, and the El Torito + GPT layout as
xorriso reports it (tests/unit/test_esp_iso.py checks the same layout on small hand-made ISOs).

The initramfs failure cases boot the ISO's own /boot/vmlinuz and /boot/initramfs.img with
-kernel/-initrd (no firmware, ~15 s), with the live UKI's command line, and the medium as a CD.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from levitate.leviso.esp import esp_files, esp_read
from levitate.leviso.qemu import QEMU, VM, find_ovmf
from levitate.leviso.uki import UkiInfo, read_uki
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware
from tests.support import run_leviso

pytestmark = pytest.mark.slow

LABEL = "LEVITATEOS"
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"       # GPT "EFI System partition" (UEFI spec)
ENTRIES = ("live", "emergency", "debug")
PROMPT = r"[#$] "
# A boot that must stop in the initramfs: these mean it went somewhere else.
INITRAMFS_FAIL = (r"Kernel panic", r"LEVITATE-INIT: switch_root", r"UEFI Interactive Shell",
                  r"No bootable option or device was found")


def _missing(tools: tuple[str, ...], firmware: bool) -> list[str]:
    missing = [t for t in tools if shutil.which(t) is None]
    if firmware:
        try:
            find_ovmf()
        except LevitateError:
            missing.append("OVMF (Debian: apt-get install ovmf)")
    return missing


if _tools := _missing(("xorriso", "mdir", "mtype"), False):
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"missing host tools: {', '.join(_tools)}")]
_vm_missing = _missing((QEMU,), True)
needs_vm = pytest.mark.skipif(bool(_vm_missing), reason=f"cannot boot VMs: missing {', '.join(_vm_missing)}")


# -- the medium, read without booting ----------------------------------------------------------------------

@dataclass(frozen=True)
class Medium:
    iso: Path
    report: str                         # xorriso's El Torito, system area and file extent reports
    extents: dict[str, tuple[int, int, int]]   # ISO 9660 path -> (first 2048-byte block, blocks, bytes)
    esp: Path                           # the bytes of the GPT EFI system partition, copied out
    kernel: Path                        # /boot/vmlinuz and /boot/initramfs.img, copied out
    initrd: Path

    def rows(self, key: str) -> list[list[str]]:
        """The fields of xorriso's report lines `KEY : fields`."""
        return [value.split() for k, sep, value in (line.partition(" : ") for line in self.report.splitlines())
                if sep and k.strip() == key]

    def gpt(self) -> dict[int, dict]:
        parts: dict[int, dict] = {}
        for n, start, size in self.rows("GPT start and size"):
            parts[int(n)] = {"start": int(start), "size": int(size)}
        for n, raw in self.rows("GPT type GUID"):
            parts[int(n)]["type"] = str(uuid.UUID(bytes_le=bytes.fromhex(raw)))   # printed in disk order
        return parts

    def uki(self, entry: str) -> UkiInfo:
        """The UKI of a boot entry, read from the ESP."""
        path = self.esp.parent / f"levitateos-{entry}.efi"
        if not path.exists():
            path.write_bytes(esp_read(self.esp, f"EFI/Linux/levitateos-{entry}.efi"))
        return read_uki(path)


@pytest.fixture(scope="module")
def medium(sample_iso, tmp_path_factory) -> Medium:
    out = tmp_path_factory.mktemp("live-iso")
    proc = subprocess.run(["xorriso", "-indev", sample_iso, "-report_el_torito", "plain",
                           "-report_system_area", "plain", "-find", "/", "-type", "f", "-exec", "report_lba", "--",
                           "-osirrox", "on", "-extract", "/boot/vmlinuz", out / "vmlinuz",
                           "-extract", "/boot/initramfs.img", out / "initramfs.img"],
                          capture_output=True, text=True, check=True)
    report = proc.stdout + proc.stderr                  # "Volume id" is among the messages on stderr
    extents = {m[5]: (int(m[2]), int(m[3]), int(m[4])) for m in re.finditer(
        r"File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'(.*)'", report)}
    found = Medium(sample_iso, report, extents, out / "esp.img", out / "vmlinuz", out / "initramfs.img")
    [esp] = [p for p in found.gpt().values() if p["type"] == ESP_TYPE]
    with open(sample_iso, "rb") as f:
        f.seek(esp["start"] * 512)
        found.esp.write_bytes(f.read(esp["size"] * 512))
    return found


@cheat_aware(protects="the ISO is UEFI-only and hybrid: one El Torito EFI entry and the GPT EFI system "
                      "partition are the same single copy of the ESP, under the label the initramfs looks for",
             cheats=["trust xorriso's exit status", "test a small hand-made ISO only",
                     "embed a second copy of the ESP in the ISO 9660 tree and point El Torito at it"],
             consequence="the real ISO boots as a CD but not from a USB stick (or the reverse), or is 32 MiB bigger")
def test_el_torito_and_gpt_share_one_esp(medium):
    assert medium.rows("Volume id") == [[f"'{LABEL}'"]]
    # El Torito: one entry, UEFI (platform 0xEF), bootable, no emulation; nothing for BIOS
    [[n, platform, bootable, emulation, *_rest, lba]] = medium.rows("El Torito boot img")
    assert (platform, bootable, emulation) == ("UEFI", "y", "none")
    [[_, blocks]] = [row for row in medium.rows("El Torito img blks") if row[0] == n]
    assert medium.rows("El Torito img path") == [], "the boot image is a file in the tree: the ESP is stored twice"
    # GPT: the ISO 9660 tree is partition 1, the ESP partition 2; El Torito names the ESP's blocks
    gpt = medium.gpt()
    esp = gpt[2]
    assert esp["type"] == ESP_TYPE
    assert (esp["start"], esp["size"]) == (int(lba) * 4, int(blocks) * 4)
    assert esp["size"] * 512 == medium.esp.stat().st_size
    assert [row[2] for row in medium.rows("MBR partition")] == ["0xee"]      # protective MBR only
    # The same facts from the raw bytes: the boot catalog (pointed at by sector 17) and the MBR
    with open(medium.iso, "rb") as f:
        head = f.read(18 * 2048)
        catalog_lba = int.from_bytes(head[17 * 2048 + 71:17 * 2048 + 75], "little")
        f.seek(catalog_lba * 2048)
        catalog = f.read(2048)
        f.seek(esp["start"] * 512)
        esp_head = f.read(512)
    assert head[17 * 2048 + 1:17 * 2048 + 6] == b"CD001" and b"EL TORITO SPECIFICATION" in head[17 * 2048:]
    assert catalog[0] == 0x01 and catalog[1] == 0xEF and catalog[30:32] == b"\x55\xaa"   # validation entry
    assert catalog[32] == 0x88 and int.from_bytes(catalog[40:44], "little") == int(lba)  # bootable -> ESP
    assert catalog[64:96] == bytes(32), "a second El Torito section (a BIOS image?)"
    assert head[:440] == bytes(440), "boot code in the MBR: the ISO is meant to be UEFI only"
    assert esp_head[510:512] == b"\x55\xaa" and b"FAT" in esp_head[:90]                  # a FAT boot sector
    # Stored once: every file lies before the ESP, and the image is the tree, the ESP and the GPT backup
    assert {"/live/filesystem.erofs", "/live/live.erofs", "/boot/vmlinuz", "/boot/initramfs.img"} <= set(medium.extents)
    assert all((start + count) * 4 <= esp["start"] for start, count, _ in medium.extents.values())
    size = medium.iso.stat().st_size
    files = sum(nbytes for _, _, nbytes in medium.extents.values())
    assert (esp["start"] + esp["size"]) * 512 <= size <= (esp["start"] + esp["size"]) * 512 + (1 << 20)
    assert size < files + esp["size"] * 512 + (4 << 20), f"{size} bytes for {files} of files and the ESP"


@cheat_aware(protects="the ESP carries systemd-boot, the live, emergency and debug UKIs and a loader.conf "
                      "defaulting to live; each UKI holds the ISO's own kernel and initramfs",
             cheats=["look at WORKDIR/uki instead of the ISO", "check file names only"],
             consequence="the menu lacks the rescue entries, boots the wrong one, or boots another initramfs "
                         "than the one these tests boot directly")
def test_esp_holds_the_three_entries(medium):
    files = esp_files(medium.esp)
    assert "EFI/BOOT/BOOTX64.EFI" in files
    assert sorted(f for f in files if f.startswith("EFI/Linux/")) == sorted(
        f"EFI/Linux/levitateos-{e}.efi" for e in ENTRIES)
    conf = dict(line.split(None, 1) for line in esp_read(medium.esp, "loader/loader.conf").decode().splitlines()
                if line.strip())
    assert conf["default"] == "levitateos-live.efi"
    assert int(conf["timeout"]) >= 1, "no menu: the emergency and debug entries cannot be chosen"
    live, emergency, debug = (medium.uki(e) for e in ENTRIES)
    assert live.cmdline.split()[0] == f"root=live:LABEL={LABEL}" and "console=ttyS0,115200" in live.cmdline
    assert emergency.cmdline == f"{live.cmdline} rd.break"
    assert debug.cmdline.startswith(live.cmdline + " ") and "debug" in debug.cmdline.split()
    for uki in (live, emergency, debug):
        for section, path in ((".initrd", medium.initrd), (".linux", medium.kernel)):
            data = path.read_bytes()
            raw = uki.path.read_bytes()[uki.section(section).raw_offset:][:len(data)]
            assert raw == data, f"{uki.path.name} {section} differs from the ISO's {path.name}"


# -- booting --------------------------------------------------------------------------------------------

def initramfs_vm(medium: Medium, iso: Path, append: str, log: Path) -> VM:
    """The ISO's kernel and initramfs booted directly (no firmware), `iso` attached as a CD."""
    return VM(iso, kernel=medium.kernel, initrd=medium.initrd, append=append, memory=1024, network=False,
              log_path=log)


def line_after(vm: VM, prefix: str, timeout: float = 120) -> str:
    """Wait for a console line starting with `prefix` (a regex); the rest of that line."""
    return vm.wait_for(rf"{prefix}([^\r\n]*)\r?\n", timeout, fail_patterns=INITRAMFS_FAIL).group(1)


def prove_initramfs_shell(vm: VM) -> None:
    """The shell at the prompt is the initramfs's (PID 1 is /init under busybox, not systemd) and runs
    commands with their exit status."""
    vm.wait_for(PROMPT, 60, fail_patterns=INITRAMFS_FAIL)
    out, status = vm.run("cat /proc/1/comm; readlink /proc/1/exe; [ -x /init ] && echo has-init; echo $((6*7))")
    comm, exe, *rest = out.splitlines()
    assert (comm, rest, status) == ("init", ["has-init", "42"], 0), out
    assert exe.endswith("/busybox"), out
    assert vm.run("false") == ("", 1)


# systemd-boot's menu: each entry shows its id (the titles are the same), the selected one black on white
ENTRY_ID = r"\((levitateos-[a-z]+)(?=[^a-z])"
HIGHLIGHT = re.compile(r"\x1b\[47m[^\x1b]*?" + ENTRY_ID)
MENU_FAIL = (*INITRAMFS_FAIL, r"EFI stub: ")          # a UKI started: the menu timed out first
DOWN, UP = "\x1b[B", "\x1b[A"


def choose_menu_entry(vm: VM, entry: str) -> None:
    """Drive systemd-boot's menu on the serial console to `entry` and start it. The loader empties
    its input queue before it draws the menu, then counts down (1 s here) until a key comes: the
    first arrow key goes out as soon as the selected line is drawn, stopping the countdown; then the
    highlight is moved to `entry`, waiting for each redraw, and Enter starts it."""
    drawn = vm.wait_for(HIGHLIGHT, timeout=180, fail_patterns=MENU_FAIL)
    vm.send(DOWN)
    menu = vm.console.before + drawn.group(0)
    menu = menu[menu.rfind("\x1b[2J"):]                  # from the loader's clear screen
    current = vm.wait_for(HIGHLIGHT, timeout=30, fail_patterns=MENU_FAIL).group(1)
    order = list(dict.fromkeys(re.findall(ENTRY_ID, menu + vm.console.before)))     # display order
    # systemd-boot 257 cuts lines at the console's width (80 columns on the serial port): the
    # file name it appends to tell equal titles apart may be cut too ("levitateos-emergen").
    shown = [name for name in order if entry.startswith(name)]
    assert len(shown) == 1, f"no {entry} in the menu: {order}"
    entry = shown[0]
    steps = order.index(entry) - order.index(current)
    for _ in range(abs(steps)):
        vm.send(DOWN if steps > 0 else UP)
        current = vm.wait_for(HIGHLIGHT, timeout=30, fail_patterns=MENU_FAIL).group(1)
    assert current == entry, f"selected {current}, wanted {entry} (menu {order})"
    vm.send("\r")


@needs_vm
@cheat_aware(protects="the ISO boots through UEFI from a CD and from a USB stick, and `leviso test` says so "
                      "with exit 0, PASS lines and a JSON report",
             cheats=["boot -kernel/-initrd instead of the firmware", "attach the ISO as a CD in the disk case",
                     "read the exit status only"],
             consequence="an ISO that does not boot ships, or `dd` to a USB stick gives a stick that does not boot")
@pytest.mark.parametrize("args, medium_name, firmware_device", [
    ((), "cdrom", "DVD-ROM"),
    (("--as-disk", "--bus", "usb"), "disk (usb)", "USB HARDDRIVE"),
], ids=["cdrom", "usb-stick"])
def test_leviso_test_passes(sample_iso, tmp_path, args, medium_name, firmware_device):
    report_path, log = tmp_path / "report.json", tmp_path / "console.log"
    started = time.monotonic()
    proc = run_leviso("test", sample_iso, *args, "--json", report_path, "--log", log)
    seconds = time.monotonic() - started
    print(f"\nleviso test {' '.join(args)}: exit {proc.returncode} in {seconds:.1f} s\n{proc.stdout}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"PASS: {sample_iso} ({medium_name}); console log: {log}"
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["error"] is None and report["medium"] == medium_name
    assert {c["name"] for c in report["checks"]} == {
        "boot reaches the live shell", "PID 1 is systemd", "/ is an overlay over the EROFS base image",
        "the boot medium is mounted at /run/levitate/media", "systemd reached a running system",
        "systemd-firstboot asked nothing"}
    assert all(c["passed"] for c in report["checks"]), report["checks"]
    # the sample enables systemd-firstboot as EL10 does: it really ran on this first boot
    [firstboot] = [c for c in report["checks"] if c["name"] == "systemd-firstboot asked nothing"]
    assert firstboot["detail"] == "ran on this first boot, result success", firstboot
    passed = [line for line in lines if line.startswith("PASS  ")]
    assert len(passed) == len(report["checks"]) and all(
        line.startswith(f"PASS  {c['name']}") for line, c in zip(passed, report["checks"])), proc.stdout
    assert 0 < report["boot_seconds"] < seconds
    assert report["systemd_analyze"]["userspace"] > 0 and report["memory_used_kib"] > 0
    # the firmware itself booted the medium (no -kernel), from the device the user asked for
    [booted] = re.findall(r'BdsDxe: starting Boot\w+ "([^"]*)"', log.read_text(errors="replace"))
    assert firmware_device in booted


@needs_vm
@cheat_aware(protects="choosing the emergency entry in systemd-boot's menu stops in the initramfs's shell "
                      "with the live root mounted",
             cheats=["boot the emergency UKI with -kernel", "make the emergency entry the default",
                     "accept a systemd emergency shell"],
             consequence="the rescue entry a user picks when the live system does not start is useless")
def test_emergency_entry_from_the_menu_stops_in_the_initramfs(medium, tmp_path):
    """Drives the real menu of the ISO as shipped (its loader.conf, 1 s timeout) rather than booting
    a copy whose default is the emergency entry: the first key leaves as soon as the selected line
    is on the console, well inside that second. 30 runs here, 20 of them beside one or two other
    TCG boots on 2 cores, all chose the entry (one hit a kernel timer-check panic under that load)."""
    with VM(medium.iso, memory=1024, network=False, log_path=tmp_path / "menu.log") as vm:
        vm.start()
        choose_menu_entry(vm, "levitateos-emergency")
        cmdline = line_after(vm, r"Command line: ")
        assert cmdline == medium.uki("emergency").cmdline
        line_after(vm, r"LEVITATE-INIT: rd\.break: dropping to a shell")
        prove_initramfs_shell(vm)
        out, status = vm.run("cat /proc/cmdline; grep ' /sysroot ' /proc/mounts; ls /sysroot/usr/lib/systemd/systemd")
        assert status == 0, out
        proc_cmdline, mount, init = out.splitlines()
        assert proc_cmdline.split() == cmdline.split()
        assert mount.startswith("overlay /sysroot overlay ")                    # the live root, ready
        assert init == "/sysroot/usr/lib/systemd/systemd"
        print(f"\nmenu -> emergency shell in {vm.elapsed():.1f} s")


@needs_vm
@cheat_aware(protects="a corrupted base image on the medium is named in the initramfs's error, with what "
                      "was found, and a working shell follows",
             cheats=["corrupt a file the boot never reads", "match any ERROR line", "panic instead"],
             consequence="a bad download or a dying USB stick looks like a hang; nobody knows to write it again")
def test_corrupted_base_image_gives_the_error_and_a_shell(medium, tmp_path):
    iso = tmp_path / "corrupt.iso"
    shutil.copyfile(medium.iso, iso)
    start, _, nbytes = medium.extents["/live/filesystem.erofs"]
    superblock = start * 2048 + 1024
    with open(iso, "r+b") as f:
        f.seek(superblock)
        assert f.read(4) == bytes.fromhex("e2e1f5e0"), "no EROFS magic where the base image should start"
        f.seek(superblock)
        f.write(b"\0" * 1024)
    with initramfs_vm(medium, iso, medium.uki("live").cmdline, tmp_path / "corrupt.log") as vm:
        vm.start()
        assert line_after(vm, rf"LEVITATE-INIT: found the medium LABEL={LABEL} on ") == "/dev/sr0"
        error = line_after(vm, r"LEVITATE-INIT: ERROR: ")
        assert error.startswith("cannot mount the base image live/filesystem.erofs (erofs): "), error
        line_after(vm, r"LEVITATE-INIT:   live/filesystem\.erofs has no erofs superblock: the image is corrupted")
        line_after(vm, r"LEVITATE-INIT:   check the medium \(compare the ISO's sha512sum\)")
        line_after(vm, r"LEVITATE-INIT:   \[ *[0-9.]+\] erofs: .*cannot find valid erofs superblock")
        line_after(vm, r"LEVITATE-INIT: emergency shell")
        prove_initramfs_shell(vm)
        out, status = vm.run("ls -ln /run/levitate/media/live/filesystem.erofs; "
                             "grep -q ' /run/levitate/base ' /proc/mounts || echo base-not-mounted")
        listing, mounted = out.splitlines()
        assert str(nbytes) in listing.split() and (mounted, status) == ("base-not-mounted", 0), out   # inspectable
        print(f"\ncorrupted base image -> shell in {vm.elapsed():.1f} s")


@needs_vm
@cheat_aware(protects="a medium with another label is reported with the label wanted and the devices and "
                      "labels found, and a working shell follows",
             cheats=["print the ERROR without looking for the medium", "list nothing", "start a dead shell"],
             consequence="a user who booted the wrong stick or a renamed ISO sees a hang with no clue")
def test_wrong_label_gives_the_error_and_a_shell(medium, tmp_path):
    live = medium.uki("live").cmdline
    append = live.replace(f"root=live:LABEL={LABEL}", "root=live:LABEL=WRONGLABEL") + " rd.timeout=5"
    assert "WRONGLABEL" in append
    with initramfs_vm(medium, medium.iso, append, tmp_path / "wrong-label.log") as vm:
        vm.start()
        line_after(vm, r"LEVITATE-INIT: waiting up to 5 s for the medium LABEL=WRONGLABEL")
        error = line_after(vm, r"LEVITATE-INIT: ERROR: ")
        assert error == "no medium with LABEL=WRONGLABEL found within 5 s"
        line_after(vm, r"LEVITATE-INIT: block devices found:")
        found = line_after(vm, r"LEVITATE-INIT:   sr0: ")
        assert found.startswith(f'iso9660 LABEL="{LABEL}" UUID='), found      # what is there instead
        line_after(vm, r"LEVITATE-INIT: emergency shell")
        prove_initramfs_shell(vm)
        out, status = vm.run("cat /proc/cmdline; ls /sys/class/block")
        assert status == 0 and "root=live:LABEL=WRONGLABEL" in out and "sr0" in out.split(), out
        print(f"\nwrong label -> shell in {vm.elapsed():.1f} s")
