"""Rhai values as Python objects.

| Rhai            | Python                                   | `type_of()`      |
|-----------------|------------------------------------------|------------------|
| `()`            | `None`                                   | `"()"`           |
| bool            | `bool`                                   | `"bool"`         |
| integer         | `int`, kept in the i64 range (checked)    | `"i64"`          |
| float           | `float`                                  | `"f64"`          |
| string          | `str`                                    | `"string"`       |
| char            | `Char` (a one-character `str` subclass)  | `"char"`         |
| array           | `list`                                   | `"array"`        |
| object map      | `dict` with `str` keys                   | `"map"`          |
| function pointer| `FnPtr`                                  | `"Fn"`           |
| range           | `RhaiRange`                              | `"range"`, `"range="` |

Rhai values have value semantics: assigning an array or map, or passing it to a function, copies
it. The compiler inserts `copy_value` where a stored value is read into a new place; method calls
work on the original (by reference), as in Rhai.
"""

from __future__ import annotations

from decimal import Decimal

from .errors import RhaiError
from .limits import current, too_large

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1


class Char(str):
    """A Rhai `char`: exactly one Unicode character, a type distinct from strings."""
    __slots__ = ()

    def __repr__(self) -> str:
        return f"Char({str.__repr__(self)})"


class Cell:
    """A shared variable: what a closure captures (Rhai's shared values)."""
    __slots__ = ("v",)

    def __init__(self, v=None):
        self.v = v

    def __repr__(self) -> str:
        return f"Cell({self.v!r})"


class _Unbound:
    """`this` outside a method call: reading or writing it is Rhai's ErrorUnboundThis."""
    __slots__ = ()

    @property
    def v(self):
        raise RhaiError("ErrorUnboundThis", "'this' not bound",
                        hint="call the function in method style: value.function(...)")

    @v.setter
    def v(self, value):
        raise RhaiError("ErrorUnboundThis", "'this' not bound",
                        hint="call the function in method style: value.function(...)")


UNBOUND = _Unbound()


class FnPtr:
    """A function pointer: a name, optionally a compiled function (closures and resolved script
    functions), captured shared variables, curried arguments, and the environment (top-level
    scope) of the code that created it."""
    __slots__ = ("name", "fn", "captures", "curry", "env", "instance", "arity")

    def __init__(self, name: str, fn=None, captures: tuple = (), curry: tuple = (), env=None,
                 instance=None, arity: int | None = None):
        self.name = name
        self.fn = fn
        self.captures = captures
        self.curry = curry
        self.env = env
        self.instance = instance
        self.arity = arity

    @property
    def is_anonymous(self) -> bool:
        return self.name.startswith("anon$")

    def with_curry(self, extra) -> "FnPtr":
        return FnPtr(self.name, self.fn, self.captures, self.curry + tuple(extra), self.env,
                     self.instance, self.arity)

    def __eq__(self, other):
        return (isinstance(other, FnPtr) and self.name == other.name
                and self.curry == other.curry and self.captures == other.captures)

    def __hash__(self):
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Fn({self.name})"

    def __call__(self, *args):
        """Call from Python (host code holding a function pointer)."""
        if self.instance is None:
            raise TypeError(f"function pointer {self.name} is not bound to a script")
        return self.instance.call_fnptr_from_host(self, args)


class RhaiRange:
    """`a..b` (exclusive) or `a..=b` (inclusive) over integers."""
    __slots__ = ("start", "end", "inclusive")

    def __init__(self, start: int, end: int, inclusive: bool = False):
        self.start = start
        self.end = end
        self.inclusive = inclusive

    def py_range(self) -> range:
        return range(self.start, self.end + 1 if self.inclusive else self.end)

    def __contains__(self, x) -> bool:
        return type(x) is int and (self.start <= x <= self.end if self.inclusive
                                   else self.start <= x < self.end)

    def __eq__(self, other):
        return (isinstance(other, RhaiRange) and self.start == other.start
                and self.end == other.end and self.inclusive == other.inclusive)

    def __hash__(self):
        return hash((self.start, self.end, self.inclusive))

    def __len__(self) -> int:
        return len(self.py_range())

    def __repr__(self) -> str:
        return f"{self.start}..{'=' if self.inclusive else ''}{self.end}"


# --- type names ---------------------------------------------------------------------------

_TYPE_NAMES = {type(None): "()", bool: "bool", int: "i64", float: "f64", str: "string",
               Char: "char", list: "array", dict: "map", FnPtr: "Fn"}


def type_name(v) -> str:
    """Rhai's name for the type of a value (`i64`, `string`, `array`, ...)."""
    t = type(v)
    name = _TYPE_NAMES.get(t)
    if name is not None:
        return name
    if t is RhaiRange:
        return "range=" if v.inclusive else "range"
    if isinstance(v, str):
        return "char" if isinstance(v, Char) else "string"
    return t.__name__


# --- formatting ---------------------------------------------------------------------------

def format_float(x: float) -> str:
    """Rhai's float display: `1.0`, `0.1`, `1e20`, `1.5e-14`, `NaN`, `inf`."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == 0.0:
        return "0.0"
    r = repr(x)
    if a > 1e13 or a < 1e-13:
        d = Decimal(r)
        sign, digits, exp = d.as_tuple()
        ds = "".join(map(str, digits)).rstrip("0") or "0"
        e = exp + len(digits) - 1
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{'-' if sign else ''}{mant}e{e}"
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if "." not in r:
        r += ".0"
    return r


_DEBUG_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def debug_str(s: str, quote: str = '"') -> str:
    """A string in Rust's `{:?}` style: quoted, with escapes."""
    out = [quote]
    for c in s:
        e = _DEBUG_ESCAPES.get(c)
        if e is not None and (c != '"' or quote == '"'):
            out.append(e)
        elif c == "'" and quote == "'":
            out.append("\\'")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    out.append(quote)
    return "".join(out)


def to_string(v) -> str:
    """What `print`, `to_string` and string interpolation show."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is Char:
        return str(v)
    if v is None:
        return ""
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return format_float(v)
    if t is list or t is dict:
        return to_debug(v)
    if t is FnPtr:
        return f"Fn({v.name})"
    if t is RhaiRange:
        return repr(v)
    if isinstance(v, str):
        return str(v)
    return str(v)


def to_debug(v) -> str:
    """What `debug` shows: strings quoted, `()` visible."""
    t = type(v)
    if t is str:
        return debug_str(v)
    if t is Char:
        return debug_str(v, "'")
    if v is None:
        return "()"
    if t is list:
        return "[" + ", ".join(to_debug(x) for x in v) + "]"
    if t is dict:
        return "#{" + ", ".join(f"{debug_str(k)}: {to_debug(v[k])}" for k in sorted(v)) + "}"
    if t is FnPtr:
        return f"Fn({v.name})"
    return to_string(v)


# --- copying (value semantics) ------------------------------------------------------------

def copy_value(v):
    """A deep copy of arrays and maps; other values are immutable and returned as they are.

    Copying nested containers counts all their elements against the running engine's array
    and map size limits (Rhai sizes nested data as a whole): without it `a = [a, a]` in a loop
    doubles the data each time while every single array stays tiny."""
    t = type(v)
    if t is list:
        if _MUTABLE.isdisjoint(map(type, v)):
            return v[:]
        return _copy_nested(v, [0, 0, *_nested_limits()])
    if t is dict:
        if _MUTABLE.isdisjoint(map(type, v.values())):
            return v.copy()
        return _copy_nested(v, [0, 0, *_nested_limits()])
    return v


def _copy_nested(v, count):
    """count: [arrays seen, maps seen, max arrays, max maps] (0 = no limit)."""
    if type(v) is list:
        count[0] += len(v)
        if count[2] and count[0] > count[2]:
            raise too_large("Size of array")
        return [_copy_nested(x, count) if type(x) in _MUTABLE else x for x in v]
    count[1] += len(v)
    if count[3] and count[1] > count[3]:
        raise too_large("Size of object map")
    return {k: (_copy_nested(x, count) if type(x) in _MUTABLE else x) for k, x in v.items()}


def _nested_limits() -> tuple[int, int]:
    """(max array size, max map size) of the running engine."""
    limits = current()
    return limits.max_array_size, limits.max_map_size


_MUTABLE = frozenset({list, dict})


# --- conversion between Python and Rhai ---------------------------------------------------

def to_rhai(v, *, _path: str = "value"):
    """Convert a Python value from host code into a Rhai value."""
    t = type(v)
    if v is None or t is bool or t is float or t is str or t is Char or t is FnPtr \
            or t is RhaiRange:
        return v
    if t is int:
        if not INT_MIN <= v <= INT_MAX:
            raise RhaiError("ErrorArithmetic",
                            f"integer {v} from the host does not fit in 64 bits ({_path})")
        return v
    if t is list or t is tuple:
        return [to_rhai(x, _path=_path) for x in v]
    if t is dict:
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise RhaiError("ErrorMismatchDataType",
                                f"object map keys must be strings, got {type(k).__name__} "
                                f"({_path})")
            out[str(k)] = to_rhai(x, _path=_path)
        return out
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return to_rhai(int(v), _path=_path)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, range):
        if v.step != 1:
            return [to_rhai(x) for x in v]
        return RhaiRange(v.start, v.stop)
    if isinstance(v, (set, frozenset)):
        return [to_rhai(x, _path=_path) for x in sorted(v, key=repr)]
    if isinstance(v, (list, tuple)):
        return [to_rhai(x, _path=_path) for x in v]
    if isinstance(v, dict):
        return to_rhai(dict(v), _path=_path)
    if hasattr(v, "__fspath__"):
        return str(v.__fspath__())
    return v  # a custom type: passed through, `type_of` is its class name


def from_rhai(v):
    """Convert a Rhai value for host code: `()` is None, ranges become `range`, chars stay
    one-character strings (`Char` is a `str`), arrays and maps are copied."""
    t = type(v)
    if t is list:
        return [from_rhai(x) for x in v]
    if t is dict:
        return {k: from_rhai(x) for k, x in v.items()}
    if t is RhaiRange:
        return v.py_range()
    return v
