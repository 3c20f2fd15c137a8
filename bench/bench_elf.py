"""How long the ELF check of a whole tree takes: `check_tree(ROOT)` with a fresh resolver per run
(every header read again, nothing cached across runs), median of N. With --cold, the page cache
of the tree's files is dropped before each run (posix_fadvise DONTNEED: only these files, not
the host's), which is what a first look at a tree costs; metadata stays cached.

With --pyelftools (if importable), also times reading the same headers with pyelftools, to show
why leviso reads ELF with its own small reader.

    .venv/bin/python bench/bench_elf.py [ROOT] [--runs 5] [--cold] [--pyelftools]

ROOT defaults to /tmp/t1/work/rootfs (a configured sample tree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from levitate.leviso.elf import LibraryResolver, _read, check_tree, iter_elf_candidates  # noqa: E402


def drop_cache(root: Path) -> None:
    prefix = str(root)
    for path in iter_elf_candidates(root):
        try:
            fd = os.open(prefix + path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def pyelftools_seconds(root: Path, files: list[str]) -> float | None:
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        return None
    start = time.perf_counter()
    for path in files:
        with open(str(root) + path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg.header.p_type == "PT_DYNAMIC":
                    for tag in seg.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            tag.needed
                elif seg.header.p_type == "PT_INTERP":
                    seg.get_interp_name()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="/tmp/t1/work/rootfs", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--pyelftools", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()

    times = []
    for _ in range(args.runs):
        if args.cold:
            drop_cache(root)
        report = check_tree(root)
        times.append(report.seconds)
    candidates = sum(1 for _ in iter_elf_candidates(root))
    print(f"{root}: {candidates} files opened, {report.checked} ELF files "
          f"({report.dynamic} dynamic), {sum(len(v) for v in report.missing.values())} missing "
          f"names in {len(report.missing)} files")
    print(f"check_tree ({'cold' if args.cold else 'warm'} cache): median "
          f"{statistics.median(times):.3f}s over {args.runs} runs "
          f"(min {min(times):.3f}s, max {max(times):.3f}s)")

    if args.pyelftools:
        resolver = LibraryResolver(root)
        files = [p for p in iter_elf_candidates(root) if resolver._elf(p)]
        start = time.perf_counter()
        for path in files:
            _read(str(root) + path, path)
        ours = time.perf_counter() - start
        theirs = pyelftools_seconds(root, files)
        print(f"headers of {len(files)} ELF files: ours {ours:.3f}s "
              f"({ours / len(files) * 1e6:.0f} us/file)", end="")
        print(f", pyelftools {theirs:.3f}s ({theirs / len(files) * 1e6:.0f} us/file)"
              if theirs is not None else ", pyelftools not installed")


if __name__ == "__main__":
    main()
