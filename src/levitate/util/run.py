"""The one place subprocesses are started (a test keeps it so): the command is logged, and what
can go wrong (a missing tool, a failure, a timeout) ends as one LevitateError with a hint.

`run()` runs a command to its end; `start()` starts a long-running or interactive one (QEMU, the
shell recchroot opens) and returns the process at once; `stop()` ends such a process.

How to install a missing tool depends on the program, not on the code that needs the tool:
leviso has `leviso preflight`, an installed system only its package manager. So the entry point
sets the program's hint once with `set_missing_tool_hint()`; a caller that knows the package
passes `missing=`.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from .errors import LevitateError, MissingToolError

log = logging.getLogger("levitate")

Process = subprocess.Popen
"""What `start()` returns: poll(), wait(), send_signal() and returncode are what callers use."""

_missing_tool_hint = "install the package that provides it"


def set_missing_tool_hint(hint: str) -> None:
    """The hint for a tool that is not installed, for the rest of this program (its entry point)."""
    global _missing_tool_hint
    _missing_tool_hint = hint


def run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = False,
    stream: bool = False,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    what: str | None = None,
    hint: str | None = None,
    missing: str | None = None,
) -> subprocess.CompletedProcess:
    """Run `cmd` to its end. Raises LevitateError when the tool is missing (hint: `missing`, else
    the program's), cannot start, runs past `timeout` seconds (it is killed) or, with `check`,
    exits non-zero: "`what` failed (exit N): <its last error lines>", hint: `hint`.

    stdout is returned as bytes when `capture`, else discarded. stderr is captured so a failure can
    quote it, or with `stream` goes, like an uncaptured stdout, to our stderr for the user to
    watch. stdin is `input`, else /dev/null: nothing waits on the terminal.
    """
    argv = [str(c) for c in cmd]
    what = what or argv[0]
    log.debug("$ %s", shlex.join(argv))
    path = (os.environ if env is None else env).get("PATH")
    if "/" not in argv[0] and shutil.which(argv[0], path=path) is None:
        raise MissingToolError(f"{argv[0]}: command not found", missing or _missing_tool_hint)
    if isinstance(input, str):
        input = input.encode()
    given = {"stdin": subprocess.DEVNULL} if input is None else {"input": input}
    uncaptured = sys.stderr.fileno() if stream else subprocess.DEVNULL
    try:
        proc = subprocess.run(
            argv,
            **given,
            stdout=subprocess.PIPE if capture else uncaptured,
            stderr=uncaptured if stream else subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise LevitateError(f"{what} did not finish within {timeout:g} s (stopped)", hint) from None
    except OSError as exc:
        raise LevitateError(f"cannot run {what}: {exc.strerror}", hint) from None
    if check and proc.returncode != 0:
        status = f"exit {proc.returncode}" if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
        raise LevitateError(f"{what} failed ({status}): {_last_lines(proc, stream)}", hint)
    return proc


def _last_lines(proc: subprocess.CompletedProcess, stream: bool) -> str:
    """The tool's last three error lines (stdout's when it wrote nothing to stderr: bootctl)."""
    if stream:
        return "its output is above"
    for out in (proc.stderr, proc.stdout):
        lines = (out or b"").decode(errors="replace").strip().splitlines()
        if lines:
            return " | ".join(lines[-3:])
    return "no error output"


def start(
    cmd: Sequence[str | Path],
    *,
    output: IO | None = None,
    new_session: bool = False,
    setup: Callable[[], None] | None = None,
    what: str | None = None,
) -> Process:
    """Start `cmd` and return at once. With `output` (an open file) its stdout and stderr go there
    and stdin is /dev/null; without, it shares our terminal. `setup` runs in the child before the
    exec (a chroot, a death signal). A command that is not there raises OSError for the caller to
    report: where it is looked up can depend on `setup` (recchroot's is inside the new root)."""
    argv = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(argv))
    files = {} if output is None else {"stdin": subprocess.DEVNULL, "stdout": output, "stderr": output}
    try:
        return subprocess.Popen(argv, preexec_fn=setup, start_new_session=new_session, **files)
    except subprocess.SubprocessError as exc:          # `setup` raised in the child
        raise LevitateError(f"cannot start {what or argv[0]}: {exc}") from None


def stop(proc: Process, grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
