"""QEMU for leviso: find the firmware, pick an accelerator that really works, and drive a VM.

A `VM` is one virtual machine: its own temporary directory (a fresh copy of the OVMF variable
store, kept across that VM's restarts), its QEMU command line, and its serial console, which QEMU
logs to a file and which tests drive through pexpect over a pair of FIFOs:

    with VM(iso=Path("output/levitateos.iso"), log_path=Path("boot.log")) as vm:
        vm.start()
        vm.wait_for("LEVITATE-LIVE-SHELL-READY", timeout=300)
        out, status = vm.run("cat /proc/1/comm")

`wait_for` fails fast on known failure patterns (a kernel panic, an emergency shell, a console
that stays silent) with the last lines of the console log; QEMU is always killed when the VM is
stopped, closed, garbage-collected at exit, or when the Python process dies.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import functools
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..util.errors import LevitateError, MissingToolError
from ..util.files import atomic_output
from ..util.log import log
from ..util.run import Process, run, start, stop
from .live import SHELL_MARKER

QEMU = "qemu-system-x86_64"
QEMU_HINT = ("install QEMU: Debian/Ubuntu `sudo apt-get install -y qemu-system-x86 qemu-utils`, "
             "Fedora `sudo dnf install -y qemu-system-x86 qemu-img`, Arch `sudo pacman -S --needed qemu-base`")
OVMF_HINT = ("install the UEFI firmware for QEMU: Debian/Ubuntu `sudo apt-get install -y ovmf`, "
             "Fedora/Rocky `sudo dnf install -y edk2-ovmf`, Arch `sudo pacman -S --needed edk2-ovmf`; "
             "or point OVMF_CODE and OVMF_VARS at the firmware files")

# SHELL_MARKER (imported above): the line the live system's login shell prints on the serial
# console when it starts; the live layer writes it into its profile script.

# Console text that means the boot has failed: wait_for stops at once instead of waiting out its
# timeout. Regular expressions, searched in the console output.
DEFAULT_FAIL: tuple[str, ...] = (
    r"Kernel panic",
    r"LEVITATE-INIT: ERROR",
    r"emergency shell",
    r"Entering emergency mode",
    r"You are in emergency mode",
    r"Give root password for maintenance",
    r"Freezing execution",                      # systemd (PID 1) crashed
    r"UEFI Interactive Shell",                  # OVMF found nothing to boot
    r"No bootable option or device was found",
)

# ------------------------------------------------------------------------------------------------
# Firmware


# (CODE, VARS) pairs where distributions install OVMF, in the order they are tried. The plain
# (non-secure-boot) builds: the secboot ones need SMM and an enrolled variable store.
OVMF_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),          # Debian 12, Ubuntu 22.04+
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),                # older Debian/Ubuntu
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),      # Fedora, RHEL, Rocky
    ("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"),  # Arch
    ("/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd"),  # older Arch
    ("/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin"),  # openSUSE
)


def find_ovmf(env: Mapping[str, str] | None = None,
              candidates: Sequence[tuple[str | Path, str | Path]] = OVMF_CANDIDATES) -> tuple[Path, Path]:
    """The OVMF firmware (code, variable store template): `OVMF_CODE`/`OVMF_VARS` first, then the
    usual paths. With only OVMF_CODE set, the VARS file beside it (CODE -> VARS in its name)."""
    env = os.environ if env is None else env
    code_env, vars_env = env.get("OVMF_CODE"), env.get("OVMF_VARS")
    if code_env or vars_env:
        if not code_env:
            raise LevitateError("OVMF_VARS is set but OVMF_CODE is not",
                                "set both to a matching pair of OVMF firmware files")
        code = Path(code_env)
        if vars_env:
            vars_ = Path(vars_env)
        else:
            vars_ = code.with_name(code.name.replace("CODE", "VARS").replace("code", "vars"))
            if vars_ == code or not vars_.is_file():
                raise LevitateError(f"OVMF_CODE is set but OVMF_VARS is not, and {vars_} does not exist",
                                    "set OVMF_VARS to the variable store that matches OVMF_CODE")
        for name, path in (("OVMF_CODE", code), ("OVMF_VARS", vars_)):
            if not path.is_file():
                raise LevitateError(f"{name}={path}: no such file", f"unset {name} or point it at the firmware file")
        return code, vars_
    for code, vars_ in candidates:
        if Path(code).is_file() and Path(vars_).is_file():
            return Path(code), Path(vars_)
    raise MissingToolError("no UEFI firmware (OVMF) for QEMU found", OVMF_HINT)


# ------------------------------------------------------------------------------------------------
# Accelerator

KVM_DEVICE = "/dev/kvm"
KVM_ARGS = ("-accel", "kvm", "-cpu", "host")
# Rocky 10 is built for x86-64-v3; QEMU's default CPU model lacks it, `max` emulates it under TCG.
TCG_ARGS = ("-accel", "tcg", "-cpu", "max")
ACCEL_ENV = "LEVITATE_QEMU_ACCEL"     # "kvm" or "tcg": skip the probe

# The KVM probe: a 64 KiB `-bios` image whose reset vector jumps to this code at 0xF0000. It
# builds identity page tables, enters 32-bit protected mode, then long mode (the switches a
# kernel makes), and writes 0x21 to QEMU's isa-debug-exit port, which ends QEMU with status
# (0x21 << 1) | 1 = 67. A hang, a crash of QEMU or a triple fault (-no-reboot) gives any other
# outcome. Assembled (GNU as) from:
#   .code16: cli; xor ax,ax; mov ds,ax; movl $0x2003,0x1000; movl $0x3003,0x2000; movl $0x83,0x3000
#            lgdtl cs:gdtr; cr0 |= PE; ljmpl $0x08, $(0xF0000+pm32)
#   .code32: pm32: ds=ss=0x10; cr4 |= PAE; cr3 = 0x1000; EFER |= LME (rdmsr/wrmsr 0xC0000080)
#            cr0 |= PG; ljmpl $0x18, $(0xF0000+lm64)
#   .code64: lm64: mov $0x21,al; out al,$0xf4; 1: hlt; jmp 1b
#   gdt: null, 32-bit code 0x00CF9B000000FFFF, data 0x00CF93000000FFFF, 64-bit code
#        0x00AF9B000000FFFF (accessed bits preset: the ROM is read-only); gdtr: limit, base
_PROBE_CODE = bytes.fromhex(
    "fa31c08ed866c70600100320000066c70600200330000066c706003083000000"
    "2e660f011698000f20c00c010f22c066ea37000f00080066b810008ed88ed00f"
    "20e083c8200f22e0b8001000000f22d8b9800000c00f320d000100000f300f20"
    "c00d000000800f22c0ea70000f001800b021e6f4f4ebfd900000000000000000"
    "ffff0000009bcf00ffff00000093cf00ffff0000009baf001f0078000f00"
)
_PROBE_OK = (0x21 << 1) | 1


def probe_rom() -> bytes:
    rom = bytearray(b"\xf4" * 0x10000)                  # hlt everywhere
    rom[:len(_PROBE_CODE)] = _PROBE_CODE
    rom[0xFFF0:0xFFF5] = b"\xea\x00\x00\x00\xf0"        # reset vector: ljmp $0xF000, $0
    return bytes(rom)


def probe_accel(accel: Sequence[str], *, timeout: float = 10.0) -> bool:
    """Does QEMU with these accelerator arguments run guest code through long mode? (~0.1 s)"""
    if shutil.which(QEMU) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="leviso-probe-") as tmp:
        rom = Path(tmp) / "probe.rom"
        rom.write_bytes(probe_rom())
        argv = [QEMU, *accel, "-machine", "q35", "-m", "16", "-nodefaults", "-no-user-config",
                "-display", "none", "-bios", str(rom), "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        started = time.monotonic()
        try:
            proc = run(argv, check=False, timeout=timeout, what="the accelerator probe")
        except LevitateError as exc:
            log.debug("accelerator probe %s: %s", " ".join(accel), exc)
            return False
        ok = proc.returncode == _PROBE_OK
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()
        log.debug("accelerator probe %s: %s in %.2f s (exit %d%s)", " ".join(accel), "works" if ok else "fails",
                  time.monotonic() - started, proc.returncode, f": {stderr[-1]}" if stderr and not ok else "")
        return ok


@functools.cache
def kvm_usable() -> bool:
    """KVM that really runs guests, probed once per process (`/dev/kvm` existing is not enough:
    on nested or restricted hosts it can be there and fail every boot)."""
    if not os.path.exists(KVM_DEVICE):
        log.debug("%s does not exist: no KVM", KVM_DEVICE)
        return False
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        log.info("%s is not accessible to this user (join the kvm group for speed); using TCG", KVM_DEVICE)
        return False
    usable = probe_accel(KVM_ARGS)
    if not usable:
        log.info("KVM is present but does not run guests here; using TCG (slower)")
    return usable


def accel_args() -> list[str]:
    """`-accel kvm -cpu host` when KVM works, else `-accel tcg -cpu max`; LEVITATE_QEMU_ACCEL=kvm|tcg
    forces a choice."""
    forced = os.environ.get(ACCEL_ENV, "").strip().lower()
    if forced not in ("", "kvm", "tcg"):
        raise LevitateError(f"{ACCEL_ENV}={forced}: unknown accelerator", "use kvm or tcg, or unset it")
    if forced == "kvm" or (not forced and kvm_usable()):
        return list(KVM_ARGS)
    return list(TCG_ARGS)


def require_qemu(tool: str = QEMU) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(f"{tool}: command not found", QEMU_HINT)
    return path


# ------------------------------------------------------------------------------------------------
# Disks

Bus = Literal["virtio", "sata", "usb", "nvme", "scsi"]
BUSES: tuple[str, ...] = ("virtio", "sata", "usb", "nvme", "scsi")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'20G', '512M', '1.5T', '4096' -> bytes (binary units, as qemu-img reads them)."""
    match = _SIZE.match(str(text))
    if not match:
        raise LevitateError(f"{text!r} is not a disk size", "give a size like 20G or 512M")
    number, unit = float(match[1]), match[2].upper()
    size = int(number * 1024 ** " KMGT".index(unit or " "))
    if size < 1024 * 1024:
        raise LevitateError(f"disk size {text!r} is too small", "give a size like 20G")
    return size


def disk_format(path: Path) -> str:
    return "qcow2" if path.suffix.lower() in (".qcow2", ".qcow") else "raw"


def create_disk(path: Path, size: str | int) -> Path:
    """A new empty disk image: qcow2 (by qemu-img) for *.qcow2, otherwise a sparse raw file.
    Written under a temporary name and renamed, so a failure leaves nothing half-made."""
    path = Path(path)
    nbytes = size if isinstance(size, int) else parse_size(size)
    if path.exists():
        raise LevitateError(f"{path} already exists", "remove it first, or use it as it is")
    with atomic_output(path) as tmp:
        if disk_format(path) == "qcow2":
            run([require_qemu("qemu-img"), "create", "-q", "-f", "qcow2", tmp, str(nbytes)],
                what=f"creating the disk image {path}")
        else:
            with open(tmp, "wb") as f:
                f.truncate(nbytes)
    return path


@dataclass(frozen=True)
class Disk:
    """A disk for the VM. `snapshot`: writes go to a throw-away overlay, the file stays as it is."""
    path: Path
    bus: Bus = "virtio"
    format: str | None = None
    snapshot: bool = False
    readonly: bool = False


# ------------------------------------------------------------------------------------------------
# The VM


class VmError(LevitateError):
    """The VM did not do what was expected: a boot failure, a timeout, QEMU exiting."""


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\-_])")


def clean_console_text(text: str) -> str:
    """Console output without terminal escape sequences and carriage returns."""
    text = _ANSI.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def log_tail(path: Path, lines: int = 25) -> str:
    """The last non-empty lines of a console log, readable (escape sequences removed)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line.rstrip() for line in clean_console_text(data).splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _qopt(value: str | Path) -> str:
    """A value inside a QEMU option list: commas are doubled."""
    return str(value).replace(",", ",,")


def _octal_escape(text: str) -> str:
    """Text for `printf '%b' '...'`: inside single quotes everything is literal except the quote
    itself; backslashes, control and non-ASCII bytes become \\0NNN escapes."""
    out = []
    for byte in text.encode():
        if byte in (0x27, 0x5C) or byte < 0x20 or byte >= 0x7F:
            out.append(f"\\0{byte:03o}")
        else:
            out.append(chr(byte))
    return "".join(out)


MAX_COMMAND_LINE = 3500      # a shell reading in canonical mode stops at 4095 bytes a line


def shell_command_line(cmd: str, nonce: str) -> str:
    """One shell input line that runs `cmd` (stdin /dev/null) between two markers; the end
    marker carries the exit status. The markers are printed through `printf '%s'` so the echo of
    the line itself never contains them, whatever the terminal echoes."""
    line = (f"printf '\\n%s:B\\n' {nonce}; eval \"$(printf '%b' '{_octal_escape(cmd)}')\" </dev/null; "
            f"printf '\\n%s:E:%d:\\n' {nonce} $?")
    if len(line) > MAX_COMMAND_LINE:
        raise ValueError(f"command too long for the serial console ({len(line)} bytes): copy a script instead")
    return line


def command_output_pattern(nonce: str) -> re.Pattern:
    return re.compile(rf"{nonce}:B\r*\n(.*?)\r*\n{nonce}:E:(\d+):", re.DOTALL)


def parse_command_output(match: re.Match) -> tuple[str, int]:
    text = match[1].replace("\r\n", "\n").replace("\r", "")
    return text.rstrip("\n"), int(match[2])


# Sent once per boot before the first command: no pager, no colours, no kernel chatter.
SHELL_SETUP = ("export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 COLUMNS=250; "
               "unset PROMPT_COMMAND; stty -echo cols 250 2>/dev/null; dmesg -n 1 2>/dev/null; true")

Console = Literal["pexpect", "stdio", "gui"]

_LIVE: "weakref.WeakSet[VM]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for vm in list(_LIVE):
        vm.close()


def _die_with_parent() -> None:
    """In the child before exec: QEMU gets SIGKILL when the process that started it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, atexit and stop() remain
        pass


class _Activity:
    """pexpect's logfile_read: remembers when the console last said something."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def write(self, data) -> None:
        if data:
            self.last = time.monotonic()

    def flush(self) -> None:
        pass


class VM:
    """One QEMU virtual machine (q35, x86-64). See the module docstring."""

    def __init__(
        self,
        iso: Path | None = None,
        *,
        iso_as_disk: bool = False,
        iso_bus: Bus = "virtio",
        disks: Sequence[Path | Disk] = (),
        kernel: Path | None = None,
        initrd: Path | None = None,
        append: str | None = None,
        firmware: bool | None = None,
        vars_path: Path | None = None,
        boot_from: Literal["iso", "disk"] | None = None,
        memory: int = 2048,
        cpus: int = 2,
        network: bool = True,
        console: Console = "pexpect",
        log_path: Path | None = None,
        no_reboot: bool = False,
        accel: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        silence_timeout: float | None = 120.0,
    ):
        """
        iso: attached as a CD (AHCI cdrom), or with `iso_as_disk` as a disk on `iso_bus`
            (snapshot=on: the guest can write, the file is never modified), as a USB stick would be.
        disks: further disks (Path: virtio, format from the suffix; or Disk).
        kernel/initrd/append: direct kernel boot; no firmware unless `firmware=True`.
        firmware: OVMF (default: on unless a kernel is given). CODE is read-only; the variable
            store is a fresh copy of the template in the VM's own directory, kept across restarts
            of this VM, or `vars_path` (copied there once, then kept: a persistent VM).
        boot_from: which device the firmware boots first (default: the ISO if any, else the first
            disk). The disks follow in their order; with "disk" the ISO is not offered to OVMF.
        console: "pexpect" (serial console on a pipe, logged, driven by wait_for/run),
            "stdio" (serial console in this terminal; Ctrl-A X quits) or "gui" (a window).
        log_path: the serial console log (default: a file in the temporary directory, kept).
        silence_timeout: wait_for fails when the console says nothing for this long.
        """
        if iso_as_disk and iso is None:
            raise ValueError("iso_as_disk needs an iso")
        if iso_bus not in BUSES:
            raise ValueError(f"unknown bus {iso_bus!r}: one of {', '.join(BUSES)}")
        self.iso = Path(iso).resolve() if iso is not None else None
        self.iso_as_disk = iso_as_disk
        self.iso_bus = iso_bus
        self.disks = [d if isinstance(d, Disk) else Disk(Path(d)) for d in disks]
        for d in self.disks:
            if d.bus not in BUSES:
                raise ValueError(f"unknown bus {d.bus!r}: one of {', '.join(BUSES)}")
        self.kernel, self.initrd, self.append = kernel, initrd, append
        self.firmware = (kernel is None) if firmware is None else firmware
        self.boot_from = boot_from or ("iso" if iso is not None else "disk")
        self.memory, self.cpus, self.network = memory, cpus, network
        self.console_mode: Console = console
        self.no_reboot = no_reboot
        self._accel = list(accel) if accel is not None else None
        self.extra_args = list(extra_args)
        self.silence_timeout = silence_timeout

        self.runtime_dir = Path(tempfile.mkdtemp(prefix="leviso-vm-"))
        self.log_path = Path(log_path) if log_path else self.runtime_dir.with_name(self.runtime_dir.name + ".log")
        self.vars_path = Path(vars_path) if vars_path else self.runtime_dir / "OVMF_VARS.fd"
        self._code_path: Path | None = None

        self.process: Process | None = None
        self.console = None               # pexpect.fdpexpect.fdspawn while running
        self._console_fds: tuple[int, ...] = ()      # (QEMU's output, QEMU's input) while running
        self._activity = _Activity()
        self._shell_ready = False
        self._log_started = False
        self.started_at: float | None = None
        self.last_match_seconds: float | None = None

    # -- command line ----------------------------------------------------------------------------

    @property
    def accel(self) -> list[str]:
        if self._accel is None:
            self._accel = accel_args()
        return self._accel

    @property
    def console_path(self) -> Path:
        """QEMU's `pipe` chardev: it writes the console to PATH.out and reads it from PATH.in."""
        return self.runtime_dir / "console"

    def _prepare_firmware(self) -> tuple[Path, Path]:
        """OVMF code (used in place, read-only) and this VM's own variable store: copied from the
        template the first time, then kept, so the VM's boot entries survive its reboots."""
        if self._code_path is None or not self.vars_path.exists():
            code, template = find_ovmf()
            self._code_path = code
            if not self.vars_path.exists():
                with atomic_output(self.vars_path, perm=0o644) as tmp:
                    shutil.copyfile(template, tmp)
        return self._code_path, self.vars_path

    def _drives(self) -> list[str]:
        args: list[str] = []
        sata_port = 0
        controllers: set[str] = set()
        boot_index = 0

        def attach(drive_id: str, path: Path, bus: str, fmt: str, *, cdrom=False, snapshot=False,
                   readonly=False, boot=False) -> None:
            nonlocal sata_port, boot_index
            opts = ["if=none", f"id={drive_id}", f"file={_qopt(path)}", f"format={fmt}"]
            if cdrom:
                opts.append("media=cdrom")
            if snapshot:
                opts.append("snapshot=on")
            if readonly or cdrom:
                opts.append("readonly=on")
            args.extend(["-drive", ",".join(opts)])
            if cdrom or bus == "sata":
                if sata_port > 5:
                    raise LevitateError("too many SATA devices (q35 has 6 AHCI ports)")
                device = f"{'ide-cd' if cdrom else 'ide-hd'},drive={drive_id},bus=ide.{sata_port}"
                sata_port += 1
            elif bus == "virtio":
                device = f"virtio-blk-pci,drive={drive_id}"
            elif bus == "nvme":
                device = f"nvme,drive={drive_id},serial=levitate-{drive_id}"
            elif bus == "usb":
                if "usb" not in controllers:
                    args.extend(["-device", "qemu-xhci,id=xhci"])
                    controllers.add("usb")
                device = f"usb-storage,bus=xhci.0,drive={drive_id},removable=on"
            else:  # scsi
                if "scsi" not in controllers:
                    args.extend(["-device", "virtio-scsi-pci,id=scsi0"])
                    controllers.add("scsi")
                device = f"scsi-hd,bus=scsi0.0,drive={drive_id}"
            if boot and self.firmware:
                device += f",bootindex={boot_index}"
                boot_index += 1
            args.extend(["-device", device])

        if self.iso is not None:
            if not self.iso.is_file():
                raise LevitateError(f"{self.iso}: no such ISO", "build it with `leviso build`")
            if self.iso_as_disk:
                attach("isodisk", self.iso, self.iso_bus, "raw", snapshot=True, boot=self.boot_from == "iso")
            else:
                attach("cd0", self.iso, "sata", "raw", cdrom=True, boot=self.boot_from == "iso")
        for n, disk in enumerate(self.disks):
            attach(f"disk{n}", Path(disk.path).resolve(), disk.bus, disk.format or disk_format(Path(disk.path)),
                   snapshot=disk.snapshot, readonly=disk.readonly, boot=True)
        return args

    def command(self) -> list[str]:
        """The full QEMU command line (prepares the firmware variable store)."""
        argv = [QEMU, "-name", "levitateos", "-machine", "q35", *self.accel,
                "-m", str(self.memory), "-smp", str(self.cpus), "-nodefaults", "-no-user-config"]
        if self.firmware:
            code, vars_ = self._prepare_firmware()
            code_fmt = "qcow2" if code.suffix == ".qcow2" else "raw"
            vars_fmt = "qcow2" if vars_.suffix == ".qcow2" else "raw"
            argv += ["-drive", f"if=pflash,format={code_fmt},unit=0,readonly=on,file={_qopt(code)}",
                     "-drive", f"if=pflash,format={vars_fmt},unit=1,file={_qopt(vars_)}"]
        if self.kernel is not None:
            argv += ["-kernel", str(Path(self.kernel).resolve())]
            if self.initrd is not None:
                argv += ["-initrd", str(Path(self.initrd).resolve())]
            if self.append:
                argv += ["-append", self.append]
        argv += self._drives()
        if self.network:
            # romfile= : no iPXE option ROM, so the firmware never tries a slow network boot
            argv += ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="]
        argv += ["-device", "virtio-rng-pci"]
        log = _qopt(self.log_path.resolve())
        if self.console_mode == "pexpect":
            argv += ["-display", "none", "-vga", "none",
                     "-chardev", f"pipe,id=ser0,path={_qopt(self.console_path)},logfile={log},logappend=on",
                     "-serial", "chardev:ser0", "-monitor", "none"]
        elif self.console_mode == "stdio":
            argv += ["-display", "none", "-vga", "none",
                     "-chardev", f"stdio,id=con0,mux=on,signal=off,logfile={log},logappend=on",
                     "-serial", "chardev:con0", "-mon", "chardev=con0,mode=readline"]
        else:
            argv += ["-vga", "std", "-chardev", f"vc,id=ser0,logfile={log},logappend=on",
                     "-serial", "chardev:ser0", "-monitor", "vc"]
        if self.no_reboot:
            argv.append("-no-reboot")
        return argv + self.extra_args

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def elapsed(self) -> float:
        """Seconds since the guest started running (QEMU start, after its console was connected)."""
        return time.monotonic() - self.started_at if self.started_at is not None else 0.0

    def _reset_log(self) -> None:
        if not self._log_started:           # restarts of this VM append to its log
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_bytes(b"")
            self._log_started = True

    def start(self) -> "VM":
        """Start QEMU with the serial console connected; the guest runs from this moment."""
        import pexpect.fdpexpect

        if self.console_mode != "pexpect":
            raise ValueError("start() drives the console; use foreground() for an interactive VM")
        if self.running:
            raise VmError("the VM is already running")
        qemu = require_qemu()
        argv = self.command()
        argv[0] = qemu
        self._reset_log()
        stderr_path = self.runtime_dir / "qemu.stderr"
        try:
            self._open_console()
            with open(stderr_path, "ab") as stderr:
                self.process = start(argv, output=stderr, new_session=True, setup=_die_with_parent)
            _LIVE.add(self)
            self._shell_ready = False
            self.started_at = time.monotonic()
            self._activity = _Activity()
            self.console = pexpect.fdpexpect.fdspawn(self._console_fds[0], encoding="utf-8",
                                                     codec_errors="replace", use_poll=True)
            self.console.logfile_read = self._activity
        except BaseException:
            self.stop()
            raise
        log.debug("VM started: %s, console log %s", " ".join(self.accel), self.log_path)
        return self

    def _open_console(self) -> None:
        """The FIFOs of QEMU's `pipe` chardev, opened read-write at our end (so no open blocks, and
        QEMU's writes never fail for want of a reader). Not a socket: a Unix socket holds only a few
        hundred one-byte writes, and when the reader falls behind, QEMU's UART drops what the
        firmware prints (OVMF and systemd-boot do not wait for the line; Linux does). A pipe holds
        1 MiB here."""
        fds = []
        try:
            for suffix in ("out", "in"):
                fifo = self.console_path.with_name(f"{self.console_path.name}.{suffix}")
                fifo.unlink(missing_ok=True)
                os.mkfifo(fifo, 0o600)
                fds.append(os.open(fifo, os.O_RDWR | os.O_CLOEXEC))
            try:
                fcntl.fcntl(fds[0], fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:                     # over /proc/sys/fs/pipe-max-size: keep the 64 KiB
                pass
        finally:
            self._console_fds = tuple(fds)

    def stop(self) -> None:
        """Kill QEMU (if running) and close the console. Safe to call at any time, repeatedly."""
        self.console = None
        for fd in self._console_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._console_fds = ()
        proc, self.process = self.process, None
        if proc is not None:
            stop(proc)
            self.process = proc             # keep it for its exit status
        _LIVE.discard(self)

    def close(self) -> None:
        """Stop the VM and remove its temporary directory (the console log is kept)."""
        self.stop()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> "VM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def foreground(self) -> int:
        """Run QEMU in this terminal ("stdio" or "gui" console) until it exits; its exit status."""
        if self.console_mode == "pexpect":
            raise ValueError("foreground() is for console='stdio' or 'gui'")
        qemu = require_qemu()
        argv = self.command()
        argv[0] = qemu
        self._reset_log()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C belongs to the guest/QEMU
        try:
            proc = start(argv, setup=_die_with_parent)
            self.process = proc
            _LIVE.add(self)
            return proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
            self.stop()

    # -- console ---------------------------------------------------------------------------------

    def _qemu_stderr(self) -> str:
        try:
            text = (self.runtime_dir / "qemu.stderr").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no error output"
        text = [t for t in text if "waiting for connection" not in t]
        return " | ".join(text[-3:]) if text else "no error output"

    def _failure(self, what: str) -> VmError:
        tail = log_tail(self.log_path)
        message = f"{what} (after {self.elapsed():.1f} s)"
        if tail:
            message += f"\n--- last lines of the console log ---\n{tail}\n---"
        return VmError(message, f"full console log: {self.log_path}")

    def _exited(self) -> VmError:
        status = self.process.wait(5) if self.process is not None else None
        what = f"QEMU exited (status {status})"
        stderr = self._qemu_stderr()
        if stderr != "no error output":
            what += f": {stderr}"
        return self._failure(what)

    def _require_console(self):
        if self.console is None:
            raise VmError("the VM is not running")
        return self.console

    def wait_for(self, pattern: str | re.Pattern, timeout: float, *,
                 fail_patterns: Sequence[str | re.Pattern] = DEFAULT_FAIL,
                 silence_timeout: float | None = -1.0) -> re.Match:
        """Read the console until `pattern` (a regular expression) appears; its match.

        Raises VmError at once when one of `fail_patterns` appears first, when QEMU exits, when
        the console says nothing for `silence_timeout` seconds (default: the VM's; None: never),
        or after `timeout` seconds."""
        import pexpect

        console = self._require_console()
        silence = self.silence_timeout if silence_timeout == -1.0 else silence_timeout
        wanted = [re.compile(pattern) if isinstance(pattern, str) else pattern]
        wanted += [re.compile(p) if isinstance(p, str) else p for p in fail_patterns]
        what = wanted[0].pattern
        started = time.monotonic()
        deadline = started + timeout
        exited = False
        while True:
            now = time.monotonic()
            quiet = now - max(self._activity.last, started)
            if silence is not None and quiet >= silence:
                raise self._failure(f"no console output for {quiet:.0f} s while waiting for {what!r}")
            if now >= deadline:
                raise self._failure(f"timed out after {timeout:.0f} s waiting for {what!r}")
            step = min(1.0, deadline - now)
            try:
                index = console.expect_list(wanted, timeout=step)
            except pexpect.TIMEOUT:
                if exited:
                    raise self._exited() from None
                exited = not self.running       # one more step reads what QEMU wrote last
                continue
            if index == 0:
                self.last_match_seconds = self.elapsed()
                if SHELL_MARKER in console.match.group(0):
                    self._shell_ready = False           # a new shell: run() sets it up again
                return console.match
            found = console.match.group(0)
            try:                                # let the rest of that line reach the log
                console.expect_list([re.compile(r"\n")], timeout=2)
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
            raise self._failure(f"the console shows {found!r} while waiting for {what!r}")

    def send(self, text: str) -> None:
        self._require_console()
        data = text.encode()
        while data:
            data = data[os.write(self._console_fds[1], data):]

    def sendline(self, text: str = "") -> None:
        self.send(text + "\n")

    def run(self, cmd: str, timeout: float = 60) -> tuple[str, int]:
        """Run a shell command over the serial console (a shell must be at its prompt); its
        output (stdout and stderr, trailing newlines removed) and exit status."""
        if not self._shell_ready:
            self._shell_ready = True
            self._run(SHELL_SETUP, 30)
        return self._run(cmd, timeout)

    def _run(self, cmd: str, timeout: float) -> tuple[str, int]:
        import pexpect

        console = self._require_console()
        nonce = "lv" + secrets.token_hex(6)
        self.sendline(shell_command_line(cmd, nonce))
        deadline = time.monotonic() + timeout
        exited = False
        while True:
            try:
                console.expect_list([command_output_pattern(nonce)],
                                    timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                return parse_command_output(console.match)
            except pexpect.TIMEOUT:
                if exited:
                    raise self._exited() from None
                exited = not self.running
                if time.monotonic() >= deadline:
                    self.send("\x03")              # try to get the shell back for the next command
                    raise self._failure(f"command {cmd!r} did not finish within {timeout:.0f} s") from None
