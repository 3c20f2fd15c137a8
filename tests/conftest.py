"""Shared test plumbing: the sample repository (built once per run, cached by its inputs), served
from a loopback HTTP server; one full `leviso extract` and one `leviso iso` of it that every test
can inspect; cheat_aware failure reports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.httpserver import serve
from tests.support import Build, copy_profile, run_leviso, sample_dir

@pytest.fixture(scope="session")
def sample_repo():
    from tests.sample_repo import build_sample_repo
    return build_sample_repo(sample_dir())


@pytest.fixture(scope="session")
def sample_server(sample_repo):
    with serve(sample_repo.root) as server:
        yield server


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


@pytest.fixture(scope="session")
def sample_iso(sample_build) -> Path:
    """The sample profile's live ISO, built once from the shared extracted tree (`leviso iso`)."""
    proc = run_leviso("iso", *sample_build.args())
    assert proc.returncode == 0, proc.stderr
    iso = sample_build.output / "levitateos.iso"
    assert iso.is_file()
    return iso


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("cheat_aware")
    if marker and report.failed:
        report.sections.append(("cheat_aware", marker.args[0].report()))
