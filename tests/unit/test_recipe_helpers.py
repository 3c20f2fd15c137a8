"""Helpers used directly on a Context: archives of every supported format, entries that try to
escape, man sections, staging of writes under PREFIX."""

import io
import os
import tarfile
import zipfile

import pytest
import zstandard

from levitate.recipe.helpers import Context, HelperError
from levitate.recipe.helpers.archive import extract
from levitate.recipe.helpers.fs import glob_list, write_file
from levitate.recipe.helpers.install import install_bin, man_section


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "build").mkdir()
    return Context(prefix=tmp_path / "prefix", build_dir=tmp_path / "build", stage=tmp_path / "stage",
                   out=lambda text: None)


def _tar(path, mode, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if mode == "zst":
        raw = zstandard.ZstdCompressor().compress(raw)
    elif mode:
        import bz2
        import gzip
        import lzma
        raw = {"gz": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress}[mode](raw)
    path.write_bytes(raw)


def _file(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


@pytest.mark.parametrize("fmt, comp", [("tar.gz", "gz"), ("tar.xz", "xz"), ("tar.bz2", "bz2"),
                                       ("tar.zst", "zst"), ("tar", "")])
def test_tar_formats(ctx, fmt, comp):
    archive = ctx.build_dir / f"pkg-1.0.{fmt}"
    link = tarfile.TarInfo("pkg-1.0/link")
    link.type, link.linkname = tarfile.SYMTYPE, "bin/tool"
    _tar(archive, comp, [_file("pkg-1.0/bin/tool", b"#!/bin/sh\n", 0o755), (link, None)])
    ctx.last_download = archive
    extract(ctx, fmt)
    tool = ctx.build_dir / "pkg-1.0/bin/tool"
    assert tool.read_bytes() == b"#!/bin/sh\n" and os.stat(tool).st_mode & 0o777 == 0o755
    assert os.readlink(ctx.build_dir / "pkg-1.0/link") == "bin/tool"


def test_zip(ctx):
    archive = ctx.build_dir / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("pkg/run.sh")
        info.external_attr = (0o100755 << 16)
        z.writestr(info, "echo hi\n")
    ctx.last_download = archive
    extract(ctx, "zip")
    assert os.stat(ctx.build_dir / "pkg/run.sh").st_mode & 0o777 == 0o755


@pytest.mark.parametrize("entry", ["../evil", "/abs/evil", "a/../../evil", "symlink-out", "hardlink-out"])
def test_escaping_tar_entries_are_refused(ctx, entry):
    archive = ctx.build_dir / "bad.tar.gz"
    if entry == "symlink-out":
        info = tarfile.TarInfo("pkg/ln")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc"
        entries = [(info, None)]
    elif entry == "hardlink-out":
        info = tarfile.TarInfo("pkg/hl")
        info.type, info.linkname = tarfile.LNKTYPE, "../../outside"
        entries = [(info, None)]
    else:
        entries = [_file(entry)]
    _tar(archive, "gz", entries)
    ctx.last_download = archive
    with pytest.raises(HelperError, match="outside"):
        extract(ctx, "tar.gz")
    assert not (ctx.build_dir.parent / "evil").exists()


def test_escaping_zip_entry_is_refused(ctx):
    archive = ctx.build_dir / "bad.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../evil", "x")
    with pytest.raises(HelperError, match="outside"):
        extract(ctx, str(archive), str(ctx.build_dir / "dest"))


def test_not_an_archive(ctx):
    (ctx.build_dir / "x.tar.gz").write_text("plain text")
    ctx.last_download = ctx.build_dir / "x.tar.gz"
    with pytest.raises(HelperError, match="not an archive"):
        extract(ctx, "tar.gz")


def test_man_sections():
    assert man_section("rg.1") == "1"
    assert man_section("SSL_new.3ssl") == "3"
    assert man_section("mount.8.gz") == "8"
    with pytest.raises(HelperError):
        man_section("README")


def test_writes_under_prefix_go_to_the_stage(ctx):
    write_file(ctx, f"{ctx.prefix}/share/x.txt", "hi")
    assert (ctx.stage / str(ctx.prefix).lstrip("/") / "share/x.txt").read_text() == "hi"
    assert not ctx.prefix.exists()
    assert glob_list(ctx, f"{ctx.prefix}/share/*.txt") == [f"{ctx.prefix}/share/x.txt"]
    with pytest.raises(HelperError, match="nothing matches 'nope'"):
        install_bin(ctx, "nope")


def test_dry_mode_replaces_every_helper_that_is_not_read_only(ctx):
    """A helper added later without a dry version would act during `--dry-run`: each one is
    either replaced by helpers/dry.py or listed there as read-only."""
    from levitate.recipe.helpers import DryRun, dry, make_engine
    engine = make_engine(ctx)
    real = dict(engine._host)
    ctx.dry = DryRun()
    dry.register(engine, ctx)
    assert set(engine._host) == set(real)                 # dry mode adds no helper
    kept = {name for (name, n), fn in engine._host.items() if real[(name, n)] is fn}
    replaced = {name for (name, n), fn in engine._host.items() if real[(name, n)] is not fn}
    assert kept == dry.READ_ONLY
    assert not kept & replaced                            # no arity of a replaced helper left over


def test_dry_mode_records_and_touches_nothing(ctx, tmp_path):
    """Through the engine as a recipe sees it: download and copy are recorded (with the pinned
    checksum), a real local file is really verified, commands and writes are skipped."""
    import hashlib

    from levitate.recipe.helpers import DryRun, make_engine
    local = tmp_path / "local.txt"
    local.write_text("local\n")
    sha = hashlib.sha256(b"local\n").hexdigest()
    ctx.dry = DryRun()
    engine = make_engine(ctx)
    engine.run(engine.compile(f'''
        let f = download("https://example.invalid/dl/pkg-1.0.tar.xz");
        if f != BUILD_DIR + "/pkg-1.0.tar.xz" {{ throw "download path " + f; }}
        verify_sha512("ABC");
        verify_sha256("{local}", "{sha}");   // a real file: checked for real
        copy("{local}");
        verify_sha256("00");                 // the would-be copy: recorded
        extract("tar.xz");
        cd("pkg-1.0");
        if pwd() != BUILD_DIR + "/pkg-1.0" {{ throw "cd"; }}
        if run_status("exit 3") != 0 || exec_output("false", []) != "" {{ throw "ran"; }}
        write_file(PREFIX + "/etc/x.conf", "x");
        install_bin("nothing-here", 0o700);
    '''))
    assert ctx.dry.fetches == [
        {"kind": "download", "url": "https://example.invalid/dl/pkg-1.0.tar.xz", "dest": "pkg-1.0.tar.xz",
         "checksum": {"sha512": "abc"}},
        {"kind": "copy", "url": str(local), "dest": "local.txt", "checksum": {"sha256": "00"}}]
    assert ctx.dry.actions == ["extract(tar.xz)", "cd(pkg-1.0)", "run_status(exit 3)", "exec_output(false, [])",
                               f"write_file({ctx.prefix}/etc/x.conf, x)", "install_bin(nothing-here, 448)"]
    assert os.listdir(ctx.build_dir) == [] and not ctx.stage.exists() and not ctx.prefix.exists()
