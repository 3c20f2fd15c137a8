"""The state the helpers of one recipe operation share: where things go and what came before.

PREFIX keeps its real value; anything a helper writes under PREFIX lands in the staging root
instead (`stage/<PREFIX>/...`, DESTDIR style), and the transaction moves it into place after the
recipe succeeded. Reading helpers look in the stage first, then in the real prefix, so
`is_installed()` sees the system and `install()` sees what it has staged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...util.errors import LevitateError


class HelperError(LevitateError):
    """A helper could not do what the recipe asked."""


@dataclass
class DryRun:
    """What the helpers of one recipe would have done."""

    fetches: list[dict] = field(default_factory=list)   # kind, url, dest, checksum {algo: hex}
    reads: list[str] = field(default_factory=list)      # metadata read for real
    rpms: list[dict] = field(default_factory=list)      # per rpm_install: names, packages, note
    actions: list[str] = field(default_factory=list)    # skipped steps: "run(make)"
    note: str | None = None                             # why the dry run stopped early
    by_target: dict[Path, dict] = field(default_factory=dict)


@dataclass
class Context:
    prefix: Path
    build_dir: Path
    stage: Path
    arch: str = "x86_64"
    nproc: int = field(default_factory=lambda: os.cpu_count() or 1)
    cwd: Path | None = None
    last_download: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    github_api: str = "https://api.github.com"
    download_retries: int = 3
    download_speed: tuple[int, float] | None = None   # (bytes/s, s): slower is given up; None: defaults
    download_cache: Path | None = None       # where partial downloads wait to be resumed
    rocky: object = None                     # helpers.rpm.RockyConfig, when configured
    provided: Callable[[], set[str]] = lambda: set()   # names installed recipes provide
    out: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    rpms_installed: list[str] = field(default_factory=list)
    dry: DryRun | None = None                # dry mode (helpers/dry.py): record, change nothing

    def __post_init__(self):
        self.prefix = Path(os.path.abspath(self.prefix))
        self.build_dir = Path(os.path.abspath(self.build_dir))
        self.stage = Path(os.path.abspath(self.stage))
        if self.cwd is None:
            self.cwd = self.build_dir

    # -- paths -------------------------------------------------------------------------------
    def path(self, p: str) -> Path:
        """A path as the recipe meant it: relative ones are relative to the current directory."""
        p = os.path.expanduser(str(p))
        return Path(os.path.normpath(p if os.path.isabs(p) else os.path.join(self.cwd, p)))

    def under_prefix(self, p: Path) -> bool:
        return p == self.prefix or self.prefix in p.parents

    def staged(self, p: Path) -> Path:
        """Where a path under PREFIX is written during the operation (others are unchanged)."""
        if self.under_prefix(p):
            return self.stage / p.relative_to("/")
        return p

    def write_path(self, p: str) -> Path:
        """The path a writing helper uses for the recipe's path `p`."""
        return self.staged(self.path(p))

    def read_path(self, p: str) -> Path:
        """The path a reading helper uses: the staged copy if there is one, else the real one."""
        real = self.path(p)
        staged = self.staged(real)
        return staged if staged != real and os.path.lexists(staged) else real

    def run_env(self) -> dict[str, str]:
        """The environment of commands the recipe runs."""
        env = dict(os.environ)
        env.update(self.env)
        env.update(PREFIX=str(self.prefix), BUILD_DIR=str(self.build_dir), NPROC=str(self.nproc),
                   ARCH=self.arch, DESTDIR=str(self.stage))
        return env

    def log(self, text: str) -> None:
        self.out(text)
