"""Conformance: the scripts in `scripts/` (written from the Rhai book's examples and in the
shape of recipes) must print exactly what their `.out` file says."""

from pathlib import Path

import pytest

from levitate.recipe.rhai import Engine

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.rhai"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_output(script):
    printed = []
    eng = Engine(on_print=printed.append, on_debug=printed.append)
    ast = eng.compile_file(script)
    scope = eng.run(ast)
    # a recipe-shaped script names the phases to call as entry functions afterwards
    for doc in ast.module_docs:
        if doc.strip().startswith("conformance-calls:"):
            for fn in doc.split(":", 1)[1].split():
                eng.call_fn(ast, fn, scope=scope)
    expected = script.with_suffix(".out").read_text()
    assert "\n".join(printed) + "\n" == expected


def test_every_script_has_expected_output():
    assert len(SCRIPTS) >= 8
    for s in SCRIPTS:
        assert s.with_suffix(".out").exists(), s
