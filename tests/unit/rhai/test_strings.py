"""String and character methods with Rhai's semantics: some change the string in place and
return (), others return a new value."""

import pytest

from levitate.recipe.rhai import Char


@pytest.mark.parametrize("src, value", [
    ('let s = "  hi  "; s.trim(); s', "hi"),
    ('let s = "hello"; s.replace("l", "L"); s', "heLLo"),
    ("let s = \"hello\"; s.replace('l', '_'); s", "he__o"),
    ("let s = \"ab\"; s.pad(5, '*'); s", "ab***"),
    ('let s = "ab"; s.pad(7, "xy"); s', "abxyxyx"),
    ("let s = \"abcdef\"; s.pad(3, '*'); s", "abcdef"),
    ('let s = "abcdef"; s.truncate(3); s', "abc"),
    ('let s = "abcdef"; s.truncate(0); s', ""),
    ('let s = "abcdef"; s.crop(2); s', "cdef"),
    ('let s = "abcdef"; s.crop(1, 3); s', "bcd"),
    ('let s = "abcdef"; s.crop(-2); s', "ef"),
    ('let s = "abcdef"; s.crop(2..4); s', "cd"),
    ('let s = "Hello"; s.make_upper(); s', "HELLO"),
    ('let s = "Hello"; s.make_lower(); s', "hello"),
    ('let s = "abc"; s.clear(); s', ""),
    ('let s = "ab"; s.append("cd"); s', "abcd"),
    ('let s = "a-b-c"; s.remove("-"); s', "abc"),
])
def test_methods_that_change_the_string_in_place(ev, src, value):
    assert ev(src) == value


@pytest.mark.parametrize("method", ["trim()", 'replace("a", "b")', "pad(9, 'x')",
                                    "truncate(1)", "crop(1)", "make_upper()", "make_lower()"])
def test_in_place_methods_return_unit(ev, method):
    assert ev(f'let s = " abc "; s.{method}') is None


@pytest.mark.parametrize("src, value", [
    ('let s = "Hi"; let u = s.to_upper(); [s, u]', ["Hi", "HI"]),
    ('let s = "Hi"; let u = s.to_lower(); [s, u]', ["Hi", "hi"]),
    ('"hello".sub_string(1, 3)', "ell"), ('"hello".sub_string(2)', "llo"),
    ('"hello".sub_string(-3)', "llo"), ('"hello".sub_string(-8, 2)', "he"),
    ('"hello".sub_string(10)', ""), ('"hello".sub_string(1, 0)', ""),
    ('"hello".sub_string(1..3)', "el"), ('"hello".sub_string(1..=3)', "ell"),
    ('"a,b,,c".split(",")', ["a", "b", "", "c"]), ('"a b  c".split()', ["a", "b", "c"]),
    ('"a,b,c".split(",", 2)', ["a", "b,c"]), ('"hello".split(2)', ["he", "llo"]),
    ('"hello".split(-1)', ["hell", "o"]), ("\"a-b\".split('-')", ["a", "b"]),
    ('"hello".index_of("l")', 2), ("\"hello\".index_of('o')", 4), ('"hello".index_of("z")', -1),
    ('"hello".index_of("l", 3)', 3), ('"hello".index_of("l", 10)', -1),
    ('"hello, world".index_of("o", -5)', 8),
    ('"hello".contains("ell")', True), ("\"hello\".contains('z')", False),
    ('"hello".starts_with("he")', True), ('"hello".ends_with("lo")', True),
    ('"héllo".len()', 5), ('"héllo".len', 5), ('"".is_empty()', True), ('"x".is_empty', False),
    ('"héllo".bytes', 6), ('"abc".chars()', ["a", "b", "c"]),
    ('"abc".get(1)', "b"), ('"abc".get(-1)', "c"), ('"abc".get(5)', None),
])
def test_methods_returning_new_values(ev, src, value):
    assert ev(src) == value


def test_chars_are_chars(ev):
    assert all(type(c) is Char for c in ev('"ab".chars()'))
    c = ev("let s = \"ab\"; s.pop()")
    assert c == "b" and type(c) is Char


def test_string_plus_assign(ev):
    assert ev('let s = "a"; s += "b"; s += \'c\'; s += 1; s') == "abc1"


def test_string_indexing(ev):
    assert ev('let s = "hello"; [s[0], s[-1]]') == ["h", "o"]
    assert ev("let s = \"hello\"; s[0] = 'j'; s") == "jello"


def test_string_index_out_of_bounds(err):
    e = err('let s = "abc";\ns[5]')
    assert e.kind == "ErrorStringBounds"
    assert e.message == "String index 5 out of bounds: only 3 characters in string"
    assert (e.line, e.column) == (2, 2)


def test_strings_in_maps_and_arrays_change_in_place(ev):
    assert ev('let m = #{name: "  x "}; m.name.trim(); m.name') == "x"
    assert ev('let a = ["ab"]; a[0].make_upper(); a') == ["AB"]
    assert ev('let m = #{n: "abc"}; m.n[0] = \'X\'; m.n') == "Xbc"


def test_in_place_method_on_a_temporary_changes_nothing(ev):
    assert ev('let s = "ab"; (s + "c").make_upper(); s') == "ab"
    assert ev('"  x ".trim()') is None


def test_string_iteration_yields_chars(ev):
    assert ev('let r = []; for c in "héy" { r.push(type_of(c)); } r') == ["char"] * 3


def test_char_methods(ev):
    assert ev("'a'.to_upper()") == "A"
    assert ev("let c = 'a'; c.make_upper(); c") == "A"
    assert ev("'A'.to_int()") == 65
    assert ev("65.to_char()") == "A"


@pytest.mark.parametrize("src, value", [
    ('parse_int("42")', 42), ('parse_int(" -7 ")', -7), ('parse_int("ff", 16)', 255),
    ('parse_int("755", 8)', 493), ('parse_float("1.5")', 1.5), ('parse_float("3")', 3.0),
    ("42.to_string()", "42"), ("3.7.to_int()", 3), ("-3.7.to_int()", -3),
    ("5.to_float()", 5.0), ("255.to_hex()", "ff"), ("8.to_octal()", "10"),
    ("5.to_binary()", "101"), ("true.to_string()", "true"), ("'c'.to_string()", "c"),
])
def test_number_parsing_and_conversion(ev, src, value):
    r = ev(src)
    assert r == value and type(r) is type(value)


@pytest.mark.parametrize("src, message", [
    ('parse_int("abc")', "Error parsing integer number 'abc': invalid digit found in string"),
    ('parse_int("")', "Error parsing integer number '': cannot parse integer from empty string"),
    ('parse_float("x")', "Error parsing floating-point number 'x': invalid float literal"),
])
def test_parse_errors_are_catchable_arithmetic_errors(err, ev, src, message):
    e = err(src)
    assert e.kind == "ErrorArithmetic" and e.message == message
    assert ev(f"let r = (); try {{ {src} }} catch (e) {{ r = e.message; }} r") == message


def test_print_and_debug(ev, out):
    ev('print("a"); print(1); print([1, "x"]); print(()); debug("a"); debug(\'c\'); debug(())')
    assert out.printed == ["a", "1", '[1, "x"]', ""]
    assert out.debugged == ['"a"', "'c'", "()"]


def test_method_on_wrong_type_names_types(err):
    e = err('let n = 5;\nn.trim()')
    assert e.kind == "ErrorFunctionNotFound"
    assert e.message == "Function not found: trim (i64)"
    assert (e.line, e.column) == (2, 3)


def test_range_index_with_negative_end(ev):
    # Rhai's tests/string.rs: a negative end counts from the end before `..=` adds one
    assert ev('let y = "hello"; [y[1..=-1], y[1..-1], y[2..-4], y[2..-18], y[0..18]]') == \
        ["ello", "ell", "", "", "hello"]
    assert ev("[1, 2, 3, 4, 5][1..=-1]") == [2, 3, 4, 5]
    assert ev("let a = [1, 2, 3, 4, 5]; [a.extract(1..=-1), a.extract(1..=3), a.extract(3..1)]") \
        == [[2], [2, 3, 4], []]
