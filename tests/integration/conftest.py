"""Session-wide test input: the sample repository (built once per run, cached by its inputs),
served from a loopback HTTP server, and one full `leviso extract` every test can inspect."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.httpserver import serve

REPO_ROOT = Path(__file__).resolve().parents[2]


def sample_dir() -> Path:
    return Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO_ROOT / ".cache" / "sample-repo"))


@pytest.fixture(scope="session")
def sample_repo():
    from tests.sample_repo import build_sample_repo
    return build_sample_repo(sample_dir())


@pytest.fixture(scope="session")
def sample_server(sample_repo):
    with serve(sample_repo.root) as server:
        yield server


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


@pytest.fixture(scope="session")
def sample_build(sample_repo, sample_server, tmp_path_factory) -> Build:
    """One full `leviso extract` of the sample set from the mirror, shared by every test."""
    base = tmp_path_factory.mktemp("build")
    profile = copy_profile(sample_repo, base / "profile")
    build = Build(profile, base / "downloads", base / "work", base / "output", None, 0)
    started = time.monotonic()
    proc = run_leviso("extract", *build.args("--source", f"mirror:{sample_server.url('mirror')}"))
    build = Build(profile, build.cache, build.workdir, build.output, proc, time.monotonic() - started)
    assert proc.returncode == 0, proc.stderr
    return build
