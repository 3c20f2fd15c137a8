"""Operators, indexing and property access with Rhai's semantics.

The compiled code inlines the common integer cases and calls these functions for everything
else, so these are the reference semantics:

- integers are 64-bit and overflow is an error (`Addition overflow: ...`), `/` truncates toward
  zero and `%` keeps the dividend's sign (as in Rust);
- int and float mix (the result is a float); float division by zero gives inf/NaN;
- `+` concatenates strings (any value on the other side is converted with `to_string`), chars,
  arrays and maps (a new value); `-` removes a sub-string;
- comparing values of different types is `false` (`!=` is `true`), except int/float and
  char/string which compare by value;
- an operator applied to types it does not support is `ErrorFunctionNotFound`, naming the
  operator and the operand types, exactly as Rhai reports it.
"""

from __future__ import annotations

import math

from .errors import RhaiError
from .limits import current, too_large
from .values import (INT_MAX, INT_MIN, Char, FnPtr, RhaiRange, copy_value, to_string,
                     type_name)

_MASK64 = (1 << 64) - 1


def chk_str(s):
    """The string, unless it exceeds the running engine's string size limit."""
    m = current().max_string_size
    if m and len(s) > m:
        raise too_large("Length of string")
    return s


def chk_arr(a):
    """The array, unless it exceeds the running engine's array size limit."""
    m = current().max_array_size
    if m and len(a) > m:
        raise too_large("Size of array")
    return a


def chk_map(d):
    """The map, unless it exceeds the running engine's map size limit."""
    m = current().max_map_size
    if m and len(d) > m:
        raise too_large("Size of object map")
    return d


def chk_any(v):
    """A value checked against the size limit of its type."""
    t = type(v)
    if t is str:
        return chk_str(v)
    if t is list:
        return chk_arr(v)
    if t is dict:
        return chk_map(v)
    return v


def not_found(op: str, *args) -> RhaiError:
    """Rhai's ErrorFunctionNotFound for an operator or function on these operand types."""
    sig = f"{op} ({', '.join(type_name(a) for a in args)})"
    return RhaiError("ErrorFunctionNotFound", f"Function not found: {sig}",
                     fields={"function": sig})


def mismatch(expected: str, value) -> RhaiError:
    """Rhai's ErrorMismatchDataType: `value` is not of the `expected` type."""
    actual = type_name(value)
    return RhaiError("ErrorMismatchDataType",
                     f"Data type incorrect: {actual} (expecting {expected})",
                     fields={"requested": expected, "actual": actual})


def need_bool(v):
    """Conditions must be booleans (Rhai does not convert)."""
    if type(v) is bool:
        return v
    raise mismatch("bool", v)


def need_int(v, what: str = "i64"):
    """Integers only (indexes, counts): Rhai does not convert."""
    if type(v) is int:
        return v
    raise mismatch(what, v)


def _is_num(t) -> bool:
    return t is int or t is float


def _is_str(t) -> bool:
    return t is str or t is Char


def _ovf(name, sym, a, b):
    return RhaiError("ErrorArithmetic", f"{name} overflow: {a} {sym} {b}")


# --- arithmetic ---------------------------------------------------------------------------

def add(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        r = a + b
        if INT_MIN <= r <= INT_MAX:
            return r
        raise _ovf("Addition", "+", a, b)
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        return a + b
    if _is_str(ta):
        if _is_str(tb):
            r = a + b
            return chk_str(r) if current().max_string_size else r
        if b is None:
            return str(a)
        if ta is str and tb is not list:
            return chk_str(a + to_string(b))
        if ta is Char:
            raise not_found("+", a, b)
        return chk_str(a + to_string(b))
    if tb is str:
        if a is None:
            return b
        return chk_str(to_string(a) + b)
    if ta is list and tb is list:
        return chk_arr(copy_value(a) + copy_value(b))
    if ta is dict and tb is dict:
        r = copy_value(a)
        r.update(copy_value(b))
        return chk_map(r)
    raise not_found("+", a, b)


def iadd(a, b):
    """`a += b`: arrays append (an array is concatenated, anything else pushed), maps mix in,
    in place; everything else as `+`."""
    ta = type(a)
    if ta is list:
        if type(b) is list:
            a.extend(copy_value(b))
        else:
            a.append(copy_value(b))
        return chk_arr(a)
    if ta is dict and type(b) is dict:
        a.update(copy_value(b))
        return chk_map(a)
    return add(a, b)


def sub(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        r = a - b
        if INT_MIN <= r <= INT_MAX:
            return r
        raise _ovf("Subtraction", "-", a, b)
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        return a - b
    if ta is str and _is_str(tb):
        return a.replace(b, "") if b else a
    raise not_found("-", a, b)


def mul(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        r = a * b
        if INT_MIN <= r <= INT_MAX:
            return r
        raise _ovf("Multiplication", "*", a, b)
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        return a * b
    raise not_found("*", a, b)


def _fdiv(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def div(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if b == 0:
            raise RhaiError("ErrorArithmetic", f"Division by zero: {a} / {b}")
        if a == INT_MIN and b == -1:
            raise RhaiError("ErrorArithmetic", f"Division overflow: {a} / {b}")
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        return _fdiv(float(a), float(b))
    raise not_found("/", a, b)


def mod(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if b == 0 or (a == INT_MIN and b == -1):
            raise RhaiError("ErrorArithmetic",
                            f"Modulo division by zero or overflow: {a} % {b}")
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        try:
            return math.fmod(a, b)
        except ValueError:
            return math.nan
    raise not_found("%", a, b)


def power(a, b):
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if b < 0:
            raise RhaiError("ErrorArithmetic", f"Integer raised to a negative power: {a} ** {b}")
        if b > 0xFFFFFFFF or (abs(a) > 1 and b > 63):
            raise RhaiError("ErrorArithmetic", f"Exponential overflow: {a} ** {b}")
        r = a ** b
        if INT_MIN <= r <= INT_MAX:
            return r
        raise RhaiError("ErrorArithmetic", f"Exponential overflow: {a} ** {b}")
    if (ta is float and _is_num(tb)) or (tb is float and ta is int):
        try:
            r = float(a) ** float(b)
        except OverflowError:
            return math.inf
        except ZeroDivisionError:
            return math.inf
        if type(r) is complex:
            return math.nan
        return r
    raise not_found("**", a, b)


def _wrap64(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x > INT_MAX else x


def shl(a, b):
    if type(a) is int and type(b) is int:
        if b < 0:
            return shr(a, -b)
        if b >= 64:
            return 0
        return _wrap64(a << b)
    raise not_found("<<", a, b)


def shr(a, b):
    if type(a) is int and type(b) is int:
        if b < 0:
            return shl(a, -b)
        if b >= 64:
            return -1 if a < 0 else 0
        return a >> b
    raise not_found(">>", a, b)


def bitand(a, b):
    ta, tb = type(a), type(b)
    if (ta is int and tb is int) or (ta is bool and tb is bool):
        return a & b
    raise not_found("&", a, b)


def bitor(a, b):
    ta, tb = type(a), type(b)
    if (ta is int and tb is int) or (ta is bool and tb is bool):
        return a | b
    raise not_found("|", a, b)


def bitxor(a, b):
    ta, tb = type(a), type(b)
    if (ta is int and tb is int) or (ta is bool and tb is bool):
        return a ^ b
    raise not_found("^", a, b)


def neg(a):
    t = type(a)
    if t is int:
        if a == INT_MIN:
            raise RhaiError("ErrorArithmetic", f"Negation overflow: -{a}")
        return -a
    if t is float:
        return -a
    raise not_found("-", a)


def pos(a):
    if type(a) is int or type(a) is float:
        return a
    raise not_found("+", a)


def not_(a):
    if type(a) is bool:
        return not a
    raise not_found("!", a)


# --- comparison ---------------------------------------------------------------------------

def _comparable(a, b):
    """0: compare with Python; 1: different types (false); raises for unsupported same types."""
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int or ta is float or ta is str or ta is Char or ta is bool:
            return 0
        return 2
    if _is_num(ta) and _is_num(tb):
        return 0
    if _is_str(ta) and _is_str(tb):
        return 0
    return 1


def eq(a, b):
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b))
        if ta is dict:
            return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)
        return a == b
    if _is_num(ta) and _is_num(tb):
        return a == b
    if _is_str(ta) and _is_str(tb):
        return str(a) == str(b)
    return False


def ne(a, b):
    return not eq(a, b)


def _ordered(op, a, b):
    k = _comparable(a, b)
    if k == 1:
        return None
    if k == 2:
        if a is None:
            return None  # () < () is false
        raise not_found(op, a, b)
    return True


def lt(a, b):
    return _ordered("<", a, b) is not None and a < b


def le(a, b):
    return _ordered("<=", a, b) is not None and a <= b


def gt(a, b):
    return _ordered(">", a, b) is not None and a > b


def ge(a, b):
    return _ordered(">=", a, b) is not None and a >= b


# --- `in`, ranges, null-coalescing --------------------------------------------------------

def contains(container, item):
    """`item in container`."""
    t = type(container)
    if t is list:
        for x in container:
            if eq(x, item):
                return True
        return False
    if t is str or t is Char:
        if _is_str(type(item)):
            return item in container
        raise not_found("contains", container, item)
    if t is dict:
        if _is_str(type(item)):
            return str(item) in container
        raise not_found("contains", container, item)
    if t is RhaiRange:
        if type(item) is int:
            return item in container
        raise not_found("contains", container, item)
    raise not_found("contains", container, item)


def make_range(a, b, inclusive: bool):
    """`a..b` and `a..=b`: integer bounds only."""
    if type(a) is int and type(b) is int:
        return RhaiRange(a, b, inclusive)
    raise not_found("..=" if inclusive else "..", a, b)


# --- indexing ----------------------------------------------------------------------------

def _bounds(kind, n, i):
    if kind == "array":
        if n == 0:
            msg = f"Array index {i} out of bounds: array is empty"
        elif n == 1:
            msg = f"Array index {i} out of bounds: only 1 element in array"
        else:
            msg = f"Array index {i} out of bounds: only {n} elements in array"
        return RhaiError("ErrorArrayBounds", msg, fields={"length": n, "index": i})
    if kind == "string":
        if n == 0:
            msg = f"String index {i} out of bounds: string is empty"
        elif n == 1:
            msg = f"String index {i} out of bounds: only 1 character in string"
        else:
            msg = f"String index {i} out of bounds: only {n} characters in string"
        return RhaiError("ErrorStringBounds", msg, fields={"length": n, "index": i})
    return RhaiError("ErrorBitFieldBounds",
                     f"Bit-field index {i} out of bounds: only {n} bits in bit-field",
                     fields={"length": n, "index": i})


def index_get(obj, i):
    """`obj[i]` for arrays, maps, strings and integers (bits), with Rhai's errors."""
    t = type(obj)
    if t is list:
        if type(i) is int:
            n = len(obj)
            j = i + n if i < 0 else i
            if 0 <= j < n:
                return obj[j]
            raise _bounds("array", n, i)
        if type(i) is RhaiRange:
            return copy_value(obj[slice(*_range_slice(i, len(obj)))])
        raise mismatch("i64", i) if not _is_str(type(i)) else _idx_type(obj, i)
    if t is dict:
        if _is_str(type(i)):
            return obj.get(str(i))
        raise RhaiError("ErrorIndexingType",
                        f"Indexer unavailable: map[{type_name(i)}] (object map keys are "
                        "strings)", fields={"type": f"map[{type_name(i)}]"})
    if t is str or t is Char:
        if type(i) is int:
            n = len(obj)
            j = i + n if i < 0 else i
            if 0 <= j < n:
                return Char(obj[j])
            raise _bounds("string", n, i)
        if type(i) is RhaiRange:
            return str(obj[slice(*_range_slice(i, len(obj)))])
        raise mismatch("i64", i)
    if t is int:
        if type(i) is int:
            j = i + 64 if i < 0 else i
            if 0 <= j < 64:
                return bool((obj >> j) & 1)
            raise _bounds("bits", 64, i)
        raise mismatch("i64", i)
    if obj is None:
        raise RhaiError("ErrorIndexingType", "Indexer unavailable: () (cannot index '()')",
                        fields={"type": "()"})
    getter = getattr(obj, "__getitem__", None)
    if getter is not None and not isinstance(obj, (FnPtr, RhaiRange, bool, float)):
        return getter(i)
    raise _idx_type(obj, i)


def _idx_type(obj, i):
    t = f"{type_name(obj)}[{type_name(i)}]"
    return RhaiError("ErrorIndexingType", f"Indexer unavailable: {t}", fields={"type": t})


def _range_slice(r: RhaiRange, n: int):
    start, end = r.start, r.end
    start = max(0, start + n if start < 0 else start)
    end = max(0, end + n if end < 0 else end)  # negative ends count from the end first
    if r.inclusive:
        end += 1
    return min(start, n), min(max(end, start), n)


def index_set(obj, i, v):
    """Set `obj[i] = v`; returns the container (a new one for strings and integers)."""
    t = type(obj)
    if t is list:
        if type(i) is int:
            n = len(obj)
            j = i + n if i < 0 else i
            if 0 <= j < n:
                obj[j] = v
                return obj
            raise _bounds("array", n, i)
        raise mismatch("i64", i)
    if t is dict:
        if _is_str(type(i)):
            obj[str(i)] = v
            if current().max_map_size:
                chk_map(obj)
            return obj
        raise _idx_type(obj, i)
    if t is str or t is Char:
        if type(i) is int:
            n = len(obj)
            j = i + n if i < 0 else i
            if not 0 <= j < n:
                raise _bounds("string", n, i)
            if not _is_str(type(v)) or len(v) != 1:
                raise mismatch("char", v)
            return obj[:j] + str(v) + obj[j + 1:]
        raise mismatch("i64", i)
    if t is int:
        if type(i) is int:
            j = i + 64 if i < 0 else i
            if not 0 <= j < 64:
                raise _bounds("bits", 64, i)
            if type(v) is not bool:
                raise mismatch("bool", v)
            x = obj | (1 << j) if v else obj & ~(1 << j)
            return _wrap64(x)
        raise mismatch("i64", i)
    setter = getattr(obj, "__setitem__", None)
    if setter is not None and obj is not None:
        setter(i, v)
        return obj
    raise _idx_type(obj, i)


# --- properties ---------------------------------------------------------------------------

def prop_set(obj, name, v, setters=None):
    """`obj.name = v` for maps and registered setters; returns the object to write back."""
    if type(obj) is dict:
        obj[name] = v
        if current().max_map_size:
            chk_map(obj)
        return obj
    if setters:
        f = setters.get((type(obj), name)) or setters.get((None, name))
        if f is not None:
            f(obj, v)
            return obj
    if obj is not None and hasattr(obj, "__dict__") and not isinstance(obj, type) \
            and hasattr(obj, name) and not callable(getattr(obj, name)):
        setattr(obj, name, v)
        return obj
    raise RhaiError("ErrorDotExpr",
                    f"Cannot set property '{name}' of {type_name(obj)} (only object maps and "
                    "types with a registered setter have writable properties)",
                    fields={"property": name})


# --- iteration ---------------------------------------------------------------------------

def iterate(v):
    """What `for x in v` walks: array items (copies), string characters, range numbers."""
    t = type(v)
    if t is list:
        return [copy_value(x) if type(x) is list or type(x) is dict else x for x in v]
    if t is RhaiRange:
        return v.py_range()
    if t is str or t is Char:
        return [Char(c) for c in v]
    if t is dict:
        raise RhaiError("ErrorFor", "For loop expects iterable type (object maps are not "
                        "iterable: use keys() or values())")
    if t is range:
        return v
    if hasattr(v, "__iter__") and not isinstance(v, (FnPtr, bytes)):
        return list(v)
    raise RhaiError("ErrorFor", f"For loop expects iterable type, not {type_name(v)}")


def for_range(a, b):
    """`for i in a..b` where the range is written in the loop header."""
    if type(a) is int and type(b) is int:
        return range(a, b)
    raise not_found("..", a, b)


def for_range_incl(a, b):
    if type(a) is int and type(b) is int:
        return range(a, b + 1)
    raise not_found("..=", a, b)


# --- switch matching ----------------------------------------------------------------------

def switch_eq(v, lit) -> bool:
    """Switch cases match by type and value (Rhai hashes: `1` does not match `1.0`)."""
    if type(v) is not type(lit):
        return False
    if type(v) is list or type(v) is dict:
        return eq(v, lit)
    return v == lit


def switch_range(v, r: RhaiRange) -> bool:
    return type(v) is int and v in r
