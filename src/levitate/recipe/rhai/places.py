"""Places: the targets of assignments and of methods that change their receiver.

A place is compiled once (its container and key evaluated into temporaries) and then read
(`load`) and written (`store`). Writing into a string or an integer (immutable in Python)
produces a new value, which is written back into the enclosing place; arrays and maps change
in place. Places rooted at a constant refuse to be written (`ErrorAssignmentToConstant`).
"""

from __future__ import annotations

import ast as P

class VarPlace:
    """A local variable as a place."""
    def __init__(self, compiler, var, node):
        self.compiler = compiler
        self.var = var
        self.node = node

    def load(self):
        return self.compiler.load_var(self.var)

    def store(self, value):
        if self.var.const:
            compiler = self.compiler
            compiler.emit(compiler.stmt_expr(compiler.call("_const_err",
                                                           [compiler.const(self.var.name)])))
            return
        self.compiler.emit(self.compiler.store_var(self.var, value))


class FreePlace:
    """A top-level variable read from the caller's scope by an entry function."""
    def __init__(self, compiler, name):
        self.compiler = compiler
        self.name = name

    def load(self):
        compiler = self.compiler
        return compiler.call("_getv", [compiler.name("_e"), compiler.const(self.name)])

    def store(self, value):
        compiler = self.compiler
        compiler.emit(compiler.stmt_expr(compiler.call("_setv", [compiler.name("_e"),
                                                             compiler.const(self.name), value])))


class ThisPlace:
    """`this` in a method-style call."""
    def __init__(self, compiler):
        self.compiler = compiler

    def load(self):
        return self.compiler.attr(self.compiler.name("_t"), "v")

    def store(self, value):
        compiler = self.compiler
        compiler.emit(compiler.assign(compiler.attr(compiler.name("_t"), "v", store=True), value))


class _ChildPlace:
    def root_const(self):
        p = self.parent
        while isinstance(p, _ChildPlace):
            p = p.parent
        if isinstance(p, VarPlace) and p.var.const:
            return p.var.name
        return None

    def write_back(self, newc):
        c = self.compiler
        if self.parent is None:
            return
        saved = c.out
        c.out = []
        self.parent.store(c.name(newc))
        store = c.out
        c.out = saved
        c.emit(c.located(P.If(test=c.cmp(c.name(newc), [P.IsNot], [c.name(self.cont)]),
                         body=store, orelse=[])))


class IndexPlace(_ChildPlace):
    """`container[index]` as a place."""
    def __init__(self, compiler, parent, cont, key, node):
        self.compiler = compiler
        self.parent = parent
        self.cont = cont
        self.key = key
        self.node = node

    def load(self):
        old = self.compiler.at(self.node)
        r = self.compiler.call("_idx", [self.compiler.name(self.cont), self.key])
        self.compiler.line, self.compiler.col = old
        return r

    def store(self, value):
        c = self.compiler
        old = c.at(self.node)
        try:
            self._store(value)
        finally:
            c.line, c.col = old

    def _store(self, value):
        c = self.compiler
        rc = self.root_const()
        if rc is not None:
            c.emit(c.stmt_expr(c.call("_const_err", [c.const(rc)])))
            return
        if isinstance(self.parent, FreePlace):
            c.emit(c.stmt_expr(c.call("_chkconst", [c.name("_e"), c.const(self.parent.name)])))
        newc = c.tmp()
        c.emit(c.assign(newc, c.call("_setidx", [c.name(self.cont), self.key, value])))
        self.write_back(newc)


class PropPlace(_ChildPlace):
    """`object.property` as a place."""
    def __init__(self, compiler, parent, cont, prop, node):
        self.compiler = compiler
        self.parent = parent
        self.cont = cont
        self.prop = prop
        self.node = node

    def load(self):
        c = self.compiler
        old = c.at(self.node)
        o = c.name(self.cont)
        r = c.ifexp(c.is_type(o, "dict"), c.call(c.attr(c.name(self.cont), "get"),
                                                 [c.const(self.prop)]),
                    c.call("_prop", [c.name(self.cont), c.const(self.prop)]))
        c.line, c.col = old
        return r

    def store(self, value):
        c = self.compiler
        old = c.at(self.node)
        try:
            self._store(value)
        finally:
            c.line, c.col = old

    def _store(self, value):
        c = self.compiler
        rc = self.root_const()
        if rc is not None:
            c.emit(c.stmt_expr(c.call("_const_err", [c.const(rc)])))
            return
        if isinstance(self.parent, FreePlace):
            c.emit(c.stmt_expr(c.call("_chkconst", [c.name("_e"), c.const(self.parent.name)])))
        newc = c.tmp()
        c.emit(c.assign(newc, c.call("_setprop", [c.name(self.cont), c.const(self.prop), value])))
        self.write_back(newc)


