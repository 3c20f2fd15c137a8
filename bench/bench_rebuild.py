"""A second `leviso extract` with nothing changed: how long until it says "up to date"?

Builds the sample set once into a temporary directory (needs root), then times N reruns of the
real command line (process start included) and prints the median.

    .venv/bin/python bench/bench_rebuild.py [--runs 5]
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

from tests.sample_repo import build_sample_repo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sample = build_sample_repo(Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO / ".cache" / "sample-repo")))
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        profile = Path(tmp) / "profile"
        shutil.copytree(sample.profile, profile)
        argv = [sys.executable, "-m", "levitate.leviso.cli", "extract", "--profile", str(profile),
                "--source", f"dir:{sample.mirror}", "--cache", f"{tmp}/downloads", "--workdir", f"{tmp}/work",
                "--output", f"{tmp}/output"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        first = time.perf_counter() - start
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(argv, check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            assert "up to date" in proc.stderr, proc.stderr
        subprocess.run(["rm", "-rf", f"{tmp}/work"])
    print(f"first extract (download from dir:, extract, configure): {first:.1f} s")
    print(f"second extract, nothing changed: median {statistics.median(times):.2f} s over {args.runs} runs "
          f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
