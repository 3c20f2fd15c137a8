"""util/run.py, the one place subprocesses start: a missing tool, a failure and a timeout each end
in one LevitateError with the caller's hint; streaming, stdin and start()/stop()."""

from __future__ import annotations

import time

import pytest

from levitate.leviso import cli as leviso_cli
from levitate.util import run as run_module
from levitate.util.errors import LevitateError, MissingToolError
from levitate.util.run import run, start, stop
from tests.cheat_aware import cheat_aware

NO_SUCH_TOOL = "levitate-no-such-tool"


@pytest.fixture(autouse=True)
def program_hint(monkeypatch):
    """Each test starts with the default missing-tool hint and leaves it as it was."""
    monkeypatch.setattr(run_module, "_missing_tool_hint", "install the package that provides it")


@cheat_aware(protects="a missing tool names itself and the hint of the caller, or of the program",
             cheats=["one hint text for every program (recboot on an installed system then points at "
                     "`leviso preflight`, which is not there)"],
             consequence="the user is sent to a command that does not exist on their system")
def test_missing_tool_gets_the_callers_hint_else_the_programs():
    with pytest.raises(MissingToolError) as err:
        run([NO_SUCH_TOOL, "x"], missing="install levitate-tools")
    assert err.value.message == f"{NO_SUCH_TOOL}: command not found"
    assert err.value.hint == "install levitate-tools" and err.value.exit_code == 5
    with pytest.raises(MissingToolError) as err:
        run([NO_SUCH_TOOL])
    assert err.value.hint == "install the package that provides it"
    assert "leviso" not in str(err.value)


def test_leviso_entry_point_sets_the_preflight_hint(capsys):
    assert leviso_cli.main(["preflight", "iso"]) in (0, 5)
    with pytest.raises(MissingToolError) as err:
        run([NO_SUCH_TOOL])
    assert "leviso preflight" in err.value.hint


def test_missing_tool_is_looked_up_in_the_commands_path(tmp_path):
    tool = tmp_path / NO_SUCH_TOOL
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    out = run([NO_SUCH_TOOL], capture=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).stdout
    assert out == b"found\n"


@cheat_aware(protects="a failed command's error quotes the tool's own last error lines and the caller's hint",
             cheats=["quoting only the exit status", "quoting the first line (usually a banner or a warning)"],
             consequence="the user sees `exit 1` and has to rerun with --debug to learn what went wrong")
def test_failure_quotes_the_last_stderr_lines_and_the_hint():
    script = "echo ignored; for n in 1 2 3 4; do echo line$n >&2; done; exit 3"
    with pytest.raises(LevitateError) as err:
        run(["sh", "-c", script], what="the test tool", hint="check the input")
    assert err.value.message == "the test tool failed (exit 3): line2 | line3 | line4"
    assert err.value.hint == "check the input" and err.value.exit_code == 1
    with pytest.raises(LevitateError) as err:
        run(["sh", "-c", "echo only on stdout; exit 1"], capture=True)   # bootctl says why on stdout
    assert err.value.message == "sh failed (exit 1): only on stdout"
    with pytest.raises(LevitateError) as err:
        run(["sh", "-c", "kill -9 $$"])
    assert err.value.message == "sh failed (killed by signal 9): no error output"
    assert run(["sh", "-c", "exit 4"], check=False).returncode == 4


@cheat_aware(protects="a command past its timeout is stopped and reported, not waited for forever",
             cheats=["waiting for the command and reporting the timeout afterwards"],
             consequence="a hung tool (QEMU that never answers) hangs the build or the test run")
def test_timeout_stops_the_command():
    started = time.monotonic()
    with pytest.raises(LevitateError) as err:
        run(["sleep", "30"], timeout=0.5, what="sleeping", hint="try again")
    assert time.monotonic() - started < 10
    assert err.value.message == "sleeping did not finish within 0.5 s (stopped)"
    assert err.value.hint == "try again"


def test_input_and_stdin(tmp_path):
    assert run(["cat"], input="text in", capture=True).stdout == b"text in"
    assert run(["cat"], capture=True, timeout=10).stdout == b""      # stdin is /dev/null, not the terminal


def test_stream_shows_the_output_and_points_at_it(capfd):
    with pytest.raises(LevitateError) as err:
        run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 2"], stream=True, what="make")
    assert err.value.message == "make failed (exit 2): its output is above"
    captured = capfd.readouterr()
    assert captured.out == "" and "to-stdout" in captured.err and "to-stderr" in captured.err
    assert run(["sh", "-c", "echo out; echo err >&2"], stream=True, capture=True).stdout == b"out\n"
    assert "err" in capfd.readouterr().err


def test_cannot_run_names_the_reason(tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("echo hi\n")
    with pytest.raises(LevitateError) as err:
        run([script])
    assert err.value.message == f"cannot run {script}: Permission denied"


def test_start_writes_to_output_and_stop_ends_it(tmp_path):
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = start(["sh", "-c", "echo started; exec sleep 30"], output=out, new_session=True)
    deadline = time.monotonic() + 10
    while log.read_text() != "started\n":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert proc.poll() is None
    assert stop(proc, grace=5) == -15
    assert stop(proc) == -15                     # stopping a stopped process just reports it


def test_start_reports_a_failed_setup():
    def fail() -> None:
        raise OSError("no")

    with pytest.raises(LevitateError) as err:
        start(["true"], setup=fail, what="true in /nowhere")
    assert err.value.message.startswith("cannot start true in /nowhere: ")
