"""Fuzzing: no input may crash the engine with anything but a RhaiError.

Random token soups, mutations of valid scripts, and random integer expressions checked against
a reference implementation of Rhai's (Rust's) 64-bit arithmetic. Deterministic (seeded) with
the standard library; with `hypothesis` installed, property-based tests run as well.
"""

import random
from pathlib import Path

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError
from tests.cheat_aware import cheat_aware

LIMITS = Limits(max_operations=20_000, max_call_levels=24, max_expr_depth=48,
                max_string_size=10_000, max_array_size=2_000, max_map_size=500, max_modules=4)

VOCAB = [
    "let", "const", "if", "else", "switch", "while", "loop", "do", "until", "for", "in", "fn",
    "return", "throw", "try", "catch", "break", "continue", "this", "true", "false", "import",
    "export", "as", "private", "global", "x", "y", "f", "g", "s", "a", "m", "print", "len",
    "push", "Fn", "call", "curry", "type_of", "0", "1", "-1", "42", "9223372036854775807",
    "0x7f", "0o755", "1.5", "\"str\"", "'c'", "`t${x}t`", "()", "(", ")", "[", "]", "{", "}",
    "#{", ":", ",", ";", ".", "?.", "?[", "::", "=>", "=", "+=", "-=", "*=", "/=", "+", "-",
    "*", "/", "%", "**", "<<", ">>", "&", "|", "^", "&&", "||", "!", "==", "!=", "<", "<=",
    ">", ">=", "..", "..=", "??", "_", "|x|", "||",
]

SEEDS = [p.read_text() for p in sorted((Path(__file__).parent / "scripts").glob("*.rhai"))]
SEEDS += [
    "fn f(n) { if n < 2 { n } else { f(n - 1) + f(n - 2) } } f(10)",
    "let m = #{a: [1, 2], b: #{c: \"x\"}}; m.a[1] += 3; m.b.c.make_upper(); m",
    "let r = []; for (x, i) in \"hey\" { r.push(`${i}${x}`); } r.join(\"-\")",
    "let c = 0; let f = |k| { c += k; c }; f.call(2); f.call(3)",
]


def check(src: str, eng: Engine):
    try:
        eng.eval(eng.compile(src, name="fuzz.rhai"))
    except RhaiError as e:
        assert e.kind != "ErrorSystem", f"internal error for {src!r}: {e}"
        assert isinstance(e.message, str)
        if e.line is not None:
            assert e.line >= 1 and e.column >= 0
        str(e)  # rendering never fails


@pytest.fixture(scope="module")
def fuzz_engine():
    eng = Engine(LIMITS, on_print=lambda s: None, on_debug=lambda s: None)
    eng.register_fn("h", lambda *a: list(a))
    return eng


@cheat_aware(protects="no script input crashes the engine with a Python exception",
             cheats=["catching Exception around the test", "skipping failing inputs"],
             consequence="a typo in a recipe crashes `recipe` with a traceback")
def test_random_token_soup(fuzz_engine):
    rng = random.Random(1234)
    for _ in range(600):
        n = rng.randint(1, 40)
        src = " ".join(rng.choice(VOCAB) for _ in range(n))
        check(src, fuzz_engine)


def mutate(rng: random.Random, src: str) -> str:
    ops = rng.randint(1, 4)
    s = src
    for _ in range(ops):
        if not s:
            break
        i = rng.randrange(len(s))
        k = rng.random()
        if k < 0.3:
            s = s[:i] + s[i + rng.randint(1, 8):]
        elif k < 0.6:
            s = s[:i] + rng.choice(VOCAB) + " " + s[i:]
        elif k < 0.8:
            j = rng.randrange(len(s))
            s = s[:i] + s[j:j + rng.randint(1, 20)] + s[i:]
        else:
            s = s[:i] + rng.choice("{}()[];,.=+-*/\"'`$#|&!<>?:") + s[i:]
    return s


def test_mutated_valid_scripts(fuzz_engine):
    rng = random.Random(99)
    for _ in range(500):
        check(mutate(rng, rng.choice(SEEDS)), fuzz_engine)


# --- differential test of integer arithmetic -------------------------------------------

MIN, MAX = -(1 << 63), (1 << 63) - 1


class Overflow(Exception):
    pass


def ref(op, a, b):
    """Rust/Rhai i64 semantics."""
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    elif op == "/":
        if b == 0 or (a == MIN and b == -1):
            raise Overflow
        q = abs(a) // abs(b)
        r = q if (a < 0) == (b < 0) else -q
    elif op == "%":
        if b == 0 or (a == MIN and b == -1):
            raise Overflow
        r = abs(a) % abs(b)
        r = -r if a < 0 else r
    elif op == "&":
        r = a & b
    elif op == "|":
        r = a | b
    elif op == "^":
        r = a ^ b
    elif op == "<":
        return a < b
    elif op == "==":
        return a == b
    else:  # pragma: no cover
        raise AssertionError(op)
    if not MIN <= r <= MAX:
        raise Overflow
    return r


INTS = [0, 1, -1, 2, 7, -7, 255, 1 << 31, -(1 << 31), 1 << 62, -(1 << 62), MAX, MIN + 1,
        MAX - 1, 3037000499, 3037000500, -3037000500]


def test_integer_arithmetic_matches_reference(fuzz_engine):
    rng = random.Random(7)
    for _ in range(400):
        a, b = rng.choice(INTS), rng.choice(INTS)
        op = rng.choice(["+", "-", "*", "/", "%", "&", "|", "^", "<", "=="])
        try:
            want = ref(op, a, b)
        except Overflow:
            want = Overflow
        # three shapes: both variables, literal right operand, compound assignment
        for src in (f"let a = {a}; let b = {b}; a {op} b",
                    f"let a = {a}; a {op} {b}" if b >= 0 else f"let a = {a}; a {op} ({b})",
                    f"let a = {a}; a {op}= {b}; a" if op not in ("<", "==") and b >= 0
                    else None):
            if src is None:
                continue
            if want is Overflow:
                with pytest.raises(RhaiError) as info:
                    fuzz_engine.eval(src)
                assert info.value.kind == "ErrorArithmetic", src
            else:
                got = fuzz_engine.eval(src)
                assert got == want and type(got) is type(want), src


hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed")
st = hypothesis.strategies


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(st.lists(st.sampled_from(VOCAB), max_size=30))
def test_hypothesis_token_sequences(tokens):
    eng = Engine(LIMITS, on_print=lambda s: None, on_debug=lambda s: None)
    check(" ".join(tokens), eng)


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(st.text(max_size=60))
def test_hypothesis_arbitrary_text(text):
    eng = Engine(LIMITS, on_print=lambda s: None, on_debug=lambda s: None)
    check(text, eng)
