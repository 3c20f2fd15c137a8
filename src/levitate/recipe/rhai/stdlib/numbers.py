"""Integers and floats: parsing, conversion, rounding, math functions and their property
forms (`x.is_odd`, `x.floor`).
"""

from __future__ import annotations

import math

from ..errors import RhaiError
from ..ops import lt, not_found
from ..values import Char, INT_MAX, INT_MIN, to_string
from .registry import GETTERS, NoGetter, TABLE, fail, is_str, register


@register("parse_int", 1)
def _parse_int(s):
    return _parse_int2(s, 10)


@register("parse_int", 2)
def _parse_int2(s, radix):
    if not is_str(s) or type(radix) is not int:
        raise not_found("parse_int", s, radix)
    if not 2 <= radix <= 36:
        raise RhaiError("ErrorArithmetic", f"Invalid radix: '{radix}'")
    t = str(s).strip()
    ok = t and all(c.isascii() for c in t) and "_" not in t and " " not in t
    try:
        if not ok:
            raise ValueError
        v = int(t, radix)
    except ValueError:
        why = "cannot parse integer from empty string" if not t else \
            "invalid digit found in string"
        raise RhaiError("ErrorArithmetic", f"Error parsing integer number '{s}': {why}") \
            from None
    if not INT_MIN <= v <= INT_MAX:
        raise RhaiError("ErrorArithmetic", f"Error parsing integer number '{s}': number too "
                        "large to fit in target type")
    return v


@register("parse_float", 1)
def _parse_float(s):
    if not is_str(s):
        raise not_found("parse_float", s)
    t = str(s).strip()
    try:
        if not t or "_" in t or t.lower() in ("infinity", "-infinity", "+infinity"):
            raise ValueError
        return float(t)
    except ValueError:
        raise RhaiError("ErrorArithmetic",
                        f"Error parsing floating-point number '{s}': invalid float literal") \
            from None


@register("to_int", 1)
def _to_int(v):
    t = type(v)
    if t is int:
        return v
    if t is float:
        if v != v or math.isinf(v) or not INT_MIN <= math.trunc(v) <= INT_MAX:
            raise RhaiError("ErrorArithmetic", f"Integer overflow: to_int({to_string(v)})")
        return math.trunc(v)
    if t is Char:
        return ord(v)
    if t is bool:
        return 1 if v else 0
    raise not_found("to_int", v)


@register("to_float", 1)
def _to_float(v):
    if type(v) is int or type(v) is float:
        return float(v)
    raise not_found("to_float", v)


@register("to_char", 1)
def _to_char(v):
    if type(v) is int:
        try:
            return Char(chr(v))
        except (ValueError, OverflowError):
            raise RhaiError("ErrorArithmetic", f"Invalid character code: {v}") from None
    if type(v) is Char:
        return v
    raise not_found("to_char", v)


def _fmt_int(v, fn, spec):
    if type(v) is not int:
        raise not_found(fn, v)
    return format(v & ((1 << 64) - 1) if v < 0 else v, spec)


register("to_hex", 1)(lambda v: _fmt_int(v, "to_hex", "x"))
register("to_octal", 1)(lambda v: _fmt_int(v, "to_octal", "o"))
register("to_binary", 1)(lambda v: _fmt_int(v, "to_binary", "b"))


@register("abs", 1)
def _abs(v):
    if type(v) is int:
        if v == INT_MIN:
            raise RhaiError("ErrorArithmetic", f"Negation overflow: -{v}")
        return abs(v)
    if type(v) is float:
        return abs(v)
    raise not_found("abs", v)


@register("sign", 1)
def _sign(v):
    if type(v) is int or type(v) is float:
        if v != v:
            raise RhaiError("ErrorArithmetic", "Sign of NaN is undefined")
        return (v > 0) - (v < 0)
    raise not_found("sign", v)


@register("min", 2)
def _min(a, b):
    if (type(a) in (int, float) and type(b) in (int, float)) or \
            (type(a) is type(b) and type(a) in (str, Char)):
        return b if lt(b, a) else a
    raise not_found("min", a, b)


@register("max", 2)
def _max(a, b):
    if (type(a) in (int, float) and type(b) in (int, float)) or \
            (type(a) is type(b) and type(a) in (str, Char)):
        return b if lt(a, b) else a
    raise not_found("max", a, b)


def _num_getter(name, fn):
    def g(v):
        if type(v) is not int and type(v) is not float:
            raise NoGetter
        return fn(v)
    GETTERS[name] = g

    def m(v):
        if type(v) is not int and type(v) is not float:
            raise not_found(name, v)
        return fn(v)
    register(name, 1)(m)


_num_getter("is_zero", lambda v: v == 0)


def _int_getter(name, fn):
    def g(v):
        if type(v) is not int:
            raise NoGetter
        return fn(v)
    GETTERS[name] = g

    def m(v):
        if type(v) is not int:
            raise not_found(name, v)
        return fn(v)
    register(name, 1)(m)


_int_getter("is_odd", lambda v: v % 2 != 0)
_int_getter("is_even", lambda v: v % 2 == 0)


def _float_fn(name, fn, ints=True):
    def f(v):
        if type(v) is float or (ints and type(v) is int):
            return fn(float(v))
        raise not_found(name, v)
    register(name, 1)(f)


def _round_to_int(fn):
    def f(x):
        if x != x or math.isinf(x):
            return x
        return float(fn(x))
    return f


def _round_half_away(x):
    if x != x or math.isinf(x):
        return x
    return float(math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1))


_float_fn("floor", _round_to_int(math.floor), ints=False)
_float_fn("ceiling", _round_to_int(math.ceil), ints=False)
_float_fn("round", _round_half_away, ints=False)
_float_fn("int", _round_to_int(math.trunc), ints=False)
_float_fn("fraction", lambda x: math.fmod(x, 1.0), ints=False)
_float_fn("sqrt", lambda x: math.sqrt(x) if x >= 0 else math.nan)
_float_fn("exp", lambda x: math.exp(x) if x < 709 else math.inf)
_float_fn("ln", lambda x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan))
_float_fn("log", lambda x: math.log10(x) if x > 0 else (-math.inf if x == 0 else math.nan))
for _n in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh"):
    _float_fn(_n, (lambda f: (lambda x: _safe_math(f, x)))(getattr(math, _n)))


def _safe_math(f, x):
    try:
        return f(x)
    except (ValueError, OverflowError):
        return math.nan


@register("log", 2)
def _log2(v, base):
    if type(v) in (int, float) and type(base) in (int, float):
        try:
            return math.log(v, base)
        except (ValueError, ZeroDivisionError):
            return math.nan
    raise not_found("log", v, base)


register("is_nan", 1)(lambda v: v != v if type(v) is float else fail(not_found("is_nan", v)))
register("is_finite", 1)(lambda v: math.isfinite(v) if type(v) is float
                    else fail(not_found("is_finite", v)))
register("is_infinite", 1)(lambda v: math.isinf(v) if type(v) is float
                      else fail(not_found("is_infinite", v)))


def _float_getter(name):
    """Rhai's property form of a float method (`x.floor`, `x.is_nan`)."""
    fn = TABLE[(name, 1)].fn

    def g(v):
        if type(v) is not float:
            raise NoGetter
        return fn(v)
    GETTERS[name] = g


for _name in ("floor", "ceiling", "round", "int", "fraction", "is_nan", "is_finite",
              "is_infinite"):
    _float_getter(_name)
register("PI", 0)(lambda: math.pi)
register("E", 0)(lambda: math.e)
