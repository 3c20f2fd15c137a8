"""Build times of the live ISO: each stage of a full build from an extracted tree, a `leviso build`
with nothing changed, and a `leviso build` after one file of the profile's rootfs overlay changed.

Builds the sample set into a temporary directory with the real command line (needs root):
`leviso extract` once, then N times `leviso iso` from that tree with every later stage's stamp
removed (the stage times are the "X done in Y s" lines leviso logs); then `leviso build` with
nothing changed (N runs, process start included); then `leviso build` after editing
`PROFILE/rootfs/etc/levitate-bench.conf`, which must redo the base image and the ISO and nothing
before them (the stages that ran are listed). The runs import a copy of src/levitate taken at the
start (see snapshot_sources), so edits in the working tree meanwhile do not disturb them.

    .venv/bin/python bench/bench_build.py [--runs 3] [--noop-runs 5] [--change-runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
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
from tests.support import copy_profile, local_build_options, sample_dir  # noqa: E402

STARTED = re.compile(r"^==> (.+)$", re.MULTILINE)
DONE = re.compile(r"^\s+(.+) done in (\d+(?:\.\d+)?) s$", re.MULTILINE)
BOOT_STAMPS = ("work/filesystem.stamp", "work/live.stamp", "work/initramfs.stamp", "work/uki.stamp",
               "output/.levitateos.iso.stamp")
OVERLAY_FILE = "rootfs/etc/levitate-bench.conf"


def snapshot_sources(tmp: Path) -> dict[str, str]:
    """A copy of src/levitate for the runs to import. The base image holds the project's own
    tooling, so its stamp covers these sources: an edit in the working tree while the benchmark
    runs would rebuild it and spoil the no-op figure."""
    shutil.copytree(REPO / "src" / "levitate", tmp / "src" / "levitate", ignore=shutil.ignore_patterns("__pycache__"))
    return {**os.environ, "PYTHONPATH": str(tmp / "src")}


def leviso(command: str, options: list, what: str, env: dict[str, str],
           verbose: bool = False) -> tuple[float, list[tuple[float, str]]]:
    """Run the real command line; its wall time (process start included) and its log lines, each
    with the seconds since the start at which it arrived (`verbose`: -v, the commands too)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "levitate.leviso.cli", command, *(["-v"] if verbose else []),
                             *map(str, options)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines = [(time.perf_counter() - start, line.rstrip("\n")) for line in proc.stderr]
    status = proc.wait()
    elapsed = time.perf_counter() - start
    if status:
        sys.exit(f"{what}: leviso {command} failed:\n" + "\n".join(line for _, line in lines[-30:]))
    return elapsed, lines


def text(lines: list[tuple[float, str]]) -> str:
    return "\n".join(line for _, line in lines)


def stage_times(lines: list[tuple[float, str]]) -> dict[str, float]:
    """The stages' own "X done in Y s" figures, and the base image split at the arrival times of
    its `cp -a` and `mkfs.erofs` command lines (-v) and of the next line."""
    times = {name: float(seconds) for name, seconds in DONE.findall(text(lines))}
    marks = {}
    for n, (at, line) in enumerate(lines[:-1]):
        for key, prefix in (("copy", "$ cp -a"), ("mkfs", "$ mkfs.")):
            if line.startswith(prefix) and key not in marks:
                marks[key] = lines[n + 1][0] - at
    if "base image" not in times or len(marks) < 2:
        return times
    split = {"  of which: copy the tree (cp -a)": round(marks["copy"], 1),
             "  of which: mkfs (+ removing the copy)": round(marks["mkfs"], 1),
             "  of which: settings, tooling, ELF check": round(times["base image"] - marks["copy"] - marks["mkfs"], 1)}
    ordered = {}
    for name, seconds in times.items():
        ordered[name] = seconds
        if name == "base image":
            ordered |= split
    return ordered


def summary(values: list[float]) -> str:
    median = f"{statistics.median(values):.2f} s"
    return median + (f" (min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="full builds of the stages after extraction")
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--change-runs", type=int, default=3)
    args = parser.parse_args()
    sample = build_sample_repo(sample_dir())

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp_name:
        tmp = Path(tmp_name)
        env = snapshot_sources(tmp)
        profile = copy_profile(sample, tmp / "profile")
        overlay_file = profile / OVERLAY_FILE
        overlay_file.parent.mkdir(parents=True)
        overlay_file.write_text("# bench_build.py\nrun = 0\n")
        options = local_build_options(sample, tmp)

        extract_wall, log = leviso("extract", options, "extract", env)
        extract = stage_times(log)
        print(f"leviso extract: {extract_wall:.1f} s (" + ", ".join(f"{n} {t:.1f} s" for n, t in extract.items())
              + ")", flush=True)

        runs: list[dict[str, float]] = []
        for n in range(1, args.runs + 1):
            for stamp in BOOT_STAMPS:
                (tmp / stamp).unlink(missing_ok=True)
            wall, log = leviso("iso", options, f"full build {n}", env, verbose=True)
            runs.append(stage_times(log) | {"leviso iso (wall, process included)": wall})
            print(f"full build {n}: " + ", ".join(f"{name} {t:.1f} s" for name, t in runs[-1].items()), flush=True)
        iso = tmp / "output" / "levitateos.iso"
        iso_mib = iso.stat().st_size / 2**20

        noop = []
        for n in range(1, args.noop_runs + 1):
            wall, log = leviso("build", options, f"no-op build {n}", env)
            if STARTED.search(text(log)):
                sys.exit(f"`leviso build` with nothing changed ran stages: {STARTED.findall(text(log))}\n{text(log)}")
            noop.append(wall)
        print(f"no-op builds: {', '.join(f'{t:.2f}' for t in noop)} s", flush=True)

        changed, ran = [], []
        for n in range(1, args.change_runs + 1):
            overlay_file.write_text(f"# bench_build.py\nrun = {n}\n")
            wall, log = leviso("build", options, f"rebuild after an overlay change {n}", env, verbose=True)
            ran = STARTED.findall(text(log))
            redone = [s for s in ran if s.startswith(("download", "extract", "configure"))]
            if redone:
                sys.exit(f"changing {OVERLAY_FILE} redid {redone}:\n{text(log)}")
            changed.append(wall)
            print(f"overlay change {n}: {wall:.1f} s; stages run: "
                  + ", ".join(f"{name} {t:.1f} s" for name, t in stage_times(log).items()), flush=True)
        subprocess.run(["rm", "-rf", tmp / "work"], check=True)

    print(f"\nfull build of the stages after extraction (median of {args.runs}; ISO {iso_mib:.0f} MiB):")
    for name in runs[0]:
        print(f"  {name:40} {summary([r[name] for r in runs if name in r])}")
    print(f"`leviso build`, nothing changed: {summary(noop)} over {args.noop_runs} runs (process start included)")
    print(f"`leviso build` after changing {OVERLAY_FILE}: {summary(changed)} over {args.change_runs} runs; "
          f"stages run: {', '.join(ran)}; download, extraction and configuration not redone")


if __name__ == "__main__":
    main()
