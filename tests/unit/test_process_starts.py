"""util/run.py is the only module under src/ that starts another program: every command is logged
there and fails the same way (one line, the tool's last error lines, the caller's hint).

Read from the source (ast), so a start the tests never reach is found too. Counted as a start:
importing `subprocess` or `pty`, the os functions that run a program (system, popen, exec*, spawn*,
posix_spawn*), asyncio's create_subprocess_*, and pexpect's spawn/run. Not counted: pexpect's
fdpexpect (it reads a file descriptor QEMU was started with by run.start()), and os.fork or
process pools without an exec (they run this package's own Python code).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.cheat_aware import cheat_aware

SRC = Path(__file__).resolve().parents[2] / "src"
ALLOWED = SRC / "levitate/util/run.py"
MODULES = {"subprocess", "pty", "asyncio.subprocess"}
CALLS = re.compile(r"^(os\.(system|popen|exec\w*|spawn\w*|posix_spawn\w*)|asyncio\.create_subprocess_\w+"
                   r"|pexpect\.(spawn|spawnu|run|runu|pty_spawn\.\w+|popen_spawn\.\w+))$")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def process_starts(source: str) -> list[str]:
    """What in `source` starts a process, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and (name := _dotted(node.func)):
            names = [name] if CALLS.match(name) else []
            found += [f"{node.lineno}: {name}()" for name in names]
            continue
        else:
            continue
        found += [f"{node.lineno}: import {name}" for name in names if name in MODULES or CALLS.match(name)]
    return found


def test_the_scanner_finds_each_kind_of_start():
    source = ("import subprocess\nfrom subprocess import run\nimport os, pty\nos.system('x')\n"
              "os.execvp('x', [])\nfrom os import posix_spawnp\nimport pexpect\npexpect.spawn('x')\n"
              "import pexpect.fdpexpect\npexpect.fdpexpect.fdspawn(3)\nos.fork()\n")
    assert sorted(int(hit.split(":")[0]) for hit in process_starts(source)) == [1, 2, 3, 4, 5, 6, 8]


@cheat_aware(protects="every program leviso, recipe and the install tools start goes through util/run.py",
             cheats=["an allow-list of modules that may still call subprocess",
                     "importing subprocess under another name or through importlib"],
             consequence="a missing tool ends in a traceback, or a failure in `exit 1` without the tool's "
                         "message, or a hint naming a program the user does not have")
def test_only_util_run_starts_processes():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path != ALLOWED:
            offenders += [f"{path.relative_to(SRC)}:{hit}" for hit in process_starts(path.read_text())]
    assert offenders == [], "start processes with levitate.util.run (run/start/stop):\n" + "\n".join(offenders)
