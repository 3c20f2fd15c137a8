"""Parser: tokens -> `ast.Script`, a recursive-descent parser with Rhai's operator precedence.

Precedence (higher binds tighter), as in the Rhai book:

    || | ^  30      && &  60      == !=  90      in !in  110      < <= > >=  130
    ??  135         .. ..=  140   + -  150       * / %  180       ** (right)  190
    << >>  210      unary - + !   then postfix . ?. [] ?[] and calls

Syntax errors say what was expected at which line and column. Expression nesting deeper than
`max_expr_depth` is a syntax error (never Python's RecursionError).
"""

from __future__ import annotations

from . import ast as A
from .errors import RhaiSyntaxError
from .lexer import RESERVED, InterpPart, Token, tokenize
from .values import Char

BINARY = {
    "||": 30, "|": 30, "^": 30,
    "&&": 60, "&": 60,
    "==": 90, "!=": 90,
    "in": 110, "!in": 110,
    ">": 130, ">=": 130, "<": 130, "<=": 130,
    "??": 135,
    "..": 140, "..=": 140,
    "+": 150, "-": 150,
    "*": 180, "/": 180, "%": 180,
    "**": 190,
    "<<": 210, ">>": 210,
}
RIGHT_ASSOC = {"**"}
ASSIGN_OPS = {"=": None, "+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%", "**=": "**",
              "<<=": "<<", ">>=": ">>", "&=": "&", "|=": "|", "^=": "^", "??=": "??"}
COMPARISON = {"==", "!=", "<", "<=", ">", ">="}

# Statements that end with a block and need no `;` after them.
_SELF_TERMINATED = (A.While, A.For, A.Block, A.TryCatch, A.FnDef, A.Import)


class _FnCtx:
    __slots__ = ("uses_this", "has_closure", "loops", "is_global")

    def __init__(self, is_global=False):
        self.uses_this = False
        self.has_closure = False
        self.loops = 0
        self.is_global = is_global


class Parser:
    """Recursive-descent parser: tokens -> the syntax tree of `ast.py`."""
    def __init__(self, tokens: list[Token], source: str = "", source_name: str | None = None,
                 *, max_expr_depth: int = 64):
        self.toks = tokens
        self.i = 0
        self.source = source
        self.source_name = source_name
        self.max_depth = max_expr_depth or 10_000
        self.depth = 0
        self.fn = _FnCtx(is_global=True)
        self.block_level = 0
        self.functions: list[A.FnDef] = []
        self._fn_keys: set = set()

    # --- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        j = min(self.i + k, len(self.toks) - 1)
        return self.toks[j]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def at_op(self, op: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "op" and t.value == op

    def at_kw(self, kw: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "kw" and t.value == kw

    def error(self, message: str, tok: Token | None = None, hint: str | None = None):
        t = tok or self.tok
        return RhaiSyntaxError(message, t.line, t.col, source_name=self.source_name,
                               source=self.source, hint=hint)

    def describe(self, t: Token) -> str:
        if t.kind == "eof":
            return "end of script"
        if t.kind in ("op", "kw"):
            return f"'{t.value}'"
        if t.kind == "ident":
            return f"identifier '{t.value}'"
        if t.kind in ("str", "interp"):
            return "a string"
        if t.kind == "char":
            return "a character"
        return f"'{t.value}'"

    def expect_op(self, op: str, what: str | None = None) -> Token:
        t = self.tok
        if t.kind == "op" and t.value == op:
            self.i += 1
            return t
        raise self.error(f"expecting '{op}'{' ' + what if what else ''}, found "
                         f"{self.describe(t)}")

    def ident(self, what: str) -> Token:
        t = self.tok
        if t.kind == "ident":
            if t.value in RESERVED:
                raise self.error(f"'{t.value}' is a reserved keyword and cannot be used as "
                                 f"{what}")
            rest = t.value.lstrip("_")
            if not rest or not rest[0].isalpha():
                raise self.error(f"'{t.value}' is not a valid name: the first character after "
                                 "any '_' must be a letter")
            self.i += 1
            return t
        if t.kind == "kw":
            raise self.error(f"'{t.value}' is a keyword and cannot be used as {what}")
        raise self.error(f"expecting {what}, found {self.describe(t)}")

    def enter(self):
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error("expression exceeds maximum complexity (nesting too deep)",
                             hint="split the expression into smaller statements")

    # --- script -------------------------------------------------------------------------
    def parse_script(self) -> A.Script:
        stmts = self.statements(top=True)
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.describe(self.tok)}")
        return A.Script(stmts, self.functions, source=self.source, source_name=self.source_name,
                        has_closure=self.fn.has_closure)

    def statements(self, top: bool = False) -> list:
        out = []
        while True:
            t = self.tok
            if t.kind == "eof" or (not top and t.kind == "op" and t.value == "}"):
                return out
            if t.kind == "op" and t.value == ";":
                self.i += 1
                continue
            stmt = self.statement(top)
            if stmt is not None:
                out.append(stmt)
            t = self.tok
            if t.kind == "op" and t.value == ";":
                self.i += 1
                continue
            if t.kind == "eof" or (t.kind == "op" and t.value == "}"):
                continue
            if stmt is None or self._self_terminated(stmt):
                continue
            raise self.error(f"expecting ';' to terminate this statement, found "
                             f"{self.describe(t)}")

    @staticmethod
    def _self_terminated(stmt) -> bool:
        if isinstance(stmt, _SELF_TERMINATED):
            return True
        if isinstance(stmt, A.ExprStmt):
            return isinstance(stmt.expr, (A.If, A.Switch, A.BlockExpr, A.StmtExpr))
        return False

    def block(self) -> A.Block:
        t = self.tok
        if not (t.kind == "op" and t.value == "{"):
            raise self.error(f"expecting '{{' to start a block, found {self.describe(t)}")
        self.i += 1
        self.enter()
        self.block_level += 1
        stmts = self.statements()
        self.block_level -= 1
        self.depth -= 1
        if self.tok.kind == "eof":
            # point at the brace that is never closed, not past the end of the script
            raise self.error("this '{' is never closed: expecting '}' before the end of the "
                             "script", t)
        self.expect_op("}", "to close the block")
        return A.Block(stmts, line=t.line, col=t.col)

    # --- statements ---------------------------------------------------------------------
    def statement(self, top: bool = False):
        t = self.tok
        if t.kind == "kw":
            kw = t.value
            if kw in ("let", "const"):
                return self.let_stmt()
            if kw == "fn" or (kw == "private" and self.peek().is_kw("fn")):
                self.fn_def(top)
                return None  # functions are not statements
            if kw == "while":
                return self.while_stmt()
            if kw == "loop":
                return self.loop_stmt()
            if kw == "do":
                return self.do_stmt()
            if kw == "for":
                return self.for_stmt()
            if kw == "break":
                return self.break_stmt()
            if kw == "continue":
                self.i += 1
                if not self.fn.loops:
                    raise self.error("'continue' must be within a loop", t)
                return A.Continue(line=t.line, col=t.col)
            if kw == "return":
                self.i += 1
                value = None if self._at_stmt_end() else self.expr()
                return A.Return(value, line=t.line, col=t.col)
            if kw == "throw":
                self.i += 1
                value = None if self._at_stmt_end() else self.expr()
                return A.Throw(value, line=t.line, col=t.col)
            if kw == "try":
                return self.try_stmt()
            if kw == "import":
                return self.import_stmt()
            if kw == "export":
                return self.export_stmt()
        if t.kind == "op" and t.value == "{":
            return self.block()
        return self.expr_stmt()

    def _at_stmt_end(self) -> bool:
        t = self.tok
        return t.kind == "eof" or (t.kind == "op" and t.value in (";", "}"))

    def let_stmt(self, export: bool = False) -> A.Let:
        t = self.advance()
        name = self.ident("a variable name")
        value = None
        span = ()
        if self.at_op("="):
            self.i += 1
            first = self.tok
            value = self.expr()
            span = (first.pos, self.toks[self.i - 1].end)
        elif t.value == "const":
            raise self.error(f"expecting '=' after constant '{name.value}': a constant needs a "
                             "value")
        return A.Let(name.value, value, const=(t.value == "const"), export=export,
                     line=t.line, col=t.col, name_col=name.col, name_end=name.end,
                     value_span=span)

    def fn_def(self, top: bool) -> A.FnDef:
        start = self.tok
        private = False
        if self.at_kw("private"):
            private = True
            self.i += 1
        fn_tok = self.advance()
        if not top or self.block_level or not self.fn.is_global:
            raise self.error("functions can only be defined at global level", fn_tok,
                             hint="move the function out of the block; use a closure "
                             "(|x| ...) for a local function")
        name = self.ident("a function name")
        self.expect_op("(", "after the function name")
        params: list[str] = []
        while not self.at_op(")"):
            p = self.ident("a parameter name")
            if p.value in params:
                raise self.error(f"duplicated parameter '{p.value}'", p)
            params.append(p.value)
            if not self.at_op(")"):
                self.expect_op(",", "between parameters")
        self.i += 1
        key = (name.value, len(params))
        if key in self._fn_keys:
            raise self.error(f"function '{name.value}' with {len(params)} parameter"
                             f"{'' if len(params) == 1 else 's'} is already defined", name)
        self._fn_keys.add(key)
        saved = self.fn
        self.fn = _FnCtx()
        body = self.block()
        ctx = self.fn
        self.fn = saved
        docs = start.docs or fn_tok.docs or ()
        fd = A.FnDef(name.value, params, body, private=private, docs=docs,
                     uses_this=ctx.uses_this, has_closure=ctx.has_closure,
                     line=name.line, col=name.col)
        self.functions.append(fd)
        return fd

    def while_stmt(self) -> A.While:
        t = self.advance()
        cond = self.condition("while")
        body = self.loop_body()
        return A.While(cond, body, line=t.line, col=t.col)

    def loop_stmt(self) -> A.While:
        t = self.advance()
        body = self.loop_body()
        return A.While(None, body, line=t.line, col=t.col)

    def do_stmt(self) -> A.DoWhile:
        t = self.advance()
        body = self.loop_body()
        if self.at_kw("while"):
            until = False
        elif self.at_kw("until"):
            until = True
        else:
            raise self.error(f"expecting 'while' or 'until' after the body of 'do', found "
                             f"{self.describe(self.tok)}")
        self.i += 1
        cond = self.condition("do")
        return A.DoWhile(body, cond, until=until, line=t.line, col=t.col)

    def loop_body(self) -> A.Block:
        self.fn.loops += 1
        try:
            return self.block()
        finally:
            self.fn.loops -= 1

    def for_stmt(self) -> A.For:
        t = self.advance()
        counter = None
        if self.at_op("("):
            self.i += 1
            var = self.ident("a loop variable name").value
            self.expect_op(",", "between the loop variable and the counter")
            counter = self.ident("a counter variable name").value
            self.expect_op(")", "after the loop variables")
            if counter == var:
                raise self.error("the loop variable and the counter must have different names")
        else:
            var = self.ident("a loop variable name").value
        if not self.at_kw("in"):
            raise self.error(f"expecting 'in' after the loop variable, found "
                             f"{self.describe(self.tok)}")
        self.i += 1
        iterable = self.expr()
        body = self.loop_body()
        return A.For(var, counter, iterable, body, line=t.line, col=t.col)

    def break_stmt(self) -> A.Break:
        t = self.advance()
        if not self.fn.loops:
            raise self.error("'break' must be within a loop", t)
        value = None if self._at_stmt_end() else self.expr()
        return A.Break(value, line=t.line, col=t.col)

    def try_stmt(self) -> A.TryCatch:
        t = self.advance()
        body = self.block()
        if not self.at_kw("catch"):
            raise self.error(f"expecting 'catch' after the 'try' block, found "
                             f"{self.describe(self.tok)}")
        self.i += 1
        var = None
        if self.at_op("("):
            self.i += 1
            var = self.ident("the error variable name").value
            self.expect_op(")", "after the error variable")
        handler = self.block()
        return A.TryCatch(body, var, handler, line=t.line, col=t.col)

    def import_stmt(self) -> A.Import:
        t = self.advance()
        path = self.expr()
        alias = None
        if self.at_kw("as"):
            self.i += 1
            alias = self.ident("a module alias").value
        return A.Import(path, alias, line=t.line, col=t.col)

    def export_stmt(self):
        t = self.advance()
        if self.block_level or not self.fn.is_global:
            raise self.error("'export' is only allowed at global level", t)
        if self.at_kw("let") or self.at_kw("const"):
            return self.let_stmt(export=True)
        names = []
        while True:
            n = self.ident("the name of a variable to export")
            alias = n.value
            if self.at_kw("as"):
                self.i += 1
                alias = self.ident("an export alias").value
            names.append((n.value, alias, n.line, n.col))
            if not self.at_op(","):
                break
            self.i += 1
        return A.Export(names, line=t.line, col=t.col)

    def expr_stmt(self):
        t = self.tok
        e = self.expr()
        nt = self.tok
        if nt.kind == "op" and nt.value in ASSIGN_OPS:
            self.i += 1
            self.check_assignable(e, nt)
            value = self.expr()
            return A.Assign(e, ASSIGN_OPS[nt.value], value, line=nt.line, col=nt.col)
        return A.ExprStmt(e, line=t.line, col=t.col)

    def check_assignable(self, e, op_tok):
        node = e
        while isinstance(node, (A.Index, A.Prop)):
            if node.safe:
                raise self.error("cannot assign through '?.' or '?['", op_tok)
            node = node.target
        if isinstance(node, (A.Var, A.This)):
            return
        if isinstance(node, A.NsVar):
            raise self.error(f"cannot assign to '{'::'.join(node.path)}::{node.name}': values "
                             "from modules and 'global' are read-only", op_tok)
        raise self.error("cannot assign to this expression (only variables, array elements "
                         "and properties can be assigned)", op_tok)

    def condition(self, what: str):
        cond = self.expr()
        t = self.tok
        if t.kind == "op" and t.value in ASSIGN_OPS:
            raise self.error(f"'{t.value}' cannot be used in a condition" +
                             (" (possibly a typo of '=='?)" if t.value == "=" else ""), t)
        return cond

    # --- expressions --------------------------------------------------------------------
    def expr(self, min_prec: int = 0):
        self.enter()
        left = self.unary()
        while True:
            t = self.tok
            if t.kind == "op":
                op = t.value
            elif t.kind == "kw" and t.value == "in":
                op = "in"
            else:
                break
            prec = BINARY.get(op)
            if prec is None or prec < min_prec:
                break
            self.i += 1
            right = self.expr(prec if op in RIGHT_ASSOC else prec + 1)
            if op == "&&" or op == "||":
                left = A.Logic(op, left, right, line=t.line, col=t.col)
            else:
                left = A.Binary(op, left, right, line=t.line, col=t.col)
        self.depth -= 1
        return left

    def unary(self):
        t = self.tok
        if t.kind == "op" and t.value in ("-", "+", "!"):
            self.i += 1
            self.enter()
            operand = self.unary()
            self.depth -= 1
            if t.value == "-" and isinstance(operand, A.Lit) and type(operand.value) in (int, float):
                return A.Lit(-operand.value, line=t.line, col=t.col)
            if t.value == "+" and isinstance(operand, A.Lit) and type(operand.value) in (int, float):
                return operand
            return A.Unary(t.value, operand, line=t.line, col=t.col)
        return self.postfix(self.primary())

    def postfix(self, e):
        while True:
            t = self.tok
            if t.kind != "op":
                return e
            v = t.value
            if v == "." or v == "?.":
                self.i += 1
                nt = self.tok
                if nt.kind not in ("ident", "kw"):
                    raise self.error(f"expecting a property or method name after '{v}', found "
                                     f"{self.describe(nt)}")
                self.i += 1
                if self.at_op("("):
                    args = self.call_args()
                    e = A.MethodCall(e, nt.value, args, safe=(v == "?."), line=nt.line,
                                     col=nt.col)
                else:
                    e = A.Prop(e, nt.value, safe=(v == "?."), line=nt.line, col=nt.col)
            elif v == "[" or v == "?[":
                self.i += 1
                idx = self.expr()
                self.expect_op("]", "to close the index")
                e = A.Index(e, idx, safe=(v == "?["), line=t.line, col=t.col)
            else:
                return e

    def call_args(self) -> list:
        self.expect_op("(")
        args = []
        while not self.at_op(")"):
            args.append(self.expr())
            if self.at_op(")"):
                break
            self.expect_op(",", "between arguments")
        self.i += 1
        return args

    def primary(self):
        t = self.tok
        k = t.kind
        if k == "int" or k == "float" or k == "str":
            self.i += 1
            return A.Lit(t.value, line=t.line, col=t.col)
        if k == "char":
            self.i += 1
            return A.Lit(Char(t.value), line=t.line, col=t.col)
        if k == "interp":
            self.i += 1
            return self.interp(t)
        if k == "ident":
            return self.ident_expr()
        if k == "kw":
            v = t.value
            if v == "true" or v == "false":
                self.i += 1
                return A.Lit(v == "true", line=t.line, col=t.col)
            if v == "if":
                return self.if_expr()
            if v == "switch":
                return self.switch_expr()
            if v == "this":
                self.i += 1
                if self.fn.is_global:
                    pass  # `this` at global level is unbound at run time, as in Rhai
                self.fn.uses_this = True
                return A.This(line=t.line, col=t.col)
            if v == "global":
                self.i += 1
                self.expect_op("::", "after 'global'")
                name = self.ident("a constant name")
                if self.at_op("("):
                    raise self.error("functions cannot be called through 'global::'", name)
                return A.NsVar(["global"], name.value, line=t.line, col=t.col)
            if v in ("while", "loop", "do", "for"):
                stmt = self.statement()
                return A.StmtExpr(stmt, line=t.line, col=t.col)
            if v == "fn":
                raise self.error("functions can only be defined at global level; use a closure "
                                 "(|x| ...) inside an expression", t)
            raise self.error(f"unexpected keyword '{v}'" + self._kw_hint(v), t)
        if k == "op":
            v = t.value
            if v == "(":
                self.i += 1
                if self.at_op(")"):
                    self.i += 1
                    return A.Lit(None, line=t.line, col=t.col)
                e = self.expr()
                self.expect_op(")", "to close '('")
                return e
            if v == "[":
                return self.array_lit()
            if v == "#{":
                return self.map_lit()
            if v == "{":
                b = self.block()
                return A.BlockExpr(b, line=t.line, col=t.col)
            if v == "|" or v == "||":
                return self.closure()
            raise self.error(f"unexpected {self.describe(t)}, expecting an expression", t)
        if k == "eof":
            raise self.error("unexpected end of script, expecting an expression", t)
        raise self.error(f"unexpected {self.describe(t)}", t)

    @staticmethod
    def _kw_hint(v: str) -> str:
        if v == "else":
            return " ('else' must follow the '}' of an 'if' block)"
        if v in ("let", "const"):
            return f" ('{v}' starts a statement, it cannot be used inside an expression)"
        return ""

    def ident_expr(self):
        t = self.advance()
        name = t.value
        if name in RESERVED:
            raise self.error(f"'{name}' is a reserved keyword", t)
        if self.at_op("::"):
            path = [name]
            while self.at_op("::"):
                self.i += 1
                n = self.ident("a name after '::'")
                path.append(n.value)
            name = path.pop()
            if self.at_op("("):
                args = self.call_args()
                return A.Call(name, args, namespace=path, line=t.line, col=t.col)
            return A.NsVar(path, name, line=t.line, col=t.col)
        if self.at_op("("):
            args = self.call_args()
            return A.Call(name, args, line=t.line, col=t.col)
        if self.at_op("!") and self.peek().is_op("("):
            raise self.error("calling a function with '!' (in the caller's scope) is not "
                             "supported", self.tok)
        return A.Var(name, line=t.line, col=t.col)

    def interp(self, t: Token):
        parts = []
        for p in t.value:
            if isinstance(p, str):
                parts.append(p)
                continue
            assert isinstance(p, InterpPart)
            sub = Parser(p.tokens, self.source, self.source_name, max_expr_depth=self.max_depth)
            sub.depth = self.depth
            sub.fn = self.fn
            sub.block_level = self.block_level + 1
            stmts = sub.statements()
            if sub.tok.kind != "eof":
                raise sub.error(f"unexpected {sub.describe(sub.tok)} in string interpolation")
            parts.append(A.BlockExpr(A.Block(stmts, line=p.line, col=p.col), line=p.line,
                                     col=p.col))
        return A.Interp(parts, line=t.line, col=t.col)

    def array_lit(self):
        t = self.advance()
        items = []
        while not self.at_op("]"):
            items.append(self.expr())
            if self.at_op("]"):
                break
            self.expect_op(",", "between array items")
        self.i += 1
        return A.ArrayLit(items, line=t.line, col=t.col)

    def map_lit(self):
        t = self.advance()
        items = []
        seen = set()
        while not self.at_op("}"):
            kt = self.tok
            if kt.kind in ("ident", "kw"):
                key = kt.value
            elif kt.kind == "str":
                key = kt.value
            else:
                raise self.error(f"expecting a property name (identifier or string) in the "
                                 f"object map, found {self.describe(kt)}")
            self.i += 1
            if key in seen:
                raise self.error(f"duplicated property '{key}' in object map literal", kt)
            seen.add(key)
            self.expect_op(":", f"after property '{key}'")
            items.append((key, self.expr()))
            if self.at_op("}"):
                break
            self.expect_op(",", "between object map properties")
        self.i += 1
        return A.MapLit(items, line=t.line, col=t.col)

    def if_expr(self):
        t = self.advance()
        cond = self.condition("if")
        then = self.block()
        orelse = None
        if self.at_kw("else"):
            self.i += 1
            if self.at_kw("if"):
                orelse = self.if_expr()
            else:
                orelse = self.block()
        return A.If(cond, then, orelse, line=t.line, col=t.col)

    def switch_expr(self):
        t = self.advance()
        subject = self.expr()
        self.expect_op("{", "to start the cases of 'switch'")
        cases = []
        default = None
        seen_range = False
        while not self.at_op("}"):
            ct = self.tok
            if default is not None:
                raise self.error("the default case '_' must be the last case of 'switch'", ct)
            if ct.kind == "ident" and ct.value == "_":
                self.i += 1
                if self.at_kw("if"):
                    raise self.error("the default case '_' cannot have a condition")
                self.expect_op("=>", "after '_'")
                default = self.case_body()
            else:
                values = [self.expr(31)]
                while self.at_op("|"):
                    self.i += 1
                    values.append(self.expr(31))
                guard = None
                if self.at_kw("if"):
                    self.i += 1
                    guard = self.expr()
                self.expect_op("=>", "after the case value")
                body = self.case_body()
                for v in values:
                    self._check_case_value(v)
                    if isinstance(v, A.Binary):  # a range
                        seen_range = True
                    elif (seen_range and isinstance(v, A.Lit) and type(v.value) in (int, float)
                          and type(v.value) is not bool):
                        # Rhai matches exact values before ranges and insists on the order
                        raise RhaiSyntaxError("a numeric 'switch' case must come before the "
                                              "range cases", v.line, v.col,
                                              source_name=self.source_name, source=self.source)
                cases.append(A.SwitchCase(values, guard, body, line=ct.line, col=ct.col))
            last = default if default is not None else cases[-1].body
            if self.at_op(","):
                self.i += 1
            elif not self.at_op("}") and not (
                    isinstance(last, (A.BlockExpr, A.If, A.Switch, A.StmtExpr)) and
                    getattr(last, "self_terminated", True)):
                raise self.error(f"expecting ',' between 'switch' cases, found "
                                 f"{self.describe(self.tok)}")
        self.i += 1
        return A.Switch(subject, cases, default, line=t.line, col=t.col)

    def case_body(self):
        """A case is a statement (as in Rhai): an expression, a block, `throw`, ..."""
        t = self.tok
        if self.at_op("{"):
            return A.BlockExpr(self.block(), line=t.line, col=t.col)
        stmt = self.statement()
        if isinstance(stmt, A.ExprStmt):
            return stmt.expr
        if stmt is None:
            raise self.error("expecting a value or statement for this 'switch' case", t)
        body = A.BlockExpr(A.Block([stmt], line=t.line, col=t.col), line=t.line, col=t.col)
        body.self_terminated = self._self_terminated(stmt)
        return body

    def _check_case_value(self, v):
        if isinstance(v, A.Binary) and v.op in ("..", "..="):
            if isinstance(v.left, A.Lit) and isinstance(v.right, A.Lit) \
                    and type(v.left.value) is int and type(v.right.value) is int:
                return
        if _is_constant(v):
            return
        raise RhaiSyntaxError("'switch' cases must be literal values (numbers, strings, "
                              "characters, booleans, arrays or maps of literals) or integer "
                              "ranges", v.line, v.col, source_name=self.source_name,
                              source=self.source)

    def closure(self):
        t = self.advance()
        params: list[str] = []
        if t.value == "|":
            while not self.at_op("|"):
                p = self.ident("a closure parameter name")
                if p.value in params:
                    raise self.error(f"duplicated parameter '{p.value}'", p)
                params.append(p.value)
                if not self.at_op("|"):
                    self.expect_op(",", "between closure parameters")
            self.i += 1
        saved = self.fn
        saved.has_closure = True
        self.fn = _FnCtx()
        body_tok = self.tok
        if self.at_op("{"):
            body = self.block()
        else:
            stmt = self.expr_stmt()
            body = A.Block([stmt], line=body_tok.line, col=body_tok.col)
        ctx = self.fn
        self.fn = saved
        return A.Closure(params, body, uses_this=ctx.uses_this, has_closure=ctx.has_closure,
                         line=t.line, col=t.col)


def _is_constant(e) -> bool:
    if isinstance(e, A.Lit):
        return True
    if isinstance(e, A.ArrayLit):
        return all(_is_constant(x) for x in e.items)
    if isinstance(e, A.MapLit):
        return all(_is_constant(x) for _, x in e.items)
    return False


def parse(source: str, source_name: str | None = None, *, max_expr_depth: int = 64) -> A.Script:
    """Parse Rhai source into a Script (raises RhaiSyntaxError)."""
    tokens, docs = tokenize(source, source_name)
    p = Parser(tokens, source, source_name, max_expr_depth=max_expr_depth)
    script = p.parse_script()
    script.module_docs = docs
    return script
