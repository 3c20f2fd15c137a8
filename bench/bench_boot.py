"""Boot time of the live ISO in QEMU: QEMU start to the live shell, the split systemd-analyze
reports, the initramfs's own share, and the memory in use after boot; per boot and the median.

Each boot is `leviso test`'s (levitate.leviso.vmtest.run_live_test: OVMF, the ISO as a CD, 2 GiB,
2 vCPUs, KVM if it works, else TCG). Without ISO, the sample ISO is built first in a temporary
directory with the real command line (`leviso extract`, then `leviso iso`, from the sample
repository as a `dir:` source; needs root):

    .venv/bin/python bench/bench_boot.py [ISO] [--boots 3] [--hide-hypervisor] [--logs DIR]

Where the figures come from:
- QEMU -> shell: run_live_test's boot time, QEMU's start to the live shell's marker on the serial
  console (after systemd's start-up, the autologin and the login profile).
- firmware, loader: systemd-boot's LoaderTimeInitUSec/LoaderTimeExecUSec EFI variables, which it
  leaves unset when CPUID says it runs under a hypervisor (it does not trust a virtual TSC), and
  OVMF has no ACPI FPDT table; so in a VM systemd-analyze shows neither. --hide-hypervisor clears
  that CPUID bit (`-cpu max,hypervisor=off`) so systemd-boot records them.
- kernel, userspace: systemd-analyze. Our initramfs is busybox, not systemd, so systemd reports no
  initrd time and its "kernel" runs up to systemd's start, initramfs included. This script splits
  it at the kernel's "Run /init as init process" timestamp on the console: kernel = until /init,
  initramfs = /init to systemd's start (switch_root).
- QEMU -> kernel: QEMU's start to the guest's clock zero (the host's time since QEMU started
  minus the guest's /proc/uptime, read after boot): firmware, systemd-boot (its menu timeout
  included), the UKI's stub and the kernel's decompression; needs no hypervisor trick. The part
  after systemd-boot (stub, decompression) is in none of systemd-analyze's figures.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from levitate.leviso.qemu import accel_args, clean_console_text  # noqa: E402
from levitate.leviso.vmtest import run_live_test  # noqa: E402
from tests.support import build_sample  # noqa: E402

RUN_INIT = re.compile(r"\[\s*(\d+\.\d+)\] Run /init as init process")
COLUMNS = ("boot", "prekernel", "firmware", "loader", "kernel", "initramfs", "userspace", "memory")
HEADINGS = {"boot": "QEMU -> shell", "prekernel": "QEMU -> kernel", "firmware": "firmware", "loader": "loader",
            "kernel": "kernel", "initramfs": "initramfs", "userspace": "userspace", "memory": "memory used"}


def run_init_seconds(log_path: Path) -> float | None:
    """The kernel's timestamp of starting the initramfs's /init, from the console log."""
    match = RUN_INIT.search(clean_console_text(log_path.read_text(errors="replace")))
    return float(match[1]) if match else None


def figures(report) -> dict[str, float]:
    sa = report.systemd_analyze
    row = {"boot": report.boot_seconds, "prekernel": report.kernel_clock_start,
           "firmware": sa.get("firmware"), "loader": sa.get("loader"), "userspace": sa.get("userspace"),
           "memory": report.memory_used_kib / 1024 if report.memory_used_kib else None}
    run_init = run_init_seconds(report.log_path)
    if "kernel" in sa and run_init is not None:
        row["kernel"] = run_init
        row["initramfs"] = round(sa["kernel"] - run_init, 3)
    return row


def cell(column: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} MiB" if column == "memory" else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("iso", nargs="?", type=Path, help="the ISO to boot (default: build the sample ISO)")
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--hide-hypervisor", action="store_true",
                        help="clear the CPUID hypervisor bit so systemd-boot records firmware and loader times")
    parser.add_argument("--logs", type=Path, help="keep the console logs in this directory")
    args = parser.parse_args()

    accel = accel_args()
    if args.hide_hypervisor:
        accel[accel.index("-cpu") + 1] += ",hypervisor=off"
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp_name:
        tmp = Path(tmp_name)
        iso = args.iso or build_sample(tmp, "extract", "iso") / "output" / "levitateos.iso"
        logs = args.logs or tmp / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        print(f"booting {iso} ({iso.stat().st_size / 2**20:.0f} MiB) {args.boots} times, QEMU {' '.join(accel)}",
              flush=True)
        rows = []
        for n in range(1, args.boots + 1):
            report = run_live_test(iso, log_path=logs / f"boot-{n}.log", accel=accel, echo=None)
            if not report.passed:
                failed = [c.line() for c in report.checks if not c.passed]
                sys.exit(f"boot {n} failed:\n" + "\n".join(failed) + f"\nconsole log: {report.log_path}")
            rows.append(figures(report))
            print(f"boot {n}: " + ", ".join(f"{HEADINGS[c]} {cell(c, rows[-1].get(c))}" for c in COLUMNS)
                  + f"\n        systemd-analyze: {report.systemd_analyze_text.splitlines()[0]}", flush=True)

    print(f"\nmedian of {args.boots} boots:")
    for column in COLUMNS:
        values = [r[column] for r in rows if r.get(column) is not None]
        value = statistics.median(values) if values else None
        spread = f"  (min {cell(column, min(values))}, max {cell(column, max(values))})" if len(values) > 1 else ""
        print(f"  {HEADINGS[column]:14} {cell(column, value):>10}{spread}")


if __name__ == "__main__":
    main()
