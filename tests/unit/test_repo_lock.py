"""leviso.lock: written atomically and stably, read back exactly, and enforced by --locked."""

from __future__ import annotations

import tomllib

import pytest

from levitate.repo.lock import LockedPackage, check_locked, format_lock, read_lock, write_lock
from levitate.repo.repodata import Repository
from levitate.repo.resolve import resolve
from levitate.util.errors import LevitateError, VerificationError
from tests.cheat_aware import cheat_aware
from tests.unit.test_repo_rpms import real_repos  # noqa: F401 - session fixture
from tests.unit.test_resolve import pkg, repo


@cheat_aware(protects="the lock records, per package, exactly what --locked needs to rebuild the same set",
             cheats=["writing names only", "writing fields tomllib cannot read back"],
             consequence="--locked builds something else than what was resolved and tested")
def test_round_trip_real(real_repos, tmp_path):
    repos = real_repos.load("gz")
    res = resolve(repos, ["app", "coreutils"])
    path = write_lock(tmp_path / "leviso.lock", res)
    text = path.read_text()
    assert text.startswith("# leviso.lock: the resolved package set")
    data = tomllib.loads(text)
    assert data["version"] == 1 and [e["name"] for e in data["package"]] == [p.name for p in res.packages]
    entries = read_lock(path)
    assert entries == [LockedPackage.from_package(p) for p in res.packages]
    app = next(e for e in entries if e.name == "app")
    assert (app.epoch, app.version, app.release, app.arch) == (1, "3.0", "1.el10", "x86_64")
    assert app.nevra == "app-1:3.0-1.el10.x86_64" and app.repo == "AppStream"
    assert app.size == real_repos.rpms["app-3.0-1.el10.x86_64"].stat().st_size
    assert app.sha256 == res.by_name["app"].checksum[1] and len(app.sha256) == 64
    assert app.location.endswith("app-3.0-1.el10.x86_64.rpm")
    # Stable: writing again gives identical bytes; nothing temporary is left behind.
    write_lock(path, resolve(repos, ["coreutils", "app"]))
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leviso.lock"]
    # --locked: the lock maps back to the very same package objects.
    assert check_locked(entries, repos) == res.packages


@cheat_aware(protects="--locked fails clearly when a locked package is gone or its checksum changed",
             cheats=["re-resolving silently", "matching by name only"],
             consequence="a 'reproducible' build quietly uses different packages than the lock says")
def test_locked_mismatch(tmp_path):
    bash = pkg("bash-5.2.26-1.el10", repo="BaseOS")
    lock = tmp_path / "leviso.lock"
    write_lock(lock, [bash])
    entries = read_lock(lock)
    newer = pkg("bash-5.2.26-2.el10")
    with pytest.raises(LevitateError) as err:
        check_locked(entries, [repo(newer, name="BaseOS")])
    assert err.value.message == "leviso.lock pins bash-5.2.26-1.el10.x86_64 but BaseOS has no such package"
    assert "without --locked" in err.value.hint
    rebuilt = pkg("bash-5.2.26-1.el10")
    rebuilt.checksum = ("sha256", "f" * 64)
    with pytest.raises(VerificationError) as err:
        check_locked(entries, [repo(rebuilt, name="BaseOS")])
    assert "bash-5.2.26-1.el10.x86_64" in err.value.message and "f" * 64 in err.value.message
    assert bash.checksum[1] in err.value.message
    # The same bytes moved to another repository: accepted.
    moved = pkg("bash-5.2.26-1.el10")
    moved.checksum = bash.checksum
    assert check_locked(entries, [repo(pkg("other"), name="BaseOS"), repo(moved, name="AppStream")]) == [moved]
    with pytest.raises(LevitateError, match=r"but BaseOS \(not among: AppStream\) has no such package"):
        check_locked(entries, [repo(pkg("other"), name="AppStream")])


def test_malformed_locks(tmp_path):
    lock = tmp_path / "leviso.lock"
    with pytest.raises(LevitateError, match="does not exist"):
        read_lock(lock)
    lock.write_text("version = 1\n[[package]\n")
    with pytest.raises(LevitateError, match="is not a valid lock file"):
        read_lock(lock)
    lock.write_text("version = 7\n")
    with pytest.raises(LevitateError, match="lock format version 7"):
        read_lock(lock)
    lock.write_text('version = 1\n[[package]]\nname = "bash"\nepoch = "zero"\n')
    with pytest.raises(LevitateError, match=r"package #1 \(bash\) lacks a valid 'epoch'"):
        read_lock(lock)


def test_odd_strings_and_other_checksums(tmp_path):
    p = pkg("we\"ird\\name-1.0-1")
    p.location = "Packages/ü/we\"ird\\name\t.rpm"
    p.checksum = ("sha512", "ab" * 64)
    q = pkg("sha1pkg")
    q.checksum = ("sha", "cd" * 20)
    lock = write_lock(tmp_path / "leviso.lock", [q, p])
    entries = read_lock(lock)
    assert [e.name for e in entries] == ["sha1pkg", 'we"ird\\name']
    by_name = {e.name: e for e in entries}
    assert by_name[p.name].location == p.location and by_name[p.name].checksum == ("sha512", "ab" * 64)
    assert by_name[p.name].sha256 is None and by_name["sha1pkg"].checksum == ("sha1", "cd" * 20)
    assert check_locked(entries, [Repository("BaseOS", None, [p, q])]) == [q, p]
    assert format_lock([p, q]) == format_lock([q, p])
