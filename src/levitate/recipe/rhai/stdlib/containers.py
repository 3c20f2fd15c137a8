"""Methods that strings, arrays and maps share (`len`, `contains`, `get`, `set`, `remove`,
`pop`, `append`, `pad`, ...): one entry per name and arity dispatches on the receiver type.
"""

from __future__ import annotations

from ..limits import current, too_large
from ..ops import chk_arr, chk_str, contains, eq, not_found
from ..values import Char, FnPtr, RhaiRange, copy_value, to_string
from .arrays import bool_result
from .registry import GETTERS, NoGetter, is_str, register


def _len(v):
    t = type(v)
    if t is str or t is list or t is dict or t is Char:
        return len(v)
    if t is RhaiRange:
        return len(v.py_range())
    raise NoGetter


GETTERS["len"] = _len


@register("len", 1)
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


@register("is_empty", 1)
def _is_empty_m(v):
    try:
        return _is_empty(v)
    except NoGetter:
        raise not_found("is_empty", v) from None


@register("contains", 2)
def _contains(a, b):
    return contains(a, b)


def _str_start(s, start):
    """Char offset for a Rhai `start` argument: negative counts from the end."""
    n = len(s)
    if start < 0:
        return max(0, n + start)
    return start


@register("index_of", 2, 3, ctx=True)
def _index_of(ctx, s, x, start=0):
    if is_str(s):
        if not is_str(x) or type(start) is not int:
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
                if bool_result(ctx.call_flex(x, (copy_value(s[j]),), (j,)), "index_of"):
                    return j
            return -1
        for j in range(i, n):
            if eq(s[j], x):
                return j
        return -1
    raise not_found("index_of", s, x)


@register("pad", 3, mut=True)
def _pad(s, n, fill):
    if type(n) is not int:
        raise not_found("pad", s, n, fill)
    if type(s) is str and is_str(fill):
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


@register("truncate", 2, mut=True)
def _truncate(s, n):
    if type(n) is not int:
        raise not_found("truncate", s, n)
    if type(s) is str:
        return (s[:n] if n > 0 else ""), None
    if type(s) is list:
        del s[max(n, 0):]
        return s, None
    raise not_found("truncate", s, n)


@register("clear", 1, mut=True)
def _clear(s):
    if type(s) is str:
        return "", None
    if type(s) is list or type(s) is dict:
        s.clear()
        return s, None
    raise not_found("clear", s)


@register("append", 2, mut=True)
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


@register("remove", 2, mut=True)
def _remove(s, x):
    t = type(s)
    if t is str:
        if is_str(x):
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
        if is_str(x):
            return s, s.pop(str(x), None)
        raise not_found("remove", s, x)
    raise not_found("remove", s, x)


@register("pop", 1, mut=True)
def _pop(s):
    if type(s) is str:
        if not s:
            return s, None
        return s[:-1], Char(s[-1])
    if type(s) is list:
        return s, (s.pop() if s else None)
    raise not_found("pop", s)


@register("get", 2)
def _get(s, i):
    t = type(s)
    if type(i) is int and (t is str or t is list):
        n = len(s)
        j = n + i if i < 0 else i
        if 0 <= j < n:
            return Char(s[j]) if t is str else copy_value(s[j])
        return None
    if t is dict and is_str(i):
        return copy_value(s.get(str(i)))
    raise not_found("get", s, i)


@register("set", 3, mut=True)
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
    if t is dict and is_str(i):
        s[str(i)] = copy_value(v)
        return s, None
    raise not_found("set", s, i, v)
