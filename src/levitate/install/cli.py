"""What the install tools share on the command line: one error line, exit codes, --debug."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from ..util.errors import LevitateError

EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwind like Ctrl-C so every `finally` (unmounts) runs."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def run_tool(prog: str, body: Callable[[], int], debug: bool) -> int:
    """Run `body`; a LevitateError becomes `PROG: error: what (hint: ...)` and its exit code."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)
    try:
        return body()
    except LevitateError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
