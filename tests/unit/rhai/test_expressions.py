"""Expressions: Rhai's operator precedence, types, integer overflow, comparisons."""

import math

import pytest

from levitate.recipe.rhai import Char, RhaiError
from tests.cheat_aware import cheat_aware

from .conftest import fails


@pytest.mark.parametrize("src, value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("10 - 4 - 3", 3), ("2 ** 3 ** 2", 512),
    ("-2 ** 2", 4), ("1 << 2 + 1", 5),            # shifts bind tighter than + in Rhai
    ("2 * 3 << 1", 12), ("7 & 3 == 3", 3 & True if False else 3),
    ("true || false && false", True), ("false && true || true", True),
    ("1 + 2 < 4", True), ("1 < 2 == true", True), ("5 % 3 * 2", 4),
])
def test_precedence(ev, src, value):
    if src == "7 & 3 == 3":
        # `==` (90) binds tighter than `&` (60): 7 & (3 == 3) is int & bool -> error
        with pytest.raises(RhaiError) as e:
            ev(src)
        assert e.value.kind == "ErrorFunctionNotFound"
        return
    assert ev(src) == value


@pytest.mark.parametrize("src, value", [
    ("10 / 3", 3), ("-7 / 2", -3), ("7 / -2", -3), ("-7 % 3", -1), ("7 % -3", 1),
    ("2 ** 10", 1024), ("2 ** 0", 1), ("1 << 63", -9223372036854775808), ("-8 >> 1", -4),
    ("1 << 64", 0), ("8 << -1", 4), ("5 & 3", 1), ("5 | 3", 7), ("5 ^ 3", 6),
    ("-(-5)", 5), ("+5", 5),
])
def test_integer_arithmetic_follows_rust(ev, src, value):
    r = ev(src)
    assert r == value and type(r) is int


@pytest.mark.parametrize("src, value", [
    ("1.5 + 1", 2.5), ("1 / 2.0", 0.5), ("3.0 % 2", 1.0), ("-7.5 % 2", -1.5),
    ("2.0 ** 3", 8.0), ("2 ** 0.5", math.sqrt(2)), ("1.0 / 0", math.inf),
])
def test_float_arithmetic(ev, src, value):
    r = ev(src)
    assert r == value and type(r) is float


def test_float_nan(ev):
    assert math.isnan(ev("0.0 / 0.0"))


@cheat_aware(protects="integer overflow is an error, never a silent wrap or a big integer",
             cheats=["letting Python ints grow past 64 bits", "wrapping silently"],
             consequence="recipes compute wrong sizes/offsets without any error")
@pytest.mark.parametrize("src, message", [
    ("let x = 9223372036854775807; x + 1", "Addition overflow: 9223372036854775807 + 1"),
    ("let x = -9223372036854775807; x - 2", "Subtraction overflow: -9223372036854775807 - 2"),
    ("let x = 4611686018427387904; x * 2", "Multiplication overflow: 4611686018427387904 * 2"),
    ("let x = 2; x ** 64", "Exponential overflow: 2 ** 64"),
    ("let x = 2; x ** -1", "Integer raised to a negative power: 2 ** -1"),
    ("let x = 1; x / 0", "Division by zero: 1 / 0"),
    ("let x = 1; x % 0", "Modulo division by zero or overflow: 1 % 0"),
    ("let x = -9223372036854775807 - 1; -x", "Negation overflow: --9223372036854775808"),
    ("let x = 9223372036854775807; x += 1; x", "Addition overflow: 9223372036854775807 + 1"),
])
def test_integer_overflow_is_an_error(src, message):
    e = fails(src)
    assert e.kind == "ErrorArithmetic"
    assert e.message == message
    assert e.line == 1


def test_overflow_error_points_at_the_operator():
    e = fails("let big = 9223372036854775807;\nlet y = big - 1 + 2;")
    assert (e.line, e.column) == (2, 17)


@pytest.mark.parametrize("src, value", [
    ('"a" + "b"', "ab"), ('"a" + 1', "a1"), ('1 + "a"', "1a"), ('"x" + 1.5', "x1.5"),
    ('"x" + true', "xtrue"), ('"x" + ()', "x"), ('() + "x"', "x"), ("'a' + 'b'", "ab"),
    ("\"a\" + 'b'", "ab"), ("'a' + \"b\"", "ab"), ('"v" + [1, 2]', "v[1, 2]"),
    ('"hello" - "l"', "heo"), ('"hello" - \'l\'', "heo"),
])
def test_string_concatenation(ev, src, value):
    r = ev(src)
    assert r == value and type(r) is str


@pytest.mark.parametrize("src", ['"x" * 2', "true + true", "[1] - [1]", "'a' + 1", "!1",
                                 "-\"a\"", "#{} * 2", "1 + ()"])
def test_unsupported_operator_names_types(src):
    e = fails(src)
    assert e.kind == "ErrorFunctionNotFound"
    assert e.message.startswith("Function not found: ")


def test_unsupported_operator_message_names_operator_and_types():
    assert fails('let s = "x"; s * 2').message == "Function not found: * (string, i64)"


def test_arrays_and_maps_concatenate_into_new_values(ev):
    assert ev("let a = [1]; let b = a + [2, 3]; [a, b]") == [[1], [1, 2, 3]]
    assert ev("let m = #{a: 1} + #{b: 2, a: 3}; m") == {"a": 3, "b": 2}


@pytest.mark.parametrize("src, value", [
    ("1 == 1.0", True), ("42.0 > 42", False), ("42 >= 42.0", True),
    ('1 == "1"', False), ('1 != "1"', True), ('42 > "42"', False), ('42 <= "42"', False),
    ("() == ()", True), ("() != ()", False), ('() == "x"', False),
    ("'a' == \"a\"", True), ("\"ab\" == 'a'", False), ("'a' < \"b\"", True),
    ('"apple" < "banana"', True), ('"b" > "a"', True), ("true > false", True),
    ("[1, 2] == [1, 2]", True), ("[1, 2] != [2, 1]", True), ("#{a: 1} == #{a: 1}", True),
    ("[1, [2]] == [1, [2]]", True), ("1 == true", False), ("0 == false", False),
])
def test_comparisons(ev, src, value):
    r = ev(src)
    assert r is value


def test_ordering_arrays_is_not_defined(ev):
    with pytest.raises(RhaiError) as e:
        ev("[1] < [2]")
    assert e.value.message == "Function not found: < (array, array)"


def test_logic_short_circuits(ev, out):
    assert ev('fn t() { print("t"); true } fn f() { print("f"); false } f() && t()') is False
    assert out.printed == ["f"]
    assert ev("fn t() { print(\"T\"); true } t() || t()") is True
    assert out.printed == ["f", "T"]


def test_single_ampersand_and_pipe_evaluate_both(ev, out):
    assert ev('fn t() { print("t"); true } fn f() { print("f"); false } f() & t()') is False
    assert out.printed == ["f", "t"]


@pytest.mark.parametrize("src", ["1 && true", "false || 0", 'if 1 { 2 }', "!0",
                                 'let x = "y"; while x { }'])
def test_conditions_must_be_booleans(src):
    e = fails(src)
    assert e.kind in ("ErrorMismatchDataType", "ErrorFunctionNotFound")


def test_condition_type_error_message():
    e = fails("let n = 1;\nif n { 2 }")
    assert e.message == "Data type incorrect: i64 (expecting bool)"
    assert (e.line, e.column) == (2, 4)


@pytest.mark.parametrize("src, value", [
    ("2 in [1, 2, 3]", True), ("4 in [1, 2, 3]", False), ('"b" in "abc"', True),
    ("'z' in \"abc\"", False), ('"a" in #{a: 1}', True), ('"b" in #{a: 1}', False),
    ("5 in 0..10", True), ("10 in 0..10", False), ("10 in 0..=10", True),
    ("5 !in 0..10", False), ('"x" !in ["y"]', True), ("1.0 in [1]", True),
])
def test_in_operator(ev, src, value):
    assert ev(src) is value


@pytest.mark.parametrize("src, value", [
    ("() ?? 5", 5), ("3 ?? 5", 3), ("let m = #{}; m.x ?? \"default\"", "default"),
    ("false ?? true", False),
])
def test_null_coalescing(ev, src, value):
    assert ev(src) == value


def test_null_coalescing_short_circuits(ev, out):
    assert ev('fn side() { print("side"); 1 } 2 ?? side()') == 2
    assert out.printed == []


@pytest.mark.parametrize("src, name", [
    ("1", "i64"), ("1.0", "f64"), ('""', "string"), ("'a'", "char"), ("true", "bool"),
    ("()", "()"), ("[]", "array"), ("#{}", "map"), ("|x| x", "Fn"), ('Fn("print")', "Fn"),
    ("1..2", "range"), ("1..=2", "range="),
])
def test_type_of(ev, src, name):
    assert ev(f"type_of({src})") == name
    assert ev(f"({src}).type_of()") == name


def test_char_is_a_distinct_type(ev):
    c = ev("'x'")
    assert c == "x" and type(c) is Char
    assert ev('"abc"[1]') == "b" and type(ev('"abc"[1]')) is Char


def test_unit_and_literals(ev):
    assert ev("()") is None
    assert ev("0o755") == 493
    assert ev("[1, 2, 3,]") == [1, 2, 3]
    assert ev('#{a: 1, "b c": 2, }') == {"a": 1, "b c": 2}


def test_duplicate_map_key_is_a_syntax_error(err):
    e = err("#{a: 1, a: 2}")
    assert e.kind == "ErrorParsing" and e.column == 9


def test_ranges_are_values(ev):
    assert ev("let r = 1..4; r.start + r.end") == 5
    assert ev("(1..=3).len") == 3
    assert ev("let a = 2; let r = a..a+3; 4 in r") is True


def test_interpolation_uses_to_string(ev):
    assert ev('let x = 5; `x=${x} f=${1.0} c=${\'c\'} u=${()} a=${[1, "a"]}`') == \
        'x=5 f=1.0 c=c u= a=[1, "a"]'


def test_interpolation_block_and_nesting(ev):
    assert ev("let x = 42;\n`1) ${let w = `${x} world`; if x > 1 { w += \"s\" } w}!`") == \
        "1) 42 worlds!"


@pytest.mark.parametrize("value, text", [
    ("1.0", "1.0"), ("0.1 + 0.2", "0.30000000000000004"), ("1e20", "1e20"),
    ("1.5e-14", "1.5e-14"), ("123456.5", "123456.5"), ("-2.0", "-2.0"), ("1.0 / 0.0", "inf"),
    ("0.0 / 0.0", "NaN"), ("0.00001", "0.00001"),
])
def test_float_display(ev, value, text):
    assert ev(f"({value}).to_string()") == text


def test_debug_format(ev):
    assert ev('to_debug(["a", \'b\', (), 1, #{k: "v"}])') == \
        '["a", \'b\', (), 1, #{"k": "v"}]'
    assert ev('let m = #{b: 1, a: 2}; m.to_string()') == '#{"a": 2, "b": 1}'


def test_evaluation_order_is_left_to_right(ev, out):
    src = 'fn p(x) { print(x); x } p(1) + p(2) * p(3)'
    assert ev(src) == 7
    assert out.printed == ["1", "2", "3"]


def test_operands_keep_order_around_statement_expressions(ev):
    assert ev("let x = 1; let y = x + { x = 10; 5 }; y") == 6


def test_float_property_getters(ev, err):
    # Rhai's math functions double as properties on floats (`get = "floor"` in its stdlib)
    assert ev("let x = 2.5; [x.floor, x.ceiling, x.round, x.int, x.is_nan, x.is_finite]") == \
        [2.0, 3.0, 3.0, 2.0, False, True]
    assert ev("(-2.75).fraction") == -0.75
    assert err("let n = 3; n.floor").kind == "ErrorDotExpr"
