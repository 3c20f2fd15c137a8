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


def local_build_options(sample_repo, base: Path) -> list:
    """`leviso` options for a build of the sample set under `base`, read straight from its mirror
    directory (no HTTP server): the benchmarks' builds."""
    return ["--profile", base / "profile", "--source", f"dir:{sample_repo.mirror}", "--cache", base / "downloads",
            "--workdir", base / "work", "--output", base / "output"]


def build_sample(base: Path, *commands: str) -> Path:
    """Build the sample set under `base` with the real command line, `leviso COMMAND` for each
    command in turn, as a user would; exits with leviso's error if one fails. A profile already
    there is kept, so leviso's stamps make a later call with the same `base` quick."""
    from tests.sample_repo import build_sample_repo
    sample = build_sample_repo(sample_dir())
    if not (base / "profile").is_dir():
        copy_profile(sample, base / "profile")
    for command in commands:
        print(f"building the sample set: leviso {command}", flush=True)
        proc = run_leviso(command, *local_build_options(sample, base), timeout=3600)
        if proc.returncode:
            sys.exit(f"leviso {command} failed:\n{proc.stderr}")
    return base


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
