"""Initramfs size and build time for one kernel: leviso's against `dracut --no-hostonly` and
Debian's `mkinitramfs`, in the same run, median of N.

dracut and mkinitramfs build only for kernels installed on the host, so the tree's
usr/lib/modules/KVER is bind-mounted read-only at /lib/modules/KVER (and its config copied to
/boot/config-KVER, which mkinitramfs reads to pick a compression) for the duration, then removed.
Each tool uses its defaults, as a user would get them. Run as root, with dracut-core and
initramfs-tools-core installed (apt-get install dracut-core initramfs-tools-core):

    .venv/bin/python bench/bench_initramfs.py [--rootfs WORKDIR/rootfs] [--runs 3]

Without --rootfs the sample repository's tree is extracted first (tests/sample_repo).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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

from levitate.boot.initramfs import InitramfsSpec, build_initramfs  # noqa: E402
from levitate.boot.microcode import Cpu  # noqa: E402
from levitate.leviso.profile import InitramfsSettings  # noqa: E402


def sample_rootfs(tmp: Path) -> Path:
    from tests.httpserver import serve
    from tests.support import copy_profile, run_leviso, sample_dir
    from tests.sample_repo import build_sample_repo

    sample = build_sample_repo(sample_dir())
    profile = copy_profile(sample, tmp / "profile")
    with serve(sample.root) as server:
        proc = run_leviso("extract", "--profile", profile, "--cache", tmp / "downloads", "--workdir", tmp / "work",
                          "--output", tmp / "output", "--source", f"mirror:{server.url('mirror')}")
    if proc.returncode:
        sys.exit(f"leviso extract failed:\n{proc.stderr}")
    return tmp / "work" / "rootfs"


@contextlib.contextmanager
def installed_kernel(rootfs: Path, kver: str):
    """The tree's modules at /lib/modules/KVER (read-only bind mount) and /boot/config-KVER."""
    target = Path("/lib/modules") / kver
    config = Path("/boot") / f"config-{kver}"
    if target.exists() or config.exists():
        sys.exit(f"{target} or {config} already exists on this host: not touching it")
    created = [p for p in (Path("/lib/modules"), target) if not p.exists()]
    for path in created:
        path.mkdir()
    mounted = False
    try:
        subprocess.run(["mount", "--bind", "-o", "ro", rootfs / "usr/lib/modules" / kver, target], check=True)
        mounted = True
        config.parent.mkdir(exist_ok=True)
        shutil.copyfile(rootfs / "usr/lib/modules" / kver / "config", config)
        yield
    finally:
        config.unlink(missing_ok=True)
        if mounted:
            subprocess.run(["umount", target], check=True)
        for path in reversed(created):
            path.rmdir()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", type=Path, help="an extracted tree (default: extract the sample set)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the kernel's modules are bind-mounted at /lib/modules for dracut and mkinitramfs")
    for tool in ("dracut", "mkinitramfs"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install dracut-core initramfs-tools-core")

    with tempfile.TemporaryDirectory(prefix="bench-initramfs-") as tmp_name:
        tmp = Path(tmp_name)
        rootfs = args.rootfs or sample_rootfs(tmp)
        kver = sorted(p.parent.name for p in (rootfs / "usr/lib/modules").glob("*/vmlinuz"))[-1]
        settings = InitramfsSettings()
        spec = InitramfsSpec(kernel_version=kver, busybox=rootfs / "usr/bin/busybox", modules=settings.modules,
                             required_modules=settings.required_modules)
        out = tmp / "out"
        out.mkdir()
        host = Cpu.from_cpuinfo(Path("/proc/cpuinfo").read_text())     # recboot's default: this CPU's update

        builders = {
            "leviso": lambda: build_initramfs(rootfs, spec, out / "leviso.img"),
            "leviso (gzip)": lambda: build_initramfs(rootfs, dataclasses.replace(spec, compression="gzip"),
                                                     out / "leviso (gzip).img"),
            "leviso host-only ucode": lambda: build_initramfs(rootfs, dataclasses.replace(spec, microcode_for=host),
                                                              out / "leviso host-only ucode.img"),
            "dracut --no-hostonly": lambda: subprocess.run(
                ["dracut", "--no-hostonly", "--force", "--quiet", "--kver", kver, out / "dracut --no-hostonly.img"],
                check=True, capture_output=True),
            "mkinitramfs": lambda: subprocess.run(
                ["mkinitramfs", "-o", out / "mkinitramfs.img", kver], check=True, capture_output=True),
        }
        times: dict[str, list[float]] = {name: [] for name in builders}
        with installed_kernel(rootfs, kver):
            for run in range(args.runs):
                for name, build in builders.items():
                    times[name].append(timed(build))
                print(f"run {run + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)

        print(f"\ninitramfs for kernel {kver} (median of {args.runs}):")
        print(f"  {'builder':22} {'size':>10} {'format':>8} {'build time':>11}")
        sizes = {}
        for name in builders:
            image = out / f"{name}.img"
            sizes[name] = image.stat().st_size
            fmt = subprocess.run(["file", "-b", image], capture_output=True, text=True).stdout.split()[0]
            print(f"  {name:22} {sizes[name] / 2**20:7.2f} MiB {fmt:>8} {statistics.median(times[name]):9.2f} s")
        for name in ("leviso", "leviso host-only ucode"):
            info = build_initramfs(rootfs, spec if name == "leviso" else dataclasses.replace(spec, microcode_for=host),
                                   out / "again.img")
            print(f"  {name}: {info.early_size / 2**20:.2f} MiB uncompressed early microcode "
                  f"({', '.join(f'{k} {v / 2**20:.2f} MiB' for k, v in info.microcode.items()) or 'none'}) "
                  f"+ {(info.size - info.early_size) / 2**20:.2f} MiB {info.compression}")
        ours, ours_t = sizes["leviso"], statistics.median(times["leviso"])
        for peer in ("dracut --no-hostonly", "mkinitramfs"):
            peer_t = statistics.median(times[peer])
            print(f"  leviso vs {peer}: {sizes[peer] / ours:.1f}x smaller, {peer_t / ours_t:.1f}x faster to build")
        print(f"  leviso (gzip) vs dracut --no-hostonly (gzip): "
              f"{sizes['dracut --no-hostonly'] / sizes['leviso (gzip)']:.1f}x smaller")


if __name__ == "__main__":
    main()
