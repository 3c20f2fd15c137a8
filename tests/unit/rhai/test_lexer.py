"""Lexer: literal forms, positions, comments and doc comments."""

import pytest

from levitate.recipe.rhai.errors import RhaiSyntaxError
from levitate.recipe.rhai.lexer import tokenize


def kinds(src):
    toks, _ = tokenize(src)
    return [(t.kind, t.value) for t in toks[:-1]]


@pytest.mark.parametrize("src, value", [
    ("42", 42), ("1_000_000", 1000000), ("0x1F", 31), ("0xff_ff", 65535), ("0o755", 493),
    ("0o644", 420), ("0b1010", 10), ("9223372036854775807", 9223372036854775807),
])
def test_integer_literals(src, value):
    assert kinds(src) == [("int", value)]


@pytest.mark.parametrize("src, value", [
    ("1.5", 1.5), ("0.25", 0.25), ("1e3", 1000.0), ("2.5e-2", 0.025), ("1_000.5", 1000.5),
])
def test_float_literals(src, value):
    assert kinds(src) == [("float", value)]


def test_range_after_integer_is_not_a_float():
    assert kinds("1..10") == [("int", 1), ("op", ".."), ("int", 10)]
    assert kinds("0..=n") == [("int", 0), ("op", "..="), ("ident", "n")]


def test_method_call_on_integer_is_not_a_float():
    assert kinds("1.abs()") == [("int", 1), ("op", "."), ("ident", "abs"), ("op", "("),
                                ("op", ")")]


def test_integer_too_large_is_an_error_with_position():
    with pytest.raises(RhaiSyntaxError) as e:
        tokenize("let x =\n  9223372036854775808;")
    assert (e.value.line, e.value.column) == (2, 3)
    assert "too large" in e.value.message


@pytest.mark.parametrize("src, value", [
    (r'"a\tb"', "a\tb"), (r'"q\"q"', 'q"q'), (r'"back\\slash"', "back\\slash"),
    (r'"\x41\u00e9\U0001F600"', "Aé😀"), (r'"new\nline"', "new\nline"),
])
def test_string_escapes(src, value):
    assert kinds(src) == [("str", value)]


def test_line_continuation_skips_indentation_up_to_the_quote():
    src = 'let x = "hello, world!\\\n         hello again";'
    toks, _ = tokenize(src)
    assert toks[3].value == "hello, world!hello again"


def test_raw_string_keeps_backslashes_and_newlines():
    assert kinds('#"C:\\dir\n"#') == [("str", "C:\\dir\n")]
    assert kinds('##"has "# inside"##') == [("str", 'has "# inside')]


def test_char_literals():
    assert kinds("'a' '\\n' '\\u00e9'") == [("char", "a"), ("char", "\n"), ("char", "é")]


def test_char_with_two_characters_is_an_error():
    with pytest.raises(RhaiSyntaxError) as e:
        tokenize("let c = 'ab';")
    assert e.value.column == 9
    assert "exactly one character" in e.value.message


def test_backtick_string_with_interpolation():
    toks, _ = tokenize("`a ${x + 1} b`")
    t = toks[0]
    assert t.kind == "interp"
    assert t.value[0] == "a "
    inner = t.value[1]
    assert [(x.kind, x.value) for x in inner.tokens[:-1]] == [("ident", "x"), ("op", "+"),
                                                              ("int", 1)]
    assert t.value[2] == " b"


def test_backtick_string_without_interpolation_is_a_plain_string_spanning_lines():
    assert kinds("`line1\n  line2`") == [("str", "line1\n  line2")]


def test_backtick_at_end_of_line_drops_the_first_newline():
    assert kinds("`\nhello\n`") == [("str", "hello\n")]
    assert kinds("`\r\nhello`") == [("str", "hello")]
    # only a line break right after the back-tick (Rhai's tests/string.rs)
    assert kinds("` \nhello`") == [("str", " \nhello")]


def test_doubled_backtick_is_a_literal_backtick():
    assert kinds("`a``b`") == [("str", "a`b")]
    assert kinds("````") == [("str", "`")]
    assert kinds("`` + `x`") == [("str", ""), ("op", "+"), ("str", "x")]


def test_nested_interpolation_with_braces_and_strings():
    toks, _ = tokenize('`x${ #{a: "}"}.a }y`')
    parts = toks[0].value
    assert parts[0] == "x" and parts[2] == "y"
    assert [t.value for t in parts[1].tokens[:-1]] == ["#{", "a", ":", "}", "}", ".", "a"]


def test_unterminated_string_reports_its_start():
    with pytest.raises(RhaiSyntaxError) as e:
        tokenize('let s = "abc\nlet t = 1;')
    assert (e.value.line, e.value.column) == (1, 9)


def test_positions_are_one_based_lines_and_columns():
    toks, _ = tokenize("let x = 1;\n  foo(x);")
    foo = toks[5]
    assert (foo.value, foo.line, foo.col) == ("foo", 2, 3)


def test_comments_are_skipped_and_block_comments_nest():
    assert kinds("1 // one\n/* a /* nested */ still comment */ 2") == [("int", 1), ("int", 2)]


def test_unterminated_block_comment_is_an_error():
    with pytest.raises(RhaiSyntaxError) as e:
        tokenize("1 /* never /* closed */")
    assert (e.value.line, e.value.column) == (1, 3)


def test_module_doc_comments_are_collected():
    toks, docs = tokenize("//! name: ripgrep\n//! version: 14\nlet x = 1;")
    assert docs == [" name: ripgrep", " version: 14"]


def test_doc_comments_attach_to_the_next_token():
    toks, _ = tokenize("/// Does it.\n/// Twice.\nfn f() {}")
    assert toks[0].value == "fn" and toks[0].docs == (" Does it.", " Twice.")
    toks, _ = tokenize("/** block doc */ fn g() {}")
    assert toks[0].docs == (" block doc ",)


def test_four_slashes_is_a_plain_comment():
    toks, docs = tokenize("//// not a doc\nfn f() {}")
    assert toks[0].docs is None and docs == []


def test_operators_longest_match():
    assert [v for _, v in kinds("a **= 2 <<= 1 ..= ?. ?[ ?? :: => #{")] == [
        "a", "**=", 2, "<<=", 1, "..=", "?.", "?[", "??", "::", "=>", "#{"]


def test_not_in_operator():
    assert [v for _, v in kinds("x !in y")] == ["x", "!in", "y"]
    assert [v for _, v in kinds("!inside")] == ["!", "inside"]


def test_unexpected_character():
    with pytest.raises(RhaiSyntaxError) as e:
        tokenize("let x = 1 \\ 2;")
    assert e.value.column == 11
