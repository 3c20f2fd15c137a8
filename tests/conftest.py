"""Shared test plumbing: the sample repository (built once per run, cached by its inputs), served
from a loopback HTTP server; one full `leviso extract` and one `leviso iso` of it that every test
can inspect; cheat_aware failure reports; under CI a skip is a failure."""

from __future__ import annotations

import os
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


# A missing host tool skips the tests (or whole VM modules) that need it: locally that is a skip
# with the install hint, under CI it would let a tier pass unrun, so there it is a failure.
NO_SKIP_VARIABLE = "LEVITATE_NO_SKIP"


def skips_fail() -> bool:
    """Under CI (CI=true, as CI services set it) or with LEVITATE_NO_SKIP=1 (.ci/run sets it)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(NO_SKIP_VARIABLE) == "1"


def _skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_instead_of_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and skips_fail():
        report.outcome = "failed"
        report.longrepr = (f"skipped, and under CI (CI=true or {NO_SKIP_VARIABLE}=1) a skip is a failure: "
                           f"{_skip_reason(report)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    _fail_instead_of_skip(report)
    marker = item.get_closest_marker("cheat_aware")
    if marker and report.failed:
        report.sections.append(("cheat_aware", marker.args[0].report()))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module skipped as a whole (`pytest.importorskip`, `pytest.skip(allow_module_level=True)`)."""
    outcome = yield
    _fail_instead_of_skip(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped")
    if skipped and not skips_fail():
        terminalreporter.write_line(f"{len(skipped)} skipped: `./dev setup` installs the host tools they need "
                                    f"(under CI, or with {NO_SKIP_VARIABLE}=1, a skip is a failure)")
