"""The one place subprocesses are started: logs the command, turns failure into a clear error."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import LevitateError, MissingToolError

log = logging.getLogger("levitate")


def run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = False,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    what: str | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess:
    """Run `cmd`; on failure raise LevitateError naming `what` and the tool's last stderr line(s).

    stdout is captured when `capture`; stderr is always captured so a failure can quote it.
    """
    argv = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(argv))
    if shutil.which(argv[0]) is None and "/" not in argv[0]:
        raise MissingToolError(f"{argv[0]}: command not found", "run `leviso preflight` for the install command")
    proc = subprocess.run(
        argv,
        input=input.encode() if isinstance(input, str) else input,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()
        tail = " | ".join(stderr[-3:]) if stderr else "no error output"
        raise LevitateError(f"{what or argv[0]} failed (exit {proc.returncode}): {tail}", hint)
    return proc
