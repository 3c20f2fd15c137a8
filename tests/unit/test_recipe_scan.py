"""The fast declaration scanner agrees with the Rhai parser, or declines."""

import pytest

from levitate.recipe.recipe import _UNSET, _literal
from levitate.recipe.rhai import ast as A
from levitate.recipe.rhai.parser import parse
from levitate.recipe.scan import declarations


def parsed(text):
    out = {}
    for s in parse(text).stmts:
        if type(s) is A.Let:
            out[s.name] = None if s.value is None else _literal(s.value)
    return out


@pytest.mark.parametrize("text", [
    'let name = "rg";\nlet version = "14.1.1"; // c\nlet installed = false;\n',
    'let deps = [\n    "a >= 1",  // x\n    "b",\n];\nlet n = -3;\nlet f = 1_000.5;\nlet u = ();\n',
    'let s = "tab\\t quote\\" back\\\\ x\\x41 u\\u00e9 U\\U0001F600";\nlet e = "";\n',
    'let pkg = #{\n    name: "x",\n    "odd key": [1, 2, #{a: true}],\n};\nconst C = 1;\nlet later;\n',
    'let installed_files = ["/p/bin/a", "/p/share/man/man1/a.1"];\nlet installed_at = 1700000000;\n',
])
def test_agrees_with_the_parser(text):
    assert declarations(text) == parsed(text)


@pytest.mark.parametrize("text", [
    'let v = `${major}.0`;\n',            # back-tick string
    'let v = "1" + "2";\n',               # expression
    '/* block */ let v = "1";\n',         # block comment
    'import "lib/x" as x;\nlet v = "1";\n',
    'let v = "bad \\q escape";\n',
    'let v = [1, 2\n',                     # unterminated
    'print("hi");\n',
])
def test_declines_what_it_is_not_sure_of(text):
    assert declarations(text) is None


def test_literal_helper_marks_non_literals():
    [stmt] = parse("let v = a + 1;").stmts
    assert _literal(stmt.value) is _UNSET
