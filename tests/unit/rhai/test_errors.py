"""Errors: throw/try/catch with Rhai's error values, positions with a source excerpt, and
messages a person can act on."""

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError, RhaiSyntaxError
from tests.cheat_aware import cheat_aware

from .conftest import fails


def test_throw_and_catch_any_value(ev):
    assert ev('let r = (); try { throw "boom"; } catch (e) { r = e; } r') == "boom"
    assert ev("let r = (); try { throw #{code: 3}; } catch (e) { r = e.code; } r") == 3
    assert ev("let r = 1; try { throw; } catch (e) { r = e; } r") is None


def test_catch_without_variable(ev):
    assert ev("let r = 0; try { throw 1; } catch { r = 2; } r") == 2


def test_try_block_value_and_catch_value_is_unit(ev):
    assert ev("fn f() { try { 42 } catch { 0 } } f()") == 42
    assert ev("fn f() { try { throw 1; } catch { 0 } } f()") is None


@cheat_aware(protects="engine errors are catchable with Rhai's error map",
             cheats=["catching only `throw`", "giving the catch block a Python exception"],
             consequence="recipes cannot recover from a failed step (e.g. an optional download)")
def test_engine_errors_are_catchable_as_maps(ev):
    src = '''let r = ();
try {
    let a = [1, 2];
    a[10]
} catch (e) { r = e; }
r'''
    e = ev(src)
    assert e["error"] == "ErrorArrayBounds"
    assert e["message"] == "Array index 10 out of bounds: only 2 elements in array"
    assert e["line"] == 4 and e["position"] == 6
    assert e["length"] == 2 and e["index"] == 10


@pytest.mark.parametrize("body, kind, extra", [
    ("1 / 0", "ErrorArithmetic", {}),
    ("undefined_var", "ErrorVariableNotFound", {"variable": "undefined_var"}),
    ("nope(1)", "ErrorFunctionNotFound", {"function": "nope (i64)"}),
    ('"x" * 2', "ErrorFunctionNotFound", {"function": "* (string, i64)"}),
    ("if 1 { }", "ErrorMismatchDataType", {"requested": "bool", "actual": "i64"}),
    ("let x = (); x.y", "ErrorDotExpr", {"property": "y"}),
    ('for x in 5 { }', "ErrorFor", {}),
])
def test_catch_map_fields(ev, body, kind, extra):
    e = ev(f"let r = (); try {{ {body} }} catch (e) {{ r = e; }} r")
    assert e["error"] == kind
    for k, v in extra.items():
        assert e[k] == v
    assert isinstance(e["message"], str) and e["line"] == 1


def test_errors_from_nested_function_calls_are_catchable(ev):
    src = 'fn inner() { throw "deep"; } fn outer() { inner() } ' \
          'let r = (); try { outer(); } catch (e) { r = e; } r'
    assert ev(src) == "deep"


def test_rethrow_keeps_the_original_error(err):
    e = err("try {\n  1 / 0\n} catch {\n  throw;\n}")
    assert e.kind == "ErrorArithmetic" and e.line == 2


def test_throw_in_catch_raises_the_new_value(err):
    e = err('try { throw 1; } catch (e) { throw "second"; }')
    assert e.kind == "ErrorRuntime" and e.value == "second"
    assert e.message == "Runtime error: second"


def test_uncaught_throw_carries_value_and_position(err):
    e = err('let x = 5;\nif x > 0 {\n    throw x;\n}')
    assert e.kind == "ErrorRuntime" and e.value == 5
    assert (e.line, e.column) == (3, 5)
    assert e.message == "Runtime error: 5"


@cheat_aware(protects="safety limits cannot be caught by the script",
             cheats=["making limit errors ordinary runtime errors"],
             consequence="a sandboxed script could swallow its limit and loop forever")
def test_limit_errors_are_not_catchable():
    e = fails("try { loop { } } catch { }", Limits(max_operations=500))
    assert e.kind == "ErrorTooManyOperations"
    e = fails('let s = "ab"; try { loop { s += s; } } catch { }', Limits(max_string_size=64))
    assert e.kind == "ErrorDataTooLarge"


@cheat_aware(protects="errors show file, line, column and the line with a caret",
             cheats=["reporting only the message", "pointing at the start of the line"],
             consequence="recipe authors cannot find the mistake in a long recipe")
def test_error_rendering_with_excerpt_and_caret():
    eng = Engine()
    ast = eng.compile('let pkg = #{ name: "rg" };\nlet n = pkg.name.len() +\n    missing;',
                      name="recipes/rg.rhai")
    with pytest.raises(RhaiError) as info:
        eng.run(ast)
    text = str(info.value)
    assert text.splitlines() == [
        "recipes/rg.rhai:3:5: Variable not found: missing",
        "   3 |     missing;",
        "           ^",
    ]


def test_syntax_errors_have_positions_and_expectations(engine):
    cases = {
        "let x = (1 + 2;": (1, 15, "expecting ')' to close '('"),
        "let = 5;": (1, 5, "expecting a variable name, found '='"),
        "fn f(a { }": (1, 8, "expecting ',' between parameters, found '{'"),
        "let a = [1, 2": (1, 14, "expecting ',' between array items, found end of script"),
        "if x > 1 { 1 } else 2": (1, 21, "expecting '{' to start a block"),
        "let var = 1;": (1, 5, "'var' is a reserved keyword"),
        "let x = 1 +* 2;": (1, 12, "unexpected '*', expecting an expression"),
        "x.": (1, 3, "expecting a property or method name after '.'"),
        "let s = `abc": (1, 9, "unterminated back-tick string"),
        "do { } x": (1, 8, "expecting 'while' or 'until'"),
    }
    for src, (line, col, msg) in cases.items():
        with pytest.raises(RhaiSyntaxError) as info:
            engine.compile(src)
        e = info.value
        assert (e.line, e.column) == (line, col), src
        assert e.message.startswith(msg), (src, e.message)
        assert e.kind == "ErrorParsing"


def test_syntax_error_inside_interpolation_points_into_it(engine):
    with pytest.raises(RhaiSyntaxError) as info:
        engine.compile("let s = `a ${ 1 + } b`;")
    assert (info.value.line, info.value.column) == (1, 19)


def test_misspelled_function_suggests_the_right_one(engine):
    engine.register_fn("install_bin", lambda name: None)
    ast = engine.compile('fn install() {\n    instal_bin("rg");\n}', name="r.rhai")
    with pytest.raises(RhaiError) as info:
        engine.call_fn(ast, "install")
    e = info.value
    assert e.message == "Function not found: instal_bin (string); did you mean 'install_bin'?"
    assert (e.line, e.column) == (2, 5)


def test_host_exceptions_become_catchable_runtime_errors(engine):
    def boom(x):
        raise ValueError(f"bad value {x}")
    engine.register_fn("boom", boom)
    assert engine.eval('let r = (); try { boom(1) } catch (e) { r = e; } r') == "bad value 1"
    with pytest.raises(RhaiError) as info:
        engine.eval('let a = 1;\nboom(a)')
    e = info.value
    assert e.kind == "ErrorRuntime" and (e.line, e.column) == (2, 1)
    assert isinstance(e.__cause__, ValueError)


def test_errors_never_leak_python_exceptions(engine):
    for src in ["let a = [1]; a[\"x\"] = 1", "let m = #{}; m[1]", "[] < []", "[] + 1",
                "let f = |x| x; f.call(1, 2, 3)", "Fn(1)", "().call()", "range(1, 2, 0)",
                "let x = 1; x.push(1)", '"a".sub_string("b")', "[1].sort(5)"]:
        with pytest.raises(RhaiError):
            engine.eval(src)


def test_catchable_property():
    assert RhaiError("ErrorRuntime", "x").catchable
    assert not RhaiError("ErrorStackOverflow", "x").catchable


def test_error_is_a_levitate_error():
    from levitate.util.errors import LevitateError
    assert issubclass(RhaiError, LevitateError)


@pytest.mark.parametrize("src, pos", [
    # errors inside loops (inlined fast paths) point at the operator / call / index
    ("let big = 9223372036854775807;\nfor i in 0..3 {\n    let x = big + i;\n}", (3, 17)),
    ("let a = [1, 2];\nfor i in 0..5 {\n    a[i] += 1;\n}", (3, 6)),
    ('let n = 5;\nfor x in [1] {\n    n.trim();\n}', (3, 7)),
    ("let m = 5;\nwhile true {\n    m.name\n}", (3, 7)),
    ("let n = 5;\nfor x in n { }", (2, 10)),
    ('let s = "a";\nloop {\n    if s { break; }\n}', (3, 8)),
])
def test_error_positions_in_hot_code(err, src, pos):
    e = err(src)
    assert (e.line, e.column) == pos, (src, e)


@pytest.mark.parametrize("src, col, op", [("let a = 1;\na++;", 2, "+"),
                                          ("let a = 1; --a", 12, "-")])
def test_increment_operators_say_what_to_write(err, src, col, op):
    # Rhai reserves `++`/`--` ("This is not C or JavaScript!")
    e = err(src)
    assert e.kind == "ErrorParsing" and e.column == col
    assert e.message == f"'{op}{op}' is not an operator in Rhai: write 'x {op}= 1'"


def test_module_errors_name_the_namespace_as_written(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.rhai").write_text("fn install_bin(p) { p }\n")
    (tmp_path / "main.rhai").write_text('import "lib/util" as u;\nu::instal_bin("x");\n')
    eng = Engine()
    with pytest.raises(RhaiError) as e:
        eng.run(eng.compile_file(tmp_path / "main.rhai"))
    assert e.value.message == ("Function not found: u::instal_bin (string); "
                               "did you mean 'u::install_bin'?")
    assert (e.value.line, e.value.column) == (2, 1)


def test_unclosed_block_points_at_its_brace(err):
    e = err("fn f() {\n  if true {\n    let x = 1;\n  }\n")
    assert e.kind == "ErrorParsing" and (e.line, e.column) == (1, 8)
    assert "never closed" in e.message and "fn f() {" in str(e)
