"""recboot: make the installed system bootable, and keep it so after kernel updates.

In the spirit of kernel-install, on the installed system (in `recchroot /mnt` during the install,
or later after a kernel update): installs or updates systemd-boot on the ESP (`bootctl`), builds
an initramfs for each installed kernel from that kernel's modules and the busybox the base image
carries, puts kernel and initramfs on the ESP and writes a loader entry naming the root by UUID.
Entries of kernels that are gone are removed. Everything is written under a temporary name and
renamed, the entry last, so an interrupted run never leaves an entry pointing at a half-written file.
The kernel-install plugin (kernelinstall.py) does the same for one kernel with this module's code.

    recboot [--esp DIR] [--root SPEC] [--kernel KVER]... [--cmdline OPTIONS] [--no-bootctl]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..boot.cpulevel import installed_cpu_level
from ..boot.initramfs import INSTALLED_BUSYBOX, InitramfsSpec, build_initramfs
from ..boot.microcode import Cpu
from ..rpm.vercmp import rpmvercmp
from ..util import mountinfo
from ..util.cli import run_command
from ..util.errors import LevitateError, MissingToolError
from ..util.files import atomic_output, write_atomic
from ..util.run import run

log = logging.getLogger("levitate")

EXTRA_MODULES_FILE = Path("/etc/levitate/initramfs-modules")   # one module a line, like mkinitcpio's MODULES
# What an installed system's root can sit on: SATA/NVMe/virtio/USB disks, ext4/xfs (vfat: the ESP).
DISK_MODULES = ("ahci", "sd_mod", "nvme", "virtio_pci", "virtio_blk", "virtio_scsi", "xhci_pci", "ehci_pci",
                "usb_storage", "uas", "ext4", "xfs", "vfat")
ENTRY_PREFIX = "levitateos-"
ESP_DIR = "levitateos"                 # ESP/levitateos/KVER/{linux,initramfs.img}
LOADER_CONF = f"""\
# Written by recboot; edit freely (recboot leaves an edited file alone).
default {ENTRY_PREFIX}*
timeout 3
console-mode keep
"""
FSTAB_SPEC = re.compile(r"^(UUID|LABEL|PARTUUID|PARTLABEL)=\S+$|^/dev/\S+$")
# A kernel version becomes a file and directory name on the ESP: no "/", no "..", nothing FAT refuses.
KERNEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~^-]*")


@dataclass(frozen=True)
class EntrySettings:
    """What every kernel's entry and initramfs share on one system (see entry_settings)."""
    root_spec: str                     # root=...
    options: str                       # the rest of the kernel command line
    modules: tuple[str, ...]           # initramfs modules
    cpu: Cpu | None                    # whose early microcode (None: every CPU's)


def find_esp(root: Path, given: str | None, table: list[mountinfo.MountEntry]) -> Path:
    """The ESP: --esp, else /boot or /efi when a FAT filesystem is mounted there."""
    if given:
        esp = Path(given)
        if not esp.is_dir():
            raise LevitateError(f"--esp {given}: not a directory", "mount the EFI system partition there first")
        return esp
    fat = {m.target for m in table if m.fstype in ("vfat", "msdos", "fat")}
    for candidate in ("/boot", "/efi", "/boot/efi"):
        if candidate in fat:
            return root / candidate.lstrip("/")
    raise LevitateError("no EFI system partition is mounted at /boot, /efi or /boot/efi",
                        "mount it (e.g. `mount /dev/XXX1 /boot`) or name it with --esp")


def root_spec(root: Path, given: str | None, table: list[mountinfo.MountEntry]) -> str:
    """How the kernel finds the root: --root, else the / entry of /etc/fstab, else the UUID of the
    device mounted at /."""
    if given:
        if not FSTAB_SPEC.match(given):
            raise LevitateError(f"--root {given}: expected UUID=..., LABEL=..., PARTUUID=... or /dev/NAME")
        return given
    fstab = root / "etc/fstab"
    if fstab.is_file():
        for line in fstab.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and not fields[0].startswith("#") and fields[1] == "/":
                if FSTAB_SPEC.match(fields[0]):
                    return fields[0]
    device = next((m.source for m in reversed(table) if m.target == "/"), None)
    if device and device.startswith("/dev/"):
        uuid = run(["blkid", "-s", "UUID", "-o", "value", device], capture=True, check=False).stdout.decode().strip()
        if uuid:
            return f"UUID={uuid}"
    raise LevitateError("cannot tell which partition is the root: /etc/fstab has no / entry and the "
                        "device mounted at / has no UUID", "run `recfstab / > /etc/fstab` (or pass --root UUID=...)")


def kernel_options(extra: str | None, proc_cmdline: str) -> str:
    """Options after root=...: /etc/kernel/cmdline's (as kernel-install reads it, minus any root=),
    the console= settings of the running kernel (an install over a serial console stays reachable
    there), then --cmdline; selinux=0 unless one of them says otherwise."""
    parts: list[str] = []
    path = Path("/etc/kernel/cmdline")
    if path.is_file():
        parts += [o for o in path.read_text().split() if not o.startswith("root=") and o not in ("ro", "rw")]
    parts += [o for o in proc_cmdline.split() if o.startswith("console=") and o not in parts]
    if extra:
        parts += extra.split()
    if not any(o.startswith("selinux=") for o in parts):
        parts.insert(0, "selinux=0")       # unlabelled system: SELinux off, as in the live UKIs
    return " ".join(parts)


def installed_kernels(root: Path) -> list[str]:
    """Kernel versions with an image in /usr/lib/modules, newest first."""
    base = root / "usr/lib/modules"
    found = [d.name for d in base.iterdir() if (d / "vmlinuz").is_file()] if base.is_dir() else []
    ordered: list[str] = []
    for kver in found:
        i = next((i for i, k in enumerate(ordered) if rpmvercmp(kver, k) > 0), len(ordered))
        ordered.insert(i, kver)
    return ordered


def os_name(root: Path) -> str:
    try:
        for line in (root / "etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "LevitateOS"


def checked_kernel_version(kver: str) -> str:
    if not KERNEL_VERSION.fullmatch(kver) or ".." in kver:
        raise LevitateError(f"'{kver}' is not a kernel version", "name it as `uname -r` does, e.g. 6.12.0-55.el10.x86_64")
    return kver


def require_busybox(root: Path) -> None:
    if not (root / INSTALLED_BUSYBOX.relative_to("/")).is_file():
        raise LevitateError(f"{INSTALLED_BUSYBOX} is missing: it is what the initramfs runs on",
                            "this is not a LevitateOS system, or the file was removed (reinstall with recstrap)")


def entry_settings(root: Path, table: list[mountinfo.MountEntry], *, given_root: str | None = None,
                   cmdline: str | None = None, all_microcode: bool = False) -> EntrySettings:
    """The one rule for root=, the options, the modules and the microcode, shared by recboot and
    the kernel-install plugin, so a kernel dnf installs boots like the ones recboot set up."""
    proc_cmdline = Path("/proc/cmdline").read_text() if Path("/proc/cmdline").exists() else ""
    # Host-only microcode, as dracut's default on Rocky: recboot runs on the machine it sets up.
    cpu = None if all_microcode else Cpu.from_cpuinfo(Path("/proc/cpuinfo").read_text())
    return EntrySettings(root_spec(root, given_root, table), kernel_options(cmdline, proc_cmdline),
                         DISK_MODULES + extra_modules(root), cpu)


def install_kernel(root: Path, esp: Path, kver: str, settings: EntrySettings, image: Path | None = None) -> Path:
    """Kernel, initramfs and loader entry for `kver` on the ESP; returns the entry. `image`: the
    kernel to copy (default: the tree's /usr/lib/modules/KVER/vmlinuz)."""
    directory = esp / ESP_DIR / kver
    directory.mkdir(parents=True, exist_ok=True)
    # The ESP's directories are synced too: a boot entry whose rename is lost in a power cut
    # would leave the firmware with no (or a stale) kernel to boot.
    with atomic_output(directory / "initramfs.img", sync_dir=True) as initrd_tmp:
        # the same early microcode and CPU check as the live system's (build_initramfs reads the tree)
        build_initramfs(root, InitramfsSpec(kernel_version=kver, busybox=root / INSTALLED_BUSYBOX.relative_to("/"),
                                            modules=settings.modules, cpu_level=installed_cpu_level(root),
                                            microcode_for=settings.cpu), initrd_tmp)
    with atomic_output(directory / "linux", sync_dir=True) as linux_tmp:
        shutil.copyfile(image or root / "usr/lib/modules" / kver / "vmlinuz", linux_tmp)
    entry = esp / "loader/entries" / f"{ENTRY_PREFIX}{kver}.conf"
    write_atomic(entry, f"title   {os_name(root)}\nversion {kver}\nlinux   /{ESP_DIR}/{kver}/linux\n"
                        f"initrd  /{ESP_DIR}/{kver}/initramfs.img\n"
                        f"options root={settings.root_spec} ro {settings.options}".rstrip() + "\n",
                 sync_dir=True)
    return entry


def remove_kernel(esp: Path, kver: str) -> bool:
    """The entry of `kver` (first: no entry ever names a missing file), then its files. Whether
    there was anything to remove."""
    entry = esp / "loader/entries" / f"{ENTRY_PREFIX}{kver}.conf"
    directory = esp / ESP_DIR / kver
    found = entry.is_file() or directory.is_dir()
    entry.unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)
    return found


def remove_stale(esp: Path, keep: set[str]) -> list[str]:
    """Entries and files of kernels no longer installed (only what recboot itself wrote)."""
    removed = []
    for entry in sorted((esp / "loader/entries").glob(f"{ENTRY_PREFIX}*.conf")):
        kver = entry.name[len(ENTRY_PREFIX):-len(".conf")]
        if kver not in keep:
            remove_kernel(esp, kver)
            removed.append(kver)
    return removed


def run_bootctl(esp: Path) -> str:
    """`bootctl install` the first time (it also adds "Linux Boot Manager" to the firmware's boot
    order), `bootctl update` afterwards. When bootctl does not accept `esp` as an ESP (not a GPT
    partition it can identify, as in a loop-mounted test image), it is asked again with its checks
    relaxed: the files are installed, but without the partition's identity there is no firmware
    entry, and the ESP's fallback EFI/BOOT/BOOTX64.EFI is what boots."""
    installed = (esp / "EFI/systemd/systemd-bootx64.efi").is_file()
    argv = ["bootctl", "update" if installed else "install", f"--esp-path={esp}"]
    if installed:
        argv.append("--graceful")
    efivars = Path("/sys/firmware/efi/efivars")
    if not efivars.is_dir() or not any(efivars.iterdir()):
        argv.append("--no-variables")
        log.warning("recboot: no EFI variables here (not booted in UEFI mode, or efivarfs not mounted): "
                    "the firmware gets no boot entry; the ESP's fallback EFI/BOOT/BOOTX64.EFI still boots")
    hint = "check that the ESP is a FAT partition mounted read-write"
    missing = "install systemd-boot (it provides bootctl), or pass --no-bootctl"
    try:
        proc = run(argv, capture=True, what=" ".join(argv), hint=hint, missing=missing)
    except LevitateError as exc:
        if "--no-variables" in argv or isinstance(exc, MissingToolError):
            raise
        log.warning("recboot: bootctl does not recognise %s as an EFI system partition (%s); installing "
                    "without a firmware boot entry, the ESP's fallback EFI/BOOT/BOOTX64.EFI boots", esp, exc.message)
        argv.append("--no-variables")
        proc = run(argv, capture=True, env=dict(os.environ, SYSTEMD_RELAX_ESP_CHECKS="1"), what=" ".join(argv),
                   hint=hint)
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    entry = re.search(r'Created EFI boot entry "([^"]+)"', output)
    return " ".join(argv[:2]) + (f" (firmware boot entry \"{entry[1]}\")" if entry else "")


def write_loader_conf(esp: Path) -> None:
    """recboot's loader.conf, unless the user edited it. `bootctl install` (run first) writes one
    with every line commented out ("#timeout 3", "#console-mode keep"): no menu timeout, so the
    previous kernel's entry could only be reached by holding a key. A file without a setting is
    not the user's and is replaced."""
    conf = esp / "loader/loader.conf"
    if conf.is_file():
        text = conf.read_text()
        settings = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if settings and not text.startswith("# Written by recboot"):
            return
    if conf.is_file() and conf.read_text() == LOADER_CONF:
        return
    write_atomic(conf, LOADER_CONF, sync_dir=True)


def extra_modules(root: Path) -> tuple[str, ...]:
    path = root / EXTRA_MODULES_FILE.relative_to("/")
    if not path.is_file():
        return ()
    return tuple(w for line in path.read_text().splitlines() for w in line.split("#", 1)[0].split())


def recboot(args: argparse.Namespace, root: Path = Path("/")) -> int:
    if os.geteuid() != 0:
        raise LevitateError("recboot must run as root", "run it with sudo, or inside `recchroot /mnt`")
    require_busybox(root)
    table = mountinfo.read()
    esp = find_esp(root, args.esp, table)
    settings = entry_settings(root, table, given_root=args.root, cmdline=args.cmdline,
                              all_microcode=args.all_microcode)
    kernels = installed_kernels(root)
    wanted = args.kernel or kernels
    missing = [k for k in wanted if k not in kernels]
    if missing:
        raise LevitateError(f"no kernel {', '.join(missing)} in /usr/lib/modules",
                            f"installed: {', '.join(kernels) or 'none'}")
    if not wanted:
        raise LevitateError("no kernel in /usr/lib/modules/*/vmlinuz", "install a kernel package first")
    if not args.no_bootctl:
        say(args, f"systemd-boot: {run_bootctl(esp)} on {esp}")
    for kver in wanted:
        entry = install_kernel(root, esp, kver, settings)
        say(args, f"kernel {kver}: {esp / ESP_DIR / kver}/{{linux,initramfs.img}}, entry {entry}")
    for kver in remove_stale(esp, set(kernels)):
        say(args, f"removed the entry of kernel {kver} (no longer installed)")
    write_loader_conf(esp)
    say(args, f"boots root={settings.root_spec} {settings.options}".rstrip())
    return 0


def say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"recboot: {text}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recboot", description=__doc__.splitlines()[0],
                                     epilog="Run it again after a kernel update.")
    parser.add_argument("--esp", help="the mounted EFI system partition (default: /boot, /efi or /boot/efi)")
    parser.add_argument("--root", help="root=SPEC for the kernel (default: the / entry of /etc/fstab)")
    parser.add_argument("--kernel", action="append", metavar="KVER", help="only this kernel (repeatable)")
    parser.add_argument("--cmdline", help="extra kernel options (also read: /etc/kernel/cmdline)")
    parser.add_argument("--no-bootctl", action="store_true", help="do not install or update systemd-boot")
    parser.add_argument("--all-microcode", action="store_true",
                        help="early microcode for every CPU (default: only this machine's, as dracut's host-only "
                             "mode; use it when the disk will move to another machine)")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(message)s")
    return run_command("recboot", args, recboot)


if __name__ == "__main__":
    sys.exit(main())
