"""Strings and characters: searching, slicing, splitting, case, trimming, characters.

Methods that change a string return the new string as the receiver (`mut` entries):
Python strings are immutable.
"""

from __future__ import annotations

from ..ops import chk_arr, chk_str, not_found
from ..values import Char, RhaiRange
from .arrays import split_off
from .registry import NoGetter, fail, getter, is_str, register


@getter("bytes")
def _bytes(v):
    if not is_str(v):
        raise NoGetter
    return len(v.encode("utf-8"))


register("bytes", 1)(lambda v: _bytes(v) if is_str(v) else fail(not_found("bytes", v)))


@register("starts_with", 2)
def _starts_with(s, p):
    if is_str(s) and is_str(p):
        return s.startswith(p)
    raise not_found("starts_with", s, p)


@register("ends_with", 2)
def _ends_with(s, p):
    if is_str(s) and is_str(p):
        return s.endswith(p)
    raise not_found("ends_with", s, p)


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


@register("sub_string", 2, 3)
def _sub_string(s, start, length=None):
    if not is_str(s):
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


@register("split", 1)
def _split_ws(s):
    if not is_str(s):
        raise not_found("split", s)
    return s.split()


@register("split", 2)
def _split(s, d):
    if is_str(s):
        if is_str(d):
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
        return split_off(s, d)
    raise not_found("split", s, d)


@register("split", 3)
def _split3(s, d, segments):
    if is_str(s) and is_str(d) and type(segments) is int:
        if segments < 1:
            return [str(s)]
        return s.split(d, segments - 1) if d else _split(s, d)
    raise not_found("split", s, d, segments)


@register("split_rev", 2)
def _split_rev(s, d):
    if is_str(s) and is_str(d):
        return list(reversed(s.split(d)))
    raise not_found("split_rev", s, d)


@register("split_rev", 3)
def _split_rev3(s, d, segments):
    if is_str(s) and is_str(d) and type(segments) is int:
        if segments < 1:
            return [str(s)]
        return list(reversed(s.rsplit(d, segments - 1)))
    raise not_found("split_rev", s, d, segments)


@register("to_upper", 1)
def _to_upper(s):
    if type(s) is str:
        return s.upper()
    if type(s) is Char:
        u = s.upper()
        return Char(u) if len(u) == 1 else s
    raise not_found("to_upper", s)


@register("to_lower", 1)
def _to_lower(s):
    if type(s) is str:
        return s.lower()
    if type(s) is Char:
        u = s.lower()
        return Char(u) if len(u) == 1 else s
    raise not_found("to_lower", s)


@register("make_upper", 1, mut=True)
def _make_upper(s):
    if is_str(s):
        return _to_upper(s), None
    raise not_found("make_upper", s)


@register("make_lower", 1, mut=True)
def _make_lower(s):
    if is_str(s):
        return _to_lower(s), None
    raise not_found("make_lower", s)


@register("trim", 1, mut=True)
def _trim(s):
    if type(s) is str:
        return s.strip(), None
    raise not_found("trim", s)


@register("trim_start", 1, mut=True)
def _trim_start(s):
    if type(s) is str:
        return s.lstrip(), None
    raise not_found("trim_start", s)


@register("trim_end", 1, mut=True)
def _trim_end(s):
    if type(s) is str:
        return s.rstrip(), None
    raise not_found("trim_end", s)


@register("replace", 3, mut=True)
def _replace(s, find, sub):
    if type(s) is str and is_str(find) and is_str(sub):
        if not s:
            return s, None
        return chk_str(s.replace(find, sub)), None
    raise not_found("replace", s, find, sub)


@register("crop", 2, 3, mut=True)
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


@register("pop", 2, mut=True)
def _pop2(s, n):
    if type(s) is str and type(n) is int:
        if not s or n <= 0:
            return s, ""
        return s[:-n] if n < len(s) else "", s[-n:]
    raise not_found("pop", s, n)


@register("chars", 1)
@register("to_chars", 1)
def _chars(s):
    if is_str(s):
        return [Char(c) for c in s]
    raise not_found("chars", s)


@register("chars", 2, 3)
def _chars_of(s, start, length=None):
    """`chars(s, 2..=3)`, `chars(s, from)`, `chars(s, from, len)`: the characters of a part."""
    if is_str(s) and type(start) in (int, RhaiRange) and type(length) in (int, type(None)):
        return [Char(c) for c in _sub_string(s, start, length)]
    raise not_found("chars", s, start, *(() if length is None else (length,)))


@register("is_whitespace", 1)
def _is_whitespace(c):
    if type(c) is Char:
        return c.isspace()
    raise not_found("is_whitespace", c)


@register("is_digit", 1)
def _is_digit(c):
    if type(c) is Char:
        return c.isdigit()
    raise not_found("is_digit", c)


@register("is_alphabetic", 1)
def _is_alpha(c):
    if type(c) is Char:
        return c.isalpha()
    raise not_found("is_alphabetic", c)
