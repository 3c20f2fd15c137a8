"""The table of standard functions and how an entry is called.

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

from ..values import Char


class Native:
    """One standard function at one arity, with how the runtime must call it."""
    __slots__ = ("name", "arity", "fn", "ctx", "mut")

    def __init__(self, name, arity, fn, ctx=False, mut=False):
        self.name = name
        self.arity = arity
        self.fn = fn
        self.ctx = ctx
        self.mut = mut


TABLE: dict[tuple[str, int], Native] = {}
GETTERS: dict[str, object] = {}
# Methods that change their receiver (cannot be called on a constant).
NON_PURE: set[str] = set()


def register(name: str, *arities: int, ctx: bool = False, mut: bool = False, pure: bool = True):
    """Decorator: enter `fn` in TABLE as `name` at each of `arities`; `pure=False` (or `mut`)
    marks a method that changes its receiver, which the compiler refuses on constants."""
    def deco(fn):
        for n in arities:
            TABLE[(name, n)] = Native(name, n, fn, ctx=ctx, mut=mut)
        if mut or not pure:
            NON_PURE.add(name)
        return fn
    return deco


def getter(name: str):
    """Decorator: make `fn` the property getter `value.name` (it raises NoGetter for types it
    does not serve)."""
    def deco(fn):
        GETTERS[name] = fn
        return fn
    return deco


class NoGetter(Exception):
    """Raised by a getter that does not apply to the value's type."""


def is_str(v) -> bool:
    """Strings and chars are accepted alike wherever Rhai takes a string."""
    return type(v) is str or type(v) is Char


def fail(err):
    """Raise `err` from inside an expression (the one-line lambda entries)."""
    raise err
