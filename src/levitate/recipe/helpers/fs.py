"""File and path helpers. Paths are relative to the current directory (`cd`); writes under
PREFIX go to the staging root, reads see the stage first, then the system."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from .context import Context, HelperError


def _fail(what: str, path, e: OSError):
    raise HelperError(f"{what} {path}: {e.strerror or e}") from None


def cd_target(ctx: Context, d: str) -> Path:
    d = str(d)
    return Path(os.path.normpath(d if os.path.isabs(d) else ctx.build_dir / d))


def cd(ctx: Context, d: str) -> None:
    """Change the current directory for later helpers of this operation (relative: to
    BUILD_DIR)."""
    target = cd_target(ctx, d)
    if not target.is_dir():
        raise HelperError(f"cd: {target} is not a directory",
                          "check the directory name the archive unpacks to")
    ctx.cwd = target


def mkdir(ctx: Context, p: str) -> None:
    try:
        ctx.write_path(p).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _fail("mkdir", p, e)


def rm(ctx: Context, p: str) -> None:
    """Remove a file or a directory tree (glob patterns allowed); missing paths are fine."""
    for target in glob.glob(str(ctx.write_path(p))) or []:
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
        except OSError as e:
            _fail("rm", target, e)


def mv(ctx: Context, src: str, dst: str) -> None:
    d = ctx.write_path(dst)
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(ctx.write_path(src)), str(d))
    except OSError as e:
        _fail("mv", src, e)


def ln(ctx: Context, target: str, link: str) -> None:
    """A symbolic link `link` pointing to `target` (written as given)."""
    lp = ctx.write_path(link)
    try:
        lp.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(lp):
            lp.unlink()
        os.symlink(str(target), lp)
    except OSError as e:
        _fail("ln", link, e)


def chmod(ctx: Context, p: str, mode: int) -> None:
    try:
        os.chmod(ctx.write_path(p), int(mode))
    except OSError as e:
        _fail("chmod", p, e)


def read_file(ctx: Context, p: str) -> str:
    try:
        return ctx.read_path(p).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        _fail("read_file", p, e)


def write_file(ctx: Context, p: str, content: str) -> None:
    target = ctx.write_path(p)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(content), encoding="utf-8")
    except OSError as e:
        _fail("write_file", p, e)


def glob_list(ctx: Context, pattern: str) -> list[str]:
    """Paths matching a glob, sorted (relative patterns give relative paths)."""
    pattern = str(pattern)
    if os.path.isabs(pattern):
        real = sorted(glob.glob(pattern))
        staged = sorted(glob.glob(str(ctx.staged(Path(pattern)))))
        if staged and str(ctx.staged(Path(pattern))) != pattern:
            real = sorted(set(real) | {"/" + os.path.relpath(s, ctx.stage) for s in staged})
        return real
    return sorted(glob.glob(pattern, root_dir=ctx.cwd))


def register(engine, ctx: Context) -> None:
    r = engine.register_fn
    r("cd", lambda d: cd(ctx, d))
    r("mkdir", lambda p: mkdir(ctx, p))
    r("rm", lambda p: rm(ctx, p))
    r("mv", lambda a, b: mv(ctx, a, b))
    r("ln", lambda a, b: ln(ctx, a, b))
    r("chmod", lambda p, m: chmod(ctx, p, m))
    r("read_file", lambda p: read_file(ctx, p))
    r("write_file", lambda p, c: write_file(ctx, p, c))
    r("glob_list", lambda p: glob_list(ctx, p))
    r("exists", lambda p: os.path.lexists(ctx.read_path(p)))
    r("file_exists", lambda p: ctx.read_path(p).is_file())
    r("dir_exists", lambda p: ctx.read_path(p).is_dir())
    r("basename", lambda p: os.path.basename(str(p).rstrip("/")))
    r("dirname", lambda p: os.path.dirname(str(p).rstrip("/")))
    r("join_path", lambda a, b: os.path.join(str(a), str(b)))
    r("pwd", lambda: str(ctx.cwd))
