"""Resolver: static analysis of the Rhai syntax tree, before code generation.

- `find_captured`: which variable declarations a closure captures (they become shared cells);
- `infer_ints`: which variables only ever hold integers (their type guards are dropped) and
  whether a function calls script functions (hot code gets inline fast paths);
- `check_function`: the compile-time errors of a function body, for functions compiled lazily.

Declarations are identified by `(id(declaring node), name)`; the scoping rules are Rhai's:
blocks nest, a `let` is visible after it, loop and catch variables belong to their body, a
closure's parameters and locals are its own.
"""

from __future__ import annotations

from . import ast as A
from .errors import RhaiSyntaxError

_SCALAR_FIELDS = {"line", "col", "name", "op", "safe", "const", "export", "name_col", "private",
                  "docs", "uses_this", "has_closure", "var", "counter", "until", "params",
                  "path", "alias", "self_terminated", "value_is_lit"}
_FIELDS: dict = {}


def _children(node):
    """The child nodes of a syntax-tree node (a list)."""
    t = type(node)
    fields = _FIELDS.get(t)
    if fields is None:
        fields = _FIELDS[t] = tuple(f for f in t.__slots__ if f not in _SCALAR_FIELDS)
    out = []
    for f in fields:
        v = getattr(node, f)
        if isinstance(v, A.Node):
            out.append(v)
        elif type(v) is list:
            for x in v:
                if isinstance(x, A.Node):
                    out.append(x)
                elif type(x) is tuple:
                    for y in x:
                        if isinstance(y, A.Node):
                            out.append(y)
    return out


def find_captured(params_decl, body) -> frozenset:
    """Declarations (keys `(id(node), name)`) that a closure inside `body` refers to."""
    captured = set()
    scopes = [dict(params_decl)]
    level = [0]
    lv = {k: 0 for k in params_decl.values()}

    def declare(name, key):
        scopes[-1][name] = key
        lv[key] = level[0]

    def visit(n):
        t = type(n)
        if t is A.Var:
            for s in reversed(scopes):
                k = s.get(n.name)
                if k is not None:
                    if lv[k] < level[0]:
                        captured.add(k)
                    return
            return
        if t is A.Block:
            scopes.append({})
            for s in n.stmts:
                visit(s)
            scopes.pop()
            return
        if t is A.Let:
            if n.value is not None:
                visit(n.value)
            declare(n.name, (id(n), n.name))
            return
        if t is A.For:
            visit(n.iterable)
            scopes.append({})
            declare(n.var, (id(n), n.var))
            if n.counter:
                declare(n.counter, (id(n), n.counter))
            visit(n.body)
            scopes.pop()
            return
        if t is A.TryCatch:
            visit(n.body)
            scopes.append({})
            if n.var:
                declare(n.var, (id(n), n.var))
            visit(n.handler)
            scopes.pop()
            return
        if t is A.Closure:
            level[0] += 1
            scopes.append({})
            for p in n.params:
                declare(p, (id(n), p))
            visit(n.body)
            scopes.pop()
            level[0] -= 1
            return
        if t is A.FnDef:
            return
        for c in _children(n):
            visit(c)

    visit(body)
    return frozenset(captured)


ARITH = {"+", "-", "*", "/", "%", "**", "<<", ">>", "&", "|", "^"}


def infer_ints(params_decl, body, mut_names=frozenset(), script_fns=frozenset(),
               hot=None) -> frozenset:
    """Declarations (keys as in `find_captured`) that only ever hold integers: every value
    assigned to them is an integer expression. The compiler drops type guards on those.
    Variables captured by closures, used as method receivers or assigned through an index or
    property are never integer-typed (something else may change them)."""
    assigns: dict = {k: [None] for k in params_decl.values()}
    var_decl: dict = {}
    scopes = [dict(params_decl)]
    in_closure = [0]
    decl_level: dict = {k: 0 for k in params_decl.values()}

    def resolve(name):
        for sc in reversed(scopes):
            k = sc.get(name)
            if k is not None:
                return k
        return None

    def declare(name, key, values):
        scopes[-1][name] = key
        decl_level[key] = in_closure[0]
        assigns[key] = values

    def root_var(e):
        while type(e) in (A.Index, A.Prop):
            e = e.target
        return e if type(e) is A.Var else None

    def spoil(e):
        v = root_var(e)
        if v is not None:
            k = resolve(v.name)
            if k is not None:
                assigns[k].append(None)

    def visit(n):
        t = type(n)
        if t is A.Var:
            k = resolve(n.name)
            if k is not None:
                var_decl[id(n)] = k
                if decl_level[k] < in_closure[0]:
                    assigns[k].append(None)
            return
        if t is A.Block:
            scopes.append({})
            for stmt in n.stmts:
                visit(stmt)
            scopes.pop()
            return
        if t is A.Let:
            if n.value is not None:
                visit(n.value)
            declare(n.name, (id(n), n.name), [n.value])
            return
        if t is A.For:
            visit(n.iterable)
            scopes.append({})
            rng = type(n.iterable) is A.Binary and n.iterable.op in ("..", "..=")
            declare(n.var, (id(n), n.var), ["INT" if rng else None])
            if n.counter:
                declare(n.counter, (id(n), n.counter), ["INT"])
            visit(n.body)
            scopes.pop()
            return
        if t is A.TryCatch:
            visit(n.body)
            scopes.append({})
            if n.var:
                declare(n.var, (id(n), n.var), [None])
            visit(n.handler)
            scopes.pop()
            return
        if t is A.Closure:
            in_closure[0] += 1
            scopes.append({})
            for p in n.params:
                declare(p, (id(n), p), [None])
            visit(n.body)
            scopes.pop()
            in_closure[0] -= 1
            return
        if t is A.Assign:
            visit(n.value)
            if type(n.target) is A.Var:
                k = resolve(n.target.name)
                if k is not None:
                    var_decl[id(n.target)] = k
                    if decl_level[k] < in_closure[0]:
                        assigns[k].append(None)
                    elif n.op is None:
                        assigns[k].append(n.value)
                    else:
                        assigns[k].append(("op", n.op, n.target, n.value))
            else:
                spoil(n.target)
                visit(n.target)
            return
        if t is A.MethodCall:
            spoil(n.target)
            if hot is not None and n.name in script_fns:
                hot[0] = True
        elif t is A.Call:
            if n.args and n.name in mut_names:
                spoil(n.args[0])
            if hot is not None and n.name in script_fns:
                hot[0] = True
        elif t is A.FnDef:
            return
        for c in _children(n):
            visit(c)

    visit(body)
    ints = {k for k in assigns if decl_level.get(k, 0) == 0}

    def is_int(e):
        if e == "INT":
            return True
        if e is None:
            return False
        if type(e) is tuple:
            _, op, var, value = e
            return op in ARITH and is_int(var) and is_int(value)
        t = type(e)
        if t is A.Lit:
            return type(e.value) is int
        if t is A.Var:
            return var_decl.get(id(e)) in ints
        if t is A.Binary:
            return e.op in ARITH and is_int(e.left) and is_int(e.right)
        if t is A.Unary:
            return e.op in ("-", "+") and is_int(e.operand)
        return False

    changed = True
    while changed:
        changed = False
        for k in list(ints):
            if not all(is_int(e) for e in assigns[k]):
                ints.discard(k)
                changed = True
    return frozenset(ints)


def check_function(f: A.FnDef, script: A.Script):
    """The compile-time errors of a function body (assigning a constant), for lazy compiles."""
    scopes = [{p: False for p in f.params}]

    def is_const(name):
        for sc in reversed(scopes):
            if name in sc:
                return sc[name]
        return False

    def visit(n):
        t = type(n)
        if t is A.Block:
            scopes.append({})
            for stmt in n.stmts:
                visit(stmt)
            scopes.pop()
            return
        if t is A.Let:
            if n.value is not None:
                visit(n.value)
            scopes[-1][n.name] = n.const
            return
        if t is A.For:
            visit(n.iterable)
            scopes.append({n.var: False})
            if n.counter:
                scopes[-1][n.counter] = False
            visit(n.body)
            scopes.pop()
            return
        if t is A.TryCatch:
            visit(n.body)
            scopes.append({n.var: False} if n.var else {})
            visit(n.handler)
            scopes.pop()
            return
        if t is A.Closure:
            scopes.append({p: False for p in n.params})
            visit(n.body)
            scopes.pop()
            return
        if t is A.Assign and type(n.target) is A.Var and is_const(n.target.name):
            raise RhaiSyntaxError(f"cannot assign to constant '{n.target.name}'", n.line, n.col,
                                  source_name=script.source_name, source=script.source,
                                  hint=f"declare it with 'let {n.target.name}' to change it")
        for c in _children(n):
            visit(c)

    visit(f.body)


def _is_place(e) -> bool:
    t = type(e)
    if t is A.Var or t is A.This:
        return True
    if (t is A.Index or t is A.Prop) and not e.safe:
        return _is_place(e.target)
    return False


def _has_break_value(loop) -> bool:
    """Does a `break value` inside this loop (not in a nested loop or closure) exist?"""
    def visit(n):
        t = type(n)
        if t is A.Break:
            return n.value is not None
        if t in (A.While, A.DoWhile, A.For, A.Closure, A.FnDef):
            return False
        return any(visit(c) for c in _children(n))
    return visit(loop.body)
