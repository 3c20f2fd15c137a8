"""Compiler: Rhai syntax tree -> a Python `ast.Module` -> a code object.

Each Rhai function (and each closure, and the top level as `__main__`) becomes one Python
function. Rhai variables are resolved here, at compile time, to Python locals (one per
declaration, so shadowing and block scopes cost nothing at run time); a variable captured by a
closure lives in a `Cell` (Rhai's shared value) and the closure gets the cells curried, as Rhai
itself de-sugars closures. Operators compile to inline Python with a type guard for the common
integer case (overflow checked) and a call into `ops` for everything else. Every generated node
carries the Rhai line and column, so a runtime error is located from the Python traceback
(`runtime.locate`) without any bookkeeping while the script runs.

Inline fast paths are generated where speed matters (inside loops, in functions that call
script functions, in closures); elsewhere operations are compact helper calls, which keeps the
generated code small and quick to compile. With `lazy=True` only the top level is compiled up
front and each function on its first call (`compile_function`).

Calling convention of a compiled function: `f(_d, _e, _t, *captured_cells, *params)`:
`_d` is the call depth (checked against the limit), `_e` the top-level scope an entry function
may read (None for nested calls: Rhai functions do not see the caller's variables), `_t` the
`this` cell for method-style calls.
"""

from __future__ import annotations

import ast as P  # Python's syntax tree: what the compiler builds

from . import ast as A  # Rhai's syntax tree: what it reads
from .errors import RhaiSyntaxError
from .places import FreePlace, IndexPlace, PropPlace, ThisPlace, VarPlace
from .resolver import (ARITH, _has_break_value, _is_place, check_function, find_captured,
                       infer_ints)
from .stdlib import NON_PURE as MUT_NAMES
from .values import INT_MAX, INT_MIN, Char

LOAD, STORE = P.Load(), P.Store()

ARITH_SLOW = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod", "**": "_pow",
              "<<": "_shl", ">>": "_shr", "&": "_band", "|": "_bor", "^": "_bxor"}
CMP_SLOW = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
CMP_PY = {"==": P.Eq, "!=": P.NotEq, "<": P.Lt, "<=": P.LtE, ">": P.Gt, ">=": P.GtE}
BOOL_RESULT_OPS = set(CMP_SLOW) | {"in", "!in"}

# Standard methods whose receiver must be a place to see the change (strings are immutable).
_MAIN = "__main__"


class VarInfo:
    """A Rhai variable as compiled: its Python name and what the code generator may assume."""
    __slots__ = ("name", "py", "const", "cell", "kind", "decl", "int")

    def __init__(self, name, py, const=False, cell=False, kind="local", decl=None, int=False):
        self.name = name
        self.py = py
        self.const = const
        self.cell = cell
        self.kind = kind    # "local", "module"
        self.decl = decl
        self.int = int      # only ever holds integers (type guards dropped)


class LoopCtx:
    """The loop being compiled: where `break value` puts its value."""
    __slots__ = ("target",)

    def __init__(self, target):
        self.target = target  # temp receiving `break value`, or None


class FnState:
    """The function being compiled (main, fn or closure): its scopes, captures and counters."""
    def __init__(self, kind: str, name: str, parent=None, captured=frozenset(),
                 ints=frozenset()):
        self.kind = kind            # "main", "fn", "closure"
        self.name = name
        self.parent = parent
        self.scopes: list[dict] = [{}]
        self.captured = captured    # decl keys that must live in cells
        self.ints = ints            # decl keys that only hold integers
        self.hot = True             # inline fast paths (loops, recursion, closures)
        self.captures: list[tuple[VarInfo, VarInfo]] = []  # (outer var, local cell param)
        self.serial = 0
        self.loops: list[LoopCtx] = []
        self.catch_vars: list[str] = []
        self.top_vars: list[tuple] = []
        self.exports: list[tuple] = []
        self.submodules: list[tuple] = []


# --- the compiler --------------------------------------------------------------------------

class CompileInfo:
    """What the runtime needs to know about a compiled script."""

    def __init__(self):
        self.functions: list[tuple] = []    # (name, arity, pyname, params, uses_this, private, docs)
        self.closures: dict[str, tuple] = {}  # pyname -> (anon name, arity incl. captures, uses_this)
        self.natives: dict[str, tuple] = {}   # binding -> (name, arity, ctx, mut)
        self.chars: dict[str, str] = {}       # global name -> char
        self.fn_names: dict[str, str] = {}    # pyname -> Rhai function name (for call stacks)
        self.var_names: set[str] = set()      # every declared variable (for "did you mean")
        self.top_names: set[str] = set()      # top-level variables
        self.ops_check = False
        self.limits_check = False


class Compiler:
    """Builds the Python module for one script; one instance per script, kept for lazy
    functions."""
    def __init__(self, script: A.Script, *, filename: str, guess=None, ops_check: bool = False,
                 limits_check: bool = False):
        self.script = script
        self.filename = filename
        self.guess = guess or (lambda name, arity: None)
        self.ops_check = ops_check
        self.limits_check = limits_check
        self.info = CompileInfo()
        self.info.ops_check = ops_check
        self.info.limits_check = limits_check
        self.defs: list[P.stmt] = []
        self.line = 1
        self.col = 1
        self.out: list[P.stmt] = []
        self.fn_state: FnState | None = None
        self.anon_count = 0
        self.fns: dict[tuple[str, int], A.FnDef] = {}
        self.fn_py: dict[tuple[str, int], str] = {}
        for f in script.functions:
            key = (f.name, len(f.params))
            self.fns[key] = f
            self.fn_py[key] = f"rf_{f.name}_{len(f.params)}"
        self.fn_by_name = {f.name for f in script.functions}

    # ====================================================================================
    # node construction helpers (every node gets the current Rhai position)
    # ====================================================================================
    def located(self, node):
        # end positions are optional for compile(); the runtime only reads line and column
        node.lineno = self.line
        node.col_offset = self.col
        return node

    def name(self, id):
        n = P.Name(id, LOAD)
        n.lineno = self.line
        n.col_offset = self.col
        return n

    def store_name(self, id):
        n = P.Name(id, STORE)
        n.lineno = self.line
        n.col_offset = self.col
        return n

    def const(self, v):
        if type(v) is Char:
            gname = f"_ch{ord(v)}"
            self.info.chars[gname] = str(v)
            return self.name(gname)
        return self.located(P.Constant(value=v))

    def call(self, fn, args, keywords=None):
        if type(fn) is str:
            fn = P.Name(fn, LOAD)
            fn.lineno = self.line
            fn.col_offset = self.col
        n = P.Call(fn, list(args), keywords or [])
        n.lineno = self.line
        n.col_offset = self.col
        return n

    def attr(self, value, attr, store=False):
        return self.located(P.Attribute(value=value, attr=attr, ctx=STORE if store else LOAD))

    def ifexp(self, test, body, orelse):
        return self.located(P.IfExp(test=test, body=body, orelse=orelse))

    def cmp(self, left, ops, comps):
        return self.located(P.Compare(left=left, ops=[o() for o in ops], comparators=list(comps)))

    def band(self, *values):
        vals = [v for v in values if v is not None]
        if len(vals) == 1:
            return vals[0]
        return self.located(P.BoolOp(op=P.And(), values=vals))

    def bor(self, *values):
        return self.located(P.BoolOp(op=P.Or(), values=list(values)))

    def binop(self, left, op, right):
        return self.located(P.BinOp(left=left, op=op(), right=right))

    def unop(self, op, v):
        return self.located(P.UnaryOp(op=op(), operand=v))

    def walrus(self, tname, value):
        return self.located(P.NamedExpr(target=self.store_name(tname), value=value))

    def typeof(self, e):
        return self.call("type", [e])

    def is_type(self, e, tname):
        return self.cmp(self.typeof(e), [P.Is], [self.name(tname)])

    def assign(self, target, value):
        if isinstance(target, str):
            target = self.store_name(target)
        return self.located(P.Assign(targets=[target], value=value))

    def stmt_expr(self, value):
        return self.located(P.Expr(value=value))

    def hot(self) -> bool:
        """Inline the fast paths here? (loops, recursive functions, closures): elsewhere
        compact helper calls keep the code small and quick to compile."""
        return self.fn_state.hot or bool(self.fn_state.loops)

    def emit(self, *stmts):
        self.out.extend(stmts)

    def tmp(self) -> str:
        self.fn_state.serial += 1
        return f"_t{self.fn_state.serial}"

    def at(self, node):
        old = (self.line, self.col)
        if node.line:
            self.line, self.col = node.line, node.col
        return old

    def error(self, message, node, hint=None):
        return RhaiSyntaxError(message, node.line, node.col, source_name=self.script.source_name,
                               source=self.script.source, hint=hint)

    @staticmethod
    def simple(e) -> bool:
        return isinstance(e, (P.Constant, P.Name))

    def split(self, e):
        """(first use, later uses) of an expression that is used more than once."""
        if self.simple(e):
            return e, e
        t = self.tmp()
        return self.walrus(t, e), self.name(t)

    # ====================================================================================
    # scopes
    # ====================================================================================
    def declare(self, name, decl_node, const=False, kind="local", prefix="v"):
        fn_state = self.fn_state
        fn_state.serial += 1
        py = f"{prefix}_{name}_{fn_state.serial}"
        if kind == "local":
            self.info.var_names.add(name)
            if fn_state.kind == "main" and len(fn_state.scopes) == 1:
                self.info.top_names.add(name)
        key = (id(decl_node), name)
        cell = key in fn_state.captured
        var = VarInfo(name, py, const=const, cell=cell, kind=kind,
                     int=(not cell and kind == "local" and key in fn_state.ints))
        fn_state.scopes[-1][name if kind == "local" else "::" + name] = var
        return var

    def lookup(self, name, fn_state=None, key=None):
        fn_state = fn_state or self.fn_state
        key = key or name
        for s in reversed(fn_state.scopes):
            v = s.get(key)
            if v is not None:
                return v
        if fn_state.kind == "closure" and fn_state.parent is not None:
            outer = self.lookup(name, fn_state.parent, key)
            if outer is None:
                return None
            if outer.kind == "module":
                return outer_module_capture(self, fn_state, outer, key)
            # capture: the outer variable is a cell; the closure gets it as a parameter
            fn_state.serial += 1
            local = VarInfo(name, f"c_{name}_{fn_state.serial}", const=outer.const, cell=True)
            fn_state.captures.append((outer, local))
            fn_state.scopes[0][key] = local
            return local
        return None

    def load_var(self, var: VarInfo):
        n = self.name(var.py)
        return self.attr(n, "v") if var.cell else n

    def store_var(self, var: VarInfo, value):
        if var.cell:
            return self.assign(self.attr(self.name(var.py), "v", store=True), value)
        return self.assign(var.py, value)

    # ====================================================================================
    # entry point
    # ====================================================================================
    def compile(self, lazy: bool = False):
        """The module for the script: `__main__` and, unless `lazy`, every function. With
        `lazy`, functions are compiled on their first call (`compile_function`); their
        compile-time errors are still checked now."""
        script = self.script
        for f in script.functions:
            py = self.fn_py[(f.name, len(f.params))]
            self.info.functions.append((f.name, len(f.params), py, list(f.params), f.uses_this,
                                        f.private, f.docs))
            self.info.fn_names[py] = f.name
            if lazy:
                check_function(f, self.script)
            else:
                self.defs.append(self.function(f))
        main = self.main(script)
        mod = P.Module(body=[main] + self.defs, type_ignores=[])
        self.defs = []
        return mod, self.info

    def compile_function(self, pyname: str):
        """A module defining one script function (and the closures inside it)."""
        for f in self.script.functions:
            if self.fn_py[(f.name, len(f.params))] == pyname:
                self.defs = []
                d = self.function(f)
                mod = P.Module(body=[d] + self.defs, type_ignores=[])
                self.defs = []
                return mod
        raise KeyError(pyname)

    def main(self, script: A.Script):
        body = A.Block(script.stmts)
        captured = find_captured({}, body) if script.has_closure else frozenset()
        hot = [False]
        fn_state = FnState("main", _MAIN, captured=captured,
                     ints=infer_ints({}, body, MUT_NAMES, self.fn_by_name, hot))
        fn_state.hot = False
        self.fn_state = fn_state
        self.out = []
        self.line, self.col = 1, 1
        body = self.out
        self.block_value_stmts(script.stmts, self.return_sink, new_scope=False)
        # export top-level variables to the scope, and module exports
        self.line, self.col = 1, 1
        fin = [self.stmt_expr(self.call("_export_scope", [
            self.name("_e"), self.call("locals", []),
            self.const(tuple(fn_state.top_vars))]))]
        if fn_state.exports or fn_state.submodules:
            fin.append(self.stmt_expr(self.call("_export_module", [
                self.call("locals", []), self.const(tuple(fn_state.exports)),
                self.const(tuple(fn_state.submodules))])))
        guarded = self.located(P.Try(body=body or [self.located(P.Pass())], handlers=[], orelse=[],
                              finalbody=fin))
        self.info.fn_names[_MAIN] = "<main>"
        return self.fndef(_MAIN, ["_d", "_e", "_t"], [guarded])

    def fndef(self, name, params, body):
        args = P.arguments(posonlyargs=[], args=[self.located(P.arg(arg=p, annotation=None))
                                                  for p in params], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        return self.located(P.FunctionDef(name=name, args=args, body=body, decorator_list=[],
                                     returns=None, type_comment=None))

    def prologue(self, weight: int):
        out = []
        # if _d > _MAXD: _overflow(_d)
        out.append(self.located(P.If(test=self.cmp(self.name("_d"), [P.Gt], [self.name("_MAXD")]),
                                body=[self.stmt_expr(self.call("_overflow", [self.name("_d")]))],
                                orelse=[])))
        if self.ops_check:
            out.extend(self.tick(weight))
        return out

    def tick(self, weight: int):
        s = self.name("_S")
        aug = self.located(P.AugAssign(target=self.attr(s, "ops", store=True), op=P.Add(),
                                  value=self.const(max(1, weight))))
        chk = self.located(P.If(test=self.cmp(self.attr(self.name("_S"), "ops"), [P.Gt],
                                         [self.name("_MAXOPS")]),
                           body=[self.stmt_expr(self.call("_too_many_ops", []))], orelse=[]))
        return [aug, chk]

    def function(self, f: A.FnDef):
        params_decl = {p: (id(f), p) for p in f.params}
        captured = find_captured(params_decl, f.body) if f.has_closure else frozenset()
        hot = [False]
        fn_state = FnState("fn", f.name, captured=captured,
                     ints=infer_ints(params_decl, f.body, MUT_NAMES, self.fn_by_name, hot))
        fn_state.hot = hot[0]
        self.fn_state = fn_state
        self.out = []
        old = self.at(f)
        pyparams = ["_d", "_e", "_t"]
        pre = []
        for p in f.params:
            var = self.declare(p, f)
            pyparams.append(var.py)
            if var.cell:
                pre.append(self.assign(var.py, self.call("_Cell", [self.name(var.py)])))
        self.out.extend(self.prologue(len(f.body.stmts)))
        self.out.extend(pre)
        self.block_value(f.body, self.return_sink)
        body = self.out
        self.line, self.col = old
        self.line, self.col = f.line, f.col
        d = self.fndef(self.fn_py[(f.name, len(f.params))], pyparams, body)
        return d

    # ====================================================================================
    # sinks: where the value of a block goes
    # ====================================================================================
    def return_sink(self, value):
        self.emit(self.located(P.Return(value=value)))

    def assign_sink(self, tname):
        def sink(value):
            self.emit(self.assign(tname, value))
        return sink

    def discard_sink(self, value):
        if not isinstance(value, (P.Constant, P.Name)):
            self.emit(self.stmt_expr(value))

    # ====================================================================================
    # blocks and statements
    # ====================================================================================
    def block(self, block: A.Block):
        self.fn_state.scopes.append({})
        for s in block.stmts:
            self.stmt(s)
        self.fn_state.scopes.pop()

    def block_value(self, block: A.Block, sink):
        old = self.at(block)
        self.block_value_stmts(block.stmts, sink)
        self.line, self.col = old

    def block_value_stmts(self, stmts, sink, new_scope=True):
        if new_scope:
            self.fn_state.scopes.append({})
        for s in stmts[:-1]:
            self.stmt(s)
        if stmts:
            self.stmt_value(stmts[-1], sink)
        else:
            sink(self.const(None))
        if new_scope:
            self.fn_state.scopes.pop()

    def stmt_value(self, s, sink):
        """Compile the last statement of a block, sending its value to `sink`."""
        old = self.at(s)
        t = type(s)
        if t is A.ExprStmt:
            e = s.expr
            te = type(e)
            if te is A.If:
                self.if_stmt(e, sink)
            elif te is A.Switch:
                self.switch_stmt(e, sink)
            elif te is A.BlockExpr:
                self.block_value(e.block, sink)
            elif te is A.StmtExpr:
                self.stmt_value(e.stmt, sink)
            else:
                v = self.expr(e)
                sink(self.cp_if_place(e, v, returning=sink == self.return_sink))
        elif t is A.Block:
            self.block_value(s, sink)
        elif t in (A.While, A.DoWhile, A.For):
            target = self.tmp() if _has_break_value(s) else None
            if target:
                self.emit(self.assign(target, self.const(None)))
            self.loop_stmt(s, target)
            sink(self.name(target) if target else self.const(None))
        elif t is A.TryCatch:
            self.try_stmt(s, sink)
        elif t in (A.Return, A.Throw, A.Break, A.Continue):
            self.stmt(s)
        else:
            self.stmt(s)
            if sink is not self.discard_sink:
                sink(self.const(None))
        self.line, self.col = old

    def stmt(self, s):
        old = self.at(s)
        t = type(s)
        if t is A.ExprStmt:
            e = s.expr
            te = type(e)
            if te is A.If:
                self.if_stmt(e, None)
            elif te is A.Switch:
                self.switch_stmt(e, None)
            elif te is A.BlockExpr:
                self.block(e.block)
            elif te is A.StmtExpr:
                self.stmt(e.stmt)
            elif te is A.MethodCall or te is A.Call:
                v = self.expr(e)
                if not isinstance(v, (P.Constant, P.Name)):
                    self.emit(self.stmt_expr(v))
            else:
                v = self.expr(e)
                if not isinstance(v, (P.Constant, P.Name)):
                    self.emit(self.stmt_expr(v))
        elif t is A.Let:
            self.let_stmt(s)
        elif t is A.Assign:
            self.assign_stmt(s)
        elif t is A.Block:
            self.block(s)
        elif t in (A.While, A.DoWhile, A.For):
            self.loop_stmt(s, None)
        elif t is A.Break:
            self.break_stmt(s)
        elif t is A.Continue:
            self.emit(self.located(P.Continue()))
        elif t is A.Return:
            v = self.const(None) if s.value is None else self.cp_if_place(
                s.value, self.expr(s.value), returning=True)
            self.emit(self.located(P.Return(value=v)))
        elif t is A.Throw:
            self.throw_stmt(s)
        elif t is A.TryCatch:
            self.try_stmt(s, None)
        elif t is A.Import:
            self.import_stmt(s)
        elif t is A.Export:
            self.export_stmt(s)
        elif t is A.FnDef:
            pass  # compiled separately
        else:  # pragma: no cover
            raise self.error(f"cannot compile statement {t.__name__}", s)
        self.line, self.col = old

    def let_stmt(self, s: A.Let):
        if s.value is None:
            v = self.const(None)
        else:
            v = self.cp_if_place(s.value, self.expr(s.value))
        fn_state = self.fn_state
        var = self.declare(s.name, s, const=s.const)
        if var.cell:
            v = self.call("_Cell", [v])
        self.emit(self.assign(var.py, v))
        if fn_state.kind == "main" and len(fn_state.scopes) == 1:
            fn_state.top_vars.append((s.name, var.py, s.const, var.cell))
            if s.const:
                self.emit(self.assign(self.located(P.Subscript(value=self.name("_G"),
                                                          slice=self.const(s.name), ctx=STORE)),
                                      self.load_var(var)))
            if s.export:
                fn_state.exports.append((var.py, s.name, var.cell))
        elif s.export:
            raise self.error("'export' is only allowed at global level", s)

    def export_stmt(self, s: A.Export):
        fn_state = self.fn_state
        for name, alias, line, col in s.names:
            var = fn_state.scopes[0].get(name) if fn_state.kind == "main" else None
            if var is None or len(fn_state.scopes) != 1:
                raise RhaiSyntaxError(f"cannot export '{name}': it is not a variable defined at "
                                      "global level", line, col,
                                      source_name=self.script.source_name,
                                      source=self.script.source)
            fn_state.exports.append((var.py, alias, var.cell))

    def import_stmt(self, s: A.Import):
        path = self.expr(s.path)
        old = self.at(s.path)
        m = self.call("_import", [self.name("_d"), path])
        self.line, self.col = old
        if s.alias is None:
            self.emit(self.stmt_expr(m))
            return
        var = self.declare(s.alias, s, kind="module", prefix="m")
        self.emit(self.assign(var.py, m))
        fn_state = self.fn_state
        if fn_state.kind == "main" and len(fn_state.scopes) == 1:
            fn_state.submodules.append((var.py, s.alias))
            self.emit(self.stmt_expr(self.call("_gimport", [self.const(s.alias),
                                                            self.name(var.py)])))

    def break_stmt(self, s: A.Break):
        loop = self.fn_state.loops[-1] if self.fn_state.loops else None
        if s.value is not None:
            v = self.cp_if_place(s.value, self.expr(s.value))
            if loop is not None and loop.target:
                self.emit(self.assign(loop.target, v))
            elif not self.simple(v):
                self.emit(self.stmt_expr(v))
        self.emit(self.located(P.Break()))

    def throw_stmt(self, s: A.Throw):
        if s.value is None:
            if self.fn_state.catch_vars:
                self.emit(self.located(P.Raise(exc=self.name(self.fn_state.catch_vars[-1]),
                                               cause=None)))
                return
            v = self.const(None)
        else:
            v = self.cp_if_place(s.value, self.expr(s.value))
        self.emit(self.located(P.Raise(exc=self.call("_throw", [v]), cause=None)))

    def try_stmt(self, s: A.TryCatch, sink):
        fn_state = self.fn_state
        saved = self.out
        self.out = []
        if sink is not None:
            self.block_value(s.body, sink)
        else:
            self.block(s.body)
        body = self.out or [self.located(P.Pass())]
        self.out = []
        xname = self.tmp()
        fn_state.catch_vars.append(xname)
        fn_state.scopes.append({})
        cv = self.call("_catch", [self.name(xname)])
        if s.var:
            var = self.declare(s.var, s)
            if var.cell:
                cv = self.call("_Cell", [cv])
            self.emit(self.assign(var.py, cv))
        else:
            self.emit(self.stmt_expr(cv))
        old = self.at(s.handler)
        self.block(s.handler)
        self.line, self.col = old
        if sink is not None:
            sink(self.const(None))
        fn_state.scopes.pop()
        fn_state.catch_vars.pop()
        handler_body = self.out
        self.out = saved
        h = self.located(P.ExceptHandler(type=self.name("Exception"), name=xname,
                                         body=handler_body))
        self.emit(self.located(P.Try(body=body, handlers=[h], orelse=[], finalbody=[])))

    # --- if / switch -------------------------------------------------------------------
    def cond(self, e):
        """A condition: must be a boolean (Rhai never converts)."""
        v = self.expr(e)
        if self.is_bool(e):
            return v
        old = self.at(e)
        if not self.hot():
            r = self.call("_need_bool", [v])
        else:
            a1, a2 = self.split(v)
            r = self.ifexp(self.is_type(a1, "bool"), a2, self.call("_need_bool", [a2]))
        self.line, self.col = old
        return r

    def is_int(self, e) -> bool:
        """Is this expression statically an integer (or an error)?"""
        t = type(e)
        if t is A.Lit:
            return type(e.value) is int
        if t is A.Var:
            var = self.lookup(e.name)
            return var is not None and var.int
        if t is A.Binary:
            return e.op in ARITH and self.is_int(e.left) and self.is_int(e.right)
        if t is A.Unary:
            return e.op in ("-", "+") and self.is_int(e.operand)
        return False

    def is_bool(self, e) -> bool:
        t = type(e)
        if t is A.Lit:
            return type(e.value) is bool
        if t is A.Binary:
            return e.op in BOOL_RESULT_OPS
        if t is A.Logic:
            return True
        if t is A.Unary:
            return e.op == "!"
        return False

    def if_stmt(self, e: A.If, sink):
        test = self.cond(e.cond)
        saved = self.out
        self.out = []
        if sink is None:
            self.block(e.then)
        else:
            self.block_value(e.then, sink)
        then = self.out or [self.located(P.Pass())]
        self.out = []
        if e.orelse is None:
            if sink is not None:
                sink(self.const(None))
        elif type(e.orelse) is A.If:
            old = self.at(e.orelse)
            self.if_stmt(e.orelse, sink)
            self.line, self.col = old
        else:
            if sink is None:
                self.block(e.orelse)
            else:
                self.block_value(e.orelse, sink)
        orelse = self.out
        self.out = saved
        self.emit(self.located(P.If(test=test, body=then, orelse=orelse)))

    def switch_stmt(self, e: A.Switch, sink):
        subj = self.expr(e.subject)
        if not self.simple(subj) or isinstance(subj, P.Name) and not subj.id.startswith("_t"):
            t = self.tmp()
            self.emit(self.assign(t, subj))
            subj = self.name(t)
        # exact values first (in order), then ranges, as Rhai's hashed look-up does
        plain, ranges = [], []
        for c in e.cases:
            if all(isinstance(v, A.Binary) for v in c.values):
                ranges.append(c)
            else:
                plain.append(c)
        chain = []
        for c in plain + ranges:
            old = self.at(c)
            tests = []
            for v in c.values:
                if isinstance(v, A.Binary):
                    r = self.call("_Range", [self.const(v.left.value), self.const(v.right.value),
                                             self.const(v.op == "..=")])
                    tests.append(self.call("_srange", [subj, r]))
                else:
                    tests.append(self.case_test(subj, v))
            test = tests[0] if len(tests) == 1 else self.bor(*tests)
            saved = self.out
            self.out = []
            if c.guard is not None:
                g = self.cond(c.guard)
                pre_guard = self.out
                self.out = []
            else:
                g = None
                pre_guard = []
            self.case_body(c.body, sink)
            body = self.out or [self.located(P.Pass())]
            self.out = saved
            if g is not None:
                if pre_guard:
                    # guard with statements: evaluate inside the match
                    flag = self.tmp()
                    inner = pre_guard + [self.assign(flag, g)]
                    chain.append((test, inner, flag, body))
                else:
                    chain.append((self.band(test, g), [], None, body))
            else:
                chain.append((test, [], None, body))
            self.line, self.col = old
        saved = self.out
        self.out = []
        if e.default is not None:
            self.case_body(e.default, sink)
        elif sink is not None:
            sink(self.const(None))
        orelse = self.out
        self.out = saved
        # build nested if/elif from the end
        for test, inner, flag, body in reversed(chain):
            if flag is None:
                orelse = [self.located(P.If(test=test, body=body, orelse=orelse))]
            else:
                # if test: inner; if flag: body else: <rest>   else: <rest>
                rest = orelse
                orelse = [self.located(P.If(test=test, body=inner + [
                    self.located(P.If(test=self.name(flag), body=body, orelse=list(rest)))],
                    orelse=list(rest)))]
        self.emit(*orelse)

    def case_test(self, subj, v):
        if isinstance(v, A.Lit):
            val = v.value
            if val is None:
                return self.cmp(subj, [P.Is], [self.const(None)])
            if type(val) is bool:
                return self.cmp(subj, [P.Is], [self.const(val)])
            if type(val) in (int, float, str):
                return self.band(self.is_type(subj, {int: "int", float: "float",
                                                     str: "str"}[type(val)]),
                                 self.cmp(subj, [P.Eq], [self.const(val)]))
        return self.call("_seq", [subj, self.expr(v)])

    def case_body(self, body, sink):
        if isinstance(body, A.BlockExpr):
            if sink is None:
                self.block(body.block)
            else:
                self.block_value(body.block, sink)
        else:
            old = self.at(body)
            v = self.expr(body)
            if sink is None:
                if not self.simple(v):
                    self.emit(self.stmt_expr(v))
            else:
                sink(self.cp_if_place(body, v))
            self.line, self.col = old

    # --- loops ---------------------------------------------------------------------------
    def loop_stmt(self, s, target):
        fn_state = self.fn_state
        t = type(s)
        fn_state.loops.append(LoopCtx(target))
        tick = self.tick(len(s.body.stmts) + 1) if self.ops_check else []
        if t is A.While:
            if s.cond is None:
                saved = self.out
                self.out = list(tick)
                self.block(s.body)
                body = self.out or [self.located(P.Pass())]
                self.out = saved
                self.emit(self.located(P.While(test=self.const(True), body=body, orelse=[])))
            else:
                saved = self.out
                self.out = []
                test = self.cond(s.cond)
                pre = self.out
                self.out = list(tick)
                self.block(s.body)
                body = self.out or [self.located(P.Pass())]
                self.out = saved
                if pre:
                    brk = self.located(P.If(test=self.unop(P.Not, test),
                                            body=[self.located(P.Break())], orelse=[]))
                    self.emit(self.located(P.While(test=self.const(True), body=pre + [brk] + body,
                                              orelse=[])))
                else:
                    self.emit(self.located(P.While(test=test, body=body, orelse=[])))
        elif t is A.DoWhile:
            saved = self.out
            self.out = list(tick)
            self.block(s.body)
            old = self.at(s.cond)
            test = self.cond(s.cond)
            if not s.until:
                test = self.unop(P.Not, test)
            self.emit(self.located(P.If(test=test, body=[self.located(P.Break())], orelse=[])))
            self.line, self.col = old
            body = self.out
            self.out = saved
            self.emit(self.located(P.While(test=self.const(True), body=body, orelse=[])))
        else:  # For
            it = s.iterable
            if type(it) is A.Binary and it.op in ("..", "..="):
                a, b = self.exprs([it.left, it.right])
                old = self.at(it)
                iterable = self.call("_forr" if it.op == ".." else "_forri", [a, b])
                self.line, self.col = old
            else:
                v = self.expr(it)
                old = self.at(it)
                iterable = self.call("_iter", [v])
                self.line, self.col = old
            fn_state.scopes.append({})
            var = self.declare(s.var, s)
            ci = self.declare(s.counter, s) if s.counter else None
            setup = []
            if var.cell:
                setup.append(self.assign(var.py, self.call("_Cell", [])))
            if ci is not None and ci.cell:
                setup.append(self.assign(ci.py, self.call("_Cell", [])))
            tv = (self.attr(self.name(var.py), "v", store=True) if var.cell
                  else self.store_name(var.py))
            if ci is not None:
                tc = (self.attr(self.name(ci.py), "v", store=True) if ci.cell
                      else self.store_name(ci.py))
                target = self.located(P.Tuple(elts=[tc, tv], ctx=STORE))
                iterable = self.call("enumerate", [iterable])
            else:
                target = tv
            saved = self.out
            self.out = list(tick)
            self.block(s.body)
            body = self.out or [self.located(P.Pass())]
            self.out = saved
            fn_state.scopes.pop()
            self.emit(*setup)
            self.emit(self.located(P.For(target=target, iter=iterable, body=body, orelse=[],
                                    type_comment=None)))
        fn_state.loops.pop()

    # --- assignment ------------------------------------------------------------------------
    def assign_stmt(self, s: A.Assign):
        target = s.target
        # value first (Rhai evaluates the right-hand side before the target)
        value = self.expr(s.value)
        if s.op is None:
            value = self.cp_if_place(s.value, value)
        if type(target) is A.Var:
            var = self.lookup(target.name)
            if var is not None and var.kind == "local":
                if var.const:
                    raise self.error(f"cannot assign to constant '{target.name}'", s,
                                     hint=f"declare it with 'let {target.name}' to change it")
                if s.op is None:
                    self.emit(self.store_var(var, value))
                elif s.op == "+" and not var.int and not var.cell and not self.is_int(s.value) \
                        and self.hot():
                    # `s += x` on strings: CPython's in-place string concatenation needs the
                    # plain statement `v += x` on a local
                    if not self.simple(value):
                        t = self.tmp()
                        self.emit(self.assign(t, value))
                        value = self.name(t)
                    inplace = [self.located(P.AugAssign(target=self.store_name(var.py), op=P.Add(),
                                                   value=value))]
                    if self.limits_check:
                        inplace.append(self.located(P.If(
                            test=self.cmp(self.call("len", [self.name(var.py)]), [P.Gt],
                                          [self.name("_MAXS")]),
                            body=[self.stmt_expr(self.call("_chkstr", [self.name(var.py)]))],
                            orelse=[])))
                    test = self.cmp(self.typeof(self.name(var.py)), [P.Is, P.Is],
                                    [self.typeof(value), self.name("str")])
                    other = self.store_var(var, self.op_values("+", self.load_var(var), value,
                                                              compound=True))
                    self.emit(self.located(P.If(test=test, body=inplace, orelse=[other])))
                else:
                    cur = self.load_var(var)
                    self.emit(self.store_var(var, self.op_values(
                        s.op, cur, value, compound=True, ia=var.int,
                        ib=self.is_int(s.value))))
                return
        if type(target) is A.Index and type(target.target) is A.Var and s.op is None \
                and self.hot():
            var = self.lookup(target.target.name)
            if var is not None and var.kind == "local" and not var.cell and not var.const \
                    and not var.int:
                # fast path: `m[k] = v` on a map with a string key, or an array in range
                if not self.simple(value):
                    t = self.tmp()
                    self.emit(self.assign(t, value))
                    value = self.name(t)
                old = self.at(target)
                k = self.expr(target.index)
                if not self.simple(k):
                    kt = self.tmp()
                    self.emit(self.assign(kt, k))
                    k = self.name(kt)
                o = self.name(var.py)
                sub = self.located(P.Subscript(value=self.name(var.py), slice=k, ctx=STORE))
                fast_map = self.band(self.is_type(o, "dict"), self.is_type(k, "str"),
                                     self.bor(self.cmp(k, [P.In], [self.name(var.py)]),
                                              self.cmp(self.call("len", [self.name(var.py)]),
                                                       [P.Lt], [self.name("_MAXM")]))
                                     if self.limits_check else None)
                fast_arr = self.band(self.is_type(k, "int"), self.is_type(o, "list"),
                                     self.cmp(self.unop(P.USub, self.call("len", [o])),
                                              [P.LtE, P.Lt], [k, self.call("len", [o])]))
                slow = self.assign(var.py, self.call("_setidx", [o, k, value]))
                self.emit(self.located(P.If(test=self.bor(fast_map, fast_arr),
                                       body=[self.assign(sub, value)], orelse=[slow])))
                self.line, self.col = old
                return
        if not self.simple(value):
            t = self.tmp()
            self.emit(self.assign(t, value))
            value = self.name(t)
        place = self.place(target)
        if s.op is not None:
            value = self.op_values(s.op, place.load(), value, compound=True)
        place.store(value)

    def place(self, e):
        t = type(e)
        if t is A.Var:
            var = self.lookup(e.name)
            if var is not None and var.kind == "local":
                return VarPlace(self, var, e)
            return FreePlace(self, e.name)
        if t is A.This:
            return ThisPlace(self)
        if t is A.Index or t is A.Prop:
            parent = self.place(e.target) if _is_place(e.target) else None
            old = self.at(e)
            if parent is not None:
                cont = parent.load()
            else:
                cont = self.expr(e.target)
            c = self.tmp()
            self.emit(self.assign(c, cont))
            if t is A.Index:
                k = self.expr(e.index)
                if not isinstance(k, P.Constant):
                    kt = self.tmp()
                    self.emit(self.assign(kt, k))
                    k = self.name(kt)
                p = IndexPlace(self, parent, c, k, e)
            else:
                p = PropPlace(self, parent, c, e.name, e)
            self.line, self.col = old
            return p
        raise self.error("cannot assign to this expression", e)

    # ====================================================================================
    # expressions
    # ====================================================================================
    def expr(self, e):
        old = (self.line, self.col)
        if e.line:
            self.line, self.col = e.line, e.col
        try:
            return self._EXPR[type(e)](self, e)
        finally:
            self.line, self.col = old

    def exprs(self, es):
        """Compile several operands, keeping Rhai's left-to-right evaluation order even when a
        later operand needs statements (those run before the whole expression, so earlier
        operands are saved to temporaries first)."""
        results = []
        for e in es:
            saved = self.out
            buf = []
            self.out = buf
            r = self.expr(e)
            self.out = saved
            if buf:
                for i, prev in enumerate(results):
                    if not isinstance(prev, P.Constant) and not (
                            isinstance(prev, P.Name) and prev.id.startswith("_t")):
                        t = self.tmp()
                        self.emit(self.assign(t, prev))
                        results[i] = self.name(t)
                self.emit(*buf)
            results.append(r)
        return results

    def cp_if_place(self, e, v, returning=False):
        """Rhai copies arrays and maps when a stored value is read into a new place. A local
        variable returned from its function needs no copy: nothing else holds it."""
        t = type(e)
        if t in (A.Var, A.Index, A.Prop, A.NsVar, A.This):
            if t is A.Var:
                var = self.lookup(e.name)
                if var is not None and var.int:
                    return v
                if returning and var is not None and var.kind == "local" and not var.cell:
                    return v
            if not self.hot():
                return self.call("_cp", [v])
            v1, v2 = self.split(v)
            return self.ifexp(self.cmp(self.typeof(v1), [P.NotIn], [self.name("_MUT")]), v2,
                              self.call("_cp", [v2]))
        return v

    def e_lit(self, e: A.Lit):
        return self.const(e.value)

    def e_var(self, e: A.Var):
        var = self.lookup(e.name)
        if var is None and e.name in self.fn_by_name:
            # short-hand function pointer: the name of a script function is `Fn("name")`
            # unless a variable of that name is visible
            b, _, _ = self.native_binding("Fn", 1)
            return self.ifexp(self.call("_isdefv", [self.name("_e"), self.const(e.name)]),
                              self.call("_getv", [self.name("_e"), self.const(e.name)]),
                              self.call(b, [self.name("_d"), self.const(e.name)]))
        if var is None:
            return self.call("_getv", [self.name("_e"), self.const(e.name)])
        if var.kind == "module":
            raise self.error(f"'{e.name}' is a module: use {e.name}::name to reach its "
                             "members", e)
        return self.load_var(var)

    def e_this(self, e):
        return self.attr(self.name("_t"), "v")

    def e_nsvar(self, e: A.NsVar):
        if e.path == ["global"]:
            return self.call("_gvar", [self.name("_G"), self.const(e.name)])
        return self.call("_mvar", [self.module_ref(e.path, e), self.const(e.name),
                                   self.const("::".join(e.path))])

    def module_ref(self, path, node):
        var = self.lookup(path[0], key="::" + path[0])
        if var is None:
            # a module imported at global level (visible to functions, as in Rhai), or a
            # module registered by the host
            m = self.call("_gmod", [self.const(path[0])])
        else:
            m = self.name(var.py)
        for sub in path[1:]:
            m = self.call("_msub", [m, self.const(sub)])
        return m

    def e_array(self, e: A.ArrayLit):
        vals = self.exprs(e.items)
        vals = [self.cp_if_place(x, v) for x, v in zip(e.items, vals)]
        lst = self.located(P.List(elts=vals, ctx=LOAD))
        if self.limits_check:
            return self.call("_chkarr", [lst])
        return lst

    def e_map(self, e: A.MapLit):
        vals = self.exprs([v for _, v in e.items])
        vals = [self.cp_if_place(x, v) for (_, x), v in zip(e.items, vals)]
        d = self.located(P.Dict(keys=[self.const(k) for k, _ in e.items], values=vals))
        if self.limits_check:
            return self.call("_chkmap", [d])
        return d

    def e_interp(self, e: A.Interp):
        exprs = [p for p in e.parts if not isinstance(p, str)]
        vals = self.exprs(exprs)
        it = iter(vals)
        parts = []
        for p in e.parts:
            if isinstance(p, str):
                if p:
                    parts.append(self.const(p))
            else:
                v = next(it)
                inner = p.block.stmts[0].expr if (len(p.block.stmts) == 1 and type(
                    p.block.stmts[0]) is A.ExprStmt) else None
                if inner is not None and (self.is_int(inner) or (
                        type(inner) is A.Lit and type(inner.value) is str)):
                    fv = v
                else:
                    fv = self.call("_tostr", [v])
                parts.append(self.located(P.FormattedValue(value=fv, conversion=-1,
                                                      format_spec=None)))
        s = self.located(P.JoinedStr(values=parts))
        if self.limits_check:
            t = self.tmp()
            return self.ifexp(self.cmp(self.call("len", [self.walrus(t, s)]), [P.LtE],
                                       [self.name("_MAXS")]),
                              self.name(t), self.call("_chkstr", [self.name(t)]))
        return s

    def e_blockexpr(self, e: A.BlockExpr):
        stmts = e.block.stmts
        if len(stmts) == 1 and type(stmts[0]) is A.ExprStmt and type(stmts[0].expr) not in (
                A.If, A.Switch, A.BlockExpr, A.StmtExpr):
            self.fn_state.scopes.append({})
            v = self.cp_if_place(stmts[0].expr, self.expr(stmts[0].expr))
            self.fn_state.scopes.pop()
            return v
        t = self.tmp()
        self.block_value(e.block, self.assign_sink(t))
        return self.name(t)

    def e_stmtexpr(self, e: A.StmtExpr):
        t = self.tmp()
        self.stmt_value(e.stmt, self.assign_sink(t))
        return self.name(t)

    def e_if(self, e: A.If):
        def single(b):
            return (isinstance(b, A.Block) and len(b.stmts) == 1 and type(b.stmts[0]) is A.ExprStmt
                    and type(b.stmts[0].expr) not in (A.If, A.Switch, A.BlockExpr, A.StmtExpr))
        if single(e.then) and (e.orelse is None or single(e.orelse)):
            test = self.cond(e.cond)
            saved = self.out
            self.out = []
            self.fn_state.scopes.append({})
            tv = self.cp_if_place(e.then.stmts[0].expr, self.expr(e.then.stmts[0].expr))
            self.fn_state.scopes.pop()
            tbuf = self.out
            self.out = []
            if e.orelse is None:
                ev = self.const(None)
            else:
                self.fn_state.scopes.append({})
                ev = self.cp_if_place(e.orelse.stmts[0].expr, self.expr(e.orelse.stmts[0].expr))
                self.fn_state.scopes.pop()
            ebuf = self.out
            self.out = saved
            if not tbuf and not ebuf:
                return self.ifexp(test, tv, ev)
            t = self.tmp()
            self.emit(self.located(P.If(test=test, body=tbuf + [self.assign(t, tv)],
                                   orelse=ebuf + [self.assign(t, ev)])))
            return self.name(t)
        t = self.tmp()
        self.if_stmt(e, self.assign_sink(t))
        return self.name(t)

    def e_switch(self, e: A.Switch):
        t = self.tmp()
        self.switch_stmt(e, self.assign_sink(t))
        return self.name(t)

    def e_unary(self, e: A.Unary):
        v = self.expr(e.operand)
        if e.op == "!":
            if self.is_bool(e.operand):
                return self.unop(P.Not, v)
            if not self.hot():
                return self.call("_not", [v])
            a1, a2 = self.split(v)
            return self.ifexp(self.is_type(a1, "bool"), self.unop(P.Not, a2),
                              self.call("_not", [a2]))
        if e.op == "-":
            if not self.hot():
                return self.call("_neg", [v])
            a1, a2 = self.split(v)
            return self.ifexp(self.band(self.is_type(a1, "int"),
                                        self.cmp(a2, [P.NotEq], [self.const(INT_MIN)])),
                              self.unop(P.USub, a2), self.call("_neg", [a2]))
        return self.call("_pos", [v])

    def e_logic(self, e: A.Logic):
        a = self.cond(e.left)
        saved = self.out
        self.out = []
        b = self.cond(e.right)
        buf = self.out
        self.out = saved
        if not buf:
            op = P.And if e.op == "&&" else P.Or
            return self.located(P.BoolOp(op=op(), values=[a, b]))
        t = self.tmp()
        self.emit(self.assign(t, a))
        test = self.name(t) if e.op == "&&" else self.unop(P.Not, self.name(t))
        self.emit(self.located(P.If(test=test, body=buf + [self.assign(t, b)], orelse=[])))
        return self.name(t)

    def e_binary(self, e: A.Binary):
        op = e.op
        if op == "??":
            a = self.cp_if_place(e.left, self.expr(e.left))
            if isinstance(a, P.Constant) and a.value is not None:
                return a
            saved = self.out
            self.out = []
            b = self.cp_if_place(e.right, self.expr(e.right))
            buf = self.out
            self.out = saved
            if not buf:
                a1, a2 = self.split(a)
                return self.ifexp(self.cmp(a1, [P.IsNot], [self.const(None)]), a2, b)
            t = self.tmp()
            self.emit(self.assign(t, a))
            self.emit(self.located(P.If(test=self.cmp(self.name(t), [P.Is], [self.const(None)]),
                                   body=buf + [self.assign(t, b)], orelse=[])))
            return self.name(t)
        a, b = self.exprs([e.left, e.right])
        if op in ("..", "..="):
            return self.call("_range", [a, b, self.const(op == "..=")])
        if op == "in":
            return self.call("_in", [a, b])
        if op == "!in":
            return self.unop(P.Not, self.call("_in", [a, b]))
        return self.op_values(op, a, b, ia=self.is_int(e.left), ib=self.is_int(e.right))

    def op_values(self, op, a, b, compound=False, ia=False, ib=False):
        """`a op b` on compiled operands (evaluated left to right). `ia`/`ib`: the operand is
        statically an integer, so its type guard is dropped."""
        ca = a.value if isinstance(a, P.Constant) and type(a.value) is int else None
        cb = b.value if isinstance(b, P.Constant) and type(b.value) is int else None
        ia = ia or ca is not None
        ib = ib or cb is not None
        if op in CMP_SLOW:
            return self.compare(op, a, b, ia, ib)
        if compound and op == "+":
            slow = "_iadd"
        elif op == "??":
            a1, a2 = self.split(a)
            return self.ifexp(self.cmp(a1, [P.IsNot], [self.const(None)]), a2, b)
        else:
            slow = ARITH_SLOW[op]
        if ca is not None and cb is not None:
            folded = _fold(op, ca, cb)
            if folded is not None:
                return self.const(folded)
        if not self.hot():
            return self.call(slow, [a, b])
        if op in ("+", "-", "*"):
            return self.arith(op, a, b, ca, cb, slow, ia, ib)
        if op in ("/", "%") and cb is not None and cb > 0:
            a1, a2 = self.split(a)
            pyop = P.FloorDiv if op == "/" else P.Mod
            nonneg = self.cmp(a2 if not ia else a1, [P.GtE], [self.const(0)])
            test = nonneg if ia else self.band(self.is_type(a1, "int"), nonneg)
            return self.ifexp(test, self.binop(a2, pyop, b), self.call(slow, [a2, b]))
        if op in ("&", "|", "^"):
            pyop = {"&": P.BitAnd, "|": P.BitOr, "^": P.BitXor}[op]
            if ia and ib:
                return self.binop(a, pyop, b)
            a1, a2 = self.split(a)
            b1, b2 = self.split(b)
            test = self.cmp(self.typeof(a1), [P.Is, P.Is], [self.typeof(b1), self.name("int")])
            return self.ifexp(test, self.binop(a2, pyop, b2), self.call(slow, [a2, b2]))
        return self.call(slow, [a, b])

    class _Uses:
        """First use of an operand (possibly `(_t := expr)`), later uses (`_t`)."""
        __slots__ = ("first", "later", "used")

        def __init__(self, pair):
            self.first, self.later = pair
            self.used = False

        def __call__(self):
            if self.used:
                return self.later
            self.used = True
            return self.first

    def type_guard(self, A_, B_, need_a, need_b, kind, a, b):
        """Check operand types, evaluating both operands (left first) even when a check
        fails, so that the slow path can use them."""
        if (need_a and need_b) or (need_a and not self.simple(b)) or \
                (need_b and not self.simple(a)):
            return self.cmp(self.typeof(A_()), [P.Is, P.Is], [self.typeof(B_()),
                                                             self.name(kind)])
        if need_a:
            return self.is_type(A_(), kind)
        if need_b:
            return self.is_type(B_(), kind)
        return None

    def arith(self, op, a, b, ca, cb, slow, ia=False, ib=False):
        pyop = {"+": P.Add, "-": P.Sub, "*": P.Mult}[op]
        r = self.tmp()
        A_, B_ = self._Uses(self.split(a)), self._Uses(self.split(b))
        tests = []
        g = self.type_guard(A_, B_, not ia, not ib, "int", a, b)
        if g is not None:
            tests.append(g)
        res = self.walrus(r, self.binop(A_(), pyop, B_()))
        if op == "*" or (ca is None and cb is None):
            bound = self.cmp(self.const(INT_MIN), [P.LtE, P.LtE], [res, self.const(INT_MAX)])
        elif cb is not None:
            up = (op == "+") == (cb >= 0)
            bound = self.cmp(res, [P.LtE] if up else [P.GtE],
                             [self.const(INT_MAX if up else INT_MIN)])
        elif op == "+":
            bound = self.cmp(res, [P.LtE] if ca >= 0 else [P.GtE],
                             [self.const(INT_MAX if ca >= 0 else INT_MIN)])
        else:  # k - x
            bound = self.cmp(self.const(INT_MIN), [P.LtE, P.LtE], [res, self.const(INT_MAX)])
        tests.append(bound)
        return self.ifexp(self.band(*tests), self.name(r), self.call(slow, [A_(), B_()]))

    def compare(self, op, a, b, ia=False, ib=False):
        slow = CMP_SLOW[op]
        pyop = CMP_PY[op]
        if isinstance(a, P.Constant) and isinstance(b, P.Constant):
            from . import ops as _ops
            try:
                return self.const(bool(getattr(_ops, {"==": "eq", "!=": "ne", "<": "lt",
                                                      "<=": "le", ">": "gt",
                                                      ">=": "ge"}[op])(a.value, b.value)))
            except Exception:
                return self.call(slow, [a, b])
        if ia and ib:
            return self.cmp(a, [pyop], [b])
        if not self.hot() and not (op in ("==", "!=") and (
                (isinstance(b, P.Constant) and (b.value is None or type(b.value) is bool)) or
                (isinstance(a, P.Constant) and (a.value is None or type(a.value) is bool)))):
            return self.call(slow, [a, b])
        if op in ("==", "!="):
            if isinstance(b, P.Constant) and (b.value is None or type(b.value) is bool):
                return self.cmp(a, [P.Is if op == "==" else P.IsNot], [b])
            if isinstance(a, P.Constant) and (a.value is None or type(a.value) is bool):
                return self.cmp(b, [P.Is if op == "==" else P.IsNot], [a])
        ka = "int" if ia else ({str: "str", float: "float"}.get(type(a.value))
                                 if isinstance(a, P.Constant) else None)
        kb = "int" if ib else ({str: "str", float: "float"}.get(type(b.value))
                                 if isinstance(b, P.Constant) else None)
        if ka or kb:
            A_, B_ = self._Uses(self.split(a)), self._Uses(self.split(b))
            if ka and kb:  # both known, different kinds (e.g. int and str constant)
                return self.call(slow, [a, b])
            test = self.type_guard(A_, B_, not ka, not kb, ka or kb, a, b)
            return self.ifexp(test, self.cmp(A_(), [pyop], [B_()]), self.call(slow, [A_(), B_()]))
        a1, a2 = self.split(a)
        b1, b2 = self.split(b)
        if op in ("==", "!="):
            test = self.cmp(self.typeof(a1), [P.Is], [self.typeof(b1)])
        else:
            test = self.cmp(self.typeof(a1), [P.Is, P.Is], [self.typeof(b1), self.name("int")])
        return self.ifexp(test, self.cmp(a2, [pyop], [b2]), self.call(slow, [a2, b2]))

    # --- property access and indexing ----------------------------------------------------
    def e_prop(self, e: A.Prop):
        obj = self.expr(e.target)

        def build(o1, o2):
            return self.ifexp(self.is_type(o1, "dict"),
                              self.call(self.attr(o2, "get"), [self.const(e.name)]),
                              self.call("_prop", [o2, self.const(e.name)]))
        if e.safe:
            return self.safe_wrap(obj, lambda o: build(o, o))
        if not self.hot():
            return self.call("_prop", [obj, self.const(e.name)])
        o1, o2 = self.split(obj)
        return build(o1, o2)

    def safe_wrap(self, obj, build):
        t = self.tmp()
        test = self.cmp(self.walrus(t, obj), [P.Is], [self.const(None)])
        return self.ifexp(test, self.const(None), build(self.name(t)))

    def e_index(self, e: A.Index):
        obj, idx = self.exprs([e.target, e.index])
        if e.safe:
            t = self.tmp()
            test = self.cmp(self.walrus(t, obj), [P.Is], [self.const(None)])
            return self.ifexp(test, self.const(None), self.call("_idx", [self.name(t), idx]))
        if self.hot() and isinstance(obj, P.Name) and isinstance(idx, (P.Name, P.Constant)):
            # inline fast path for a list indexed by an int in range
            k1, k2 = self.split(idx)
            ln = self.call("len", [obj])
            known = self.is_int(e.index)
            test = self.band(None if known else self.is_type(k1, "int"),
                             self.is_type(obj, "list"),
                             self.cmp(self.unop(P.USub, ln), [P.LtE, P.Lt],
                                      [k2, self.call("len", [obj])]))
            dict_get = self.ifexp(self.band(self.is_type(obj, "dict"), self.is_type(k2, "str")),
                                  self.call(self.attr(obj, "get"), [k2]),
                                  self.call("_idx", [obj, k2]))
            return self.ifexp(test, self.located(P.Subscript(value=obj, slice=k2, ctx=LOAD)),
                              dict_get)
        return self.call("_idx", [obj, idx])

    # --- closures --------------------------------------------------------------------------
    def e_closure(self, e: A.Closure):
        outer_st, outer_out, outer_pos = self.fn_state, self.out, (self.line, self.col)
        self.anon_count += 1
        pyname = f"ra_{self.anon_count}"
        anon = f"anon${self.anon_count:04d}"
        params_decl = {p: (id(e), p) for p in e.params}
        captured = find_captured(params_decl, e.body) if e.has_closure else frozenset()
        fn_state = FnState("closure", anon, parent=outer_st, captured=captured,
                     ints=infer_ints(params_decl, e.body, MUT_NAMES))
        self.fn_state = fn_state
        self.out = []
        pparams = []
        pre = []
        for p in e.params:
            var = self.declare(p, e)
            pparams.append(var.py)
            if var.cell:
                pre.append(self.assign(var.py, self.call("_Cell", [self.name(var.py)])))
        prologue = self.prologue(len(e.body.stmts))
        self.block_value(e.body, self.return_sink)
        body = prologue + pre + self.out
        self.line, self.col = e.line, e.col
        cap_params = [local.py for _, local in fn_state.captures]
        d = self.fndef(pyname, ["_d", "_e", "_t"] + cap_params + pparams, body)
        self.defs.append(d)
        self.info.closures[pyname] = (anon, len(e.params), e.uses_this)
        self.info.fn_names[pyname] = anon
        self.fn_state, self.out = outer_st, outer_out
        self.line, self.col = outer_pos
        cells = [self.name(outer.py) for outer, _ in fn_state.captures]
        return self.call("_closure", [self.name(pyname), self.const(anon),
                                      self.located(P.Tuple(elts=cells, ctx=LOAD)), self.name("_e"),
                                      self.const(len(e.params))])

    # --- calls -------------------------------------------------------------------------------
    def native_binding(self, name, arity):
        g = self.guess(name, arity)
        ctx, mut = (g if g is not None else (False, False))
        b = f"_n_{name}_{arity}"
        self.info.natives[b] = (name, arity, ctx, mut)
        return b, ctx, mut

    def args(self, args):
        vals = self.exprs(args)
        return [self.cp_if_place(a, v) for a, v in zip(args, vals)]

    def script_call(self, key, args_py, this=None):
        d1 = self.binop(self.name("_d"), P.Add, self.const(1))
        return self.call(self.fn_py[key], [d1, self.const(None), this or self.name("_UNB")]
                         + args_py)

    def e_call(self, e: A.Call):
        name, n = e.name, len(e.args)
        if e.namespace:
            args = self.args(e.args)
            m = self.module_ref(e.namespace, e)
            return self.call("_mcall", [self.name("_d"), m, self.const(name),
                                        self.located(P.Tuple(elts=args, ctx=LOAD)),
                                        self.const("::".join(e.namespace))])
        key = (name, n)
        if key in self.fns:
            return self.script_call(key, self.args(e.args))
        if name == "is_def_var" and n == 1:
            arg = e.args[0]
            if isinstance(arg, A.Lit) and isinstance(arg.value, str):
                var = self.lookup(arg.value)
                if var is not None and var.kind == "local":
                    return self.const(True)
                return self.call("_isdefv", [self.name("_e"), self.const(arg.value)])
            return self.call("_isdefv", [self.name("_e"), self.expr(arg)])
        if name == "type_of" and n == 1:
            return self.call("_typeof", [self.expr(e.args[0])])
        var = self.lookup(name)
        if var is not None and var.kind == "local":
            # calling a variable holding a function pointer: `f(x)`
            fv = self.load_var(var)
            args = self.args(e.args)
            return self.call("_callvar", [self.name("_d"), self.const(name), fv,
                                          self.located(P.Tuple(elts=args, ctx=LOAD))])
        b, ctx, mut = self.native_binding(name, n)
        # Rhai passes a variable given as the first argument of a native function by
        # reference (`push(a, 1)` changes `a`, as `a.push(1)` does); a constant is copied.
        first = e.args[0] if n and type(e.args[0]) is A.Var else None
        if first is not None:
            fvi = self.lookup(first.name)
            if fvi is not None and (fvi.kind != "local" or fvi.const):
                first = None
        if mut and first is not None:
            return self.mut_call(b, ctx, first, e.args[1:])
        if first is not None:
            vals = self.exprs(e.args)
            args = [vals[0]] + [self.cp_if_place(a, v) for a, v in zip(e.args[1:], vals[1:])]
        else:
            args = self.args(e.args)
        if ctx:
            args = [self.name("_d")] + args
        c = self.call(b, args)
        if mut:
            return self.located(P.Subscript(value=c, slice=self.const(1), ctx=LOAD))
        return c

    def mut_call(self, binding, ctx, target, rest, e=None):
        """Call a method that may replace its receiver; write the new receiver back."""
        place = self.place(target)
        recv = place.load()
        rt = self.tmp()
        self.emit(self.assign(rt, recv))
        args = self.args(rest)
        call_args = ([self.name("_d")] if ctx else []) + [self.name(rt)] + args
        res = self.tmp()
        self.emit(self.assign(res, self.call(binding, call_args)))
        newv = self.located(P.Subscript(value=self.name(res), slice=self.const(0), ctx=LOAD))
        saved = self.out
        self.out = []
        place.store(newv)
        store = self.out
        self.out = saved
        self.emit(self.located(P.If(test=self.cmp(
            self.located(P.Subscript(value=self.name(res), slice=self.const(0), ctx=LOAD)),
            [P.IsNot], [self.name(rt)]), body=store, orelse=[])))
        return self.located(P.Subscript(value=self.name(res), slice=self.const(1), ctx=LOAD))

    def e_method(self, e: A.MethodCall):
        name, n = e.name, len(e.args)
        if e.safe:
            # `x?.m()` is () when x is ()
            obj = self.expr(e.target)
            t = self.tmp()
            self.emit(self.assign(t, obj))
            res = self.tmp()
            saved = self.out
            self.out = []
            inner = A.MethodCall(A.Var("\0tmp", line=e.line, col=e.col), name, e.args,
                                 line=e.line, col=e.col)
            self.fn_state.scopes.append({"\0tmp": VarInfo("\0tmp", t)})
            v = self.e_method(inner)
            self.fn_state.scopes.pop()
            body = self.out + [self.assign(res, v)]
            self.out = saved
            self.emit(self.located(P.If(test=self.cmp(self.name(t), [P.Is], [self.const(None)]),
                                   body=[self.assign(res, self.const(None))], orelse=body)))
            return self.name(res)
        key = (name, n)
        is_place = _is_place(e.target)
        if name == "call" and key not in self.fns:
            return self.this_call_dynamic(e, is_place)
        if key in self.fns:
            f = self.fns[key]
            if not f.uses_this:
                obj = self.expr(e.target)
                if not self.simple(obj):
                    self.emit(self.stmt_expr(obj))
                return self.script_call(key, self.args(e.args))
            place = self.place(e.target) if is_place else None
            recv = place.load() if place is not None else self.expr(e.target)
            rt = self.tmp()
            self.emit(self.assign(rt, recv))
            c = self.tmp()
            self.emit(self.assign(c, self.call("_Cell", [self.name(rt)])))
            args = self.args(e.args)
            r = self.tmp()
            self.emit(self.assign(r, self.script_call(key, args, this=self.name(c))))
            if place is not None:
                saved = self.out
                self.out = []
                place.store(self.attr(self.name(c), "v"))
                store = self.out
                self.out = saved
                self.emit(self.located(P.If(test=self.cmp(self.attr(self.name(c), "v"), [P.IsNot],
                                                     [self.name(rt)]), body=store, orelse=[])))
            return self.name(r)
        b, ctx, mut = self.native_binding(name, n + 1)
        if type(e.target) is A.Var and name in MUT_NAMES:
            # Rhai refuses a method that changes its receiver on a constant
            var = self.lookup(e.target.name)
            if var is None:
                self.emit(self.stmt_expr(self.call("_chkpure", [
                    self.name("_e"), self.const(e.target.name), self.const(name)])))
            elif var.const:
                self.emit(self.stmt_expr(self.call("_nonpure_err", [
                    self.const(name), self.const(e.target.name)])))
        if mut and is_place:
            return self.mut_call(b, ctx, e.target, e.args, e)
        vals = self.exprs([e.target] + e.args)
        recv = vals[0]
        args = [self.cp_if_place(a, v) for a, v in zip(e.args, vals[1:])]
        if name == "push" and n == 1 and not ctx and not mut and self.hot():
            # fast path: appending to an array (unless the host overrides `push`)
            o = self.tmp()
            x = self.tmp()
            self.emit(self.assign(o, recv), self.assign(x, args[0]))
            app = self.stmt_expr(self.call(self.attr(self.name(o), "append"), [self.name(x)]))
            slow = self.stmt_expr(self.call(b, [self.name(o), self.name(x)]))
            test = self.band(self.name("_FPP"), self.is_type(self.name(o), "list"),
                             self.cmp(self.call("len", [self.name(o)]), [P.Lt],
                                      [self.name("_MAXA")]) if self.limits_check else None)
            self.emit(self.located(P.If(test=test, body=[app], orelse=[slow])))
            return self.const(None)
        if name == "len" and n == 0 and not ctx and not mut and self.hot():
            o1, o2 = self.split(recv)
            test = self.band(self.name("_FPL"),
                             self.cmp(self.typeof(o1), [P.In], [self.name("_LSD")]))
            if not self.simple(recv):
                # evaluate the receiver even when the fast path is off
                test = self.band(self.cmp(self.typeof(o1), [P.In], [self.name("_LSD")]),
                                 self.name("_FPL"))
            return self.ifexp(test, self.call("len", [o2]), self.call(b, [o2]))
        call_args = ([self.name("_d")] if ctx else []) + [recv] + args
        c = self.call(b, call_args)
        if mut:
            return self.located(P.Subscript(value=c, slice=self.const(1), ctx=LOAD))
        return c

    def this_call_dynamic(self, e: A.MethodCall, is_place):
        """`f.call(args)` on a function pointer, or `x.call(f, args)` binding `this` to x."""
        place = self.place(e.target) if is_place else None
        recv = place.load() if place is not None else self.expr(e.target)
        rt = self.tmp()
        self.emit(self.assign(rt, recv))
        c = self.tmp()
        self.emit(self.assign(c, self.call("_Cell", [self.name(rt)])))
        args = self.args(e.args)
        r = self.tmp()
        args_tuple = self.located(P.Tuple(elts=args, ctx=LOAD))
        self.emit(self.assign(r, self.call("_callm", [self.name("_d"), self.name(c), args_tuple])))
        if place is not None:
            saved = self.out
            self.out = []
            place.store(self.attr(self.name(c), "v"))
            store = self.out
            self.out = saved
            self.emit(self.located(P.If(test=self.cmp(self.attr(self.name(c), "v"), [P.IsNot],
                                                 [self.name(rt)]), body=store, orelse=[])))
        return self.name(r)

    _EXPR = {}


Compiler._EXPR = {
    A.Lit: Compiler.e_lit, A.Var: Compiler.e_var, A.This: Compiler.e_this,
    A.NsVar: Compiler.e_nsvar, A.ArrayLit: Compiler.e_array, A.MapLit: Compiler.e_map,
    A.Interp: Compiler.e_interp, A.BlockExpr: Compiler.e_blockexpr,
    A.StmtExpr: Compiler.e_stmtexpr, A.If: Compiler.e_if, A.Switch: Compiler.e_switch,
    A.Unary: Compiler.e_unary, A.Logic: Compiler.e_logic, A.Binary: Compiler.e_binary,
    A.Prop: Compiler.e_prop, A.Index: Compiler.e_index, A.Closure: Compiler.e_closure,
    A.Call: Compiler.e_call, A.MethodCall: Compiler.e_method,
}


def outer_module_capture(comp, fn_state, outer, key):
    """A closure naming a module alias of the enclosing function: pass the module along."""
    fn_state.serial += 1
    local = VarInfo(outer.name, f"c_{outer.name}_{fn_state.serial}", kind="module")
    fn_state.captures.append((outer, local))
    fn_state.scopes[0][key] = local
    return local


def _fold(op, a, b):
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        else:
            return None
    except Exception:
        return None
    return r if INT_MIN <= r <= INT_MAX else None


def _pycompile(mod, filename):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(mod, filename, "exec", dont_inherit=True, optimize=2)


def compile_script(script: A.Script, filename: str, *, guess=None, ops_check=False,
                   limits_check=False, lazy=False):
    """Compile a parsed script: (code object, CompileInfo, Compiler). With `lazy`, the code
    defines only `__main__`; `Compiler.compile_function` compiles the functions later."""
    comp = Compiler(script, filename=filename, guess=guess, ops_check=ops_check,
                    limits_check=limits_check)
    mod, info = comp.compile(lazy=lazy)
    code = _pycompile(mod, filename)
    return code, info, comp


def compile_function(comp: "Compiler", pyname: str):
    """The code object defining one lazily compiled function."""
    return _pycompile(comp.compile_function(pyname), comp.filename)
