"""extract(): tar (plain, gz, xz, bz2, zst) and zip archives, refusing entries that would land
outside the destination (absolute names, `..`, links pointing out, device files)."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from .context import Context, HelperError

FORMATS = {"tar.gz": ".tar.gz", "tgz": ".tgz", "tar.xz": ".tar.xz", "txz": ".txz",
           "tar.bz2": ".tar.bz2", "tbz2": ".tbz2", "tar.zst": ".tar.zst", "tzst": ".tzst",
           "tar": ".tar", "zip": ".zip"}


def _detect(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[:6] == b"\xfd7zXZ\x00":
        return "tar.xz"
    if head[:3] == b"BZh":
        return "tar.bz2"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "tar.zst"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise HelperError(f"extract: {path.name} is not an archive this helper knows",
                      "supported: tar.gz, tar.xz, tar.bz2, tar.zst, tar, zip")


def _inside(dest: Path, name: str) -> Path:
    target = Path(os.path.normpath(dest / name))
    if os.path.isabs(name) or (target != dest and dest not in target.parents):
        raise HelperError(f"extract: archive entry '{name}' would be written outside {dest}",
                          "the archive is malformed or malicious; do not use it")
    return target


def _open_tar(path: Path, fmt: str) -> tarfile.TarFile:
    if fmt in ("tar.zst", "tzst"):
        import zstandard
        stream = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
        return tarfile.open(fileobj=stream, mode="r|")
    return tarfile.open(path, mode="r:*")


def extract_tar(path: Path, dest: Path, fmt: str) -> None:
    with _open_tar(path, fmt) as tar:
        for m in tar:
            target = _inside(dest, m.name)
            if m.issym():
                link = m.linkname
                _inside(dest, os.path.join(os.path.dirname(m.name), link)) if not os.path.isabs(link) \
                    else _inside(dest, link)
            elif m.islnk():
                _inside(dest, m.linkname)
            elif not (m.isfile() or m.isdir()):
                continue                       # devices, fifos: never from a recipe archive
            if target.is_dir() and not target.is_symlink() and not m.isdir():
                shutil.rmtree(target)
            elif os.path.lexists(target) and not m.isdir():
                target.unlink()
            tar.extract(m, dest, set_attrs=not m.issym(), filter="tar")


def extract_zip(path: Path, dest: Path) -> None:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            target = _inside(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = info.external_attr >> 16
            if mode and stat.S_ISREG(mode):
                os.chmod(target, stat.S_IMODE(mode) & 0o777)


def _find(ctx: Context, fmt: str | None) -> Path:
    last = ctx.last_download
    if last is not None and (fmt is None or last.name.endswith(FORMATS.get(fmt, "\0"))):
        return last
    if fmt is not None:
        found = sorted(ctx.build_dir.glob(f"*{FORMATS[fmt]}"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    if last is not None:
        return last
    raise HelperError("extract: nothing was downloaded yet", "call download(url) first, or "
                      "extract(archive, dest)")


def extract(ctx: Context, *args) -> None:
    """extract(fmt): the last download into BUILD_DIR; extract(archive, dest): an explicit one."""
    if len(args) == 1:
        fmt = str(args[0]).lower().lstrip(".")
        if fmt not in FORMATS:
            raise HelperError(f"extract: unknown format '{args[0]}'",
                              "use one of " + ", ".join(FORMATS))
        src, dest = _find(ctx, fmt), ctx.build_dir
    else:
        src, dest, fmt = ctx.read_path(args[0]), ctx.write_path(args[1]), None
    if not src.is_file():
        raise HelperError(f"extract: {src} does not exist")
    fmt = _detect(src) if fmt is None or fmt not in ("tar", "zip") else fmt
    dest.mkdir(parents=True, exist_ok=True)
    dest = Path(os.path.realpath(dest))
    ctx.log(f"  extracting {src.name}")
    try:
        if fmt == "zip":
            extract_zip(src, dest)
        else:
            extract_tar(src, dest, fmt)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise HelperError(f"extract: {src.name} is damaged: {e}",
                          "download it again (remove it from the build directory)") from None


def register(engine, ctx: Context) -> None:
    engine.register_fn("extract", lambda *a: extract(ctx, *a), arity=1)
    engine.register_fn("extract", lambda *a: extract(ctx, *a), arity=2)
