"""Ranges: `range(...)` and the range properties (`r.start`, `r.end`, `r.is_inclusive`)."""

from __future__ import annotations

from ..errors import RhaiError
from ..ops import chk_arr, not_found
from ..values import RhaiRange
from .registry import GETTERS, NoGetter, fail, register


@register("range", 2)
def _range(a, b):
    if type(a) is int and type(b) is int:
        return RhaiRange(a, b)
    raise not_found("range", a, b)


@register("range", 3)
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


def _range_getter(name, fn):
    def g(r):
        if type(r) is not RhaiRange:
            raise NoGetter
        return fn(r)
    GETTERS[name] = g
    register(name, 1)(lambda r: g(r) if type(r) is RhaiRange else fail(not_found(name, r)))


_range_getter("start", lambda r: r.start)
_range_getter("end", lambda r: r.end)
_range_getter("is_inclusive", lambda r: r.inclusive)
_range_getter("is_exclusive", lambda r: not r.inclusive)
