"""Every command runs through util/cli.run_command: a user's mistake is one `PROG: error:` line with
its exit code and no traceback; `--debug` adds the traceback and keeps the exit code; a path that
cannot be read is an error line too, not a traceback."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys

import pytest

from levitate.leviso.tooling import COMMANDS as IMAGE_COMMANDS
from levitate.util.cli import run_command
from tests.cheat_aware import cheat_aware

MODULES = {"leviso": "levitate.leviso.cli", "recipe": "levitate.recipe.cli", "rhai-run": "levitate.recipe.rhai.cli",
           "recstrap": "levitate.install.recstrap", "recfstab": "levitate.install.recfstab",
           "recchroot": "levitate.install.recchroot", "recboot": "levitate.install.recboot"}
ROOT = os.geteuid() == 0
# A mistake for each program, with the exit code it is reported with (recstrap's own codes).
MISTAKES = [
    ("leviso", ["preflight", "no-such-work"], 1, "unknown kind of work"),
    ("recipe", ["--recipes", "/nonexistent/recipes", "list"], 1, "/nonexistent/recipes does not exist"),
    ("rhai-run", ["/nonexistent/script.rhai"], 1, "cannot read script /nonexistent/script.rhai"),
    ("recstrap", ["/nonexistent/target"], 11 if ROOT else 10, "" if not ROOT else "/nonexistent/target"),
    ("recfstab", ["/nonexistent/root"], 1, "/nonexistent/root is not a directory"),
    ("recchroot", ["/nonexistent/root"], 1, "" if not ROOT else "/nonexistent/root does not exist"),
    # on a build host: no LevitateOS busybox (or, not root: must run as root)
    ("recboot", ["--esp", "/nonexistent/esp"], 1, ""),
]


def run(prog: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", MODULES[prog], *argv], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@cheat_aware(protects="every command ends a user's mistake in one `PROG: error: ... (hint: ...)` line "
                      "with its exit code; --debug shows the traceback with the same exit code",
             cheats=["let one program print its own format", "re-raise under --debug (exit 1, codes lost)"],
             consequence="a traceback instead of a hint, or scripts that test recstrap's exit codes break "
                         "under --debug")
@pytest.mark.parametrize("prog,argv,code,fragment", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_and_debug_shows_the_traceback(prog, argv, code, fragment):
    proc = run(prog, argv)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    if prog != "rhai-run":                        # a script error's excerpt follows its headline
        assert "(hint: " in errors[0], errors[0]

    debug = run(prog, ["--debug", *argv])
    assert debug.returncode == code, debug.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert [line for line in debug.stderr.splitlines() if line.startswith(f"{prog}: error: ")] == errors


def test_an_unreadable_path_is_an_error_line(tmp_path, capsys):
    missing = tmp_path / "missing" / "file"
    code = run_command("prog", argparse.Namespace(debug=False), lambda args: len(missing.read_bytes()))
    assert code == 1
    err = capsys.readouterr().err
    assert err == f"prog: error: No such file or directory: {missing} (hint: check the paths and " \
                  "permissions; rerun with --debug for details)\n"


def test_every_command_has_a_console_script_and_an_image_wrapper():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")
               if e.value.startswith("levitate.")}
    assert scripts == {prog: f"{module}:main" for prog, module in MODULES.items()}
    assert IMAGE_COMMANDS == {p: m for p, m in MODULES.items() if p != "leviso"}


def test_leviso_options_before_the_command_are_kept():
    from levitate.leviso.cli import build_parser
    args = build_parser().parse_args(["--workdir", "elsewhere", "--debug", "build"])
    assert (args.workdir, args.debug) == ("elsewhere", True)
    assert build_parser().parse_args(["--workdir", "a", "build", "--workdir", "b"]).workdir == "b"
