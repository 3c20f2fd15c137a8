"""Hostile sources against `recipe` (issue 15): archives whose links chain out of the build
directory, download URLs that name a file outside it, names that are not UTF-8, a full disk and a
server that trickles. Served from the loopback server, run through the real command line."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import time
import zipfile

import pytest

from levitate.recipe.helpers import Context, HelperError
from levitate.util import download as dl
from levitate.recipe.helpers.archive import extract
from tests.cheat_aware import cheat_aware
from tests.httpserver import http_serve  # noqa: F401 - fixture
from tests.recipe_support import World


@pytest.fixture
def world(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "recipes").mkdir()
    (tmp_path / "srv").mkdir()
    return World(tmp_path, http_serve(tmp_path / "srv"))


def _member(name: str, *, link: str | None = None, hard: bool = False, data: bytes = b"x",
            mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if link is not None:
        info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), link
        return info, None
    info.size = len(data)
    return info, data


def _serve_tar(world: World, name: str, members, *, build: str, install: str = "") -> None:
    """Serve NAME-1.0.tar.gz made of `members` and write a recipe that downloads it."""
    with tarfile.open(world.srv / f"{name}-1.0.tar.gz", "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    (world.recipes / f"{name}.rhai").write_text(
        f'let name = "{name}";\nlet version = "1.0";\nlet installed = false;\n'
        f'fn acquire() {{ download(`${{env("SRV")}}/{name}-1.0.tar.gz`); }}\n'
        f"fn build() {{ {build} }}\nfn install() {{ {install} }}\n")


def _links_leaving(top, root) -> list[str]:
    """Symlinks under `top` whose resolved target is not under `root`."""
    root = os.path.realpath(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            real = os.path.realpath(p)
            if os.path.islink(p) and real != root and not real.startswith(root + "/"):
                out.append(p)
    return out


def _one_line_refusal(proc, text: str) -> None:
    assert proc.returncode != 0, proc.stderr
    assert text in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@cheat_aware(protects="a chain of symlinks in a tarball (`a -> .`, `a/a/b -> ../..`) cannot make a "
                      "link out of the build dir, nor a hard link to an outside file",
             cheats=["check link targets only lexically", "refuse every symlink"],
             consequence="a hostile tarball publishes a private file as 0755 into the prefix, "
                         "or lets write_file() overwrite it")
def test_tar_symlink_chain_and_hard_link_out_of_the_build_dir_are_refused(world):
    secret = world.root / "secret"
    secret.write_text("private\n")
    secret.chmod(0o600)
    # BUILD_DIR is ROOT/build/chain-1.0: `a/a/b` resolves to BUILD_DIR/../.. = ROOT
    _serve_tar(world, "chain", [_member("a", link="."), _member("a/a/b", link="../.."),
                                _member("bin/h", link="a/a/b/secret", hard=True)],
               build='extract("tar.gz");', install='install_bin("bin/*");')
    proc = world.run("install", "chain")
    _one_line_refusal(proc, "outside")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.stat().st_nlink == 1
    assert world.files() == set()
    assert _links_leaving(world.root / "build", world.root / "build/chain-1.0") == []


@cheat_aware(protects="a link whose target goes through a link made later in the same archive "
                      "(`x -> y/../out`, then `y -> .`) does not stay behind pointing out",
             cheats=["check each link only when it is created"],
             consequence="the kept build directory holds a link out of it; the build follows it")
def test_late_bound_symlink_out_of_the_build_dir_is_refused(world):
    _serve_tar(world, "late", [_member("x", link="y/../out"), _member("y", link=".")],
               build='extract("tar.gz");')
    proc = world.run("install", "late")
    _one_line_refusal(proc, "outside")
    assert _links_leaving(world.root / "build", world.root / "build/late-1.0") == []


@cheat_aware(protects="a zip entry is never written through a link that leaves the destination",
             cheats=["check zip names only lexically"],
             consequence="a zip extracted after a hostile tarball writes files anywhere")
def test_zip_entry_through_a_link_out_is_refused(tmp_path):
    (tmp_path / "build").mkdir()
    ctx = Context(prefix=tmp_path / "prefix", build_dir=tmp_path / "build", stage=tmp_path / "stage",
                  out=lambda text: None)
    os.symlink("..", tmp_path / "build" / "b")       # left by an earlier archive or step
    archive = tmp_path / "build" / "z.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("b/x", "written outside")
    with pytest.raises(HelperError, match="outside"):
        extract(ctx, str(archive), str(ctx.build_dir))
    assert not (tmp_path / "x").exists()


@cheat_aware(protects="a tar hard link never names a file through a link that leaves the destination",
             cheats=["check hard link names only lexically"],
             consequence="install_bin() publishes a private file; write_file() overwrites it")
def test_tar_hard_link_through_a_link_out_is_refused(tmp_path):
    (tmp_path / "build").mkdir()
    ctx = Context(prefix=tmp_path / "prefix", build_dir=tmp_path / "build", stage=tmp_path / "stage",
                  out=lambda text: None)
    secret = tmp_path / "secret"
    secret.write_text("private\n")
    os.symlink("..", tmp_path / "build" / "b")       # left by an earlier archive or step
    archive = tmp_path / "build" / "h.tar"
    with tarfile.open(archive, "w") as tar:
        info, _ = _member("bin/h", link="b/secret", hard=True)
        tar.addfile(info)
    with pytest.raises(HelperError, match="outside"):
        extract(ctx, str(archive), str(ctx.build_dir))
    assert secret.stat().st_nlink == 1 and not (tmp_path / "build/bin/h").exists()


@pytest.mark.parametrize("segment", ["x%2F..%2F..%2F..%2Fplanted", "%2E%2E", "dir%2F"])
@cheat_aware(protects="download(url) names its file after the URL's last path segment only",
             cheats=["strip only a leading slash", "unquote before splitting"],
             consequence="a URL with %2F.. writes a file above BUILD_DIR")
def test_download_name_cannot_leave_the_build_dir(world, segment):
    (world.srv / "d1/d2/d3").mkdir(parents=True)
    (world.srv / "d1/planted").write_text("planted\n")  # what the server answers for the first
    (world.recipes / "dl.rhai").write_text(
        'let name = "dl";\nlet version = "1.0";\nlet installed = false;\n'
        f'fn acquire() {{ download(`${{env("SRV")}}/d1/d2/d3/{segment}`); }}\n'
        "fn install() { }\n")
    proc = world.run("install", "dl")
    _one_line_refusal(proc, "cannot name a file after")
    assert "download(url, dest)" in proc.stderr
    found = [p for p in world.root.rglob("planted") if world.srv not in p.parents]
    assert found == []


@cheat_aware(protects="a file name in an archive that is not UTF-8 is refused before anything is "
                      "committed, in one line",
             cheats=["catch the UnicodeEncodeError after the commit"],
             consequence="a traceback after the files are in the prefix; the recipe is stuck "
                         "between installed and not")
def test_non_utf8_name_in_an_archive_is_refused_up_front(world):
    _serve_tar(world, "latin", [_member("latin-1.0/bin/caf\udce9", data=b"#!/bin/sh\n", mode=0o755)],
               build='extract("tar.gz"); cd("latin-1.0");', install='install_bin("bin/*");')
    proc = world.run("install", "latin")
    _one_line_refusal(proc, "not valid UTF-8")
    assert world.files() == set()
    assert "let installed = false;" in (world.recipes / "latin.rhai").read_text()


@cheat_aware(protects="a non-UTF-8 name made by the build itself is refused before the commit",
             cheats=["check only archive member names"],
             consequence="a traceback after the files are in the prefix; the state is not written")
def test_non_utf8_name_made_by_the_build_is_refused_before_the_commit(world):
    (world.recipes / "mk.rhai").write_text(
        'let name = "mk";\nlet version = "1.0";\nlet installed = false;\n'
        "fn acquire() { }\n"
        "fn install() { run(\"mkdir -p $DESTDIR$PREFIX/bin && printf x > \\\"$DESTDIR$PREFIX/bin/"
        "caf$(printf '\\\\351')\\\"\"); }\n")
    proc = world.run("install", "mk")
    _one_line_refusal(proc, "not valid UTF-8")
    assert world.files() == set()


@pytest.fixture
def small_fs(tmp_path):
    """A 512 KiB tmpfs: a file system that fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _free(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@cheat_aware(protects="a download that fills the disk says so, naming the file system, and drops "
                      "its .part so the disk is not left full",
             cheats=["report every OSError as a network interruption", "keep the .part"],
             consequence="the user hunts a network problem while the disk stays full")
def test_disk_full_during_a_recipe_download(world, small_fs):
    (world.srv / "big-1.0.tar.gz").write_bytes(os.urandom(2 * 1024 * 1024))
    (world.recipes / "big.rhai").write_text(
        'let name = "big";\nlet version = "1.0";\nlet installed = false;\n'
        'fn acquire() { download(`${env("SRV")}/big-1.0.tar.gz`); }\nfn install() { }\n')
    proc = world.run("install", "big", env=world.env(XDG_CACHE_HOME=str(small_fs)))
    _one_line_refusal(proc, f"no space left on {small_fs}")
    assert "check your network" not in proc.stderr
    assert list(small_fs.rglob("*.part")) == []
    assert _free(small_fs) > 400 * 1024


@cheat_aware(protects="leviso's downloads (the shared module) report a full disk the same way",
             cheats=["handle ENOSPC only in recipe"],
             consequence="a leviso build on a full disk blames the network and stays full")
def test_disk_full_in_the_shared_download_module(tmp_path, http_serve, small_fs):  # noqa: F811
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv/big.rpm").write_bytes(os.urandom(2 * 1024 * 1024))
    server = http_serve(tmp_path / "srv")
    with pytest.raises(dl.DownloadError, match=f"no space left on {small_fs}") as info:
        dl.download(server.url("big.rpm"), small_fs / "big.rpm", retries=0)
    assert "interrupted" not in info.value.message
    assert list(small_fs.iterdir()) == [] and _free(small_fs) > 400 * 1024


@cheat_aware(protects="a server that trickles (one byte at a time) is given up after the minimum-speed "
                      "window, with a line saying so; the .part is kept and resumed by the next run",
             cheats=["rely on the socket timeout, which every byte resets"],
             consequence="`recipe install` hangs for hours on a stalled mirror")
def test_a_trickling_server_is_given_up_and_resumed(world):
    world.add("slow", "1.0", {"bin/slow": ("#!/bin/sh\n# " + os.urandom(3000).hex() + "\n", 0o755)})
    world.server.faults.add("/slow-1.0.tar.gz", trickle=0.2)
    env = world.env(RECIPE_DOWNLOAD_SPEED_LIMIT="1000", RECIPE_DOWNLOAD_SPEED_TIME="2")
    started = time.monotonic()
    proc = world.run("install", "slow", env=env, timeout=60)
    assert time.monotonic() - started < 30
    _one_line_refusal(proc, "too slow")
    parts = list((world.root / "cache").rglob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size > 0
    kept = parts[0].stat().st_size
    world.ok("install", "slow", env=env)
    assert world.server.ranges("/slow-1.0.tar.gz")[-1] == f"bytes={kept}-"
    assert world.files() == {"bin/slow"}


@cheat_aware(protects="an archive that fills the build dir's file system is reported as a full disk",
             cheats=["call every OSError a damaged archive"],
             consequence="the user downloads the archive again and again while the disk is full")
def test_disk_full_while_extracting(tmp_path, small_fs):
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        info, data = _member("big/blob", data=os.urandom(2 * 1024 * 1024))
        tar.addfile(info, io.BytesIO(data))
    ctx = Context(prefix=tmp_path / "prefix", build_dir=small_fs, stage=tmp_path / "stage",
                  out=lambda text: None)
    with pytest.raises(HelperError, match=f"no space left in {small_fs} for big.tar"):
        extract(ctx, str(archive), str(small_fs))
