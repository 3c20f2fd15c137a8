"""Logging, stage timings and progress bars: informative on a terminal, quiet when piped."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

log = logging.getLogger("levitate")


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("levitate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def interactive() -> bool:
    """Progress bars only when a person is watching."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Log a stage's start and its duration."""
    log.info("==> %s", name)
    start = time.monotonic()
    yield
    log.info("    %s done in %.1f s", name, time.monotonic() - start)


class Progress:
    """A byte or item counter drawn with rich on a terminal; a no-op otherwise."""

    def __init__(self, description: str, total: float | None, *, unit_bytes: bool = False):
        self._bar = None
        if interactive():
            from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeRemainingColumn, TransferSpeedColumn)
            columns = [TextColumn("{task.description}"), BarColumn()]
            columns += [DownloadColumn(), TransferSpeedColumn()] if unit_bytes else [MofNCompleteColumn()]
            columns.append(TimeRemainingColumn())
            self._bar = RichProgress(*columns, transient=True)
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> "Progress":
        if self._bar:
            self._bar.start()
        return self

    def advance(self, amount: float = 1) -> None:
        if self._bar:
            self._bar.advance(self._task, amount)

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()
