"""Dependency expressions: plain (`name`, `name >= 1.2-3`, `/usr/bin/sh`) and RPM rich/boolean
dependencies (`(a or b)`, `(a if b else c)`, `(a with b)`, ...), parsed as rpm parses them and
evaluated against a "what provides X" oracle.

Grammar (rpm's lib/rpmds.c, `rpmrichParse`):

    expr  := simple | '(' inner ')'
    inner := operand (OP operand)*          and/or/with may chain: (a or b or c)
           | operand ('if'|'unless') operand ['else' operand]
    operand := expr
    simple  := NAME [CMP EVR]               NAME runs to whitespace, ',' or an unbalanced ')':
                                            parentheses inside names balance (libc.so.6()(64bit))

Different operators never chain without parentheses (`(a and b or c)` is an error, as in rpm).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NamedTuple, Union

from ..rpm.vercmp import EQ, EVR, FLAGS_BY_OPERATOR, GT, LT, OPERATOR_BY_FLAGS, ranges_overlap
from ..util.errors import LevitateError


class DepParseError(LevitateError):
    """A dependency string is malformed."""


class Dep(NamedTuple):
    """One dependency entry: `name [op evr]`. A rich dependency keeps its whole text as `name`
    (flags 0, evr None); `parse_requirement` turns it into an expression tree."""

    name: str
    flags: int = 0
    evr: EVR | None = None

    def __str__(self) -> str:
        op = OPERATOR_BY_FLAGS.get(self.flags & (LT | GT | EQ))
        if op and self.evr is not None:
            return f"{self.name} {op} {self.evr}"
        return self.name

    @property
    def is_rich(self) -> bool:
        return self.name.startswith("(")

    @property
    def is_file(self) -> bool:
        return self.name.startswith("/")

    def matches(self, provide: "Dep") -> bool:
        """Does the provide `provide` satisfy this (simple) requirement?"""
        return self.name == provide.name and ranges_overlap(self.flags, self.evr, provide.flags, provide.evr)


# Rich operators. and/or/with/without combine operands; if/unless are conditionals.
AND, OR, WITH, WITHOUT, IF, UNLESS = "and", "or", "with", "without", "if", "unless"
_OPERATORS = frozenset((AND, OR, WITH, WITHOUT, IF, UNLESS, "else"))
_CHAINABLE = frozenset((AND, OR, WITH))


@dataclass(frozen=True, slots=True)
class Rich:
    """A boolean dependency. For and/or/with/without, `args` are the operands in order. For
    if/unless, `args` is (then, condition) or (then, condition, otherwise):
    `(a if b else c)` is Rich("if", (a, b, c))."""

    op: str
    args: tuple["Expr", ...]

    def __str__(self) -> str:
        if self.op in (IF, UNLESS):
            text = f"{_fmt(self.args[0])} {self.op} {_fmt(self.args[1])}"
            if len(self.args) == 3:
                text += f" else {_fmt(self.args[2])}"
            return f"({text})"
        return "(" + f" {self.op} ".join(_fmt(a) for a in self.args) + ")"


Expr = Union[Dep, Rich]


def _fmt(expr: Expr) -> str:
    return str(expr)


def _is_space(c: str) -> bool:
    return c in " \t\n\r\f\v"


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, what: str) -> DepParseError:
        return DepParseError(
            f"malformed dependency {self.text!r}: {what} at position {self.pos + 1}",
            "rich dependencies look like '(a or b)', '(a if b else c)', '(a with b)'; "
            "a version needs an operator: 'name >= 1.2-3'")

    def skip_white(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and _is_space(text[pos]):
            pos += 1
        self.pos = pos

    def word(self) -> str:
        """rpm's SKIPNONWHITEX: up to whitespace, ',' or an unbalanced ')'."""
        text, start = self.text, self.pos
        pos, depth = start, 0
        n = len(text)
        while pos < n:
            c = text[pos]
            if _is_space(c) or c == ",":
                break
            if c == ")":
                if depth <= 0:
                    break
                depth -= 1
            elif c == "(":
                depth += 1
            pos += 1
        self.pos = pos
        return text[start:pos]

    def simple(self, nested: bool) -> Dep:
        start = self.pos
        name = self.word()
        if not name:
            raise self.error("expected a name")
        if name in _OPERATORS and nested:
            self.pos = start
            raise self.error(f"expected a name, found operator {name!r}")
        save = self.pos
        self.skip_white()
        op_start = self.pos
        op = self.word()
        flags = FLAGS_BY_OPERATOR.get(op) if op else None
        if flags is None:
            # Not a comparison: leave it for the caller (an operator, ')' or the end).
            self.pos = save
            return Dep(name)
        self.skip_white()
        evr_start = self.pos
        evr_text = self.word()
        if not evr_text:
            self.pos = op_start
            raise self.error(f"operator {op!r} without a version")
        try:
            evr = _parse_evr(evr_text)
        except ValueError:
            self.pos = evr_start
            raise self.error(f"bad version {evr_text!r}") from None
        return Dep(name, flags, evr)

    def operand(self) -> Expr:
        self.skip_white()
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            return self.rich()
        return self.simple(nested=True)

    def rich(self) -> Expr:
        text = self.text
        assert text[self.pos] == "("
        self.pos += 1
        first = self.operand()
        args: list[Expr] = [first]
        op: str | None = None
        while True:
            self.skip_white()
            if self.pos >= len(text):
                raise self.error("missing ')'")
            if text[self.pos] == ")":
                self.pos += 1
                break
            word_start = self.pos
            word = self.word()
            if word not in _OPERATORS:
                self.pos = word_start
                raise self.error(f"expected an operator (and, or, if, unless, else, with, without) "
                                 f"or ')', found {word!r}" if word else "expected an operator or ')'")
            if word == "else":
                if op not in (IF, UNLESS) or len(args) != 2:
                    self.pos = word_start
                    raise self.error("'else' only follows 'if' or 'unless'")
            elif op is None:
                op = word
            elif word != op:
                self.pos = word_start
                raise self.error(f"cannot chain {op!r} and {word!r} without parentheses")
            elif op not in _CHAINABLE:
                self.pos = word_start
                raise self.error(f"{op!r} cannot be chained; use parentheses")
            args.append(self.operand())
        if op is None:
            return first                      # "(foo)" is just foo
        if op in (WITH, WITHOUT):
            for arg in args:
                _check_with_operand(self, arg, op)
            if op == WITHOUT and len(args) != 2:
                raise self.error("'without' takes exactly two operands")
        return Rich(op, tuple(args))


def _check_with_operand(parser: _Parser, arg: Expr, op: str) -> None:
    # `with`/`without` ask for ONE package satisfying/avoiding terms: only simple deps and
    # or/with/without groups of them make sense there (libsolv restricts it the same way).
    if isinstance(arg, Rich):
        if arg.op not in (OR, WITH, WITHOUT):
            raise parser.error(f"'{arg.op}' is not allowed inside '{op}'")
        for inner in arg.args:
            _check_with_operand(parser, inner, op)


def _parse_evr(text: str) -> EVR:
    evr = EVR.parse(text)
    if not evr.version:
        raise ValueError(text)
    return evr


@functools.lru_cache(maxsize=16384)
def parse_requirement(text: str) -> Expr:
    """Parse one dependency string into a Dep (plain) or a Rich tree. Raises DepParseError."""
    stripped = text.strip()
    if not stripped:
        raise DepParseError("empty dependency", "give a package name or a requirement such as 'bash >= 5'")
    parser = _Parser(stripped)
    if stripped.startswith("("):
        expr = parser.rich()
    else:
        expr = parser.simple(nested=False)
    parser.skip_white()
    if parser.pos != len(stripped):
        raise parser.error("unexpected text after the dependency")
    return expr


def parse_dep(text: str) -> Dep:
    """Parse a plain dependency (`name`, `name >= 1.2-3`); a rich one stays whole in `Dep.name`
    after its syntax has been checked."""
    expr = parse_requirement(text)
    if isinstance(expr, Rich):
        return Dep(str(text).strip())
    return expr


def as_expr(dep: Dep) -> Expr:
    """The expression behind a Dep read from repodata (rich deps arrive as their text)."""
    return parse_requirement(dep.name) if dep.name.startswith("(") else dep


def terms(expr: Expr) -> list[Dep]:
    """Every simple Dep inside an expression, in order."""
    if isinstance(expr, Dep):
        return [expr]
    out: list[Dep] = []
    for arg in expr.args:
        out.extend(terms(arg))
    return out


WhatProvides = Callable[[Dep], Collection]


def evaluate(expr: Expr, what_provides: WhatProvides) -> bool:
    """Is `expr` true in a world where `what_provides(dep)` returns the (hashable) packages that
    provide `dep`? `(a if b)` is true when b is false; `(a unless b)` is true when b is true."""
    if isinstance(expr, Dep):
        return bool(what_provides(expr))
    op, args = expr.op, expr.args
    if op == AND:
        return all(evaluate(a, what_provides) for a in args)
    if op == OR:
        return any(evaluate(a, what_provides) for a in args)
    if op in (WITH, WITHOUT):
        return bool(providers(expr, what_provides))
    cond = evaluate(args[1], what_provides)
    if op == UNLESS:
        cond = not cond
    if cond:
        return evaluate(args[0], what_provides)
    return evaluate(args[2], what_provides) if len(args) == 3 else True


def providers(expr: Expr, what_provides: WhatProvides) -> set:
    """The packages that satisfy `expr` on their own: for a term, its providers; `with` is the
    intersection, `without` the difference, `or` the union, `and` the intersection."""
    if isinstance(expr, Dep):
        return set(what_provides(expr))
    op, args = expr.op, expr.args
    if op == OR:
        out: set = set()
        for a in args:
            out |= providers(a, what_provides)
        return out
    if op in (AND, WITH):
        out = providers(args[0], what_provides)
        for a in args[1:]:
            if not out:
                break
            out &= providers(a, what_provides)
        return out
    if op == WITHOUT:
        return providers(args[0], what_provides) - providers(args[1], what_provides)
    raise DepParseError(f"'{op}' cannot name a single package: {expr}")
