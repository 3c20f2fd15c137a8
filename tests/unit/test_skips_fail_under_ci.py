"""Under CI a skipped test fails (tests/conftest.py): a missing host tool must not let a whole tier
of tests pass unrun. Locally a skip stays a skip, with the hint of how to install the tools."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware

REPO = Path(__file__).resolve().parents[2]
TESTS = '''
import pytest

pytestmark_reason = "needs frobnicate (apt-get install frobnicate)"

def test_runs():
    pass

@pytest.mark.skipif(True, reason=pytestmark_reason)
def test_marked():
    pass

def test_skips_itself():
    pytest.skip("no gizmo here")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
'''
MODULE_SKIP = 'import pytest\npytest.importorskip("no_such_module_anywhere", reason="not installed")\n'


def pytest_run(tmp_path: Path, *sources: str, **env: str) -> subprocess.CompletedProcess:
    """A real pytest run of `sources` (test_0.py, ...) with this suite's conftest hooks loaded."""
    tmp_path.mkdir(exist_ok=True)
    for i, source in enumerate(sources):
        (tmp_path / f"test_{i}.py").write_text(source)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "LEVITATE_NO_SKIP")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", os.devnull, "-rA", str(tmp_path)],
                          cwd=REPO, env={**clean, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=120)


@cheat_aware(protects="under CI a skipped test (a missing host tool) is a failure naming the reason",
             cheats=["turn only skips inside tests into failures, not skipif marks or module skips",
                     "let xfail count as a skip"],
             consequence="CI passes with the VM tier unrun because QEMU or OVMF is missing")
@pytest.mark.parametrize("env", [{"CI": "true"}, {"LEVITATE_NO_SKIP": "1"}])
def test_a_skip_fails_under_ci(tmp_path, env):
    proc = pytest_run(tmp_path, TESTS, **env)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in out        # a skip mark fails in setup: an error
    assert "a skip is a failure: needs frobnicate (apt-get install frobnicate)" in out
    assert "a skip is a failure: no gizmo here" in out
    assert re.search(r"^PASSED \S*test_0.py::test_runs$", out, re.M), out
    assert re.search(r"^XFAIL \S*test_0.py::test_expected_failure", out, re.M), out
    module = pytest_run(tmp_path / "module", MODULE_SKIP, **env)   # a collection error stops the run
    assert module.returncode == 2 and "a skip is a failure: not installed" in module.stdout, module.stdout


def test_locally_a_skip_stays_a_skip_with_the_install_hint(tmp_path):
    proc = pytest_run(tmp_path, TESTS, MODULE_SKIP)
    out = proc.stdout
    assert proc.returncode == 0, out
    assert "1 passed, 3 skipped, 1 xfailed" in out
    assert "needs frobnicate (apt-get install frobnicate)" in out and "not installed" in out
    assert "3 skipped: `./dev setup` installs the host tools they need" in out
