"""The host API: what the `recipe` package manager calls.

    engine = Engine(limits=Limits(max_operations=1_000_000))
    engine.register_fn("download", download)          # Python functions as Rhai functions
    engine.register_const("ARCH", "x86_64")
    ast = engine.compile_file("recipes/ripgrep.rhai")  # compile once (cached by source hash)
    scope = engine.run(ast)                            # run the top level: a Scope of variables
    engine.call_fn(ast, "acquire", scope=scope)        # entry functions see top-level variables
    scope["installed"]                                 # read (or write) top-level variables
    ast.module_docs                                    # the `//!` lines

Everything a script can get wrong comes back as a `RhaiError` (file, line, column, a source
excerpt with a caret); a script never surfaces a Python traceback. Scripts reach nothing but the
registered functions: no files, processes or network from the language itself, and the limits
bound operations, call depth, expression nesting, string/array/map sizes and module count.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import os
import pickle
import sys
import threading
from dataclasses import dataclass

from ...util.files import atomic_write
from . import stdlib
from .compiler import compile_script
from .errors import RhaiError, RhaiSyntaxError, host_error
from .limits import Limits, set_current
from .parser import parse
from .runtime import (Instance, Module, Program, RunState, Scope, build_module, convert,
                      locate, module_path)
from .values import UNBOUND, from_rhai, to_rhai

ENGINE_VERSION = "rhai-py-1"

_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 256


class HostFn:
    """A host function registered at one arity, called like a standard-library `Native`."""
    __slots__ = ("name", "arity", "fn", "ctx", "mut", "host_ctx")

    def __init__(self, name, arity, fn, host_ctx):
        self.name = name
        self.arity = arity
        self.fn = fn
        self.ctx = False
        self.mut = False
        self.host_ctx = host_ctx


class AST:
    """A compiled script, reusable across runs (and engines with the same registrations)."""

    def __init__(self, program: Program, path: str | None):
        self._program = program
        self.path = path
        self.source = program.source
        self.source_name = program.source_name

    @property
    def module_docs(self) -> list[str]:
        """The `//!` doc comment lines, without the `//!` marker."""
        return list(self._program.module_docs)

    @property
    def functions(self) -> list["FnInfo"]:
        """The script's functions (the host lists entry points and their docs)."""
        return [FnInfo(name, tuple(params), tuple(d.strip() for d in docs), private)
                for name, arity, _py, params, _this, private, docs in
                self._program.info.functions]

    def has_fn(self, name: str, arity: int | None = None) -> bool:
        """Does the script define `name` (at `arity`, if given)?"""
        return any(f.name == name and (arity is None or len(f.params) == arity)
                   for f in self.functions)

    def fn_docs(self, name: str) -> list[str]:
        """The `///` doc comment lines of a function."""
        for f in self.functions:
            if f.name == name:
                return list(f.docs)
        return []

    def __repr__(self) -> str:
        return f"AST({self.source_name or '<script>'})"


@dataclass(frozen=True)
class FnInfo:
    """A script function as the host sees it (name, parameters, `///` docs)."""
    name: str
    params: tuple
    docs: tuple
    private: bool


class Engine:
    """The host's entry point: registrations, limits and the compiled-code cache."""
    def __init__(self, limits: Limits | None = None, *, module_root: str | None = None,
                 on_print=None, on_debug=None, cache_dir: str | None = None):
        self.limits = limits or Limits()
        self.module_root = module_root
        self.on_print = on_print
        self.on_debug = on_debug
        self.cache_dir = cache_dir
        self._host: dict[tuple[str, int], HostFn] = {}
        self._constants: dict = {}
        self._getters: dict[str, list] = {}
        self._setters: dict = {}
        self._static_modules: dict[str, Module] = {}

    # ====================================================================================
    # registration
    # ====================================================================================
    def register_fn(self, name: str, fn, *, arity: int | None = None, context: bool = False):
        """Make a Python function callable from scripts as `name(...)` and, on its first
        argument, as `value.name(...)`. Arities are taken from the signature (parameters with
        defaults give several arities); `*args` functions get arities 0-16 unless `arity` is
        given. With `context=True` the function receives a `NativeContext` first (to call
        back function pointers the script passes)."""
        if not name.isidentifier():
            raise ValueError(f"invalid Rhai function name {name!r}")
        arities = [arity] if arity is not None else _arities(fn, context)
        wrapped = _wrap_host(name, fn)
        for n in arities:
            self._host[(name, n)] = HostFn(name, n, wrapped, context)
        return self

    def register_const(self, name: str, value):
        """A constant visible everywhere in scripts (also inside functions)."""
        self._constants[name] = to_rhai(value, _path=name)
        return self

    def register_getter(self, name: str, fn, type_=None):
        """`value.name` for host values: `fn(value)`. With `type_`, only for that type."""
        def g(obj, _fn=fn, _t=type_):
            if _t is not None and not isinstance(obj, _t):
                raise stdlib.NoGetter
            return to_rhai(_fn(obj))
        self._getters.setdefault(name, []).insert(0, g)
        return self

    def register_setter(self, name: str, fn, type_=None):
        """`value.name = x` for host values: `fn(value, x)`."""
        self._setters[(type_, name)] = fn
        return self

    def register_module(self, name: str, members: dict):
        """A host module reachable as `name::f(...)` / `name::X` (Python callables become
        functions, other values constants)."""
        m = Module(name)
        for k, v in members.items():
            if callable(v) and not isinstance(v, type):
                wrapped = _wrap_host(f"{name}::{k}", v)
                for n in _arities(v, False):
                    m.fns[(k, n)] = (wrapped, "native")
            else:
                m.vars[k] = to_rhai(v, _path=f"{name}::{k}")
        self._static_modules[name] = m
        return self

    # ====================================================================================
    # compiling
    # ====================================================================================
    def compile(self, source: str, *, name: str | None = None, path: str | None = None) -> AST:
        """Compile Rhai source (raises RhaiSyntaxError). `path` is where imports resolve."""
        return AST(self._program(source, name or path, path), path)

    def compile_file(self, path) -> AST:
        """Compile a script file; an unreadable file is a RhaiError naming it."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except OSError as e:
            raise RhaiError("ErrorSystem", f"cannot read script {path}: {e.strerror}",
                            source_name=path) from None
        except UnicodeDecodeError:
            raise RhaiError("ErrorSystem", f"script {path} is not valid UTF-8",
                            source_name=path) from None
        return self.compile(source, name=path, path=os.path.abspath(path))

    def _flags(self):
        lim = self.limits
        return (bool(lim.max_operations),
                bool(lim.max_string_size or lim.max_array_size or lim.max_map_size),
                lim.max_expr_depth)

    def _program(self, source: str, name: str | None, path: str | None) -> Program:
        ops_check, limits_check, depth = self._flags()
        digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        # host functions replacing standard ones that change their receiver are compiled
        # differently (no write-back): programs are not shared across such engines
        overrides = tuple(sorted(k for k in self._host
                                 if (e := stdlib.TABLE.get(k)) is not None and (e.mut or e.ctx)))
        key = (digest, name, path, ops_check, limits_check, depth, overrides)
        with _CACHE_LOCK:
            prog = _CACHE.get(key)
        if prog is not None:
            return prog
        filename = f"<rhai:{name or 'script'}#{digest[:12]}{int(ops_check)}{int(limits_check)}>"
        prog = self._disk_load(key, filename, source, name, path)
        if prog is None:
            lazy = not self.cache_dir
            try:
                script = parse(source, name, max_expr_depth=depth)
                code, info, comp = compile_script(script, filename, guess=self._guess,
                                                  ops_check=ops_check,
                                                  limits_check=limits_check, lazy=lazy)
            except (RecursionError, MemoryError):
                raise RhaiSyntaxError("script too complex to compile (nesting too deep)",
                                      1, 1, source_name=name, source=source) from None
            except RhaiError:
                raise
            except Exception as e:  # noqa: BLE001 - a bug here must not look like a crash
                err = RhaiError("ErrorSystem", f"internal compiler error: {type(e).__name__}: "
                                f"{e}", source_name=name,
                                hint="this is a bug in the Rhai engine, not in the script")
                raise err from e
            prog = Program(code, info, source=source, source_name=name, path=path,
                           filename=filename, module_docs=list(script.module_docs),
                           compiler=comp if lazy else None, flags=self._flags())
            self._disk_store(key, prog)
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = prog
        return prog

    def _cache_file(self, key) -> str | None:
        if not self.cache_dir:
            return None
        h = hashlib.sha256(repr((ENGINE_VERSION, sys.version_info[:2], key)).encode())
        return os.path.join(self.cache_dir, h.hexdigest()[:32] + ".rhaic")

    def _disk_load(self, key, filename, source, name, path):
        f = self._cache_file(key)
        if f is None or not os.path.exists(f):
            return None
        try:
            with open(f, "rb") as fh:
                code_bytes, info, docs = pickle.load(fh)
            code = marshal.loads(code_bytes)
        except Exception:
            return None
        if code.co_filename != filename:
            return None
        return Program(code, info, source=source, source_name=name, path=path,
                       filename=filename, module_docs=docs, flags=self._flags())

    def _disk_store(self, key, prog: Program):
        f = self._cache_file(key)
        if f is None:
            return
        try:
            with atomic_write(f, "wb") as fh:
                pickle.dump((marshal.dumps(prog.code), prog.info, prog.module_docs), fh)
        except OSError:
            pass

    def _guess(self, name, arity):
        h = self._host.get((name, arity))
        if h is not None:
            return (False, False)
        e = stdlib.TABLE.get((name, arity))
        if e is not None:
            return (e.ctx, e.mut)
        return None

    # ====================================================================================
    # running
    # ====================================================================================
    def run(self, ast, scope: Scope | dict | None = None) -> Scope:
        """Run the script's top level; returns the scope with its top-level variables."""
        scope = self._scope(scope)
        self._exec_main(self._as_ast(ast), scope)
        return scope

    def eval(self, ast, scope: Scope | dict | None = None):
        """Run the script and return the value of its last statement (as a Python value)."""
        scope = self._scope(scope)
        return from_rhai(self._exec_main(self._as_ast(ast), scope))

    def call_fn(self, ast, name: str, *args, scope: Scope | None = None):
        """Call a script function. Without `scope`, the top level runs first (as Rhai's
        `call_fn` does). The function, as an entry point, sees the top-level variables and
        can change them; functions it calls follow Rhai's rule (they see only their
        arguments)."""
        ast = self._as_ast(ast)
        if scope is None or scope._instance is None or scope._instance.program is not ast._program:
            scope = self._scope(scope)
            self._exec_main(ast, scope)
        inst = scope._instance
        fn = inst.fns.get((name, len(args)))
        if fn is not None and inst.fn_meta[(name, len(args))][2]:
            # as in Rhai, a `private fn` is not an entry point for the host
            raise RhaiError("ErrorFunctionNotFound", f"Function not found: {name} (private)",
                            source_name=ast.source_name,
                            hint=f"'{name}' is declared 'private fn': remove 'private' to "
                            "call it from the host", fields={"function": name})
        if fn is None:
            err = inst.fn_not_found(name, tuple(to_rhai(a) for a in args))
            err.source_name = ast.source_name
            raise err
        rargs = tuple(to_rhai(a, _path=f"argument of {name}") for a in args)
        inst.state.ops = 0
        return from_rhai(self._guard(lambda: fn(0, scope, UNBOUND, *rargs), inst))

    def _as_ast(self, ast) -> AST:
        if isinstance(ast, AST):
            if ast._program.flags != self._flags():
                # compiled by an engine with other limits: the checks this engine needs
                # (operation counting, size checks) must be in the code
                return AST(self._program(ast.source, ast.source_name, ast._program.path),
                           ast.path)
            return ast
        if isinstance(ast, str):
            return self.compile(ast)
        raise TypeError(f"expected an AST or Rhai source, got {type(ast).__name__}")

    def _scope(self, scope) -> Scope:
        if scope is None:
            return Scope()
        if isinstance(scope, Scope):
            return scope
        if isinstance(scope, dict):
            return Scope(scope)
        raise TypeError("scope must be a Scope or a dict")

    def _exec_main(self, ast: AST, scope: Scope):
        state = RunState()
        state.root_scope = scope
        state.root = self.module_root or (os.path.dirname(ast._program.path)
                                          if ast._program.path else os.getcwd())
        inst = self._guard(lambda: Instance(self, ast._program, scope, state), None)
        scope._instance = inst
        return self._guard(lambda: inst.main(0, scope, UNBOUND), inst)

    def _guard(self, fn, inst):
        """Run `fn` with this engine's limits in force; every exception becomes a located
        RhaiError."""
        old = set_current(self.limits)
        old_rec = sys.getrecursionlimit()
        need = 2000 + 12 * (self.limits.max_call_levels or 1000)
        if need > old_rec:
            sys.setrecursionlimit(need)
        try:
            return fn()
        except RhaiError as e:
            err = locate(e, e.__traceback__)
            self._finish(err, inst)
            raise err.with_traceback(None) from err.__cause__
        except Exception as e:  # noqa: BLE001 - every failure becomes a RhaiError
            err = convert(e)
            self._finish(err, inst)
            cause = err.__cause__
            raise err.with_traceback(None) from cause
        finally:
            set_current(old)
            if need > old_rec:
                sys.setrecursionlimit(old_rec)

    @staticmethod
    def _finish(err: RhaiError, inst):
        if err.source_name is None and inst is not None:
            err.source_name = inst.program.source_name
        if err.source is None and inst is not None and err.line is not None:
            err.source = inst.program.source

    # ====================================================================================
    # natives and modules (used by the runtime)
    # ====================================================================================
    def _lookup_native(self, name, arity):
        h = self._host.get((name, arity))
        if h is not None:
            return h
        return stdlib.TABLE.get((name, arity))

    def _all_function_names(self):
        return {k[0] for k in self._host} | {k[0] for k in stdlib.TABLE}

    def _native_arities(self, name):
        return {k[1] for k in self._host if k[0] == name} | \
            {k[1] for k in stdlib.TABLE if k[0] == name}

    def _emit_print(self, text: str):
        if self.on_print is not None:
            self.on_print(text)
        else:
            print(text, flush=True)

    def _emit_debug(self, text: str):
        if self.on_debug is not None:
            self.on_debug(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def _import_module(self, inst: Instance, path: str) -> Module:
        state = inst.state
        lim = self.limits.max_modules
        if lim and state.n_modules >= lim:
            raise RhaiError("ErrorTooManyModules",
                            f"Too many modules imported (limit {lim})",
                            hint="the engine's max_modules limit")
        state.n_modules += 1
        base = os.path.dirname(inst.program.path) if inst.program.path else state.root
        full = module_path(base, state.root, path)
        if full is None or not os.path.isfile(full):
            raise RhaiError("ErrorModuleNotFound", f"Module not found: {path}",
                            hint=(f"looked for {full}" if full else
                                  "imports are relative to the script's directory and stay "
                                  "inside it"), fields={"module": path})
        cached = state.modules.get(full)
        if cached is not None:
            return cached
        if full in state.loading:
            raise RhaiError("ErrorModuleNotFound", f"Module not found: {path} (cyclic import)",
                            fields={"module": path})
        state.loading.add(full)
        try:
            try:
                with open(full, encoding="utf-8") as f:
                    source = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise RhaiError("ErrorModuleNotFound", f"Module not found: {path} ({e})",
                                fields={"module": path}) from None
            display = os.path.relpath(full) if not os.path.isabs(inst.program.source_name or "") \
                else full
            prog = self._program(source, display, full)
            mscope = Scope()
            minst = Instance(self, prog, mscope, state, is_module=True)
            mscope._instance = minst
            try:
                minst.main(0, mscope, UNBOUND)
            except Exception as e:  # noqa: BLE001
                err = convert(e)
                if err.catchable or err.kind == "ErrorParsing":
                    err.module_stack.append(path)
                raise err from None
            m = build_module(minst, path)
        finally:
            state.loading.discard(full)
        state.modules[full] = m
        return m


def _arities(fn, context: bool) -> list[int]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return list(range(0, 17))
    req = opt = 0
    var = False
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is p.empty:
                req += 1
            else:
                opt += 1
        elif p.kind == p.VAR_POSITIONAL:
            var = True
    if context:
        req -= 1
    if var:
        return list(range(max(req, 0), 17))
    return list(range(max(req, 0), req + opt + 1))


def _wrap_host(name: str, fn):
    def host(*args):
        try:
            r = fn(*args)
        except RhaiError:
            raise
        except RecursionError:
            raise
        except Exception as e:  # noqa: BLE001 - a failing helper is a script-level error
            raise host_error(name, e) from e
        return to_rhai(r, _path=f"result of {name}")
    host.__name__ = f"host_{name}"
    host.__wrapped__ = fn
    return host


__all__ = ["Engine", "AST", "Scope", "FnInfo"]
