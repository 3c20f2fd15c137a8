"""extract(): tar (plain, gz, xz, bz2, zst) and zip archives, refusing entries that would land
outside the destination (absolute names, `..`, links pointing out, device files)."""

from __future__ import annotations

import errno
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


def _refuse(name: str, dest: Path, how: str = "would be written outside") -> HelperError:
    return HelperError(f"extract: archive entry '{name}' {how} {dest}",
                       "the archive is malformed or malicious; do not use it")


def _within(dest: Path, path: str) -> bool:
    return path == str(dest) or path.startswith(str(dest) + os.sep)


def _utf8(name: str) -> str:
    """Names that are not UTF-8 (tarfile hands them over with surrogate escapes) are refused
    here, before the build: the recipe state and the journal store names as UTF-8 text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise HelperError(f"extract: archive entry '{shown}' is not valid UTF-8",
                          "recipe only installs file names in UTF-8; repack the archive") from None
    return name


def _inside(dest: Path, name: str) -> Path:
    """Where entry `name` lands, checked against the real paths on disk: the lexical path must stay
    in `dest`, and so must its parent directory once the links already extracted are followed
    (`a -> .` then `a/a/a/b` is really `b`)."""
    target = Path(os.path.normpath(dest / _utf8(name)))
    if os.path.isabs(name) or not _within(dest, str(target)):
        raise _refuse(name, dest)
    if target != dest and not _within(dest, os.path.realpath(target.parent)):
        raise _refuse(name, dest)
    return target


def _link_inside(dest: Path, name: str, target: Path, link: str) -> None:
    """A symlink's target, resolved from the real directory the link is made in, stays in `dest`."""
    if os.path.isabs(_utf8(link)) or not _within(dest, os.path.realpath(
            os.path.join(os.path.realpath(target.parent), link))):
        raise _refuse(name, dest, f"links to '{link}', outside")


def _check_links(dest: Path, links: list[Path]) -> None:
    """Once everything is extracted, no link made points out (`x -> y/../out` checked while `y` did
    not exist, then `y -> .`). Offending links are removed, so the kept build dir holds none."""
    out = [(p, os.readlink(p)) for p in links
           if os.path.islink(p) and not _within(dest, os.path.realpath(p))]
    for p, _ in out:
        p.unlink()
    if out:
        raise _refuse(str(out[0][0].relative_to(dest)), dest, f"links to '{out[0][1]}', outside")


def _clear(dest: Path, target: Path, is_dir: bool) -> None:
    """Make room for a new entry; never write through a link that is already there."""
    if target == dest and not is_dir:
        raise _refuse(".", dest, "would replace")
    if target.is_dir() and not target.is_symlink() and not is_dir:
        shutil.rmtree(target)
    elif os.path.lexists(target) and not (is_dir and target.is_dir()):
        target.unlink()


def _open_tar(path: Path, fmt: str) -> tarfile.TarFile:
    if fmt in ("tar.zst", "tzst"):
        import zstandard
        stream = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
        return tarfile.open(fileobj=stream, mode="r|")
    return tarfile.open(path, mode="r:*")


def extract_tar(path: Path, dest: Path, fmt: str) -> None:
    links: list[Path] = []
    with _open_tar(path, fmt) as tar:
        for m in tar:
            target = _inside(dest, m.name)
            if m.issym():
                _link_inside(dest, m.name, target, m.linkname)
                links.append(target)
            elif m.islnk():
                source = _inside(dest, m.linkname)
                if not _within(dest, os.path.realpath(source)):
                    raise _refuse(m.name, dest, f"links to '{m.linkname}', outside")
            elif not (m.isfile() or m.isdir()):
                continue                       # devices, fifos: never from a recipe archive
            _clear(dest, target, m.isdir())
            tar.extract(m, dest, set_attrs=not m.issym(), filter="tar")
    _check_links(dest, links)


def extract_zip(path: Path, dest: Path) -> None:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            target = _inside(dest, info.filename)
            _clear(dest, target, info.is_dir())
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "xb") as out:
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
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise HelperError(f"extract: {src.name} is damaged: {e}",
                              "download it again (remove it from the build directory)") from None
        raise HelperError(f"extract: no space left in {dest} for {src.name}",
                          "free some space there, or choose another --build-dir") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise HelperError(f"extract: {src.name} is damaged: {e}",
                          "download it again (remove it from the build directory)") from None


def register(engine, ctx: Context) -> None:
    engine.register_fn("extract", lambda *a: extract(ctx, *a), arity=1)
    engine.register_fn("extract", lambda *a: extract(ctx, *a), arity=2)
