"""Places: the targets of assignments and of methods that change their receiver.

A place is compiled once (its container and key evaluated into temporaries) and then read
(`load`) and written (`store`). Writing into a string or an integer (immutable in Python)
produces a new value, which is written back into the enclosing place; arrays and maps change
in place. Places rooted at a constant refuse to be written (`ErrorAssignmentToConstant`).
"""

from __future__ import annotations

import ast as P

class VarPlace:
    def __init__(self, comp, vi, node):
        self.c = comp
        self.vi = vi
        self.node = node

    def load(self):
        return self.c.load_var(self.vi)

    def store(self, value):
        if self.vi.const:
            self.c.emit(self.c.stmt_expr(self.c.call("_const_err", [self.c.const(self.vi.name)])))
            return
        self.c.emit(self.c.store_var(self.vi, value))


class FreePlace:
    def __init__(self, comp, name):
        self.c = comp
        self.name = name

    def load(self):
        return self.c.call("_getv", [self.c.name("_e"), self.c.const(self.name)])

    def store(self, value):
        self.c.emit(self.c.stmt_expr(self.c.call("_setv", [self.c.name("_e"),
                                                           self.c.const(self.name), value])))


class ThisPlace:
    def __init__(self, comp):
        self.c = comp

    def load(self):
        return self.c.attr(self.c.name("_t"), "v")

    def store(self, value):
        self.c.emit(self.c.assign(self.c.attr(self.c.name("_t"), "v", store=True), value))


class _ChildPlace:
    def root_const(self):
        p = self.parent
        while isinstance(p, _ChildPlace):
            p = p.parent
        if isinstance(p, VarPlace) and p.vi.const:
            return p.vi.name
        return None

    def write_back(self, newc):
        c = self.c
        if self.parent is None:
            return
        saved = c.out
        c.out = []
        self.parent.store(c.name(newc))
        store = c.out
        c.out = saved
        c.emit(c._p(P.If(test=c.cmp(c.name(newc), [P.IsNot], [c.name(self.cont)]),
                         body=store, orelse=[])))


class IndexPlace(_ChildPlace):
    def __init__(self, comp, parent, cont, key, node):
        self.c = comp
        self.parent = parent
        self.cont = cont
        self.key = key
        self.node = node

    def load(self):
        old = self.c.at(self.node)
        r = self.c.call("_idx", [self.c.name(self.cont), self.key])
        self.c.L, self.c.C = old
        return r

    def store(self, value):
        c = self.c
        old = c.at(self.node)
        try:
            self._store(value)
        finally:
            c.L, c.C = old

    def _store(self, value):
        c = self.c
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
    def __init__(self, comp, parent, cont, prop, node):
        self.c = comp
        self.parent = parent
        self.cont = cont
        self.prop = prop
        self.node = node

    def load(self):
        c = self.c
        old = c.at(self.node)
        o = c.name(self.cont)
        r = c.ifexp(c.is_type(o, "dict"), c.call(c.attr(c.name(self.cont), "get"),
                                                 [c.const(self.prop)]),
                    c.call("_prop", [c.name(self.cont), c.const(self.prop)]))
        c.L, c.C = old
        return r

    def store(self, value):
        c = self.c
        old = c.at(self.node)
        try:
            self._store(value)
        finally:
            c.L, c.C = old

    def _store(self, value):
        c = self.c
        rc = self.root_const()
        if rc is not None:
            c.emit(c.stmt_expr(c.call("_const_err", [c.const(rc)])))
            return
        if isinstance(self.parent, FreePlace):
            c.emit(c.stmt_expr(c.call("_chkconst", [c.name("_e"), c.const(self.parent.name)])))
        newc = c.tmp()
        c.emit(c.assign(newc, c.call("_setprop", [c.name(self.cont), c.const(self.prop), value])))
        self.write_back(newc)


