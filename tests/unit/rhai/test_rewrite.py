"""Rewriting state variables in a recipe's source (recipes keep their state in the file)."""

import pytest

from levitate.recipe.rhai import Char, Engine, RhaiError
from levitate.recipe.rhai.rewrite import rhai_literal, set_variables, top_level_variables
from tests.cheat_aware import cheat_aware

RECIPE = '''//! recipe: ripgrep
let name = "ripgrep";
let version = "14.1.0";
let installed = false;          // Set to true after install
let installed_version = ();     // Version that was installed
let installed_at = ();          // Unix timestamp
let installed_files = [];       // List of installed file paths
let notes;

fn install() {
    let installed = "not this one";
    installed_files.push("/usr/bin/rg");
}
'''


@cheat_aware(protects="the recipe file keeps its state after install (the source of truth)",
             cheats=["rewriting with a regex that breaks other lines",
                     "checking only that the text changed"],
             consequence="`recipe` forgets what is installed or corrupts recipes")
def test_set_variables_round_trip():
    values = {"installed": True, "installed_version": "14.1.0", "installed_at": 1700000000,
              "installed_files": ["/usr/bin/rg", "/usr/share/man/man1/rg.1"],
              "notes": {"reason": 'said "yes"', "tags": ["a", None, 1.5, False]}}
    new = set_variables(RECIPE, values)
    # comments, layout and functions are untouched
    assert "let installed = true;          // Set to true after install" in new
    assert 'let installed = "not this one";' in new
    assert new.startswith("//! recipe: ripgrep\n")
    scope = Engine().run(new)
    for k, v in values.items():
        assert scope.to_dict()[k] == v
    assert scope["name"] == "ripgrep"


def test_only_the_changed_text_differs():
    new = set_variables(RECIPE, {"installed": True})
    assert new == RECIPE.replace("let installed = false;", "let installed = true;")


def test_unknown_variable_is_an_error():
    with pytest.raises(RhaiError) as info:
        set_variables(RECIPE, {"instaled": True})
    assert "instaled" in info.value.message


def test_last_declaration_is_rewritten():
    src = "let x = 1;\nlet x = x + 1;\n"
    assert set_variables(src, {"x": 5}) == "let x = 1;\nlet x = 5;\n"


def test_top_level_variables_lists_spans():
    lets = top_level_variables(RECIPE)
    assert set(lets) == {"name", "version", "installed", "installed_version", "installed_at",
                         "installed_files", "notes"}
    start, end = lets["version"].value_span
    assert RECIPE[start:end] == '"14.1.0"'


@pytest.mark.parametrize("value", [
    None, True, False, 0, -5, 9223372036854775807, -9223372036854775808, 1.5, -0.25, 1e20,
    "", "plain", 'q"uote', "back\\slash", "new\nline\ttab", "ünïcödé ❤", Char("c"), Char("'"),
    [1, [2, []]], {"a": 1, "b c": {"d": None}}, {},
])
def test_literal_round_trip(value):
    eng = Engine()
    got = eng.eval(rhai_literal(value))
    assert got == value and type(got) is type(value)


def test_literal_of_unsupported_value():
    with pytest.raises(RhaiError):
        rhai_literal(object())
