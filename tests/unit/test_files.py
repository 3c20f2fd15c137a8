"""util/files.py: every output goes through one atomic writer (unique temporary name beside the
target, fsync, rename, cleanup on every exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from levitate.util.files import atomic_output, atomic_write, write_atomic
from tests.cheat_aware import cheat_aware


@cheat_aware(protects="two writers of one file (parallel stages, two leviso runs) never collide on a temporary name",
             cheats=["a fixed `.tmp` name", "a lock around the writer in the test only"],
             consequence="a build dies with FileNotFoundError or a stamp/manifest mixes two writers' bytes")
def test_concurrent_writers_do_not_collide(tmp_path):
    path = tmp_path / "stamp.json"
    payloads = [bytes([65 + i]) * 200_000 for i in range(6)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(15):
                write_atomic(path, data)
        except BaseException as e:          # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert path.read_bytes() in payloads
    assert os.listdir(tmp_path) == ["stamp.json"]


@cheat_aware(protects="an exception while writing leaves the old file whole and no temporary file behind",
             cheats=["writing the target in place", "removing the temporary file only on success"],
             consequence="a Ctrl-C or a full disk leaves a truncated lock or state file, or litter that fills the disk")
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "recipe.lock"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.write("new, but only half")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["recipe.lock"]


def test_permissions_follow_the_umask_unless_given(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "plain", b"x")
        write_atomic(tmp_path / "secret", "x", perm=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "plain").stat().st_mode & 0o7777 == 0o640        # as open() would have made it
    assert (tmp_path / "secret").stat().st_mode & 0o7777 == 0o600


@cheat_aware(protects="the data is on disk before the rename, and with sync_dir the rename too",
             cheats=["dropping the fsync calls", "syncing after the rename"],
             consequence="after a power cut a recipe state, lock or boot entry is an empty file under its final name")
def test_fsync_before_rename_then_directory(tmp_path):
    script = ("import sys; from levitate.util.files import write_atomic; "
              "write_atomic(sys.argv[1], 'data', sync_dir=True)")
    trace = subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,rename,renameat,renameat2",
                            sys.executable, "-c", script, str(tmp_path / "state")],
                           capture_output=True, text=True, check=True).stderr.splitlines()
    calls = [line.split("(", 1)[0].split()[-1] for line in trace if "(" in line]
    assert calls[-3:] == ["fsync", "rename", "fsync"], trace
    assert (tmp_path / "state").read_text() == "data"


@cheat_aware(protects="a tool that creates its output itself gets a fresh name on the same file system",
             cheats=["pre-creating the temporary file", "a name in /tmp (rename across file systems fails)"],
             consequence="mkfs.fat -C refuses to run, or the build fails with EXDEV at the rename")
def test_atomic_output_for_a_tool_and_its_failure(tmp_path):
    out = tmp_path / "esp.img"
    with atomic_output(out, perm=0o644) as tmp:
        assert not tmp.exists() and tmp.parent.parent == tmp_path
        subprocess.run(["mkfs.fat", "-C", tmp, "1024"], check=True, capture_output=True)
    assert out.stat().st_size == 1024 * 1024 and out.stat().st_mode & 0o777 == 0o644
    with pytest.raises(subprocess.CalledProcessError):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half an image")
            subprocess.run(["mkfs.fat", "-C", tmp, "1024"], check=True, capture_output=True)  # exists: refused
    assert out.stat().st_size == 1024 * 1024
    assert os.listdir(tmp_path) == ["esp.img"]
