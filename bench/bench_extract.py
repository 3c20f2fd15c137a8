"""Extraction throughput of the sample package set: leviso's extractor against a shell loop of
`rpm2cpio PKG | cpio -idm` over the same RPMs, in the same run, alternating, median of N.

leviso's side does more work than the baseline: it also verifies every header signature and
payload digest and refuses unsafe paths. Run as root (owners, capabilities):

    .venv/bin/python bench/bench_extract.py [--runs 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
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

from levitate.rpm.openpgp import load_keyring  # noqa: E402
from levitate.leviso.rootfs import extract_packages  # noqa: E402
from tests.sample_repo import build_sample_repo  # noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    sample = build_sample_repo(Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO / ".cache" / "sample-repo")))
    rpms = sorted(sample.mirror.rglob("*.rpm"))
    keys = load_keyring(sample.key.read_bytes())
    compressed = sum(p.stat().st_size for p in rpms)
    loop = "for p in \"$@\"; do rpm2cpio \"$p\" | cpio -idm --quiet 2>/dev/null; done"

    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        for run in range(args.runs):
            for name, results in (("leviso", ours), ("rpm2cpio", theirs)):
                root = Path(tmp) / f"{name}-{run}"
                root.mkdir()
                subprocess.run(["sync"])
                if name == "leviso":
                    results.append(timed(lambda: extract_packages(rpms, root, keys, args.jobs)))
                else:
                    results.append(timed(lambda: subprocess.run(["sh", "-c", loop, "sh", *rpms], cwd=root, check=True)))
                shutil.rmtree(root)
            print(f"run {run + 1}: leviso {ours[-1]:.2f} s, rpm2cpio|cpio {theirs[-1]:.2f} s", flush=True)

    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"\n{len(rpms)} RPMs, {compressed / 2**20:.0f} MiB compressed, {args.jobs} jobs, median of {args.runs}")
    print(f"leviso extract:          {a:6.2f} s  ({compressed / 2**20 / a:5.0f} MiB/s of RPMs)")
    print(f"rpm2cpio | cpio -idm:    {b:6.2f} s  ({compressed / 2**20 / b:5.0f} MiB/s of RPMs)")
    print(f"ratio (rpm2cpio / leviso): {b / a:.2f}x")


if __name__ == "__main__":
    main()
