"""Sandbox limits: each gives a clear, uncatchable Rhai error when hit."""

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError, RhaiSyntaxError
from tests.cheat_aware import cheat_aware

from .conftest import fails


@cheat_aware(protects="an endless loop in a recipe stops with a clear error",
             cheats=["counting only function calls", "a wall-clock timeout in the test"],
             consequence="`recipe install` hangs forever on a buggy recipe")
@pytest.mark.parametrize("src", [
    "loop { }", "let i = 0; while true { i += 1; }", "for i in 0..9223372036854775807 { }",
    "do { } while true;", "fn f() { f2() } fn f2() { let x = 1; } loop { f(); }",
    "let a = [1, 2]; loop { a.map(|x| x); }",
])
def test_max_operations_stops_endless_loops(src):
    e = fails(src, Limits(max_operations=10_000))
    assert e.kind == "ErrorTooManyOperations"
    assert e.message == "Too many operations (limit 10000)"
    assert e.line == 1


def test_max_operations_allows_normal_work():
    eng = Engine(Limits(max_operations=10_000))
    assert eng.eval("let s = 0; for i in 0..100 { s += i; } s") == 4950


def test_operations_are_counted_per_call_not_per_engine():
    eng = Engine(Limits(max_operations=3_000))
    ast = eng.compile("fn work() { let s = 0; for i in 0..500 { s += i; } s }")
    scope = eng.run(ast)
    for _ in range(5):
        assert eng.call_fn(ast, "work", scope=scope) == 124750


@pytest.mark.parametrize("src, what", [
    ('let s = "x"; loop { s += s; }', "Length of string"),
    ('let s = "x"; loop { s = s + s; }', "Length of string"),
    ('let s = "x"; loop { s = `${s}${s}`; }', "Length of string"),
    ('let s = "ab"; s.pad(5000, "x");', "Length of string"),
    ("let a = []; loop { a.push(1); }", "Size of array"),
    ("let a = [1]; loop { a += a; }", "Size of array"),
    ("let a = []; a.pad(5000, 0);", "Size of array"),
    ("let m = #{}; for i in 0..5000 { m[`k${i}`] = i; }", "Size of object map"),
    # nested data is sized as a whole (as Rhai does): each copy doubles it, no array is big
    ("let a = [[1]]; loop { a = [a, a]; }", "Size of array"),
    ("let a = [[1]]; loop { a.push(a); }", "Size of array"),
    ("let m = #{x: #{}}; loop { m = #{a: m, b: m}; }", "Size of object map"),
])
def test_data_size_limits(src, what):
    lim = Limits(max_string_size=1000, max_array_size=1000, max_map_size=1000)
    e = fails(src, lim)
    assert e.kind == "ErrorDataTooLarge"
    assert e.message == f"{what} too large"
    assert not e.catchable


def test_call_depth_limit():
    e = fails("fn down(n) { down(n + 1) }\ndown(0)", Limits(max_call_levels=20))
    assert e.kind == "ErrorStackOverflow"


def test_closure_recursion_depth_is_limited():
    e = fails("fn f(g) { g.call(g) } f(|h| f(h))", Limits(max_call_levels=30))
    assert e.kind == "ErrorStackOverflow"


@cheat_aware(protects="deeply nested input is a Rhai syntax error, never Python's "
             "RecursionError", cheats=["raising the Python recursion limit"],
             consequence="a malformed recipe crashes the tool with a traceback")
@pytest.mark.parametrize("src", [
    "(" * 500 + "1" + ")" * 500,
    "[" * 500 + "]" * 500,
    "{" * 500 + "}" * 500,
    "- " * 500 + "1",  # (`--` is not an operator in Rhai)
    "if true { " * 300 + "1" + " }" * 300,
    "#{a: " * 300 + "1" + "}" * 300,
    "`${" * 200 + "1" + "}`" * 200,
    "1" + " + 1" * 5000,
])
def test_expression_nesting_limit(src):
    eng = Engine(Limits(max_expr_depth=64))
    with pytest.raises(RhaiSyntaxError) as info:
        eng.compile(src)
    assert "nesting too deep" in info.value.message or "complex" in info.value.message


def test_long_flat_expressions_compile_when_unlimited_depth_is_not_needed():
    eng = Engine()
    assert eng.eval("1" + " + 1" * 60) == 61


def test_nesting_within_limit_works():
    eng = Engine(Limits(max_expr_depth=64))
    assert eng.eval("(" * 20 + "1" + ")" * 20) == 1


def test_deeply_nested_data_is_a_rhai_error():
    def deep():
        a = []
        for _ in range(100_000):
            a = [a]
        return a
    eng = Engine()
    eng.register_fn("deep", deep)
    with pytest.raises(RhaiError) as info:
        eng.eval("deep().to_string()")
    assert info.value.kind == "ErrorStackOverflow"


def test_sandbox_preset():
    lim = Limits.sandbox()
    assert lim.max_operations > 0 and lim.max_string_size > 0 and lim.max_modules > 0


@pytest.mark.parametrize("src", ['open("/etc/passwd")', 'eval("1")', 'system("ls")',
                                 'import_module("os")', '__import__("os")'])
def test_no_access_outside_registered_functions(src):
    e = fails(src)
    assert e.kind == "ErrorFunctionNotFound"


def test_python_attributes_are_not_reachable():
    eng = Engine()
    eng.register_fn("thing", lambda: object())
    for src in ["thing().__class__", "thing().__dict__", '"x".__class__', "[].__len__"]:
        with pytest.raises(RhaiError):
            eng.eval(src)


@cheat_aware(protects="a script compiled elsewhere still runs under this engine's limits",
             cheats=["checking limits only at compile time"],
             consequence="a sandboxed run of a cached AST could loop forever")
def test_ast_from_unlimited_engine_runs_with_limits():
    ast = Engine().compile("let i = 0; loop { i += 1; }")
    with pytest.raises(RhaiError) as info:
        Engine(Limits(max_operations=1000)).run(ast)
    assert info.value.kind == "ErrorTooManyOperations"
    ast2 = Engine().compile('let a = []; loop { a.push(1); }')
    with pytest.raises(RhaiError) as info:
        Engine(Limits(max_array_size=100)).run(ast2)
    assert info.value.kind == "ErrorDataTooLarge"
