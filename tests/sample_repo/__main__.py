"""`python -m tests.sample_repo OUTDIR`: build (or find up to date) the sample repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from levitate.util.errors import LevitateError
from levitate.util.log import setup_logging

from .build import build_sample_repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sample_repo", description=__doc__)
    parser.add_argument("outdir", type=Path, help="where mirror/, isos/, profile/ ... go")
    parser.add_argument("--debs", type=Path, help="the .deb download cache (default OUTDIR/debs)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("-j", "--jobs", type=int, help="parallel jobs (default: CPU count)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    try:
        repo = build_sample_repo(args.outdir, debs=args.debs, force=args.force, jobs=args.jobs)
    except LevitateError as e:
        print(f"sample-repo: error: {e}", file=sys.stderr)
        return e.exit_code
    print(repo.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
