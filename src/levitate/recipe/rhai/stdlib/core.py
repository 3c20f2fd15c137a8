"""Printing, types, function pointers and equality: the functions every value takes."""

from __future__ import annotations

from ..errors import RhaiError
from ..ops import eq, mismatch, not_found
from ..values import FnPtr, copy_value, to_debug, to_string, type_name
from .registry import NoGetter, getter, is_str, register


@register("print", 0, ctx=True)
def _print0(ctx):
    ctx.inst.engine._emit_print("")


@register("print", 1, ctx=True)
def _print(ctx, v):
    ctx.inst.engine._emit_print(to_string(v))


@register("debug", 0, ctx=True)
def _debug0(ctx):
    ctx.inst.engine._emit_debug("")


@register("debug", 1, ctx=True)
def _debug(ctx, v):
    ctx.inst.engine._emit_debug(to_debug(v))


@register("type_of", 1)
def _type_of(v):
    return type_name(v)


@register("to_string", 1)
def _to_string(v):
    return to_string(v)


@register("to_debug", 1)
def _to_debug(v):
    return to_debug(v)


@register("Fn", 1, ctx=True)
def _fn(ctx, name):
    if not is_str(name):
        raise mismatch("string", name)
    name = str(name)
    if not name.isidentifier() and not name.startswith("anon$"):
        raise RhaiError("ErrorFunctionNotFound", f"Invalid function name: '{name}'",
                        hint="Fn() takes the name of a function defined in this script or "
                        "registered by the host (functions in modules cannot be named)",
                        fields={"function": name})
    return ctx.inst.make_fnptr(name)


@register("call", *range(1, 18), ctx=True)
def _call(ctx, fp, *args):
    if type(fp) is not FnPtr:
        raise not_found("call", fp, *args)
    return ctx.call(fp, *args)


@register("curry", *range(1, 18))
def _curry(fp, *args):
    if type(fp) is not FnPtr:
        raise not_found("curry", fp, *args)
    return fp.with_curry(copy_value(a) for a in args)


@register("is_def_fn", 2, ctx=True)
def _is_def_fn(ctx, name, arity):
    if not is_str(name) or type(arity) is not int:
        raise not_found("is_def_fn", name, arity)
    return ctx.inst.has_function(str(name), arity)


@register("is_def_fn", 3, ctx=True)
def _is_def_fn3(ctx, ns, name, arity):
    return _is_def_fn(ctx, name, arity)


@register("is_anonymous", 1)
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


@register("name", 1)
def _name(fp):
    if type(fp) is not FnPtr:
        raise not_found("name", fp)
    return fp.name


@register("eval", 1)
def _eval(s):
    raise RhaiError("ErrorFunctionNotFound", "Function not found: eval (string)",
                    hint="eval is not available in this engine: scripts are compiled ahead of "
                    "time and sandboxed", fields={"function": "eval (string)"})


@register("equals", 2)
def _equals(a, b):
    return eq(a, b)
