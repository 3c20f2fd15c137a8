"""Fuzzing: no input may crash the engine with anything but a RhaiError.

Random token soups, mutations of valid scripts, and random integer expressions checked against
a reference implementation of Rhai's (Rust's) 64-bit arithmetic. Deterministic (seeded) with
the standard library; `test_fuzz_hypothesis.py` adds property-based tests when `hypothesis`
is installed.
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


# --- random programs from a small grammar (valid syntax, mixed types) ---------------------

VARS = ["a", "b", "c", "s", "m", "arr"]


def gen_expr(r: random.Random, d: int = 0) -> str:
    if d > 3:
        return r.choice(["1", "2", '"x"', "a", "b", "'c'", "()", "true", "[1, 2]", "#{k: 1}",
                         "1.5"])
    k = r.randint(0, 20)
    if k == 0:
        op = r.choice(["+", "-", "*", "/", "%", "==", "<", "&&", "||", "??", "..", "in", "&",
                       "|", "<<"])
        return f"({gen_expr(r, d + 1)} {op} {gen_expr(r, d + 1)})"
    if k == 1:
        return f"if {gen_expr(r, d + 1)} {{ {gen_expr(r, d + 1)} }} else {{ {gen_expr(r, d + 1)} }}"
    if k == 2:
        return (f"switch {gen_expr(r, d + 1)} {{ 1 => {gen_expr(r, d + 1)}, \"x\" | 2 => "
                f"{{ {gen_stmt(r, d + 1)} {gen_expr(r, d + 1)} }} _ => {gen_expr(r, d + 1)} }}")
    if k == 3:
        return f"{{ {gen_stmt(r, d + 1)} {gen_expr(r, d + 1)} }}"
    if k == 4:
        return f"|x| {gen_expr(r, d + 1)}"
    if k == 5:
        return f"{r.choice(VARS)}." + r.choice(["len()", "push(1)", "trim()", "pop()",
                                                "to_string()", "map(|x| x)", "keys()",
                                                "call(1)", "x", "len"])
    if k == 6:
        return f"{r.choice(VARS)}[{gen_expr(r, d + 1)}]"
    if k == 7:
        return f"[{gen_expr(r, d + 1)}, {gen_expr(r, d + 1)}]"
    if k == 8:
        return f"#{{p: {gen_expr(r, d + 1)}, q: {gen_expr(r, d + 1)}}}"
    if k == 9:
        return f"`t${{{gen_expr(r, d + 1)}}}t`"
    if k == 10:
        return f"f{r.randint(0, 2)}({gen_expr(r, d + 1)})"
    if k == 11:
        return f"loop {{ {gen_stmt(r, d + 1)} break {gen_expr(r, d + 1)}; }}"
    if k == 12:
        return f"-{gen_expr(r, d + 1)}"
    if k == 13:
        return f"!{gen_expr(r, d + 1)}"
    if k == 14:
        return f"{r.choice(VARS)}?.{r.choice(['p', 'len()'])}"
    return r.choice(VARS + ["1", '"str"', "0..3"])


def gen_stmt(r: random.Random, d: int = 0) -> str:
    k = r.randint(0, 12) if d < 4 else r.choice([0, 1, 2, 11])
    v = r.choice(VARS)
    e = gen_expr(r, d)
    if k == 0:
        return f"let {v} = {e};"
    if k == 1:
        return f"{v} = {e};"
    if k == 2:
        return f"{v} += {e};"
    if k == 3:
        return f"for x in {e} {{ {gen_stmt(r, d + 1)} }}"
    if k == 4:
        return f"while {e} {{ {gen_stmt(r, d + 1)} break; }}"
    if k == 5:
        return f"try {{ {gen_stmt(r, d + 1)} }} catch (e) {{ {gen_stmt(r, d + 1)} }}"
    if k == 6:
        return f"if {e} {{ {gen_stmt(r, d + 1)} }}"
    if k == 7:
        return f"{v}[0] = {e};"
    if k == 8:
        return f"{v}.p = {e};"
    if k == 9:
        return f"{v}.{r.choice(['push', 'pad', 'replace'])}({e}, {gen_expr(r, d)});"
    if k == 10:
        return f"throw {e};"
    return f"{e};"


def gen_program(r: random.Random) -> str:
    fns = "".join(f"fn f{i}(p) {{ {gen_stmt(r, 1)} {gen_expr(r, 1)} }}\n" for i in range(3))
    init = ('let a = 1; let b = "bb"; let c = [1, 2]; let s = " x "; let m = #{p: 1}; '
            "let arr = [[1], #{q: 2}];\n")
    body = "\n".join(gen_stmt(r) for _ in range(r.randint(1, 8)))
    return fns + init + body + "\n" + gen_expr(r)


def test_generated_programs(fuzz_engine):
    rng = random.Random(2024)
    outcomes = set()
    for _ in range(300):
        src = gen_program(rng)
        try:
            fuzz_engine.eval(fuzz_engine.compile(src, name="gen.rhai"))
            outcomes.add("ok")
        except RhaiError as e:
            assert e.kind != "ErrorSystem", f"internal error for:\n{src}\n{e}"
            outcomes.add(e.kind)
    # the generator reaches many different outcomes (it is not stuck on one error)
    assert "ok" in outcomes and len(outcomes) >= 6


# --- inline fast paths (loops) agree with the reference slow paths (straight code) -------

VALUES = ["0", "1", "-3", "7", "9223372036854775807", "-9223372036854775807 - 1", "2.5",
          "-0.5", '"ab"', '""', "'c'", "true", "false", "()", "[1, 2]", '#{a: 1}', "0..3"]
BINOPS = ["+", "-", "*", "/", "%", "**", "<<", ">>", "&", "|", "^", "==", "!=", "<", "<=",
          ">", ">=", "in", "??"]


def outcome(eng, src):
    try:
        return ("ok", eng.eval(src))
    except RhaiError as e:
        return ("err", e.kind)


def test_fast_paths_agree_with_slow_paths(fuzz_engine):
    rng = random.Random(5)
    pairs = [(a, b) for a in VALUES for b in VALUES]
    rng.shuffle(pairs)
    for a, b in pairs[:160]:
        for op in rng.sample(BINOPS, 6):
            cold = f"let a = {a}; let b = {b}; a {op} b"
            hot = (f"fn f(a, b) {{ let r = (); for i in 0..1 {{ r = a {op} b; }} r }} "
                   f"f({a}, {b})")
            hot_const = f"let a = {a}; let r = (); for i in 0..1 {{ r = a {op} {b}; }} r"
            want = outcome(fuzz_engine, cold)
            assert outcome(fuzz_engine, hot) == want, (a, op, b)
            if " " not in b and ".." not in b:  # b substituted textually as one operand
                assert outcome(fuzz_engine, hot_const) == want, (a, op, b, "const")
        for op in ("+", "-", "*"):
            cold = f"let a = {a}; a {op}= {b}; a"
            hot = f"let a = {a}; for i in 0..1 {{ a {op}= {b}; }} a"
            assert outcome(fuzz_engine, hot) == outcome(fuzz_engine, cold), (a, op, b, "=")
        cold = f"let a = {a}; let b = {b}; a[b]"
        hot = f"let a = {a}; let b = {b}; let r = (); for i in 0..1 {{ r = a[b]; }} r"
        assert outcome(fuzz_engine, hot) == outcome(fuzz_engine, cold), (a, b, "[]")
        for u in ("!", "-"):
            cold = f"let a = {a}; {u}a"
            hot = f"let a = {a}; let r = (); for i in 0..1 {{ r = {u}a; }} r"
            assert outcome(fuzz_engine, hot) == outcome(fuzz_engine, cold), (u, a)
