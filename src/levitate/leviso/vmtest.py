"""`leviso test` and `leviso run`: boot the ISO in QEMU and check it, or hand it to a person.

`leviso test` boots the ISO headless through OVMF (as a CD, or as a disk like a USB stick),
waits for the live shell's marker on the serial console and checks over that console what a user
relies on: systemd is PID 1, `/` is an overlay over the EROFS (or squashfs) base image, the system
reached `running` (not degraded), the boot medium is at /run/levitate/media. It also records the
boot time and the memory in use, for the benchmarks. The caller's exit status derives from the
returned report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from ..util.log import log
from ..util.run import run
from .qemu import QEMU, SHELL_MARKER, VM, VmError, create_disk, parse_size, require_qemu

MEDIA_DIR = "/run/levitate/media"
BASE_IMAGES = ("live/filesystem.erofs", "live/filesystem.squashfs")
SYSTEM_STATES = ("initializing", "starting", "running", "degraded", "maintenance", "stopping", "offline",
                 "unknown")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        text = f"{'PASS' if self.passed else 'FAIL'}  {self.name}"
        if self.detail:
            first, *rest = self.detail.splitlines()
            text += f": {first}" + "".join(f"\n      {r}" for r in rest)
        return text


@dataclass
class TestReport:
    """What `leviso test` found, and the figures the benchmarks keep."""
    __test__ = False            # not a pytest test class

    iso: Path
    log_path: Path
    medium: str                 # "cdrom" or "disk (virtio)"
    accel: list[str]
    checks: list[Check] = field(default_factory=list)
    boot_seconds: float | None = None           # QEMU start to the shell marker
    systemd_analyze: dict[str, float] = field(default_factory=dict)   # firmware, loader, kernel, ...
    systemd_analyze_text: str = ""
    memory_used_kib: int | None = None          # MemTotal - MemAvailable after boot
    kernel_clock_start: float | None = None     # QEMU start to the guest's clock zero: firmware, boot
                                                # loader, stub and kernel decompression
    error: str | None = None                    # why the boot or the checks stopped early

    @property
    def passed(self) -> bool:
        return bool(self.checks) and self.error is None and all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(iso=str(self.iso), log_path=str(self.log_path), passed=self.passed)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ------------------------------------------------------------------------------------------------
# Pure parsers (unit-tested without a VM)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: str

    def option(self, name: str) -> str | None:
        for opt in _split_options(self.options):
            key, _, value = opt.partition("=")
            if key == name:
                return value
        return None


def _split_options(options: str) -> list[str]:
    """Mount options split at commas, except escaped ones (overlayfs writes '\\,' in paths)."""
    return [o.replace("\\,", ",") for o in re.split(r"(?<!\\),", options)]


def _unescape_mount_field(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def parse_mounts(text: str) -> list[Mount]:
    """/proc/mounts lines; anything else on the console (kernel chatter) is skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[4].isdigit() and fields[5].isdigit() and fields[1].startswith("/"):
            mounts.append(Mount(_unescape_mount_field(fields[0]), _unescape_mount_field(fields[1]), fields[2],
                                fields[3]))
    return mounts


def parse_backing_files(text: str) -> dict[str, str]:
    """'BACKING /sys/block/loop0/loop/backing_file /path' lines -> {'/dev/loop0': '/path'}."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"BACKING /sys/block/(loop\d+)/loop/backing_file (.+)$", line.strip())
        if m:
            found[f"/dev/{m[1]}"] = m[2].strip()
    return found


def _same_path(a: str, b: str) -> bool:
    a, b = a.rstrip("/") or "/", b.rstrip("/") or "/"
    return a == b


def check_root_overlay(mounts: list[Mount], backing: dict[str, str]) -> Check:
    """`/` is an overlay whose lower layers include a mounted EROFS/squashfs base image."""
    name = "/ is an overlay over the EROFS base image"
    roots = [m for m in mounts if m.target == "/"]
    if not roots:
        return Check(name, False, "no mount on / in /proc/mounts")
    root = roots[-1]                           # the last mount on / is the visible one
    if root.fstype != "overlay":
        return Check(name, False, f"/ is {root.fstype} ({root.source}), not an overlay")
    lower = [p for p in re.split(r"(?<!\\):", root.option("lowerdir") or "") if p]
    bases = []
    for m in mounts:
        if m.fstype not in ("erofs", "squashfs"):
            continue
        image = backing.get(m.source, m.source)          # a loop device, or a file-backed mount
        if any(image.endswith("/" + b) for b in BASE_IMAGES):
            bases.append((m, image))
    if not bases:
        images = [f"{m.target} ({m.fstype} from {backing.get(m.source, m.source)})" for m in mounts
                  if m.fstype in ("erofs", "squashfs")]
        return Check(name, False, "no mounted live/filesystem.erofs (or .squashfs); read-only images mounted: "
                     + (", ".join(images) or "none"))
    for m, image in bases:
        if any(_same_path(layer, m.target) for layer in lower):
            return Check(name, True, f"{m.fstype} {image} at {m.target} is a lower layer "
                                     f"(lowerdir={':'.join(lower)}, upper {root.option('upperdir')})")
    where = ", ".join(f"{m.target} ({image})" for m, image in bases)
    return Check(name, False, f"the base image is mounted at {where} but the overlay's lower layers are "
                              f"{':'.join(lower) or 'not shown'}")


def check_medium(mounts: list[Mount], listing: str) -> Check:
    name = f"the boot medium is mounted at {MEDIA_DIR}"
    media = [m for m in mounts if m.target == MEDIA_DIR]
    if not media:
        return Check(name, False, f"nothing is mounted at {MEDIA_DIR}")
    m = media[-1]
    names = listing.split()
    if not any(Path(b).name in names for b in BASE_IMAGES):
        return Check(name, False, f"{m.source} ({m.fstype}) is mounted there, but its live/ holds: "
                                  f"{' '.join(names) or 'nothing'}")
    return Check(name, True, f"{m.source} ({m.fstype}, {m.options.split(',')[0]})")


def parse_system_state(output: str) -> str:
    """The state `systemctl is-system-running` printed (the last known word in its output)."""
    for line in reversed(output.splitlines()):
        word = line.strip()
        if word in SYSTEM_STATES:
            return word
    return "unknown"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(min|ms|us|µs|s|h)")
_UNITS = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}


def parse_duration(text: str) -> float:
    """systemd's '1min 2.345s', '345ms', '1.2s' -> seconds."""
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))


def parse_systemd_analyze(text: str) -> dict[str, float]:
    """'Startup finished in 1.2s (firmware) + 800ms (loader) + 2s (kernel) + 10s (userspace) = 14s'
    -> {'firmware': 1.2, 'loader': 0.8, 'kernel': 2.0, 'userspace': 10.0, 'total': 14.0}."""
    line = next((l for l in text.splitlines() if "Startup finished in" in l), "")
    if not line:
        return {}
    body = line.split("Startup finished in", 1)[1]
    parts, _, total = body.partition("=")
    result = {}
    for chunk in parts.split("+"):
        m = re.match(r"\s*(.+?)\s*\((\w+)\)\s*$", chunk)
        if m:
            result[m[2]] = round(parse_duration(m[1]), 3)
    if total.strip():
        result["total"] = round(parse_duration(total), 3)
    return result


def parse_meminfo_used_kib(text: str) -> int | None:
    values = {}
    for line in text.splitlines():
        m = re.match(r"(MemTotal|MemAvailable):\s+(\d+) kB", line.strip())
        if m:
            values[m[1]] = int(m[2])
    if len(values) < 2:
        return None
    return values["MemTotal"] - values["MemAvailable"]


# ------------------------------------------------------------------------------------------------
# `leviso test`


def _check_pid1(vm: VM) -> Check:
    out, _ = vm.run("cat /proc/1/comm; readlink /proc/1/exe")
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    comm = lines[0] if lines else ""
    exe = lines[1] if len(lines) > 1 else "?"
    return Check("PID 1 is systemd", comm == "systemd", f"comm {comm or '?'}, exe {exe}")


def parse_unit_properties(text: str) -> dict[str, str]:
    return dict(line.strip().split("=", 1) for line in text.splitlines() if "=" in line)


def _check_firstboot(vm: VM) -> Check:
    """EL10 enables systemd-firstboot; on a first boot (empty machine-id) it prompts on the console
    for whatever the image leaves unset. Reaching the shell shows it did not wait; this says whether
    it ran at all, so a pass is not merely a boot where it never started."""
    out, _ = vm.run("systemctl show -p LoadState -p ConditionResult -p Result systemd-firstboot.service")
    props = parse_unit_properties(out)
    name = "systemd-firstboot asked nothing"
    if props.get("LoadState") != "loaded":
        return Check(name, True, "not installed")
    if props.get("ConditionResult") != "yes":
        return Check(name, True, "not a first boot: it did not run")
    return Check(name, props.get("Result") == "success", f"ran on this first boot, result {props.get('Result')}")


def _check_system_running(vm: VM, wait: int) -> Check:
    out, _ = vm.run(f"timeout {wait} systemctl is-system-running --wait", timeout=wait + 30)
    state = parse_system_state(out)
    name = "systemd reached a running system"
    if state == "running":
        return Check(name, True, "running")
    detail = [f"state {state}" + (f" (after waiting {wait} s)" if state in ("starting", "initializing") else "")]
    failed, _ = vm.run("systemctl --failed --no-legend --plain --no-pager", timeout=60)
    detail += ["failed units:"] + ([f"  {l}" for l in failed.splitlines() if l.strip()] or ["  none"])
    if state in ("starting", "initializing"):
        jobs, _ = vm.run("systemctl list-jobs --no-legend --no-pager", timeout=60)
        detail += ["pending jobs:"] + [f"  {l}" for l in jobs.splitlines()[:15] if l.strip()]
    return Check(name, False, "\n".join(detail))


def _collect_metrics(vm: VM, report: TestReport) -> None:
    try:
        text, status = vm.run("systemd-analyze time --no-pager", timeout=60)
        report.systemd_analyze_text = text.strip()
        report.systemd_analyze = parse_systemd_analyze(text)
        meminfo, _ = vm.run("cat /proc/meminfo", timeout=30)
        report.memory_used_kib = parse_meminfo_used_kib(meminfo)
        before = vm.elapsed()
        uptime, _ = vm.run("cat /proc/uptime", timeout=30)
        host = (before + vm.elapsed()) / 2          # the guest read its clock during the round trip
        guest = re.match(r"\s*(\d+\.\d+) ", uptime)
        if guest:
            report.kernel_clock_start = round(host - float(guest[1]), 2)
    except VmError as e:
        log.warning("could not collect boot figures: %s", e.message.splitlines()[0])


def run_live_test(iso: Path, *, log_path: Path, timeout: float = 300, as_disk: bool = False,
                  disk_bus: str = "virtio", memory: int = 2048, cpus: int = 2, system_wait: int = 150,
                  accel: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> TestReport:
    """Boot `iso` headless (OVMF; as a CD, or as a disk on `disk_bus`), wait up to `timeout` s for
    the live shell, run the checks, print PASS/FAIL lines; the report. Infrastructure problems
    (no QEMU, no OVMF, no ISO) raise LevitateError; a failing boot is a failed report. `accel`:
    QEMU's accelerator and CPU arguments (default: the probed choice, see qemu.accel_args)."""
    iso = Path(iso)
    if not iso.is_file():
        raise LevitateError(f"{iso}: no such ISO", "build it with `leviso build`, or name one: `leviso test PATH`")
    log_path = Path(log_path)
    medium = f"disk ({disk_bus})" if as_disk else "cdrom"

    def say(text: str) -> None:
        if echo is not None:
            echo(text)

    with VM(iso, iso_as_disk=as_disk, iso_bus=disk_bus, memory=memory, cpus=cpus, log_path=log_path,
            accel=accel) as vm:
        report = TestReport(iso=iso, log_path=log_path, medium=medium, accel=vm.accel)
        say(f"booting {iso} as a {medium} (QEMU {' '.join(vm.accel)}, {memory} MiB); "
            f"console log: {log_path}")
        vm.start()
        checks = report.checks
        try:
            vm.wait_for(SHELL_MARKER, timeout=timeout)
            report.boot_seconds = round(vm.last_match_seconds, 2)
            checks.append(Check("boot reaches the live shell", True, f"{report.boot_seconds:.1f} s"))
            say(checks[-1].line())
            checks.append(_check_pid1(vm))
            say(checks[-1].line())
            mounts_text, _ = vm.run("cat /proc/mounts; for f in /sys/block/loop*/loop/backing_file; do "
                                    "[ -r \"$f\" ] && echo \"BACKING $f $(cat \"$f\")\"; done; true")
            mounts = parse_mounts(mounts_text)
            checks.append(check_root_overlay(mounts, parse_backing_files(mounts_text)))
            say(checks[-1].line())
            listing, _ = vm.run(f"ls {MEDIA_DIR}/live/")
            checks.append(check_medium(mounts, listing))
            say(checks[-1].line())
            checks.append(_check_system_running(vm, system_wait))
            say(checks[-1].line())
            checks.append(_check_firstboot(vm))
            say(checks[-1].line())
            _collect_metrics(vm, report)
        except VmError as e:
            report.error = e.message
            name = "boot reaches the live shell" if report.boot_seconds is None else "checks over the console"
            checks.append(Check(name, False, e.message))
            say(checks[-1].line())

    if report.systemd_analyze_text:
        say(f"      {report.systemd_analyze_text.splitlines()[0]}")
    if report.memory_used_kib is not None:
        say(f"      memory in use after boot: {report.memory_used_kib / 1024:.0f} MiB")
    say(f"{'PASS' if report.passed else 'FAIL'}: {iso} ({medium}); console log: {log_path}")
    return report


# ------------------------------------------------------------------------------------------------
# `leviso run`

DEFAULT_DISK_NAME = "disk.qcow2"


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def qemu_has_gui() -> bool:
    """Does this QEMU have a window backend (gtk or sdl; Debian: package qemu-system-gui)?"""
    try:
        out = run([QEMU, "-display", "help"], capture=True, check=False, timeout=20).stdout.decode(errors="replace")
    except LevitateError:                       # no QEMU, or it did not answer
        return False
    return any(line.strip() in ("gtk", "sdl") for line in out.splitlines())


def prepare_disk(iso: Path | None, disk: Path | None, disk_size: str | None) -> Path | None:
    """The disk to attach: `disk` (or DISK_NAME beside the ISO when only a size is given), created
    with `disk_size` when it does not exist yet. An existing disk is used as it is, never wiped."""
    if disk is None and disk_size is None:
        return None
    if disk is None:
        if iso is None:
            raise LevitateError("a disk size needs a disk path or an ISO to put the disk beside")
        disk = Path(iso).resolve().parent / DEFAULT_DISK_NAME
    disk = Path(disk)
    if disk.exists():
        if disk_size is not None:
            log.warning("using the existing disk %s as it is (the size %s applies to new disks only; "
                        "remove the file for a fresh one)", disk, disk_size)
        return disk
    if disk_size is None:
        raise LevitateError(f"{disk}: no such disk image", "give a size to create it, e.g. --disk 20G")
    parse_size(disk_size)
    log.info("creating the %s disk image %s", disk_size, disk)
    return create_disk(disk, disk_size)


def run_interactive(iso: Path | None, *, disk: Path | None = None, disk_size: str | None = None,
                    serial: bool = False, memory: int = 4096, cpus: int = 2, boot_from_disk: bool = False,
                    log_path: Path | None = None) -> int:
    """`leviso run`: the ISO (as a CD) in a VM for a person, with user networking and optionally a
    disk to install onto. A window when a display is available (unless `serial`), the serial
    console in this terminal otherwise (Ctrl-A X quits). Returns QEMU's exit status.

    A disk keeps its own OVMF variable store beside it (DISK.OVMF_VARS.fd), so boot entries an
    installer writes survive into the next `leviso run` of that disk."""
    if iso is not None and not Path(iso).is_file():
        raise LevitateError(f"{iso}: no such ISO", "build it with `leviso build`, or name one")
    require_qemu()
    disk_path = prepare_disk(iso, disk, disk_size)
    if iso is None and disk_path is None:
        raise LevitateError("nothing to boot", "give an ISO or a disk")
    if boot_from_disk and disk_path is None:
        raise LevitateError("booting from the disk needs a disk")
    gui = not serial and display_available()
    if gui and not qemu_has_gui():
        log.warning("this QEMU has no window support (Debian: install qemu-system-gui); "
                    "using the serial console in this terminal")
        gui = False
    vars_path = disk_path.with_name(disk_path.name + ".OVMF_VARS.fd") if disk_path else None
    vm = VM(iso, disks=[disk_path] if disk_path else [], vars_path=vars_path,
            boot_from="disk" if boot_from_disk or iso is None else "iso",
            memory=memory, cpus=cpus, console="gui" if gui else "stdio", log_path=log_path)
    with vm:
        vm.accel                                # probes KVM now (logs when it falls back to TCG)
        if gui:
            log.info("starting a QEMU window; the serial console is in its View menu (serial0)")
        else:
            print("serial console of the VM: Ctrl-A X quits QEMU, Ctrl-A C toggles its monitor", flush=True)
        status = vm.foreground()
    if disk_path:
        log.info("disk image: %s", disk_path)
    return status
