"""`leviso test` and `leviso run` on the command line: bad arguments end in one line and exit 1,
before any VM starts (the boots themselves are in tests/vm/)."""

from __future__ import annotations

import pytest

from tests.support import run_leviso


@pytest.mark.parametrize("args, message", [
    (["test", "/nonexistent.iso"], "leviso: error: /nonexistent.iso: no such ISO"),
    (["run", "/nonexistent.iso"], "leviso: error: /nonexistent.iso: no such ISO"),
    (["run", "--no-iso"], "leviso: error: nothing to boot"),
    (["run", "--no-iso", "--disk", "1X"], "leviso: error: '1X' is not a disk size"),
])
def test_bad_vm_arguments_are_one_line_errors(args, message, tmp_path):
    proc = run_leviso(*args, "--output", tmp_path / "output", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "output").exists()           # nothing created for a refused command


def test_boot_disk_needs_a_disk(tmp_path):
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"\0" * 2048)
    proc = run_leviso("run", iso, "--boot-disk", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1 and "booting from the disk needs a disk" in proc.stderr, proc.stderr


def test_default_iso_is_in_the_output_directory(tmp_path):
    proc = run_leviso("test", "--output", tmp_path / "out", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert f"{tmp_path / 'out' / 'levitateos.iso'}: no such ISO" in proc.stderr, proc.stderr
