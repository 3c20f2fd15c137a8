"""The three sources (mirror, ISO, local directory) up to verified repodata and packages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.httpserver import serve

from . import minirepo
from .minirepo import LONE
from tests.support import copy_profile, run_leviso
from tests.sample_repo.repo import write_checksum
from .test_bad_input import assert_clean_failure, dirs

pytestmark = pytest.mark.slow


def _lock_nevras(profile: Path) -> list[str]:
    return [line.split('"')[1] for line in (profile / "leviso.lock").read_text().splitlines()
            if line.startswith("nevra = ")]


@cheat_aware(protects="the DVD ISO source: CHECKSUM signature, ISO hash, repodata and RPMs read without mounting",
             cheats=["mount the ISO", "fall back to the mirror", "skip the ISO hash when CHECKSUM.asc verifies"],
             consequence="users who build from the DVD (the seed's way) get an unverified or broken build")
def test_iso_source_over_http(sample_repo, sample_build, tmp_path):
    profile = copy_profile(sample_repo, tmp_path / "p")
    iso_path = f"/isos/{sample_repo.iso.name}"
    with serve(sample_repo.root) as server:
        proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"iso:{server.url('isos/')}")
        assert proc.returncode == 0, proc.stderr
        assert "CHECKSUM signature OK" in proc.stderr
        assert server.count(iso_path) == 1
        again = run_leviso("download", *dirs(tmp_path, profile), "--source", f"iso:{server.url('isos/')}")
        assert again.returncode == 0, again.stderr
        assert server.count(iso_path) == 1, "a verified ISO in the cache was downloaded again"
    assert (tmp_path / "downloads/isos" / sample_repo.iso.name).is_file()
    assert _lock_nevras(profile) == _lock_nevras(sample_build.profile)
    assert len(list((tmp_path / "downloads/packages").glob("*.rpm"))) == len(_lock_nevras(profile))


def test_local_iso_without_checksum_warns_loudly_and_its_unsigned_repodata_is_refused(sample_repo, tmp_path):
    isodir = tmp_path / "iso"
    isodir.mkdir()
    os.symlink(sample_repo.iso, isodir / sample_repo.iso.name)
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", [LONE])
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"iso:{isodir / sample_repo.iso.name}")
    assert "WARNING: no CHECKSUM" in proc.stderr
    # The sample DVD, as Rocky's, has no repomd.xml.asc: with nothing signed over the ISO, no trust.
    assert_clean_failure(proc, "repomd.xml is not signed", "CHECKSUM.asc beside the ISO")


@pytest.mark.parametrize("layout", ["mirror", "dvd"])
def test_dir_source_in_both_layouts(sample_repo, sample_build, tmp_path, layout):
    if layout == "mirror":
        tree = sample_repo.mirror
    else:
        tree = tmp_path / "dvd"
        tree.mkdir()
        for repo in ("BaseOS", "AppStream"):
            os.symlink(sample_repo.mirror / repo / "x86_64" / "os", tree / repo)
        os.symlink(sample_repo.key, tree / sample_repo.key.name)
    profile = copy_profile(sample_repo, tmp_path / "p")
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"dir:{tree}")
    assert proc.returncode == 0, proc.stderr
    assert _lock_nevras(profile) == _lock_nevras(sample_build.profile)
    assert not (tmp_path / "downloads/packages").exists(), "a local tree's packages were copied"


@cheat_aware(protects="filelists (large on Rocky) is fetched only when a file dependency needs it",
             cheats=["always fetch filelists", "ignore file dependencies"],
             consequence="every build downloads tens of MB more, or file dependencies go unmet")
def test_filelists_only_when_a_file_dependency_needs_it(sample_repo, sample_build, tmp_path):
    # The sample's `filesystem` requires /usr/share/zoneinfo/Etc/UTC, which only filelists knows.
    assert list((sample_build.cache / "repodata/BaseOS").glob("*filelists*"))
    mirror = minirepo.make_mirror(sample_repo, tmp_path / "m", [sample_repo.rpm(LONE)])
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", [LONE])
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"dir:{mirror}")
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "downloads/repodata/BaseOS").glob("*")) == [tmp_path / "downloads/repodata/BaseOS/repomd.xml"]


def test_show_packages(sample_build, sample_server):
    source = f"mirror:{sample_server.url('mirror')}"
    proc = run_leviso("show", "packages", "--why", *sample_build.args("--source", source))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    bash = next(line for line in lines if line.startswith("bash "))
    assert "BaseOS" in bash and "MiB" in bash and "wanted" in bash
    assert "required by" in proc.stdout
    assert lines[-1].startswith(f"{len(_lock_nevras(sample_build.profile))} packages")


def test_clean_keeps_downloads_unless_all(tmp_path):
    for name in ("downloads", "work", "output"):
        (tmp_path / name / "x").mkdir(parents=True)
    args = ["--cache", tmp_path / "downloads", "--workdir", tmp_path / "work", "--output", tmp_path / "output"]
    assert run_leviso("clean", *args).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]
    assert run_leviso("clean", "--all", *args).returncode == 0
    assert list(tmp_path.iterdir()) == []


# -- the DVD's unsigned repodata: trusted through the signed CHECKSUM, and only through it ----------

@cheat_aware(protects="a DVD whose repodata has no repomd.xml.asc (as Rocky's DVD) builds, because the "
                      "release key signs CHECKSUM, which holds the ISO's SHA-256",
             cheats=["accept unsigned repodata from any source", "skip the ISO's hash"],
             consequence="`--source iso:` stops on every real Rocky DVD, or any unsigned tree is trusted")
def test_dvd_with_unsigned_repodata_is_covered_by_its_signed_checksum(sample_repo, tmp_path):
    iso = minirepo.make_dvd(sample_repo, tmp_path / "dvd", [sample_repo.rpm(LONE)])
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", [LONE])
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"iso:{iso.parent}")
    assert proc.returncode == 0, proc.stderr
    assert "CHECKSUM signature OK" in proc.stderr
    assert "BaseOS repomd.xml carries no signature" in proc.stderr and "covered by CHECKSUM.asc" in proc.stderr


def test_dvd_with_a_bad_repomd_signature_is_refused(sample_repo, tmp_path):
    iso_dir = tmp_path / "dvd"
    (iso_dir / "tree" / "BaseOS" / "repodata").mkdir(parents=True)
    # A signature that IS there is checked, covered or not: here one by the other key.
    iso = minirepo.make_dvd(sample_repo, iso_dir, [sample_repo.rpm(LONE)], checksum=False)
    with minirepo.gpg_home(sample_repo, other=True) as env:
        subprocess.run(["gpg", "--batch", "--yes", "--armor", "--detach-sign", "-o",
                        iso_dir / "tree/BaseOS/repodata/repomd.xml.asc", iso_dir / "tree/BaseOS/repodata/repomd.xml"],
                       env=env, check=True, capture_output=True)
    iso.unlink()
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-R", "-J", iso_dir / "tree"], check=True,
                   capture_output=True)
    with minirepo.gpg_home(sample_repo) as env:
        subprocess.run(["gpg", "--batch", "--yes", "--clearsign", write_checksum(iso)], env=env, check=True,
                       capture_output=True)
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", [LONE])
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"iso:{iso.parent}")
    assert_clean_failure(proc, "BaseOS repomd.xml")


@cheat_aware(protects="unsigned repodata is refused when nothing signed covers it: a local ISO without "
                      "CHECKSUM, an unpacked DVD tree",
             cheats=["trust any ISO's content", "accept unsigned repodata in DVD layout"],
             consequence="anyone handing over an ISO or a directory decides what gets installed")
@pytest.mark.parametrize("how", ["iso-without-checksum", "unpacked-dvd"])
def test_unsigned_repodata_without_a_signed_checksum_is_refused(sample_repo, tmp_path, how):
    iso = minirepo.make_dvd(sample_repo, tmp_path / "dvd", [sample_repo.rpm(LONE)], checksum=False)
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", [LONE])
    source = f"iso:{iso}" if how == "iso-without-checksum" else f"dir:{tmp_path / 'dvd' / 'tree'}"
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", source)
    assert_clean_failure(proc, "BaseOS repomd.xml is not signed",
                         "CHECKSUM.asc beside the ISO" if how == "iso-without-checksum" else "--source iso:")
