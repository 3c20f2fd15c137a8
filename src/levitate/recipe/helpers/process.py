"""Running commands: `sh -c CMD` in the current directory with PREFIX, BUILD_DIR, NPROC, ARCH and
DESTDIR (the staging root) in the environment; output goes to stderr so `--json` stays clean.

run/shell fail on a non-zero exit; run_output/shell_output return stdout; run_status/
shell_status return the exit status; exec/exec_output take a program and an argument array."""

from __future__ import annotations

from ...util.run import run as run_command
from .context import Context


def _run(ctx: Context, argv: list[str], what: str, *, capture: bool, check: bool):
    ctx.log(f"  $ {what}")
    return run_command(argv, cwd=ctx.cwd, env=ctx.run_env(), capture=capture, stream=True, check=check,
                       what=what, missing="install it, or check the recipe's command")


def run(ctx: Context, cmd: str) -> None:
    _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=False, check=True)


def run_output(ctx: Context, cmd: str) -> str:
    return _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=True, check=True).stdout.decode(errors="replace")


def run_status(ctx: Context, cmd: str) -> int:
    return _run(ctx, ["sh", "-c", str(cmd)], str(cmd), capture=False, check=False).returncode


def exec_(ctx: Context, prog: str, args: list) -> int:
    argv = [str(prog), *map(str, args)]
    return _run(ctx, argv, " ".join(argv), capture=False, check=False).returncode


def exec_output(ctx: Context, prog: str, args: list) -> str:
    argv = [str(prog), *map(str, args)]
    return _run(ctx, argv, " ".join(argv), capture=True, check=True).stdout.decode(errors="replace")


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
