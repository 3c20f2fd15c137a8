"""`rhai-run FILE [ARGS]`: print to stdout, debug and errors to stderr, non-zero exit on error."""

import subprocess
import sys

from levitate.recipe.rhai.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "levitate.recipe.rhai", *args],
                          capture_output=True, text=True, timeout=60)


def test_runs_a_script_with_arguments(tmp_path):
    p = tmp_path / "hello.rhai"
    p.write_text('print(`hello ${ARGS[0]}`);\ndebug(ARGS.len());\n')
    r = run_cli(str(p), "world", "x")
    assert r.returncode == 0
    assert r.stdout == "hello world\n"
    assert r.stderr == "2\n"


def test_script_error_goes_to_stderr_with_position(tmp_path):
    p = tmp_path / "bad.rhai"
    p.write_text('print("before");\nlet x = [1];\nx[3]\n')
    r = run_cli(str(p))
    assert r.returncode == 1
    assert r.stdout == "before\n"
    assert r.stderr.startswith(f"rhai-run: error: {p}:3:2: Array index 3 out of bounds")
    assert "   3 | x[3]" in r.stderr
    assert "Traceback" not in r.stderr


def test_syntax_error_and_missing_file(tmp_path, capsys):
    p = tmp_path / "syntax.rhai"
    p.write_text("let = 1;")
    assert main([str(p)]) == 1
    assert "expecting a variable name" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.rhai")]) == 1
    assert "cannot read script" in capsys.readouterr().err


def test_call_entry_function(tmp_path, capsys):
    p = tmp_path / "r.rhai"
    p.write_text('let name = "rg";\nfn install(dest) { print(`${name} -> ${dest}`); }\n')
    assert main([str(p), "--call", "install", "/usr/bin"]) == 0
    assert capsys.readouterr().out == "rg -> /usr/bin\n"


def test_operation_limit_option(tmp_path, capsys):
    p = tmp_path / "loop.rhai"
    p.write_text("loop { }")
    assert main([str(p), "--max-operations", "1000"]) == 1
    assert "Too many operations" in capsys.readouterr().err
