"""Arrays: adding and removing elements, sorting, and the callbacks (`map`, `filter`,
`reduce`, ...) that call a function pointer for each element.
"""

from __future__ import annotations

import functools

from ..errors import RhaiError
from ..limits import current, too_large
from ..ops import chk_arr, chk_str, eq, mismatch, not_found
from ..values import Cell, Char, FnPtr, RhaiRange, copy_value, to_string, type_name
from .registry import is_str, register


@register("push", 2, pure=False)
def _push(a, x):
    if type(a) is list:
        a.append(copy_value(x))
        m = current().max_array_size
        if m and len(a) > m:
            raise too_large("Size of array")
        return None
    raise not_found("push", a, x)


@register("insert", 3, pure=False)
def _insert(a, i, x):
    if type(a) is list and type(i) is int:
        n = len(a)
        j = max(0, n + i) if i < 0 else min(i, n)
        a.insert(j, copy_value(x))
        chk_arr(a)
        return None
    raise not_found("insert", a, i, x)


@register("shift", 1, pure=False)
def _shift(a):
    if type(a) is list:
        return a.pop(0) if a else None
    raise not_found("shift", a)


@register("reverse", 1, pure=False)
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


@register("sort", 1, pure=False)
def _sort(a):
    if type(a) is not list:
        raise not_found("sort", a)
    if len(a) > 1:
        _sort_key_type(a)
        if a[0] is not None:
            a.sort()
    return None


@register("sort", 2, ctx=True, pure=False)
def _sort2(ctx, a, f):
    f = as_fnptr(ctx, f)
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


@register("sort_desc", 1, pure=False)
def _sort_desc(a):
    _sort(a)
    a.reverse()


def as_fnptr(ctx, f):
    """Array callbacks take a function pointer or a function name (Rhai allows both)."""
    if type(f) is str:
        return ctx.inst.make_fnptr(f)
    return f


def bool_result(v, fn):
    """A callback's result where Rhai wants a bool (`filter`, `any`, ...)."""
    if type(v) is bool:
        return v
    raise RhaiError("ErrorMismatchDataType",
                    f"Data type incorrect: {type_name(v)} (expecting bool) in '{fn}' callback",
                    fields={"requested": "bool", "actual": type_name(v)})


@register("map", 2, ctx=True)
def _map(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        call, with_index = ctx.caller(f, 1, 1)
        if with_index:
            return [call(x, i) for i, x in enumerate(copy_value(a))]
        return [call(x) for x in copy_value(a)]
    raise not_found("map", a, f)


def _check_bool(v):
    if type(v) is bool:
        return v
    return bool_result(v, "filter")


@register("filter", 2, ctx=True)
def _filter(ctx, a, f):
    f = as_fnptr(ctx, f)
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
                if bool_result(ctx.call(f, k, copy_value(v)), "filter")}
    raise not_found("filter", a, f)


@register("for_each", 2, ctx=True, pure=False)
def _for_each(ctx, a, f):
    """Rhai's `for_each`: each element is `this` (changes are kept); the optional parameter
    is the index (`a.for_each(|i| this *= i)`)."""
    f = as_fnptr(ctx, f)
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


@register("reduce", 2, 3, ctx=True)
def _reduce(ctx, a, f, init=None):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        acc = init
        for i, x in enumerate(copy_value(a)):
            acc = ctx.call_flex(f, (acc, x), (i,))
        return acc
    raise not_found("reduce", a, f)


@register("reduce_rev", 2, 3, ctx=True)
def _reduce_rev(ctx, a, f, init=None):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        acc = init
        items = copy_value(a)
        for i in range(len(items) - 1, -1, -1):
            acc = ctx.call_flex(f, (acc, items[i]), (i,))
        return acc
    raise not_found("reduce_rev", a, f)


@register("some", 2, ctx=True)
@register("any", 2, ctx=True)
def _some(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        return any(bool_result(ctx.call_flex(f, (x,), (i,)), "some")
                   for i, x in enumerate(copy_value(a)))
    raise not_found("some", a, f)


@register("all", 2, ctx=True)
def _all(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        return all(bool_result(ctx.call_flex(f, (x,), (i,)), "all")
                   for i, x in enumerate(copy_value(a)))
    raise not_found("all", a, f)


@register("find", 2, ctx=True)
def _find(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        for i, x in enumerate(copy_value(a)):
            if bool_result(ctx.call_flex(f, (x,), (i,)), "find"):
                return copy_value(x)
        return None
    raise not_found("find", a, f)


@register("find_map", 2, ctx=True)
def _find_map(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        for i, x in enumerate(copy_value(a)):
            r = ctx.call_flex(f, (x,), (i,))
            if r is not None:
                return r
        return None
    raise not_found("find_map", a, f)


@register("retain", 2, ctx=True, pure=False)
def _retain(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        keep, gone = [], []
        for i, x in enumerate(list(a)):
            kept = bool_result(ctx.call_flex(f, (copy_value(x),), (i,)), "retain")
            (keep if kept else gone).append(x)
        a[:] = keep
        return gone
    if type(a) is dict and type(f) is FnPtr:
        gone = {}
        for k, v in list(a.items()):
            if not bool_result(ctx.call(f, k, copy_value(v)), "retain"):
                gone[k] = a.pop(k)
        return gone
    raise not_found("retain", a, f)


@register("drain", 2, ctx=True, pure=False)
def _drain(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is list and type(f) is FnPtr:
        keep, gone = [], []
        for i, x in enumerate(list(a)):
            hit = bool_result(ctx.call_flex(f, (copy_value(x),), (i,)), "drain")
            (gone if hit else keep).append(x)
        a[:] = keep
        return gone
    if type(a) is dict and type(f) is FnPtr:
        gone = {}
        for k, v in list(a.items()):
            if bool_result(ctx.call(f, k, copy_value(v)), "drain"):
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


@register("drain", 3, pure=False)
def _drain3(a, start, length):
    if type(a) is list and type(start) is int and type(length) is int:
        s, e = _span(len(a), start, length)
        gone = a[s:e]
        del a[s:e]
        return gone
    raise not_found("drain", a, start, length)


@register("retain", 3, pure=False)
def _retain3(a, start, length):
    if type(a) is list and type(start) is int and type(length) is int:
        s, e = _span(len(a), start, length)
        gone = a[:s] + a[e:]
        a[:] = a[s:e]
        return gone
    raise not_found("retain", a, start, length)


@register("splice", 4, pure=False)
def _splice(a, start, length, items):
    if type(a) is list and type(start) is int and type(length) is int and type(items) is list:
        s, e = _span(len(a), start, length)
        a[s:e] = copy_value(items)
        chk_arr(a)
        return None
    raise not_found("splice", a, start, length, items)


@register("extract", 2, 3)
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


@register("chop", 2, pure=False)
def _chop(a, n):
    if type(a) is list and type(n) is int:
        if n <= 0:
            a.clear()
        elif n < len(a):
            del a[:len(a) - n]
        return None
    raise not_found("chop", a, n)


def split_off(a, i):
    """`a.split(i)`: cut the array at `i` and return the tail."""
    if type(i) is not int:
        raise not_found("split", a, i)
    n = len(a)
    j = max(0, n + i) if i < 0 else min(i, n)
    tail = a[j:]
    del a[j:]
    return tail


@register("dedup", 1, pure=False)
def _dedup(a):
    if type(a) is not list:
        raise not_found("dedup", a)
    out = []
    for x in a:
        if not out or not eq(out[-1], x):
            out.append(x)
    a[:] = out
    return None


@register("dedup", 2, ctx=True, pure=False)
def _dedup2(ctx, a, f):
    f = as_fnptr(ctx, f)
    if type(a) is not list or type(f) is not FnPtr:
        raise not_found("dedup", a, f)
    out = []
    for x in a:
        if not out or not bool_result(ctx.call(f, copy_value(out[-1]), copy_value(x)), "dedup"):
            out.append(x)
    a[:] = out
    return None


@register("join", 1, 2)
def _join(a, sep=""):
    if type(a) is list and is_str(sep):
        return chk_str(str(sep).join(to_string(x) for x in a))
    raise not_found("join", a, sep)


@register("zip", 3, ctx=True)
def _zip(ctx, a, b, f):
    if type(a) is list and type(b) is list and type(f) is FnPtr:
        return [ctx.call(f, x, y) for x, y in zip(copy_value(a), copy_value(b))]
    raise not_found("zip", a, b, f)
