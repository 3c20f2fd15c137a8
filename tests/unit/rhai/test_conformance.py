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
    eng.run(eng.compile_file(script))
    expected = script.with_suffix(".out").read_text()
    assert "\n".join(printed) + "\n" == expected


def test_every_script_has_expected_output():
    assert len(SCRIPTS) >= 8
    for s in SCRIPTS:
        assert s.with_suffix(".out").exists(), s
