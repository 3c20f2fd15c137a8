"""Runtime: a compiled script bound to an engine, ready to run.

A `Program` is a compiled script (a code object plus what the compiler learned about it); it
does not depend on an engine and is cached by the source's hash. An `Instance` executes the
program's code in a fresh globals dict that provides the helpers the generated code calls:
operators (`ops`), variable access to the top-level scope, function-pointer calls, native
function bindings (host functions first, then the standard library), modules, and error
conversion for `try`/`catch`.

Errors raised while a script runs carry no position; `locate` finds it afterwards from the
Python traceback: the compiler gave every generated instruction the Rhai line and column.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref

from . import ops, stdlib
from .errors import RhaiError, catch_value, did_you_mean, thrown
from .values import (INT_MAX, INT_MIN, UNBOUND, Cell, Char, FnPtr, RhaiRange, copy_value,
                     to_string, type_name)

# filename of generated code -> Program, to map tracebacks back to Rhai sources
PROGRAMS: "weakref.WeakValueDictionary[str, Program]" = weakref.WeakValueDictionary()


class Program:
    """A compiled Rhai script. With a `compiler` (lazy compilation), the code defines only the
    top level and each function is compiled on its first call, once for all instances."""

    def __init__(self, code, info, *, source: str, source_name: str | None, path: str | None,
                 filename: str, module_docs: list[str], compiler=None, flags=None):
        self.flags = flags           # the engine settings the code was compiled for
        self.code = code
        self.info = info
        self.source = source
        self.source_name = source_name
        self.path = path
        self.filename = filename
        self.module_docs = module_docs
        self.compiler = compiler
        self.fn_code: dict = {}      # pyname -> code object of a lazily compiled function
        self._lock = threading.Lock()
        PROGRAMS[filename] = self

    def function_code(self, pyname: str):
        """The code of a script function, compiled on first use under `lazy`."""
        code = self.fn_code.get(pyname)
        if code is None:
            with self._lock:
                code = self.fn_code.get(pyname)
                if code is None:
                    from .compiler import compile_function
                    code = compile_function(self.compiler, pyname)
                    self.fn_code[pyname] = code
        return code

    def compile_all(self):
        """Compile every lazy function (before caching the program on disk)."""
        if self.compiler is not None:
            for _name, _arity, pyname, *_ in self.info.functions:
                self.function_code(pyname)


class Scope:
    """Top-level variables of a script run: what `run` leaves behind and what entry functions
    called with `call_fn` see. Behaves like a mapping of names to (Rhai) values."""

    def __init__(self, values: dict | None = None, constants: dict | None = None):
        self.vars: dict = {}
        self.consts: set = set()
        self._instance = None
        from .values import to_rhai
        for k, v in (values or {}).items():
            self.vars[k] = to_rhai(v, _path=k)
        for k, v in (constants or {}).items():
            self.vars[k] = to_rhai(v, _path=k)
            self.consts.add(k)

    # mapping protocol
    def __getitem__(self, name):
        return self.vars[name]

    def __setitem__(self, name, value):
        from .values import to_rhai
        self.vars[name] = to_rhai(value, _path=name)

    def __contains__(self, name) -> bool:
        return name in self.vars

    def __iter__(self):
        return iter(self.vars)

    def __len__(self) -> int:
        return len(self.vars)

    def get(self, name, default=None):
        return self.vars.get(name, default)

    def items(self):
        return self.vars.items()

    def keys(self):
        return self.vars.keys()

    def set(self, name, value, const: bool = False):
        self[name] = value
        if const:
            self.consts.add(name)
        else:
            self.consts.discard(name)

    def push_constant(self, name, value):
        self.set(name, value, const=True)

    def is_constant(self, name) -> bool:
        return name in self.consts

    def to_dict(self) -> dict:
        from .values import from_rhai
        return {k: from_rhai(v) for k, v in self.vars.items()}

    def __repr__(self) -> str:
        return f"Scope({self.vars!r})"


class RunState:
    """Shared by a script and the modules it imports during one engine call."""
    __slots__ = ("ops", "modules", "loading", "n_modules", "root", "root_scope")

    def __init__(self):
        self.root = None
        self.root_scope = None
        self.ops = 0
        self.modules: dict = {}
        self.loading: set = set()
        self.n_modules = 0


class Module:
    """An imported script module: exported variables, public functions, sub-modules."""

    def __init__(self, name: str):
        self.name = name
        self.vars: dict = {}
        self.fns: dict = {}     # (name, arity) -> (function, uses_this)
        self.subs: dict = {}

    def __repr__(self) -> str:
        return f"Module({self.name})"


class Ctx:
    """Passed to standard functions that call back into the script."""
    __slots__ = ("inst", "d")

    def __init__(self, inst, d):
        self.inst = inst
        self.d = d

    @property
    def engine(self):
        return self.inst.engine

    def call(self, fp, *args):
        return self.inst.call_fnptr(self.d, fp, args)

    def call_flex(self, fp, base, extra):
        """Call with `base` args, plus `extra` ones if the function takes them (`map` passes
        the index to `|x, i|`). A function without parameters gets the element (the first
        base argument) as `this`, as Rhai's array methods do (`a.map(|| this * 2)`)."""
        n = self.inst.fnptr_arity(fp)
        if n is not None and n > len(base):
            return self.inst.call_fnptr(self.d, fp, base + extra[:n - len(base)])
        if n == 0 and len(base) == 1:
            return self.inst.call_fnptr(self.d, fp, (), this=Cell(base[0]))
        return self.inst.call_fnptr(self.d, fp, base)

    def caller(self, fp, nbase, nextra=0):
        """A Python callable for calling `fp` many times (array methods): returns
        (call, takes_extra) where `call(*args)` runs the function with `nbase` arguments, or
        `nbase + nextra` if the function takes the extra ones (`|x, i|`)."""
        inst = self.inst
        n = inst.fnptr_arity(fp)
        if n == 0 and nbase == 1:
            d = self.d
            return (lambda x, *_: inst.call_fnptr(d, fp, (), this=Cell(x))), False
        extra = n is not None and nextra and n > nbase
        if fp.fn is not None and fp.arity is not None:
            want = nbase + (min(nextra, n - nbase) if extra else 0)
            if len(fp.curry) + want == fp.arity:
                fn, env, d1 = fp.fn, fp.env, self.d + 1
                pre = fp.captures + fp.curry
                if not pre:
                    return (lambda *a: fn(d1, env, UNBOUND, *a)), extra
                return (lambda *a: fn(d1, env, UNBOUND, *pre, *a)), extra
        d = self.d
        return (lambda *a: inst.call_fnptr(d, fp, a)), extra


class NativeContext:
    """Given to host functions registered with `context=True`."""

    def __init__(self, inst, d):
        self._inst = inst
        self._d = d

    @property
    def engine(self):
        return self._inst.engine

    @property
    def source_path(self):
        return self._inst.program.path

    def call(self, fp, *args):
        """Call a Rhai function pointer (e.g. a closure the script passed in)."""
        from .values import to_rhai
        return self._inst.call_fnptr(self._d, fp, tuple(to_rhai(a) for a in args))


_MISSING = object()


# --- error location -----------------------------------------------------------------------

def _position(code, lasti):
    try:
        pos = next(itertools.islice(code.co_positions(), lasti // 2, None))
    except StopIteration:
        return None
    line, _, col, _ = pos
    if line is None:
        return None
    return line, (col if col is not None else 0)


def locate(err: RhaiError, tb) -> RhaiError:
    """Fill the error's position and call stack from the traceback of generated code."""
    frames = []
    while tb is not None:
        co = tb.tb_frame.f_code
        prog = PROGRAMS.get(co.co_filename)
        if prog is not None:
            frames.append((prog, co, tb.tb_lasti))
        tb = tb.tb_next
    if not frames:
        return err
    if err.line is None:
        idx = len(frames) - 1
        if getattr(err, "at_caller", False) and idx > 0:
            idx -= 1
        prog, co, lasti = frames[idx]
        pos = _position(co, lasti)
        if pos is not None:
            err.line, err.column = pos
            err.source_name = prog.source_name
            err.source = prog.source
        if not err.call_stack:
            stack = []
            for i in range(idx):
                p, c, li = frames[i]
                callee = frames[i + 1][1].co_name
                name = frames[i + 1][0].info.fn_names.get(callee, callee)
                cpos = _position(c, li)
                if cpos is not None:
                    stack.append((name, cpos[0], cpos[1], p.source_name))
            err.call_stack = [(n, ln, c) for n, ln, c, _ in reversed(stack)]
            err.call_sources = [src for _, _, _, src in reversed(stack)]
    return err


def convert(exc: BaseException) -> RhaiError:
    """Any exception escaping generated code, as a RhaiError."""
    if isinstance(exc, RhaiError):
        err = exc
    elif isinstance(exc, RecursionError):
        err = RhaiError("ErrorStackOverflow", "Stack overflow (nesting too deep)",
                        hint="deeply recursive functions or deeply nested data structures")
    elif isinstance(exc, MemoryError):
        err = RhaiError("ErrorDataTooLarge", "Out of memory", fields={"type": "memory"})
    else:
        err = RhaiError("ErrorSystem", f"internal engine error: {type(exc).__name__}: {exc}",
                        hint="this is a bug in the Rhai engine, not in the script")
        err.__cause__ = exc
    return locate(err, exc.__traceback__)


# --- the instance -----------------------------------------------------------------------

def _typeof(v):
    return type_name(v)


def _in(item, container):
    return ops.contains(container, item)


def _throw(v):
    return thrown(v, to_string(v))


def _closure_factory(inst):
    def _closure(fn, name, cells, env, arity):
        return FnPtr(name, fn, cells, (), env, inst, arity)
    return _closure


_SAFE_BUILTINS = {"type": type, "len": len, "enumerate": enumerate, "locals": locals,
                  "Exception": Exception, "int": int, "str": str, "float": float,
                  "list": list, "dict": dict, "bool": bool}

BASE_GLOBALS = {
    "__builtins__": _SAFE_BUILTINS,
    "_add": ops.add, "_sub": ops.sub, "_mul": ops.mul, "_div": ops.div, "_mod": ops.mod,
    "_pow": ops.power, "_shl": ops.shl, "_shr": ops.shr, "_band": ops.bitand,
    "_bor": ops.bitor, "_bxor": ops.bitxor, "_neg": ops.neg, "_pos": ops.pos, "_not": ops.not_,
    "_eq": ops.eq, "_ne": ops.ne, "_lt": ops.lt, "_le": ops.le, "_gt": ops.gt, "_ge": ops.ge,
    "_iadd": ops.iadd, "_in": _in, "_range": ops.make_range, "_idx": ops.index_get,
    "_setidx": ops.index_set, "_iter": ops.iterate, "_forr": ops.for_range,
    "_forri": ops.for_range_incl, "_cp": copy_value, "_need_bool": ops.need_bool,
    "_Cell": Cell, "_UNB": UNBOUND, "_Range": RhaiRange, "_seq": ops.switch_eq,
    "_srange": ops.switch_range, "_tostr": to_string, "_chkstr": ops.chk_str,
    "_chkarr": ops.chk_arr, "_chkmap": ops.chk_map, "_throw": _throw, "_typeof": _typeof,
    "_LSD": frozenset({list, str, dict}), "_MUT": frozenset({list, dict}),
}


class Instance:
    """One run of a compiled program: its globals, functions and module imports."""
    def __init__(self, engine, program: Program, scope: Scope, state: RunState,
                 is_module: bool = False):
        self.engine = engine
        self.program = program
        self.scope = scope
        self.state = state
        self.is_module = is_module
        self.exports: dict = {}
        self.submodules: dict = {}
        self.imports: dict = {}     # modules imported at global level (seen by functions)
        info = program.info
        g = dict(BASE_GLOBALS)
        self.global_vars = dict(engine._constants)
        g.update({
            "_S": state, "_MAXD": engine.limits.max_call_levels or 1_000_000,
            "_MAXOPS": engine.limits.max_operations or (1 << 62), "_G": self.global_vars,
            "_getv": self._getv, "_setv": self._setv, "_chkconst": self._chkconst,
            "_const_err": self._const_err, "_nonpure_err": self._nonpure_err,
            "_chkpure": self._chkpure, "_isdefv": self._isdefv, "_gvar": self._gvar,
            "_prop": self._prop, "_setprop": self._setprop, "_callvar": self._callvar,
            "_callm": self._callm, "_mcall": self._mcall, "_mvar": self._mvar,
            "_msub": self._msub, "_static_module": self._static_module, "_gmod": self._gmod,
            "_gimport": self._gimport,
            "_import": self._import, "_closure": _closure_factory(self), "_catch": self._catch,
            "_overflow": self._overflow, "_too_many_ops": self._too_many_ops,
            "_export_scope": self._export_scope, "_export_module": self._export_module,
        })
        lim = engine.limits
        g["_MAXA"] = lim.max_array_size or (1 << 62)
        g["_MAXM"] = lim.max_map_size or (1 << 62)
        g["_MAXS"] = lim.max_string_size or (1 << 62)
        g["_FPP"] = ("push", 2) not in engine._host
        g["_FPL"] = ("len", 1) not in engine._host
        for gname, ch in info.chars.items():
            g[gname] = Char(ch)
        for b, (name, arity, ctx, mut) in info.natives.items():
            g[b] = self._bind_native(name, arity, ctx, mut)
        exec(program.code, g)
        self.globals = g
        self.fns = {}
        self.fn_meta = {}
        lazy = program.compiler is not None
        for name, arity, pyname, params, uses_this, private, docs in info.functions:
            if lazy:
                code = program.fn_code.get(pyname)
                if code is not None:
                    self._bind_new_globals()
                    exec(code, g)
                else:
                    g[pyname] = self._lazy_stub(pyname, (name, arity))
            self.fns[(name, arity)] = g[pyname]
            self.fn_meta[(name, arity)] = (params, uses_this, private)
        self.closure_meta = info.closures
        self.main = g["__main__"]

    # --- lazy compilation ----------------------------------------------------------------
    def _lazy_stub(self, pyname, key):
        inst = self

        def stub(*args):
            fn = inst.globals.get(pyname)
            if fn is stub:
                code = inst.program.function_code(pyname)
                inst._bind_new_globals()
                exec(code, inst.globals)
                fn = inst.globals[pyname]
                inst.fns[key] = fn
            return fn(*args)
        stub.__name__ = pyname
        return stub

    def _bind_new_globals(self):
        """Bindings that functions compiled after this instance was made need."""
        g = self.globals
        info = self.program.info
        for gname, ch in list(info.chars.items()):
            if gname not in g:
                g[gname] = Char(ch)
        for b, (name, arity, ctx, mut) in list(info.natives.items()):
            if b not in g:
                g[b] = self._bind_native(name, arity, ctx, mut)

    # --- natives -----------------------------------------------------------------------
    def _bind_native(self, name, arity, ctx_site, mut_site):
        entry = self.engine._lookup_native(name, arity)
        if entry is None:
            return self._missing_native(name, arity, ctx_site, mut_site)
        fn = entry.fn
        inst = self
        if entry.ctx:
            if ctx_site:
                def bound(d, *a):
                    return fn(Ctx(inst, d), *a)
            else:
                def bound(*a):
                    return fn(Ctx(inst, 0), *a)
        elif getattr(entry, "host_ctx", False):
            if ctx_site:
                def bound(d, *a):
                    return fn(NativeContext(inst, d), *a)
            else:
                def bound(*a):
                    return fn(NativeContext(inst, 0), *a)
        elif ctx_site:
            def bound(d, *a):
                return fn(*a)
        else:
            bound = fn
        if entry.mut and not mut_site:
            inner = bound

            def bound(*a):
                return inner(*a)[1]
        elif mut_site and not entry.mut:
            inner2 = bound
            if ctx_site:
                def bound(d, *a):
                    return a[0], inner2(d, *a)
            else:
                def bound(*a):
                    return a[0], inner2(*a)
        return bound

    def _missing_native(self, name, arity, ctx_site, mut_site):
        inst = self

        def missing(*a):
            d = 0
            if ctx_site:
                d, a = a[0], a[1:]
            # object-map "methods": a property holding a function pointer
            if a and type(a[0]) is dict and type(a[0].get(name)) is FnPtr:
                r = inst.call_fnptr(d, a[0][name], a[1:], this=Cell(a[0]))
                return (a[0], r) if mut_site else r
            raise inst.fn_not_found(name, a)
        return missing

    def fn_not_found(self, name, args, namespace=""):
        """Rhai's ErrorFunctionNotFound, with a did-you-mean or the arities there are."""
        sig = f"{namespace}{name} ({', '.join(type_name(x) for x in args)})"
        cands = set(self.engine._all_function_names()) | {k[0] for k in self.fns}
        hint = None
        close = did_you_mean(name, cands - {name})
        arities = sorted({k[1] for k in self.fns if k[0] == name} |
                         self.engine._native_arities(name))
        msg = f"Function not found: {sig}"
        if close and not arities:
            msg += f"; did you mean '{close}'?"
        elif arities:
            hint = (f"'{name}' exists with {', '.join(map(str, arities))} argument"
                    f"{'' if arities == [1] else 's'}, not {len(args)}")
        return RhaiError("ErrorFunctionNotFound", msg, hint=hint, fields={"function": sig})

    # --- variables -----------------------------------------------------------------------
    def _getv(self, e, name):
        # a constant array or map is handed out as a copy: nothing changes the host's value
        if e is not None:
            v = e.vars.get(name, _MISSING)
            if v is not _MISSING:
                return copy_value(v) if name in e.consts else v
        v = self.engine._constants.get(name, _MISSING)
        if v is not _MISSING:
            return copy_value(v)
        raise self._var_not_found(e, name)

    def _var_not_found(self, e, name):
        cands = set(self.engine._constants) | getattr(self.program.info, "var_names", set())
        if e is not None:
            cands |= set(e.vars)
        close = did_you_mean(name, cands - {name})
        msg = f"Variable not found: {name}"
        hint = None
        top = getattr(self.program.info, "top_names", set())
        root = self.state.root_scope
        if e is None and root is not None and name in root.vars and self.is_module:
            hint = (f"'{name}' belongs to the script that imported this module: module "
                    "functions cannot see it (the host can make it visible everywhere with "
                    "Engine.register_const)")
        elif e is None and name in top:
            hint = ("functions cannot see the script's variables: pass the value as an "
                    "argument (only entry functions called by the host see top-level "
                    "variables)")
        elif close:
            msg += f"; did you mean '{close}'?"
        return RhaiError("ErrorVariableNotFound", msg, hint=hint, fields={"variable": name})

    def _setv(self, e, name, v):
        if e is None or name not in e.vars:
            if name in self.engine._constants:
                raise self._const_error(name)
            raise self._var_not_found(e, name)
        if name in e.consts:
            raise self._const_error(name)
        e.vars[name] = v

    def _chkconst(self, e, name):
        if (e is not None and name in e.consts) or (
                (e is None or name not in e.vars) and name in self.engine._constants):
            raise self._const_error(name)

    @staticmethod
    def _const_error(name):
        return RhaiError("ErrorAssignmentToConstant", f"Cannot modify constant {name}",
                         fields={"variable": name})

    def _const_err(self, name):
        raise self._const_error(name)

    @staticmethod
    def _nonpure_err(method, name):
        raise RhaiError("ErrorNonPureMethodCallOnConstant",
                        f"Non-pure method '{method}' cannot be called on constant {name}",
                        hint=f"copy it first: let v = {name}; v.{method}(...)")

    def _chkpure(self, e, name, method):
        if (e is not None and name in e.consts) or (
                (e is None or name not in e.vars) and name in self.engine._constants):
            self._nonpure_err(method, name)

    def _isdefv(self, e, name):
        return (e is not None and name in e.vars) or name in self.engine._constants

    def _gvar(self, G, name):
        v = G.get(name, _MISSING)
        if v is _MISSING:
            raise RhaiError("ErrorVariableNotFound", f"Variable not found: global::{name}",
                            hint="only constants declared with 'const' at global level are "
                            "in 'global'", fields={"variable": f"global::{name}"})
        return copy_value(v)

    def _export_scope(self, e, loc, topvars):
        if e is None:
            return
        for name, py, const, cell in topvars:
            if py in loc:
                v = loc[py]
                if cell:
                    v = v.v
                e.vars[name] = v
                if const:
                    e.consts.add(name)
                else:
                    e.consts.discard(name)

    def _export_module(self, loc, exports, subs):
        for py, alias, cell in exports:
            if py in loc:
                v = loc[py]
                self.exports[alias] = v.v if cell else v
        for py, alias in subs:
            if py in loc:
                self.submodules[alias] = loc[py]

    # --- properties -----------------------------------------------------------------------
    def _prop(self, obj, name):
        if type(obj) is dict:
            return obj.get(name)
        for g in self.engine._getters.get(name, ()):
            try:
                return g(obj)
            except stdlib.NoGetter:
                continue
        g = stdlib.GETTERS.get(name)
        if g is not None:
            try:
                return g(obj)
            except stdlib.NoGetter:
                pass
        if obj is not None and not name.startswith("_") and not isinstance(
                obj, (str, int, float, bool, list, FnPtr, RhaiRange)):
            v = getattr(obj, name, _MISSING)
            if v is not _MISSING and not callable(v):
                from .values import to_rhai
                return to_rhai(v)
        raise RhaiError("ErrorDotExpr",
                        f"Property not found: {name} (on {type_name(obj)}; only object maps "
                        "and types with a registered getter have properties)",
                        fields={"property": name})

    def _setprop(self, obj, name, v):
        return ops.prop_set(obj, name, v, self.engine._setters)

    # --- calls ------------------------------------------------------------------------------
    def make_fnptr(self, name):
        """A function pointer to `name`, resolved in this run when called (Rhai's `Fn(name)`)."""
        return FnPtr(name, instance=self)

    def has_function(self, name, arity):
        """Is a script or host function `name` defined at `arity`?"""
        return (name, arity) in self.fns or self.engine._lookup_native(name, arity) is not None

    def fnptr_arity(self, fp):
        """The arity a function pointer takes, or None when it is not known."""
        if fp.fn is not None:
            return None if fp.arity is None else fp.arity - len(fp.curry)
        inst = fp.instance or self
        ar = [k[1] for k in inst.fns if k[0] == fp.name]
        if len(ar) == 1:
            return ar[0] - len(fp.curry)
        return None

    def call_fnptr(self, d, fp, args, this=None):
        """Call a function pointer from compiled code (curried values first)."""
        if type(fp) is not FnPtr:
            raise ops.not_found("call", fp, *args)
        if fp.fn is not None:
            if fp.arity is not None and len(fp.curry) + len(args) != fp.arity:
                raise self.fn_not_found(fp.name, fp.curry + tuple(args))
            return fp.fn(d + 1, fp.env, this or UNBOUND, *fp.captures, *fp.curry, *args)
        inst = fp.instance or self
        allargs = fp.curry + tuple(args)
        f = inst.fns.get((fp.name, len(allargs)))
        if f is not None:
            return f(d + 1, None, this or UNBOUND, *allargs)
        if this is not None:
            allargs = (this.v,) + allargs
        entry = self.engine._lookup_native(fp.name, len(allargs))
        if entry is not None:
            if entry.ctx:
                r = entry.fn(Ctx(self, d + 1), *allargs)
            elif getattr(entry, "host_ctx", False):
                r = entry.fn(NativeContext(self, d + 1), *allargs)
            else:
                r = entry.fn(*allargs)
            if entry.mut:
                if this is not None:
                    this.v = r[0]
                return r[1]
            return r
        raise self.fn_not_found(fp.name, allargs)

    def call_fnptr_from_host(self, fp, args):
        """Call a function pointer on behalf of the host: Python values in and out."""
        from .values import from_rhai, to_rhai
        return from_rhai(self.engine._guard(lambda: self.call_fnptr(0, fp, tuple(
            to_rhai(a) for a in args)), self))

    def _callvar(self, d, name, value, args):
        entry = self.engine._lookup_native(name, len(args))
        if entry is not None:
            fp = FnPtr(name, instance=self)
            return self.call_fnptr(d, fp, args)
        if type(value) is FnPtr:
            return self.call_fnptr(d, value, args)
        raise self.fn_not_found(name, args)

    def _callm(self, d, cell, args):
        v = cell.v
        if type(v) is FnPtr:
            return self.call_fnptr(d, v, args)
        if args and type(args[0]) is FnPtr:
            return self.call_fnptr(d, args[0], args[1:], this=cell)
        raise ops.not_found("call", v, *args)

    def _overflow(self, d):
        err = RhaiError("ErrorStackOverflow",
                        f"Stack overflow: more than {self.engine.limits.max_call_levels} nested "
                        "function calls", hint="is a function calling itself without end?")
        err.at_caller = True
        raise err

    def _too_many_ops(self):
        raise RhaiError("ErrorTooManyOperations",
                        f"Too many operations (limit {self.engine.limits.max_operations})",
                        hint="the script runs too long: an endless loop? The limit is the "
                        "engine's max_operations")

    def _catch(self, exc):
        err = convert(exc)
        if not err.catchable:
            raise err
        return catch_value(err)

    # --- modules ----------------------------------------------------------------------------
    def _import(self, d, path):
        if not isinstance(path, str):
            raise ops.mismatch("string", path)
        return self.engine._import_module(self, str(path))

    def _gimport(self, alias, module):
        self.imports[alias] = module

    def _gmod(self, name):
        m = self.imports.get(name)
        if m is not None:
            return m
        return self._static_module(name)

    def _static_module(self, name):
        m = self.engine._static_modules.get(name)
        if m is None:
            raise RhaiError("ErrorModuleNotFound", f"Module not found: {name}",
                            hint=f"import it first: import \"{name}\" as {name};",
                            fields={"module": name})
        return m

    def _msub(self, m, name):
        sub = m.subs.get(name)
        if sub is None:
            raise RhaiError("ErrorModuleNotFound", f"Module not found: {m.name}::{name}",
                            fields={"module": f"{m.name}::{name}"})
        return sub

    def _mvar(self, m, name, ns=None):
        v = m.vars.get(name, _MISSING)
        if v is _MISSING:
            ns = ns or m.name  # the namespace as the script wrote it (`h::x`)
            close = did_you_mean(name, m.vars)
            raise RhaiError("ErrorVariableNotFound",
                            f"Variable not found: {ns}::{name}" +
                            (f"; did you mean '{close}'?" if close else ""),
                            hint=None if close else "a module only shares variables it "
                            "exports ('export let x = ...')",
                            fields={"variable": f"{ns}::{name}"})
        return copy_value(v)

    def _mcall(self, d, m, name, args, ns=None):
        f = m.fns.get((name, len(args)))
        if f is None:
            ns = ns or m.name
            sig = f"{ns}::{name} ({', '.join(type_name(a) for a in args)})"
            close = did_you_mean(name, {k[0] for k in m.fns})
            raise RhaiError("ErrorFunctionNotFound", f"Function not found: {sig}" +
                            (f"; did you mean '{ns}::{close}'?" if close else ""),
                            fields={"function": sig})
        fn, kind = f
        if kind == "native":
            return fn(*args)
        return fn(d + 1, None, UNBOUND, *args)


def build_module(inst: Instance, name: str) -> Module:
    """The module an `import` sees: the script's exported variables and public functions."""
    m = Module(name)
    m.vars.update(inst.exports)
    for (fname, arity), fn in inst.fns.items():
        params, uses_this, private = inst.fn_meta[(fname, arity)]
        if not private:
            m.fns[(fname, arity)] = (fn, "script")
    m.subs.update(inst.submodules)
    return m


def module_path(base_dir: str, root: str | None, path: str) -> str | None:
    """Resolve an import path relative to the importing script's directory, confined to
    `root` (the recipes directory)."""
    p = path if path.endswith(".rhai") else path + ".rhai"
    if os.path.isabs(p):
        return None
    full = os.path.normpath(os.path.join(base_dir, p))
    if root is not None:
        r = os.path.normpath(root)
        if os.path.commonpath([r, full]) != r:
            return None
    return full


__all__ = ["Program", "Scope", "Instance", "RunState", "Module", "locate", "convert",
           "NativeContext", "INT_MIN", "INT_MAX"]
