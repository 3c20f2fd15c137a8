"""Control flow: if/else (also as expressions), switch, loops, break/continue with values."""

import pytest

from levitate.recipe.rhai import RhaiError


def test_if_else_if_else(ev):
    src = 'fn f(x) { if x < 0 { "neg" } else if x == 0 { "zero" } else { "pos" } }' \
          ' [f(-1), f(0), f(5)]'
    assert ev(src) == ["neg", "zero", "pos"]


def test_if_as_expression(ev):
    assert ev("let x = if 2 > 1 { 10 } else { 20 }; x") == 10
    assert ev("let x = if false { 1 }; x") is None
    assert ev("let x = 1 + if true { let a = 2; a * 3 } else { 0 }; x") == 7


def test_block_value_is_the_last_statement_even_with_semicolon(ev):
    assert ev("fn f() { let x = 1; x + 1; } f()") == 2
    assert ev("let v = { let a = 3; a * a }; v") == 9
    assert ev("fn f() { let x = 1; } f()") is None


def test_switch_values_alternatives_and_default(ev):
    src = 'fn f(x) { switch x { 1 => "one", 2 | 3 => "two-three", "s" => "str", ' \
          '_ => "other" } } [f(1), f(3), f("s"), f(9)]'
    assert ev(src) == ["one", "two-three", "str", "other"]


def test_switch_without_match_and_default_is_unit(ev):
    assert ev("switch 5 { 1 => 2 }") is None


def test_switch_ranges_and_exact_values_take_precedence(ev):
    src = 'fn f(x) { switch x { 5 => "five", 0..10 => "low", 10..=20 => "mid", _ => "hi" } }' \
          ' [f(3), f(5), f(10), f(20), f(21)]'
    assert ev(src) == ["low", "five", "mid", "mid", "hi"]


def test_switch_matches_by_type(ev):
    assert ev('switch 1.0 { 1 => "int", _ => "other" }') == "other"
    assert ev("switch 'a' { \"a\" => \"str\", 'a' => \"char\" }") == "char"
    assert ev('switch [1, "x"] { [1, "x"] => "yes", _ => "no" }') == "yes"
    assert ev('switch () { () => "unit", _ => "no" }') == "unit"
    assert ev('switch true { false => 0, true => 1 }') == 1


def test_switch_guards(ev):
    src = 'fn f(x, big) { switch x { 1 if big => "big one", 1 => "one", _ if false => 0,' \
          ' _ => "?" } }'
    # `_ if ...` is a syntax error in Rhai
    with pytest.raises(RhaiError) as e:
        ev(src)
    assert e.value.kind == "ErrorParsing"
    src = 'fn f(x, big) { switch x { 1 if big => "big one", 1 => "one", _ => "?" } }' \
          ' [f(1, true), f(1, false), f(2, true)]'
    assert ev(src) == ["big one", "one", "?"]


def test_switch_block_bodies_and_statement_use(ev, out):
    src = 'let x = 2; switch x { 1 => print("a"), 2 => { print("b"); print("c"); } _ => () }'
    ev(src)
    assert out.printed == ["b", "c"]


def test_switch_default_must_be_last(err):
    e = err("switch 1 { _ => 0, 1 => 1 }")
    assert e.kind == "ErrorParsing" and "last" in e.message


def test_switch_case_must_be_literal(err):
    e = err("let y = 1; switch 1 { y => 0 }")
    assert e.kind == "ErrorParsing" and e.column == 23


def test_while_with_continue(ev):
    assert ev("let s = 0; let i = 0; while i < 5 { i += 1; if i == 3 { continue; } s += i; } s"
              ) == 12


def test_loop_with_break_value(ev):
    assert ev("let i = 0; let r = loop { i += 1; if i == 4 { break i * 10; } }; r") == 40
    assert ev("fn f() { let i = 0; loop { i += 1; if i > 2 { break i; } } } f()") == 3


def test_do_while_and_do_until_run_the_body_first(ev):
    assert ev("let i = 10; do { i += 1; } while i < 5; i") == 11
    assert ev("let i = 0; do { i += 1; } until i >= 3; i") == 3


def test_continue_in_do_while_skips_the_condition_as_rhai_does(ev):
    # Rhai's `continue` in do/while restarts the body without checking the condition
    assert ev("let i = 0; let n = 0; do { i += 1; n += 1; if i < 3 { continue; } } "
              "while false; n") == 3


def test_for_over_array_string_and_ranges(ev):
    assert ev("let s = 0; for x in [1, 2, 3] { s += x; } s") == 6
    assert ev('let r = ""; for c in "abc" { r = c + r; } r') == "cba"
    assert ev("let s = 0; for i in 0..5 { s += i; } s") == 10
    assert ev("let s = 0; for i in 0..=5 { s += i; } s") == 15
    assert ev("let s = []; for i in range(10, 0, -3) { s.push(i); } s") == [10, 7, 4, 1]
    assert ev("let n = 3; let s = 0; for i in 1..n + 1 { s += i; } s") == 6


def test_for_with_counter(ev):
    assert ev('let r = []; for (x, i) in ["a", "b", "c"] { r.push(`${i}${x}`); } r') == \
        ["0a", "1b", "2c"]


def test_for_iterates_over_a_copy(ev):
    assert ev("let a = [1, 2]; for x in a { a.push(x); } a") == [1, 2, 1, 2]
    assert ev("let a = [[1]]; for x in a { x.push(2); } a") == [[1]]


def test_for_over_a_map_is_an_error(err):
    e = err("for x in #{a: 1} { }")
    assert e.kind == "ErrorFor"


def test_for_over_a_number_is_an_error(err):
    e = err("let n = 5;\nfor x in n { }")
    assert e.kind == "ErrorFor" and e.line == 2


def test_break_from_nested_loops_only_exits_the_inner(ev):
    src = "let n = 0; for i in 0..3 { for j in 0..10 { if j == 2 { break; } n += 1; } } n"
    assert ev(src) == 6


def test_loop_variable_scope_ends_with_the_loop(err):
    e = err("for i in 0..2 { } i")
    assert e.kind == "ErrorVariableNotFound"


def test_break_outside_a_loop_is_a_syntax_error(err):
    e = err("let x = 1;\nbreak;")
    assert e.kind == "ErrorParsing" and (e.line, e.column) == (2, 1)
    assert err("fn f() { continue; }").message == "'continue' must be within a loop"


def test_break_inside_closure_inside_loop_is_a_syntax_error(err):
    e = err("loop { let f = || { break; }; }")
    assert e.kind == "ErrorParsing"


def test_return_ends_the_function_and_the_script(ev, out):
    assert ev("fn f(x) { if x > 1 { return \"big\"; } \"small\" } [f(5), f(0)]") == \
        ["big", "small"]
    assert ev('print("a"); return 7; print("b");') == 7
    assert out.printed == ["a"]


def test_let_const_shadowing_and_block_scope(ev):
    assert ev("let x = 1; { let x = 2; x += 1; } x") == 1
    assert ev("let x = 1; let x = x + 10; x") == 11
    assert ev("const X = 3; let y = X * 2; y") == 6


def test_assigning_a_constant_is_a_syntax_error(err):
    e = err("const LIMIT = 5;\nLIMIT = 6;")
    assert e.kind == "ErrorParsing" and (e.line, e.column) == (2, 7)


def test_modifying_a_constant_container_is_an_error(err):
    e = err("const M = #{a: 1};\nM.a = 2;")
    assert e.kind == "ErrorAssignmentToConstant" and e.line == 2
    e = err("const A = [1];\nA[0] = 2;")
    assert e.kind == "ErrorAssignmentToConstant"


def test_undefined_variable(err):
    e = err("let total = 1;\ntotl + 1")
    assert e.kind == "ErrorVariableNotFound"
    assert e.message == "Variable not found: totl; did you mean 'total'?"
    assert (e.line, e.column) == (2, 1)


def test_empty_statements_are_allowed(ev):
    assert ev(";; let x = 1;; x") == 1


def test_missing_semicolon_is_reported_at_the_next_statement(err):
    e = err("let x = 1\nlet y = 2;")
    assert e.message == "expecting ';' to terminate this statement, found 'let'"
    assert (e.line, e.column) == (2, 1)


def test_statements_ending_in_blocks_need_no_semicolon(ev):
    assert ev("let x = 0; if true { x = 1 } while false { } for i in [] { } x") == 1


def test_loops_as_expressions(ev):
    assert ev("let x = while true { break 5; }; x") == 5
    assert ev("let x = for i in 0..10 { if i == 3 { break i * 2; } }; x") == 6
    assert ev("let x = for i in 0..2 { }; x") is None


@pytest.mark.parametrize("name", ["_", "_9", "_1x"])
def test_invalid_variable_names(err, name):
    e = err(f"let {name} = 1;")
    assert e.kind == "ErrorParsing" and e.column == 5


def test_valid_underscore_names(ev):
    assert ev("let _x = 1; let x_ = 2; let _x_ = 3; let r2d2 = 4; _x + x_ + _x_ + r2d2") == 10


def test_duplicated_switch_case_first_one_wins(ev):
    # current Rhai deprecated its DuplicatedSwitchCase error: the first matching case runs
    assert ev("switch 1 { 1 => 2, 2 => 3, 1 => 4 }") == 2
    assert ev("switch 1 { 1 if false => 2, 1 => 3 }") == 3


def test_switch_number_after_ranges_is_a_syntax_error(err, ev):
    # Rhai's WrongSwitchIntegerCase: exact numbers are matched first, so they come first
    e = err("switch 42 { 10..20 => 1, 20..=42 => 2, 42 => 3 }")
    assert e.kind == "ErrorParsing" and e.column == 40
    assert ev("switch 42 { 42 => 'x', 10..20 => (), 20..=42 => 'a', 'w' => true }") == "x"
    assert ev("switch 5 { 'a' => true, 4 | 5 | 6 => 42, 0..10 => 123, _ => 'x' }") == 42


def test_for_loops_from_rhai_test_suite(ev):
    # Rhai's own tests/for.rs
    assert ev("let s = 0.0; for x in range(1.0, 10.0, 2.0) { s += x; } s") == 25.0
    assert ev("let s = 0.0; for x in range(10.0, 1.0, -2.0) { s += x; } s") == 30.0
    assert ev("let s = 0.0; for x in range(10.0, 1.0, 2.0) { s += x; } s") == 0.0
    assert ev('let s = 0; for ch in chars("hello", 2..=3) { s += to_int(ch); } s') == 216
    assert ev('let s = ""; for ch in chars("hello", 1, 2) { s += ch; } s') == "el"
    # the loop variables are one shared variable: every closure sees the last values
    assert ev("let a = []; for (x, i) in 100..110 { a += || i + x; }"
              " let sum = 0; for fp in a { sum += call(fp); } sum") == 1180
