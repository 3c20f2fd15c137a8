"""Functions: definition anywhere at global level, recursion, overloading by arity, pure
arguments, `this` for method-style calls, function pointers and currying."""

import pytest

from levitate.recipe.rhai import Engine, Limits
from tests.cheat_aware import cheat_aware

from .conftest import fails


def test_recursion_and_use_before_definition(ev):
    assert ev("fib(15); fn fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }") == 610


def test_overloading_by_number_of_parameters(ev):
    assert ev("fn f() { 0 } fn f(a) { a } fn f(a, b) { a + b } [f(), f(5), f(2, 3)]") == \
        [0, 5, 5]


def test_duplicate_definition_is_a_syntax_error(err):
    e = err("fn f(a) { }\nfn f(b) { }")
    assert e.kind == "ErrorParsing" and e.line == 2
    assert "already defined" in e.message


def test_trailing_commas(ev):
    assert ev("fn sub(x, y,) { x - y } sub(5, 3,)") == 2


def test_arguments_are_passed_by_value(ev):
    assert ev("fn change(s) { s = 42; } let x = 500; change(x); x") == 500
    assert ev("fn add(a) { a.push(1); a.len() } let arr = []; [add(arr), arr.len()]") == [1, 0]
    assert ev("fn m(x) { x.a = 2; x } let o = #{a: 1}; let p = m(o); [o.a, p.a]") == [1, 2]


@cheat_aware(protects="functions do not see the caller's or the script's variables (Rhai's rule)",
             cheats=["resolving free names in the caller's frame"],
             consequence="recipes that run here would fail on the real Rhai engine")
def test_functions_do_not_see_outer_variables(err):
    e = err("let secret = 1;\nfn f() { secret }\nf()")
    assert e.kind == "ErrorVariableNotFound"
    assert (e.line, e.column) == (2, 10)
    assert e.call_stack == [("f", 3, 1)]
    assert "functions cannot see" in e.hint


def test_global_constants_via_global_namespace(ev):
    assert ev("const X = 5; fn f() { global::X * 2 } f()") == 10


def test_inner_constants_are_not_global(err):
    e = err("{ const INNER = 1; }\nfn f() { global::INNER } f()")
    assert e.kind == "ErrorVariableNotFound" and "global::INNER" in e.message


def test_this_binds_in_method_calls(ev):
    assert ev("fn change() { this = 42; } let x = 500; x.change(); x") == 42
    assert ev("fn add(y) { this + y } 5.add(3)") == 8
    assert ev("fn grow() { this.push(this.len()); } let a = [0]; a.grow(); a.grow(); a") == \
        [0, 1, 2]
    assert ev("fn inc() { this.n += 1; } let o = #{n: 1}; o.inc(); o.n") == 2


def test_this_on_array_element_and_map_property(ev):
    assert ev("fn dbl() { this *= 2; } let a = [1, 2]; a[1].dbl(); a") == [1, 4]
    assert ev("fn dbl() { this *= 2; } let m = #{v: 3}; m.v.dbl(); m.v") == 6


def test_unbound_this(err):
    e = err("fn change() { this = 1; }\nchange();")
    assert e.kind == "ErrorUnboundThis" and e.line == 1


def test_method_style_call_does_not_match_plain_function_of_same_arity(err):
    # x.f() looks for a script function f with no parameters (this = x), not f(x)
    e = err("fn f(a) { a }\nlet x = 1; x.f()")
    assert e.kind == "ErrorFunctionNotFound"


def test_function_pointers(ev):
    assert ev('fn foo(x) { 41 + x } let f = Fn("foo"); [f.call(1), call(f, 1), f.name]') == \
        [42, 42, "foo"]
    assert ev('let len = Fn("len"); len.call("hello")') == 5
    assert ev('fn foo(x) { x } let f = Fn("foo"); f.is_anonymous') is False


def test_function_pointer_to_missing_function(err):
    e = err('let h = Fn("hello_" + "world");\nh.call(0);')
    assert e.kind == "ErrorFunctionNotFound"
    assert e.message.startswith("Function not found: hello_world (i64)")


def test_invalid_function_pointer_name(err):
    assert err('Fn("f::g")').kind == "ErrorFunctionNotFound"


def test_call_binding_this(ev):
    assert ev('fn add(x) { this += x; } let f = Fn("add"); let x = 41; x.call(f, 1); x') == 42


def test_currying(ev):
    assert ev('fn mul(a, b) { a * b } let f = Fn("mul").curry(6); f.call(7)') == 42
    assert ev("let add = |a, b, c| a + b + c; let g = add.curry(1).curry(2); g.call(3)") == 6
    assert ev("let f = |a, b| a + b; curry(f, 10).call(5)") == 15


def test_calling_a_variable_holding_a_function_pointer(ev):
    assert ev("let double = |x| x * 2; double(21)") == 42


def test_is_def_fn(ev):
    assert ev('fn foo(x) { x + 1 } [is_def_fn("foo", 1), is_def_fn("foo", 0), '
              'is_def_fn("bar", 1), is_def_fn("len", 1)]') == [True, False, False, True]


def test_is_def_var(ev):
    assert ev('let x = 1; [is_def_var("x"), is_def_var("y")]') == [True, False]
    assert ev('let r = false; { let z = 1; r = is_def_var("z"); } [r, is_def_var("z")]') == \
        [True, False]


@cheat_aware(protects="runaway recursion is a Rhai error, not a Python RecursionError",
             cheats=["raising Python's recursion limit only", "catching RecursionError late"],
             consequence="a buggy recipe crashes the package manager with a traceback")
def test_stack_overflow_is_a_rhai_error():
    e = fails("fn f(n) { f(n + 1) }\nf(0)", Limits(max_call_levels=50))
    assert e.kind == "ErrorStackOverflow"
    assert not e.catchable
    assert (e.line, e.column) == (1, 11)
    assert "50" in e.message


def test_deep_recursion_within_limit_works():
    eng = Engine(Limits(max_call_levels=2000))
    assert eng.eval("fn depth(n) { if n == 0 { 0 } else { 1 + depth(n - 1) } } depth(1500)") \
        == 1500


def test_stack_overflow_is_not_catchable():
    e = fails("fn f() { f() } try { f() } catch { 1 }", Limits(max_call_levels=10))
    assert e.kind == "ErrorStackOverflow"


def test_functions_defined_only_at_global_level(err):
    e = err("fn outer() {\n  fn inner() { }\n}")
    assert e.kind == "ErrorParsing" and e.line == 2
    assert err("{ fn f() {} }").kind == "ErrorParsing"


def test_call_stack_in_errors(err):
    e = err("fn a(x) { b(x) }\nfn b(x) { x / 0 }\nlet r = a(1);")
    assert (e.line, e.column) == (2, 13)
    assert e.call_stack == [("b", 1, 11), ("a", 3, 9)]
    text = str(e)
    assert "in call to function 'b' (line 1, position 11)" in text
    assert "in call to function 'a' (line 3, position 9)" in text


def test_script_functions_take_precedence_over_builtins(ev):
    assert ev('fn len(x) { 99 } len("abc")') == 99


def test_wrong_arity_suggests_existing_arities(err):
    e = err("fn greet(a, b) { a + b }\ngreet(1)")
    assert e.kind == "ErrorFunctionNotFound"
    assert e.hint == "'greet' exists with 2 arguments, not 1"


def test_errors_inside_functions_are_found_at_compile_time(engine):
    from levitate.recipe.rhai import RhaiSyntaxError
    with pytest.raises(RhaiSyntaxError) as info:
        engine.compile("fn never_called() {\n  const K = 1;\n  K = 2;\n}")
    assert (info.value.line, info.value.column) == (3, 5)
    with pytest.raises(RhaiSyntaxError):
        engine.compile("fn never_called() { let x = ; }")


def test_functions_compiled_on_first_call_work_in_every_instance(engine):
    ast = engine.compile("fn a(x) { b(x) * 2 } fn b(x) { let f = |y| y + x; f.call(1) }")
    assert engine.call_fn(ast, "a", 1) == 4
    assert engine.call_fn(ast, "b", 5) == 6
    assert engine.call_fn(ast, "a", 2) == 6
