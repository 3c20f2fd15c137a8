"""Object maps: keys, values, merging, and JSON text."""

from __future__ import annotations

import json

from ..errors import RhaiError
from ..ops import chk_map, not_found
from ..values import Char, FnPtr, copy_value, to_rhai, to_string
from .registry import is_str, register


@register("keys", 1)
def _keys(m):
    if type(m) is dict:
        return sorted(m)
    raise not_found("keys", m)


@register("values", 1)
def _values(m):
    if type(m) is dict:
        return [copy_value(m[k]) for k in sorted(m)]
    raise not_found("values", m)


@register("mixin", 2, pure=False)
def _mixin(m, other):
    if type(m) is dict and type(other) is dict:
        m.update(copy_value(other))
        chk_map(m)
        return None
    raise not_found("mixin", m, other)


@register("fill_with", 2, pure=False)
def _fill_with(m, other):
    if type(m) is dict and type(other) is dict:
        for k, v in other.items():
            if k not in m:
                m[k] = copy_value(v)
        return None
    raise not_found("fill_with", m, other)


@register("to_json", 1)
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


@register("parse_json", 1)
def _parse_json(s):
    if not is_str(s):
        raise not_found("parse_json", s)
    try:
        v = json.loads(str(s))
    except ValueError as e:
        raise RhaiError("ErrorRuntime", f"invalid JSON: {e}", value=f"invalid JSON: {e}") \
            from None
    return to_rhai(v)
