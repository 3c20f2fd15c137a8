"""Running commands: `sh -c CMD` in the current directory with PREFIX, BUILD_DIR, NPROC, ARCH and
DESTDIR (the staging root) in the environment; output goes to stderr so `--json` stays clean.

run/shell fail on a non-zero exit; run_output/shell_output return stdout; run_status/
shell_status return the exit status; exec/exec_output take a program and an argument array."""

from __future__ import annotations

import subprocess
import sys

from .context import Context, HelperError


def _run(ctx: Context, argv: list[str], what: str, *, capture: bool, check: bool):
    ctx.log(f"  $ {what}")
    try:
        proc = subprocess.run(argv, cwd=ctx.cwd, env=ctx.run_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE if capture else sys.stderr.fileno(),
                              stderr=sys.stderr.fileno(), text=capture)
    except OSError as e:
        raise HelperError(f"cannot run {what}: {e.strerror}") from None
    if check and proc.returncode != 0:
        raise HelperError(f"command failed (exit {proc.returncode}): {what}",
                          "see the command's output above")
    return proc


def run(ctx: Context, cmd: str) -> None:
    _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=False, check=True)


def run_output(ctx: Context, cmd: str) -> str:
    return _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=True, check=True).stdout


def run_status(ctx: Context, cmd: str) -> int:
    return _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=False, check=False).returncode


def exec_(ctx: Context, prog: str, args: list) -> int:
    argv = [str(prog), *map(str, args)]
    return _run(ctx, argv, " ".join(argv), capture=False, check=False).returncode


def exec_output(ctx: Context, prog: str, args: list) -> str:
    argv = [str(prog), *map(str, args)]
    return _run(ctx, argv, " ".join(argv), capture=True, check=True).stdout


def register(engine, ctx: Context) -> None:
    r = engine.register_fn
    for name in ("run", "shell"):
        r(name, lambda c: run(ctx, c))
        r(f"{name}_output", lambda c: run_output(ctx, c))
        r(f"{name}_status", lambda c: run_status(ctx, c))
    r("shell_in", lambda d, c: _in(ctx, d, lambda: run(ctx, c)))
    r("exec", lambda p, a=[]: exec_(ctx, p, a))
    r("exec_output", lambda p, a=[]: exec_output(ctx, p, a))


def _in(ctx: Context, d: str, fn):
    saved = ctx.cwd
    ctx.cwd = ctx.path(d)
    try:
        return fn()
    finally:
        ctx.cwd = saved
