"""The one way every command (leviso, recipe, rhai-run, recstrap, recfstab, recchroot, recboot)
runs its chosen function: what a user can cause ends in one line, a signal unwinds cleanly.

    PROG: error: WHAT (hint: WHAT TO DO)

A `LevitateError` exits with its own code (recstrap's 10-20, 126/127 of recchroot), an `OSError`
(a path the user gave that cannot be read or written) with 1, Ctrl-C, SIGTERM and SIGHUP with 130.
SIGTERM and SIGHUP are raised as `Interrupted` in the main thread, so every `finally` and context
manager (unmounts, temporary files, locks, a rollback) runs as for Ctrl-C; without it Python
would die on the spot. `--debug` adds the traceback; the exit code stays the same.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Callable

from .errors import LevitateError

EXIT_INTERRUPTED = 130
OS_ERROR_HINT = "check the paths and permissions; rerun with --debug for details"


class Interrupted(BaseException):
    """SIGTERM or SIGHUP; `args[0]` is the signal. A BaseException, like KeyboardInterrupt, so
    `except Exception` does not swallow it."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def error_line(exc: LevitateError) -> str:
    """WHAT (hint: ...), where WHAT is the headline (a script error's file:line:col: message)."""
    return f"{exc.headline()} (hint: {exc.hint})" if exc.hint else exc.headline()


def os_error_line(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename else what


def run_command(prog: str, args: argparse.Namespace, func: Callable[[argparse.Namespace], int] | None = None,
                *, interrupted: str = "interrupted",
                describe: Callable[[LevitateError], str] = error_line) -> int:
    """Run `func(args)` (default: `args.func`, set by the command table's `set_defaults`) and
    return the exit code for `sys.exit`. `args.debug` (when the program has `--debug`) prints
    tracebacks. `interrupted` is the message after a signal; `describe` renders an error (rhai-run
    shows a script error's source excerpt and call stack)."""
    func = func or args.func
    debug = getattr(args, "debug", False)
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def fail(message: str, code: int) -> int:
        if debug:
            traceback.print_exc()
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
        return code

    try:
        return func(args)
    except LevitateError as exc:
        return fail(f"error: {describe(exc)}", exc.exit_code)
    except OSError as exc:
        return fail(f"error: {os_error_line(exc)} (hint: {OS_ERROR_HINT})", 1)
    except (KeyboardInterrupt, Interrupted):
        return fail(interrupted, EXIT_INTERRUPTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
