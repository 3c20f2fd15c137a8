"""`rhai-run FILE [ARGS...]`: run a Rhai script.

`print` goes to stdout, `debug` and errors to stderr; the exit status is 0 on success, 1 on a
script error (2 for usage errors, 130 when interrupted; `--debug` adds the traceback). The
arguments are available to the script as the array `ARGS` (strings). With `--call NAME` the script's top level runs first, then the function NAME
is called as an entry function with ARGS as its arguments (as the recipe tool does).
"""

from __future__ import annotations

import argparse
import sys

from ...util.cli import run_command
from .engine import Engine
from .limits import Limits
from .values import to_debug, to_rhai


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rhai-run", description="Run a Rhai script.")
    p.add_argument("file", help="the .rhai script")
    p.add_argument("args", nargs="*", help="arguments, available as the array ARGS")
    p.add_argument("--call", metavar="NAME", help="then call this function with ARGS")
    p.add_argument("--max-operations", type=int, default=0, help="operation limit (0: none)")
    p.add_argument("--print-result", action="store_true",
                   help="print the value of the last statement (debug format)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def out(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_script(ns: argparse.Namespace) -> int:
    limits = Limits(max_operations=ns.max_operations) if ns.max_operations else Limits()
    eng = Engine(limits, on_print=out, on_debug=err)
    eng.register_const("ARGS", list(ns.args))
    ast = eng.compile_file(ns.file)
    if ns.call:
        scope = eng.run(ast)
        result = eng.call_fn(ast, ns.call, *ns.args, scope=scope)
    else:
        result = eng.eval(ast)
    if ns.print_result and result is not None:
        out(to_debug(to_rhai(result)))
    return 0


def main(argv: list[str] | None = None) -> int:
    # a script error is shown whole: headline, the source line with a caret, the call stack, hint
    return run_command("rhai-run", build_parser().parse_intermixed_args(argv), run_script, describe=str)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
