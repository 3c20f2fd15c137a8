"""recstrap's extraction time against `cp -a` from the mounted image and `fsck.erofs --extract`,
on the same image, in the same run, alternating, median of N.

Each run writes into a fresh ext4 filesystem on a loop device (made and mounted untimed), with the
page cache dropped first, so every tool starts cold. recstrap is timed end to end (its checks,
the image mount, the walk and the copy); for `cp -a` the image is mounted beforehand, untimed.
Besides wall-clock time it reports CPU time (user + system of all the tool's processes), which
other load on the machine disturbs less.
After each run the result is checked for what an installed system needs (hardlinks, file
capabilities, ACLs), since a faster tool that drops them is no alternative. Run as root:

    .venv/bin/python bench/bench_recstrap.py [--image IMAGE | --tree DIR] [--runs 3]

Default image: the sample repository's base image, built as a user would (`leviso extract`, then
`leviso image`) in .cache/bench-recstrap, where leviso's stamps make later runs reuse it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import build_sample  # noqa: E402

BUILD_DIR = REPO / ".cache" / "bench-recstrap"


def sh(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, **kwargs)


def sample_image() -> Path:
    """The sample repository's base image (WORKDIR/filesystem.erofs), built or found up to date."""
    return build_sample(BUILD_DIR, "extract", "image") / "work" / "filesystem.erofs"


def drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def kept(tree: Path) -> str:
    """What of an installed system's fine print the result kept."""
    hardlinked = caps = acls = setuid = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            hardlinked += stat.S_ISREG(st.st_mode) and st.st_nlink > 1
            setuid += bool(st.st_mode & (stat.S_ISUID | stat.S_ISGID)) and stat.S_ISREG(st.st_mode)
            names = os.listxattr(path, follow_symlinks=False)
            caps += "security.capability" in names
            acls += any(n.startswith("system.posix_acl") for n in names)
    return f"hardlinked {hardlinked}, setuid/setgid {setuid}, capabilities {caps}, ACLs {acls}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="an EROFS image (default: the sample repository's base image)")
    parser.add_argument("--tree", type=Path, help="build the image from this tree with mkfs.erofs -zlz4hc")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="4G", help="size of each fresh target filesystem")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (mounts, owners, capabilities)")
    image = args.image or (None if args.tree else sample_image())
    work = Path(tempfile.mkdtemp(prefix="bench-recstrap-", dir="/var/tmp"))
    if args.tree:
        image = work / "filesystem.erofs"
        sh("mkfs.erofs", "--quiet", "-zlz4hc", image, args.tree)
    if not image.is_file():
        sys.exit(f"{image}: no such image")
    probe = subprocess.run(["fsck.erofs", "--help"], capture_output=True, text=True)
    has_extract = "--extract" in probe.stdout + probe.stderr
    source = work / "source"
    source.mkdir()
    sh("mount", "-o", "ro,loop", image, source)
    python = sys.executable
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    tools = {
        "recstrap": lambda dest: sh(python, "-m", "levitate.install.recstrap", dest, "--rootfs", image, "--quiet",
                                    env=env),
        "cp -a": lambda dest: sh("cp", "-a", f"{source}/.", dest),
    }
    if has_extract:
        tools["fsck.erofs --extract"] = lambda dest: sh("fsck.erofs", f"--extract={dest}/root", image)
    times: dict[str, list[float]] = {name: [] for name in tools}
    cpu: dict[str, list[float]] = {name: [] for name in tools}       # user + system, all its processes
    notes: dict[str, str] = {}
    try:
        for run in range(args.runs):
            for name, action in tools.items():
                disk, dest = work / "target.img", work / "target"
                sh("truncate", "-s", args.size, disk)
                sh("mkfs.ext4", "-q", "-F", disk)
                dest.mkdir(exist_ok=True)
                sh("mount", "-o", "loop", disk, dest)
                try:
                    drop_caches()
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    action(dest)
                    times[name].append(time.perf_counter() - start)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                    if run == 0:
                        notes[name] = kept(dest)
                finally:
                    sh("umount", dest)
                    disk.unlink()
                print(f"run {run + 1} {name}: {times[name][-1]:.2f} s (cpu {cpu[name][-1]:.2f} s)", flush=True)
    finally:
        subprocess.run(["umount", str(source)], capture_output=True)
    print(f"\nimage {image} ({image.stat().st_size >> 20} MiB), {args.runs} runs, cold cache, median "
          f"(wall clock; cpu = user + system time of all its processes):")
    best_other = min(statistics.median(t) for n, t in times.items() if n != "recstrap")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:<22} {median:6.2f} s  cpu {statistics.median(cpu[name]):5.2f} s  "
              f"(runs {', '.join(f'{t:.2f}' for t in runs)})  kept: {notes.get(name, '')}")
    ours = statistics.median(times["recstrap"])
    print(f"recstrap / fastest other: {ours / best_other:.2f}x"
          + ("" if has_extract else "   (fsck.erofs has no --extract here)"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
