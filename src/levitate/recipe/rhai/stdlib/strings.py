"""Rhai's standard functions and methods, with Rhai's semantics.

Each entry is registered under a name and an arity (the receiver counts: `s.contains("x")` is
`contains` with 2 arguments) and dispatches on the argument types itself; an unsupported
combination raises `ErrorFunctionNotFound` naming the types, as Rhai does.

Kinds of entries:
- plain: `fn(*args) -> value`;
- `ctx`: `fn(ctx, *args)`, for functions that call back into the script (`map`, `filter`,
  `reduce`, `sort` with a comparator, `print`, `Fn`, ...); `ctx.call(fnptr, *args)` calls;
- `mut`: `fn(*args) -> (new_receiver, value)`, for methods that change their receiver in place
  and may need to replace it (strings and chars are immutable in Python): `trim`, `replace`,
  `pad`, `truncate`, `crop`, `make_upper`, `make_lower`, `clear`, `append`, `remove`, `pop`...
  The compiled code writes the new receiver back into the variable, array slot or map property
  the method was called on. Arrays and maps are changed in place and returned as they are.

Property getters (`s.len`, `a.is_empty`, `f.name`, `n.is_odd`, ...) are in `GETTERS`.
"""

from __future__ import annotations

import functools
import json
import math

from ..errors import RhaiError
from .. import ops
from ..limits import current, too_large
from ..ops import chk_arr, chk_str, eq, lt, mismatch, not_found
from ..values import (INT_MAX, INT_MIN, Cell, Char, FnPtr, RhaiRange, copy_value, to_debug,
                     to_string, type_name)


class Native:
    __slots__ = ("name", "arity", "fn", "ctx", "mut", "pure")

    def __init__(self, name, arity, fn, ctx=False, mut=False, pure=True):
        self.name = name
        self.arity = arity
        self.fn = fn
        self.ctx = ctx
        self.mut = mut
        self.pure = pure


TABLE: dict[tuple[str, int], Native] = {}
GETTERS: dict[str, object] = {}
# Methods that change their receiver (cannot be called on a constant).
NON_PURE: set[str] = set()


def reg(name: str, *arities: int, ctx: bool = False, mut: bool = False, pure: bool = True):
    def deco(fn):
        for n in arities:
            TABLE[(name, n)] = Native(name, n, fn, ctx=ctx, mut=mut, pure=pure and not mut)
        if mut or not pure:
            NON_PURE.add(name)
        return fn
    return deco


def getter(name: str):
    def deco(fn):
        GETTERS[name] = fn
        return fn
    return deco


class NoGetter(Exception):
    """Raised by a getter that does not apply to the value's type."""


def _is_str(v) -> bool:
    return type(v) is str or type(v) is Char


def _int(v, fn, *args):
    if type(v) is not int:
        raise not_found(fn, *args)
    return v


# ======================================================================================
# printing, types, function pointers
# ======================================================================================

@reg("print", 0, ctx=True)
def _print0(ctx):
    ctx.inst.engine._emit_print("")


@reg("print", 1, ctx=True)
def _print(ctx, v):
    ctx.inst.engine._emit_print(to_string(v))


@reg("debug", 0, ctx=True)
def _debug0(ctx):
    ctx.inst.engine._emit_debug("")


@reg("debug", 1, ctx=True)
def _debug(ctx, v):
    ctx.inst.engine._emit_debug(to_debug(v))


@reg("type_of", 1)
def _type_of(v):
    return type_name(v)


@reg("to_string", 1)
def _to_string(v):
    return to_string(v)


@reg("to_debug", 1)
def _to_debug(v):
    return to_debug(v)


@reg("Fn", 1, ctx=True)
def _fn(ctx, name):
    if not _is_str(name):
        raise mismatch("string", name)
    name = str(name)
    if not name.isidentifier() and not name.startswith("anon$"):
        raise RhaiError("ErrorFunctionNotFound", f"Invalid function name: '{name}'",
                        hint="Fn() takes the name of a function defined in this script or "
                        "registered by the host (functions in modules cannot be named)",
                        fields={"function": name})
    return ctx.inst.make_fnptr(name)


@reg("call", *range(1, 18), ctx=True)
def _call(ctx, fp, *args):
    if type(fp) is not FnPtr:
        raise not_found("call", fp, *args)
    return ctx.call(fp, *args)


@reg("curry", *range(1, 18))
def _curry(fp, *args):
    if type(fp) is not FnPtr:
        raise not_found("curry", fp, *args)
    return fp.with_curry(copy_value(a) for a in args)


@reg("is_def_fn", 2, ctx=True)
def _is_def_fn(ctx, name, arity):
    if not _is_str(name) or type(arity) is not int:
        raise not_found("is_def_fn", name, arity)
    return ctx.inst.has_function(str(name), arity)


@reg("is_def_fn", 3, ctx=True)
def _is_def_fn3(ctx, ns, name, arity):
    return _is_def_fn(ctx, name, arity)


@reg("is_anonymous", 1)
@getter("is_anonymous")
def _is_anonymous(fp):
    if type(fp) is not FnPtr:
        raise NoGetter
    return fp.is_anonymous


@getter("name")
def _fp_name(fp):
    if type(fp) is not FnPtr:
        raise NoGetter
    return fp.name


@reg("name", 1)
def _name(fp):
    if type(fp) is not FnPtr:
        raise not_found("name", fp)
    return fp.name


@reg("eval", 1)
def _eval(s):
    raise RhaiError("ErrorFunctionNotFound", "Function not found: eval (string)",
                    hint="eval is not available in this engine: scripts are compiled ahead of "
                    "time and sandboxed", fields={"function": "eval (string)"})


# ======================================================================================
# numbers
# ======================================================================================

@reg("parse_int", 1)
def _parse_int(s):
    return _parse_int2(s, 10)


@reg("parse_int", 2)
def _parse_int2(s, radix):
    if not _is_str(s) or type(radix) is not int:
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


@reg("parse_float", 1)
def _parse_float(s):
    if not _is_str(s):
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


@reg("to_int", 1)
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


@reg("to_float", 1)
def _to_float(v):
    if type(v) is int or type(v) is float:
        return float(v)
    raise not_found("to_float", v)


@reg("to_char", 1)
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


reg("to_hex", 1)(lambda v: _fmt_int(v, "to_hex", "x"))
reg("to_octal", 1)(lambda v: _fmt_int(v, "to_octal", "o"))
reg("to_binary", 1)(lambda v: _fmt_int(v, "to_binary", "b"))


@reg("abs", 1)
def _abs(v):
    if type(v) is int:
        if v == INT_MIN:
            raise RhaiError("ErrorArithmetic", f"Negation overflow: -{v}")
        return abs(v)
    if type(v) is float:
        return abs(v)
    raise not_found("abs", v)


@reg("sign", 1)
def _sign(v):
    if type(v) is int or type(v) is float:
        if v != v:
            raise RhaiError("ErrorArithmetic", "Sign of NaN is undefined")
        return (v > 0) - (v < 0)
    raise not_found("sign", v)


@reg("min", 2)
def _min(a, b):
    if (type(a) in (int, float) and type(b) in (int, float)) or \
            (type(a) is type(b) and type(a) in (str, Char)):
        return b if lt(b, a) else a
    raise not_found("min", a, b)


@reg("max", 2)
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
    reg(name, 1)(m)


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
    reg(name, 1)(m)


_int_getter("is_odd", lambda v: v % 2 != 0)
_int_getter("is_even", lambda v: v % 2 == 0)


def _float_fn(name, fn, ints=True):
    def f(v):
        if type(v) is float or (ints and type(v) is int):
            return fn(float(v))
        raise not_found(name, v)
    reg(name, 1)(f)


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


@reg("log", 2)
def _log2(v, base):
    if type(v) in (int, float) and type(base) in (int, float):
        try:
            return math.log(v, base)
        except (ValueError, ZeroDivisionError):
            return math.nan
    raise not_found("log", v, base)


reg("is_nan", 1)(lambda v: v != v if type(v) is float else _raise(not_found("is_nan", v)))
reg("is_finite", 1)(lambda v: math.isfinite(v) if type(v) is float
                    else _raise(not_found("is_finite", v)))
reg("is_infinite", 1)(lambda v: math.isinf(v) if type(v) is float
                      else _raise(not_found("is_infinite", v)))


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
reg("PI", 0)(lambda: math.pi)
reg("E", 0)(lambda: math.e)


def _raise(err):
    raise err


@reg("range", 2)
def _range(a, b):
    if type(a) is int and type(b) is int:
        return RhaiRange(a, b)
    raise not_found("range", a, b)


@reg("range", 3)
def _range3(a, b, step):
    if type(a) is int and type(b) is int and type(step) is int:
        if step == 0:
            raise RhaiError("ErrorArithmetic", "step value cannot be zero")
        return range(a, b, step)
    if all(type(x) is float or type(x) is int for x in (a, b, step)) and float in (
            type(a), type(b), type(step)):
        # Rhai's floating-point step range, walked eagerly (capped by the array limit)
        if step == 0:
            raise RhaiError("ErrorArithmetic", "step value cannot be zero")
        out, x = [], float(a)
        while (x < b) if step > 0 else (x > b):
            out.append(x)
            chk_arr(out)
            x += step
        return out
    raise not_found("range", a, b, step)


# ======================================================================================
# strings and characters
# ======================================================================================

def _len(v):
    t = type(v)
    if t is str or t is list or t is dict or t is Char:
        return len(v)
    if t is RhaiRange:
        return len(v.py_range())
    raise NoGetter


GETTERS["len"] = _len


@reg("len", 1)
def _len_m(v):
    try:
        return _len(v)
    except NoGetter:
        raise not_found("len", v) from None


def _is_empty(v):
    t = type(v)
    if t is str or t is list or t is dict or t is Char:
        return len(v) == 0
    if t is RhaiRange:
        return len(v.py_range()) == 0
    raise NoGetter


GETTERS["is_empty"] = _is_empty


@reg("is_empty", 1)
def _is_empty_m(v):
    try:
        return _is_empty(v)
    except NoGetter:
        raise not_found("is_empty", v) from None


@getter("bytes")
def _bytes(v):
    if not _is_str(v):
        raise NoGetter
    return len(v.encode("utf-8"))


reg("bytes", 1)(lambda v: _bytes(v) if _is_str(v) else _raise(not_found("bytes", v)))


@reg("contains", 2)
def _contains(a, b):
    return ops.contains(a, b)


@reg("starts_with", 2)
def _starts_with(s, p):
    if _is_str(s) and _is_str(p):
        return s.startswith(p)
    raise not_found("starts_with", s, p)


@reg("ends_with", 2)
def _ends_with(s, p):
    if _is_str(s) and _is_str(p):
        return s.endswith(p)
    raise not_found("ends_with", s, p)


def _str_start(s, start):
    """Char offset for a Rhai `start` argument: negative counts from the end."""
    n = len(s)
    if start < 0:
        return max(0, n + start)
    return start


@reg("index_of", 2, 3, ctx=True)
def _index_of(ctx, s, x, start=0):
    if _is_str(s):
        if not _is_str(x) or type(start) is not int:
            raise not_found("index_of", s, x, start)
        if not s:
            return -1
        if start >= len(s):
            return -1
        return s.find(x, _str_start(s, start))
    if type(s) is list:
        if type(start) is not int:
            raise not_found("index_of", s, x, start)
        n = len(s)
        i = max(0, n + start) if start < 0 else start
        if type(x) is FnPtr:
            for j in range(i, n):
                if _truthy(ctx.call_flex(x, (copy_value(s[j]),), (j,)), "index_of"):
                    return j
            return -1
        for j in range(i, n):
            if eq(s[j], x):
                return j
        return -1
    raise not_found("index_of", s, x)


def _substr(s, start, length):
    n = len(s)
    if not s or length <= 0:
        return ""
    if start < 0:
        off = max(0, n + start)
    elif start >= n:
        return ""
    else:
        off = start
    return s[off:off + length]


@reg("sub_string", 2, 3)
def _sub_string(s, start, length=None):
    if not _is_str(s):
        raise not_found("sub_string", s, start, *(() if length is None else (length,)))
    s = str(s)
    if type(start) is RhaiRange and length is None:
        st = max(start.start, 0)
        en = max(start.end, st)
        return _substr(s, st, en - st + (1 if start.inclusive else 0))
    if type(start) is not int or (length is not None and type(length) is not int):
        raise not_found("sub_string", s, start, *(() if length is None else (length,)))
    if length is None:
        length = len(s)
    return _substr(s, start, length)


@reg("split", 1)
def _split_ws(s):
    if not _is_str(s):
        raise not_found("split", s)
    return s.split()


@reg("split", 2)
def _split(s, d):
    if _is_str(s):
        if _is_str(d):
            if d == "":
                return [""] + [c for c in s] + [""]
            return chk_arr(s.split(d))
        if type(d) is int:
            n = len(s)
            i = d if d >= 0 else max(0, n + d)
            i = min(i, n)
            return [s[:i], s[i:]]
        raise not_found("split", s, d)
    if type(s) is list:
        return _arr_split(s, d)
    raise not_found("split", s, d)


@reg("split", 3)
def _split3(s, d, segments):
    if _is_str(s) and _is_str(d) and type(segments) is int:
        if segments < 1:
            return [str(s)]
        return s.split(d, segments - 1) if d else _split(s, d)
    raise not_found("split", s, d, segments)


@reg("split_rev", 2)
def _split_rev(s, d):
    if _is_str(s) and _is_str(d):
        return list(reversed(s.split(d)))
    raise not_found("split_rev", s, d)


@reg("split_rev", 3)
def _split_rev3(s, d, segments):
    if _is_str(s) and _is_str(d) and type(segments) is int:
        if segments < 1:
            return [str(s)]
        return list(reversed(s.rsplit(d, segments - 1)))
    raise not_found("split_rev", s, d, segments)


@reg("to_upper", 1)
def _to_upper(s):
    if type(s) is str:
        return s.upper()
    if type(s) is Char:
        u = s.upper()
        return Char(u) if len(u) == 1 else s
    raise not_found("to_upper", s)


@reg("to_lower", 1)
def _to_lower(s):
    if type(s) is str:
        return s.lower()
    if type(s) is Char:
        u = s.lower()
        return Char(u) if len(u) == 1 else s
    raise not_found("to_lower", s)


@reg("make_upper", 1, mut=True)
def _make_upper(s):
    if _is_str(s):
        return _to_upper(s), None
    raise not_found("make_upper", s)


@reg("make_lower", 1, mut=True)
def _make_lower(s):
    if _is_str(s):
        return _to_lower(s), None
    raise not_found("make_lower", s)


@reg("trim", 1, mut=True)
def _trim(s):
    if type(s) is str:
        return s.strip(), None
    raise not_found("trim", s)


@reg("trim_start", 1, mut=True)
def _trim_start(s):
    if type(s) is str:
        return s.lstrip(), None
    raise not_found("trim_start", s)


@reg("trim_end", 1, mut=True)
def _trim_end(s):
    if type(s) is str:
        return s.rstrip(), None
    raise not_found("trim_end", s)


@reg("replace", 3, mut=True)
def _replace(s, find, sub):
    if type(s) is str and _is_str(find) and _is_str(sub):
        if not s:
            return s, None
        return chk_str(s.replace(find, sub)), None
    raise not_found("replace", s, find, sub)


@reg("pad", 3, mut=True)
def _pad(s, n, fill):
    if type(n) is not int:
        raise not_found("pad", s, n, fill)
    if type(s) is str and _is_str(fill):
        m = current().max_string_size
        if m and n > m:
            raise too_large("Length of string")
        cur = len(s)
        if n <= cur or not fill:
            return s, None
        need = n - cur
        reps = fill * (need // len(fill) + 1)
        return s + reps[:need], None
    if type(s) is list:
        m = current().max_array_size
        if m and n > m:
            raise too_large("Size of array")
        while len(s) < n:
            s.append(copy_value(fill))
        return s, None
    raise not_found("pad", s, n, fill)


@reg("truncate", 2, mut=True)
def _truncate(s, n):
    if type(n) is not int:
        raise not_found("truncate", s, n)
    if type(s) is str:
        return (s[:n] if n > 0 else ""), None
    if type(s) is list:
        del s[max(n, 0):]
        return s, None
    raise not_found("truncate", s, n)


@reg("crop", 2, 3, mut=True)
def _crop(s, start, length=None):
    if type(s) is not str:
        raise not_found("crop", s, start, *(() if length is None else (length,)))
    if type(start) is RhaiRange and length is None:
        st = max(start.start, 0)
        en = max(start.end, st)
        return _substr(s, st, en - st + (1 if start.inclusive else 0)), None
    if type(start) is not int or (length is not None and type(length) is not int):
        raise not_found("crop", s, start, *(() if length is None else (length,)))
    if length is None:
        length = len(s)
    return _substr(s, start, length), None


@reg("clear", 1, mut=True)
def _clear(s):
    if type(s) is str:
        return "", None
    if type(s) is list or type(s) is dict:
        s.clear()
        return s, None
    raise not_found("clear", s)


@reg("append", 2, mut=True)
def _append(s, x):
    if type(s) is str:
        return chk_str(s + to_string(x)), None
    if type(s) is list:
        if type(x) is list:
            s.extend(copy_value(x))
        else:
            s.append(copy_value(x))
        return chk_arr(s), None
    raise not_found("append", s, x)


@reg("remove", 2, mut=True)
def _remove(s, x):
    t = type(s)
    if t is str:
        if _is_str(x):
            return s.replace(x, ""), None
        raise not_found("remove", s, x)
    if t is list:
        if type(x) is not int:
            raise not_found("remove", s, x)
        n = len(s)
        i = n + x if x < 0 else x
        if 0 <= i < n:
            return s, s.pop(i)
        return s, None
    if t is dict:
        if _is_str(x):
            return s, s.pop(str(x), None)
        raise not_found("remove", s, x)
    raise not_found("remove", s, x)


@reg("pop", 1, mut=True)
def _pop(s):
    if type(s) is str:
        if not s:
            return s, None
        return s[:-1], Char(s[-1])
    if type(s) is list:
        return s, (s.pop() if s else None)
    raise not_found("pop", s)


@reg("pop", 2, mut=True)
def _pop2(s, n):
    if type(s) is str and type(n) is int:
        if not s or n <= 0:
            return s, ""
        return s[:-n] if n < len(s) else "", s[-n:]
    raise not_found("pop", s, n)


@reg("get", 2)
def _get(s, i):
    t = type(s)
    if type(i) is int and (t is str or t is list):
        n = len(s)
        j = n + i if i < 0 else i
        if 0 <= j < n:
            return Char(s[j]) if t is str else copy_value(s[j])
        return None
    if t is dict and _is_str(i):
        return copy_value(s.get(str(i)))
    raise not_found("get", s, i)


@reg("set", 3, mut=True)
def _set(s, i, v):
    t = type(s)
    if t is str and type(i) is int and type(v) is Char:
        n = len(s)
        j = n + i if i < 0 else i
        if 0 <= j < n:
            return s[:j] + v + s[j + 1:], None
        return s, None
    if t is list and type(i) is int:
        n = len(s)
        j = n + i if i < 0 else i
        if 0 <= j < n:
            s[j] = copy_value(v)
        return s, None
    if t is dict and _is_str(i):
        s[str(i)] = copy_value(v)
        return s, None
    raise not_found("set", s, i, v)


@reg("chars", 1)
@reg("to_chars", 1)
def _chars(s):
    if _is_str(s):
        return [Char(c) for c in s]
    raise not_found("chars", s)


@reg("chars", 2, 3)
def _chars_of(s, start, length=None):
    """`chars(s, 2..=3)`, `chars(s, from)`, `chars(s, from, len)`: the characters of a part."""
    if _is_str(s) and type(start) in (int, RhaiRange) and type(length) in (int, type(None)):
        return [Char(c) for c in _sub_string(s, start, length)]
    raise not_found("chars", s, start, *(() if length is None else (length,)))


@reg("is_whitespace", 1)
def _is_whitespace(c):
    if type(c) is Char:
        return c.isspace()
    raise not_found("is_whitespace", c)


@reg("is_digit", 1)
def _is_digit(c):
    if type(c) is Char:
        return c.isdigit()
    raise not_found("is_digit", c)


@reg("is_alphabetic", 1)
def _is_alpha(c):
    if type(c) is Char:
        return c.isalpha()
    raise not_found("is_alphabetic", c)


# ======================================================================================
# arrays
# ======================================================================================

@reg("push", 2, pure=False)
def _push(a, x):
    if type(a) is list:
        a.append(copy_value(x))
        m = current().max_array_size
        if m and len(a) > m:
            raise too_large("Size of array")
        return None
    raise not_found("push", a, x)


@reg("insert", 3, pure=False)
def _insert(a, i, x):
    if type(a) is list and type(i) is int:
        n = len(a)
        j = max(0, n + i) if i < 0 else min(i, n)
        a.insert(j, copy_value(x))
        chk_arr(a)
        return None
    raise not_found("insert", a, i, x)


@reg("shift", 1, pure=False)
def _shift(a):
    if type(a) is list:
        return a.pop(0) if a else None
    raise not_found("shift", a)


@reg("reverse", 1, pure=False)
def _reverse(a):
    if type(a) is list:
        a.reverse()
        return None
    raise not_found("reverse", a)


def _sort_key_type(a):
    t = type(a[0])
    for x in a:
        if type(x) is not t and not (type(x) in (int, float) and t in (int, float)):
            raise RhaiError("ErrorFunctionNotFound",
                            "Cannot sort an array containing values of different types "
                            f"({type_name(a[0])} and {type_name(x)})",
                            hint="pass a comparison function: arr.sort(|a, b| ...)")
    if t not in (int, float, str, Char, bool) and a[0] is not None:
        raise not_found("sort", a)


@reg("sort", 1, pure=False)
def _sort(a):
    if type(a) is not list:
        raise not_found("sort", a)
    if len(a) > 1:
        _sort_key_type(a)
        if a[0] is not None:
            a.sort()
    return None


@reg("sort", 2, ctx=True, pure=False)
def _sort2(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is not list or type(f) is not FnPtr:
        raise not_found("sort", a, f)

    def cmp(x, y):
        r = ctx.call(f, copy_value(x), copy_value(y))
        if type(r) is int:
            return (r > 0) - (r < 0)
        if type(r) is bool:  # tolerate `|a, b| a < b`-style comparators
            return -1 if r else 1
        raise mismatch("i64", r)
    a.sort(key=functools.cmp_to_key(cmp))
    return None


@reg("sort_desc", 1, pure=False)
def _sort_desc(a):
    _sort(a)
    a.reverse()


def _fp(ctx, f):
    """Array callbacks take a function pointer or a function name (Rhai allows both)."""
    if type(f) is str:
        return ctx.inst.make_fnptr(f)
    return f


def _truthy(v, fn):
    if type(v) is bool:
        return v
    raise RhaiError("ErrorMismatchDataType",
                    f"Data type incorrect: {type_name(v)} (expecting bool) in '{fn}' callback",
                    fields={"requested": "bool", "actual": type_name(v)})


@reg("map", 2, ctx=True)
def _map(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        call, with_index = ctx.caller(f, 1, 1)
        if with_index:
            return [call(x, i) for i, x in enumerate(copy_value(a))]
        return [call(x) for x in copy_value(a)]
    raise not_found("map", a, f)


def _check_bool(v):
    if type(v) is bool:
        return v
    return _truthy(v, "filter")


@reg("filter", 2, ctx=True)
def _filter(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        call, with_index = ctx.caller(f, 1, 1)
        if with_index:
            return [x for i, x in enumerate(copy_value(a)) if _check_bool(call(x, i))]
        out = []
        for x in copy_value(a):
            r = call(x)
            if r is True or (r is not False and _check_bool(r)):
                out.append(x)
        return out
    if type(a) is dict and type(f) is FnPtr:
        return {k: copy_value(v) for k, v in list(a.items())
                if _truthy(ctx.call(f, k, copy_value(v)), "filter")}
    raise not_found("filter", a, f)


@reg("for_each", 2, ctx=True, pure=False)
def _for_each(ctx, a, f):
    """Rhai's `for_each`: each element is `this` (changes are kept); the optional parameter
    is the index (`a.for_each(|i| this *= i)`)."""
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        takes_index = ctx.inst.fnptr_arity(f) != 0
        for i in range(len(a)):
            if i >= len(a):
                break
            cell = Cell(a[i])
            ctx.inst.call_fnptr(ctx.d, f, (i,) if takes_index else (), this=cell)
            if i < len(a):
                a[i] = cell.v
        return None
    raise not_found("for_each", a, f)


@reg("reduce", 2, 3, ctx=True)
def _reduce(ctx, a, f, init=None):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        acc = init
        for i, x in enumerate(copy_value(a)):
            acc = ctx.call_flex(f, (acc, x), (i,))
        return acc
    raise not_found("reduce", a, f)


@reg("reduce_rev", 2, 3, ctx=True)
def _reduce_rev(ctx, a, f, init=None):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        acc = init
        items = copy_value(a)
        for i in range(len(items) - 1, -1, -1):
            acc = ctx.call_flex(f, (acc, items[i]), (i,))
        return acc
    raise not_found("reduce_rev", a, f)


@reg("some", 2, ctx=True)
@reg("any", 2, ctx=True)
def _some(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        return any(_truthy(ctx.call_flex(f, (x,), (i,)), "some")
                   for i, x in enumerate(copy_value(a)))
    raise not_found("some", a, f)


@reg("all", 2, ctx=True)
def _all(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        return all(_truthy(ctx.call_flex(f, (x,), (i,)), "all")
                   for i, x in enumerate(copy_value(a)))
    raise not_found("all", a, f)


@reg("find", 2, ctx=True)
def _find(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        for i, x in enumerate(copy_value(a)):
            if _truthy(ctx.call_flex(f, (x,), (i,)), "find"):
                return copy_value(x)
        return None
    raise not_found("find", a, f)


@reg("find_map", 2, ctx=True)
def _find_map(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        for i, x in enumerate(copy_value(a)):
            r = ctx.call_flex(f, (x,), (i,))
            if r is not None:
                return r
        return None
    raise not_found("find_map", a, f)


@reg("retain", 2, ctx=True, pure=False)
def _retain(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        keep, gone = [], []
        for i, x in enumerate(list(a)):
            kept = _truthy(ctx.call_flex(f, (copy_value(x),), (i,)), "retain")
            (keep if kept else gone).append(x)
        a[:] = keep
        return gone
    if type(a) is dict and type(f) is FnPtr:
        gone = {}
        for k, v in list(a.items()):
            if not _truthy(ctx.call(f, k, copy_value(v)), "retain"):
                gone[k] = a.pop(k)
        return gone
    raise not_found("retain", a, f)


@reg("drain", 2, ctx=True, pure=False)
def _drain(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        keep, gone = [], []
        for i, x in enumerate(list(a)):
            (gone if _truthy(ctx.call_flex(f, (copy_value(x),), (i,)), "drain") else keep).append(x)
        a[:] = keep
        return gone
    if type(a) is dict and type(f) is FnPtr:
        gone = {}
        for k, v in list(a.items()):
            if _truthy(ctx.call(f, k, copy_value(v)), "drain"):
                gone[k] = a.pop(k)
        return gone
    raise not_found("drain", a, f)


def _span(n, start, length):
    """Rhai's (start, len) array window: start < 0 counts from the end, clamped."""
    if start < 0:
        start = max(0, n + start)
    start = min(start, n)
    if length <= 0:
        return start, start
    return start, min(n, start + length)


@reg("drain", 3, pure=False)
def _drain3(a, start, length):
    if type(a) is list and type(start) is int and type(length) is int:
        s, e = _span(len(a), start, length)
        gone = a[s:e]
        del a[s:e]
        return gone
    raise not_found("drain", a, start, length)


@reg("retain", 3, pure=False)
def _retain3(a, start, length):
    if type(a) is list and type(start) is int and type(length) is int:
        s, e = _span(len(a), start, length)
        gone = a[:s] + a[e:]
        a[:] = a[s:e]
        return gone
    raise not_found("retain", a, start, length)


@reg("splice", 4, pure=False)
def _splice(a, start, length, items):
    if type(a) is list and type(start) is int and type(length) is int and type(items) is list:
        s, e = _span(len(a), start, length)
        a[s:e] = copy_value(items)
        chk_arr(a)
        return None
    raise not_found("splice", a, start, length, items)


@reg("extract", 2, 3)
def _extract(a, start, length=None):
    if type(a) is not list:
        raise not_found("extract", a, start)
    if type(start) is RhaiRange and length is None:
        st = max(start.start, 0)
        en = max(start.end, st) + (1 if start.inclusive else 0)  # Rhai's clamping
        return copy_value(a[st:en])
    if type(start) is not int or (length is not None and type(length) is not int):
        raise not_found("extract", a, start)
    if length is None:
        length = len(a)
    s, e = _span(len(a), start, length)
    return copy_value(a[s:e])


@reg("chop", 2, pure=False)
def _chop(a, n):
    if type(a) is list and type(n) is int:
        if n <= 0:
            a.clear()
        elif n < len(a):
            del a[:len(a) - n]
        return None
    raise not_found("chop", a, n)


def _arr_split(a, i):
    if type(i) is not int:
        raise not_found("split", a, i)
    n = len(a)
    j = max(0, n + i) if i < 0 else min(i, n)
    tail = a[j:]
    del a[j:]
    return tail


@reg("dedup", 1, pure=False)
def _dedup(a):
    if type(a) is not list:
        raise not_found("dedup", a)
    out = []
    for x in a:
        if not out or not eq(out[-1], x):
            out.append(x)
    a[:] = out
    return None


@reg("dedup", 2, ctx=True, pure=False)
def _dedup2(ctx, a, f):
    f = _fp(ctx, f)
    if type(a) is not list or type(f) is not FnPtr:
        raise not_found("dedup", a, f)
    out = []
    for x in a:
        if not out or not _truthy(ctx.call(f, copy_value(out[-1]), copy_value(x)), "dedup"):
            out.append(x)
    a[:] = out
    return None


@reg("join", 1, 2)
def _join(a, sep=""):
    if type(a) is list and _is_str(sep):
        return chk_str(str(sep).join(to_string(x) for x in a))
    raise not_found("join", a, sep)


@reg("zip", 3, ctx=True)
def _zip(ctx, a, b, f):
    if type(a) is list and type(b) is list and type(f) is FnPtr:
        return [ctx.call(f, x, y) for x, y in zip(copy_value(a), copy_value(b))]
    raise not_found("zip", a, b, f)


@reg("equals", 2)
def _equals(a, b):
    return eq(a, b)


# ======================================================================================
# object maps
# ======================================================================================

@reg("keys", 1)
def _keys(m):
    if type(m) is dict:
        return sorted(m)
    raise not_found("keys", m)


@reg("values", 1)
def _values(m):
    if type(m) is dict:
        return [copy_value(m[k]) for k in sorted(m)]
    raise not_found("values", m)


@reg("mixin", 2, pure=False)
def _mixin(m, other):
    if type(m) is dict and type(other) is dict:
        m.update(copy_value(other))
        ops.chk_map(m)
        return None
    raise not_found("mixin", m, other)


@reg("fill_with", 2, pure=False)
def _fill_with(m, other):
    if type(m) is dict and type(other) is dict:
        for k, v in other.items():
            if k not in m:
                m[k] = copy_value(v)
        return None
    raise not_found("fill_with", m, other)


@reg("to_json", 1)
def _to_json(m):
    def conv(v):
        t = type(v)
        if t is dict:
            return {k: conv(x) for k, x in sorted(v.items())}
        if t is list:
            return [conv(x) for x in v]
        if v is None or t in (bool, int, float, str, Char):
            return v
        if t is FnPtr:  # Rhai writes a function pointer as its name (with its curried values)
            return [v.name, *map(conv, v.curry)] if v.curry else v.name
        return to_string(v)
    if type(m) is dict or type(m) is list:
        return json.dumps(conv(m), separators=(",", ":"), ensure_ascii=False)
    raise not_found("to_json", m)


@reg("parse_json", 1)
def _parse_json(s):
    if not _is_str(s):
        raise not_found("parse_json", s)
    try:
        v = json.loads(str(s))
    except ValueError as e:
        raise RhaiError("ErrorRuntime", f"invalid JSON: {e}", value=f"invalid JSON: {e}") \
            from None
    from ..values import to_rhai
    return to_rhai(v)


# ======================================================================================
# ranges
# ======================================================================================

def _range_getter(name, fn):
    def g(r):
        if type(r) is not RhaiRange:
            raise NoGetter
        return fn(r)
    GETTERS[name] = g
    reg(name, 1)(lambda r: g(r) if type(r) is RhaiRange else _raise(not_found(name, r)))


_range_getter("start", lambda r: r.start)
_range_getter("end", lambda r: r.end)
_range_getter("is_inclusive", lambda r: r.inclusive)
_range_getter("is_exclusive", lambda r: not r.inclusive)


# Names whose first argument may be a constant (they do not change it).
PURE_NAMES = frozenset(n for (n, _), e in TABLE.items() if e.pure) - NON_PURE
