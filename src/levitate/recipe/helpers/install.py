"""Placing files: install_bin (PREFIX/bin, 0755), install_lib (PREFIX/lib, 0644),
install_man (PREFIX/share/man/manN, the section from the file name), install_to_dir (any
directory under PREFIX). Globs are relative to the current directory; files land in the stage."""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from .context import Context, HelperError


def _matches(ctx: Context, pattern: str, what: str) -> list[Path]:
    found = sorted(glob.glob(str(ctx.path(pattern))))
    if not found:
        raise HelperError(f"{what}: nothing matches '{pattern}' in {ctx.cwd}",
                          "check the path (it is relative to the directory set with cd())")
    return [Path(f) for f in found]


def _place(src: Path, dest_dir: Path, mode: int | None) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if os.path.lexists(dest):
        dest.unlink() if not dest.is_dir() or dest.is_symlink() else shutil.rmtree(dest)
    if src.is_symlink():
        os.symlink(os.readlink(src), dest)
    elif src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)
        if mode is not None:
            os.chmod(dest, mode)


def _under_prefix(ctx: Context, d: str) -> Path:
    p = Path(os.path.normpath(d if os.path.isabs(d) else ctx.prefix / d))
    if not ctx.under_prefix(p):
        raise HelperError(f"install_to_dir: {d} is outside PREFIX ({ctx.prefix})",
                          "give a directory relative to PREFIX, e.g. share/doc/NAME")
    return ctx.staged(p)


def install_bin(ctx: Context, pattern: str, mode: int = 0o755) -> None:
    for f in _matches(ctx, pattern, "install_bin"):
        _place(f, ctx.staged(ctx.prefix / "bin"), int(mode))


def install_lib(ctx: Context, pattern: str, mode: int = 0o644) -> None:
    for f in _matches(ctx, pattern, "install_lib"):
        _place(f, ctx.staged(ctx.prefix / "lib"), int(mode))


def man_section(name: str) -> str:
    """`rg.1` -> "1", `foo.3ssl.gz` -> "3"."""
    base = re.sub(r"\.(gz|bz2|xz|zst)$", "", name)
    m = re.search(r"\.(\d)[a-z]*$", base)
    if not m:
        raise HelperError(f"install_man: cannot tell the section of {name}",
                          "man pages are named NAME.SECTION, e.g. rg.1")
    return m.group(1)


def install_man(ctx: Context, pattern: str) -> None:
    for f in _matches(ctx, pattern, "install_man"):
        _place(f, ctx.staged(ctx.prefix / "share" / "man" / f"man{man_section(f.name)}"), 0o644)


def install_to_dir(ctx: Context, pattern: str, d: str, mode: int | None = None) -> None:
    dest = _under_prefix(ctx, str(d))
    for f in _matches(ctx, pattern, "install_to_dir"):
        _place(f, dest, None if mode is None else int(mode))


def register(engine, ctx: Context) -> None:
    r = engine.register_fn
    r("install_bin", lambda p, m=0o755: install_bin(ctx, p, m))
    r("install_lib", lambda p, m=0o644: install_lib(ctx, p, m))
    r("install_man", lambda p: install_man(ctx, p))
    r("install_to_dir", lambda p, d, m=None: install_to_dir(ctx, p, d, m))
