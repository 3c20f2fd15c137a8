"""What a new kernel costs at `dnf upgrade` time: the LevitateOS kernel-install plugin's work for one
kernel (busybox initramfs, kernel copied, loader entry written, on an ESP directory) beside
`dracut --no-hostonly` on the same kernel, in the same run, median of N; time and initramfs size.

The plugin is run through its own code (recboot.entry_settings, recboot.install_kernel,
recboot.write_loader_conf, as kernelinstall.add does), with root=UUID=... given, since the tree
is not mounted as a root. The tree is the base image an installed system is made of (mounted
read-only: it carries the busybox the plugin needs, which the extracted rootfs does not). dracut
builds only for kernels installed on the host: the image's modules are bind-mounted read-only at
/lib/modules/KVER for the duration (bench_initramfs.py's helper). Run as root with dracut-core
installed:

    .venv/bin/python bench/bench_kernel_install.py [--image WORKDIR/filesystem.erofs] [--runs 3]

Without --image the sample repository's base image is built first (`leviso extract` + `leviso iso`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_initramfs import installed_kernel, sample_rootfs  # noqa: E402
from tests.support import run_leviso  # noqa: E402

from levitate.install import recboot  # noqa: E402
from levitate.util import mountinfo  # noqa: E402

ROOT = "UUID=0c4a5e7e-5d1b-4d3e-9a54-0123456789ab"


def sample_image(tmp: Path) -> Path:
    sample_rootfs(tmp)
    proc = run_leviso("iso", "--profile", tmp / "profile", "--cache", tmp / "downloads", "--workdir", tmp / "work",
                      "--output", tmp / "output")
    if proc.returncode:
        sys.exit(f"leviso iso failed:\n{proc.stderr}")
    return tmp / "work" / "filesystem.erofs"


@contextlib.contextmanager
def mounted_image(image: Path, target: Path):
    target.mkdir()
    subprocess.run(["mount", "-o", "ro,loop", str(image), str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def plugin_add(rootfs: Path, esp: Path, kver: str) -> Path:
    """kernelinstall.add's work for one kernel; the initramfs it wrote."""
    recboot.require_busybox(rootfs)
    settings = recboot.entry_settings(rootfs, mountinfo.read(), given_root=ROOT)
    recboot.install_kernel(rootfs, esp, kver, settings, rootfs / "usr/lib/modules" / kver / "vmlinuz")
    recboot.write_loader_conf(esp)
    return esp / recboot.ESP_DIR / kver / "initramfs.img"


def dracut(kver: str, out: Path) -> Path:
    subprocess.run(["dracut", "--no-hostonly", "--force", "--quiet", "--kver", kver, str(out)],
                   check=True, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="a base image, WORKDIR/filesystem.erofs (default: build the "
                        "sample set's)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the kernel's modules are bind-mounted at /lib/modules for dracut")
    if shutil.which("dracut") is None:
        sys.exit("dracut is not installed: apt-get install dracut-core")

    with tempfile.TemporaryDirectory(prefix="bench-kernel-install-") as tmp_name:
        tmp = Path(tmp_name)
        image = args.image or sample_image(tmp)
        with mounted_image(image, tmp / "root") as rootfs:
            measure(rootfs, tmp, args.runs)


def measure(rootfs: Path, tmp: Path, runs: int) -> None:
    """Both, one after the other in each run, on the newest kernel of the tree; the report."""
    kver = sorted(p.parent.name for p in (rootfs / "usr/lib/modules").glob("*/vmlinuz"))[-1]
    times: dict[str, list[float]] = {"plugin": [], "dracut": []}
    sizes: dict[str, int] = {}
    with installed_kernel(rootfs, kver):
        for run in range(runs):
            esp = tmp / f"esp{run}"
            esp.mkdir()
            started = time.perf_counter()
            initrd = plugin_add(rootfs, esp, kver)
            times["plugin"].append(time.perf_counter() - started)
            sizes["plugin"] = initrd.stat().st_size
            started = time.perf_counter()
            initrd = dracut(kver, tmp / "dracut.img")
            times["dracut"].append(time.perf_counter() - started)
            sizes["dracut"] = initrd.stat().st_size
            shutil.rmtree(esp)
            print(f"run {run + 1}: plugin {times['plugin'][-1]:.2f} s, dracut {times['dracut'][-1]:.2f} s",
                  flush=True)

    plugin_t, dracut_t = statistics.median(times["plugin"]), statistics.median(times["dracut"])
    print(f"\nkernel {kver}, median of {runs}:")
    print(f"  LevitateOS kernel-install plugin (add): {plugin_t:6.2f} s, "
          f"initramfs {sizes['plugin'] / 2**20:6.2f} MiB")
    print(f"  dracut --no-hostonly:                   {dracut_t:6.2f} s, initramfs {sizes['dracut'] / 2**20:6.2f} MiB")
    print(f"  plugin vs dracut: {dracut_t / plugin_t:.1f}x faster, initramfs {sizes['dracut'] / sizes['plugin']:.1f}x "
          "smaller")


if __name__ == "__main__":
    main()
