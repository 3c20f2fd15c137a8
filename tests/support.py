"""What tests share besides fixtures: where the sample repository lives, running the real
`leviso` command line, private copies of the sample profile, and a build's directories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def sample_dir() -> Path:
    return Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO_ROOT / ".cache" / "sample-repo"))


def run_leviso(*args: str | Path, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would, and capture its output."""
    return subprocess.run([sys.executable, "-m", "levitate.leviso.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def copy_profile(sample_repo, dest: Path, packages: list[str] | None = None) -> Path:
    """A private copy of the sample profile (the lock is written beside it)."""
    shutil.copytree(sample_repo.profile, dest)
    (dest / "leviso.lock").unlink(missing_ok=True)
    if packages is not None:
        (dest / "packages.txt").write_text("\n".join(packages) + "\n")
    return dest


@dataclass(frozen=True)
class Build:
    profile: Path
    cache: Path
    workdir: Path
    output: Path
    proc: subprocess.CompletedProcess
    seconds: float

    def args(self, *extra) -> list:
        return ["--profile", self.profile, "--cache", self.cache, "--workdir", self.workdir,
                "--output", self.output, *extra]

    @property
    def rootfs(self) -> Path:
        return self.workdir / "rootfs"
