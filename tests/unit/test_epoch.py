"""SOURCE_DATE_EPOCH: one rule (util/epoch.py) for the images, the ESP and the initramfs."""

from __future__ import annotations

import pytest

from levitate.util.epoch import source_date_epoch
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware
from tests.support import REPO_ROOT, run_leviso


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("0", 0), ("1700000000", 1700000000),
                                             ("4294967295", 4294967295)])
def test_valid_values(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert source_date_epoch() == expected


@pytest.mark.parametrize("value", ["12x", " 1700000000", "-1", "1.5", "\u0661\u0662", "4294967296"])
def test_malformed_values_are_refused(monkeypatch, value):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    with pytest.raises(LevitateError, match="SOURCE_DATE_EPOCH=.* is not a number of seconds"):
        source_date_epoch()


@cheat_aware(protects="a malformed SOURCE_DATE_EPOCH stops the build at once with one clear line",
             cheats=["ignoring a malformed value (the ESP did)", "checking it only when the image stage runs"],
             consequence="a 'reproducible' build silently uses the current time, or fails after the rootfs "
                         "was built")
def test_leviso_refuses_a_malformed_value_before_building(monkeypatch, tmp_path):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "2024-01-01")
    proc = run_leviso("--profile", REPO_ROOT / "profiles/levitate", "--cache", tmp_path / "c", "--workdir",
                      tmp_path / "w", "--output", tmp_path / "o", "build", timeout=60)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("leviso: error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "SOURCE_DATE_EPOCH='2024-01-01'" in errors[0]
    assert list(tmp_path.iterdir()) == []                       # nothing was started
