"""The Rhai syntax tree: one small slots dataclass per construct.

Every node carries the 1-based `line` and `col` of the token that starts it (for binary
operators: the operator), which the compiler copies onto the Python code it generates so that
runtime errors point back into the Rhai source.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field


@dataclass(slots=True)
class Node:
    _: KW_ONLY
    line: int = 0
    col: int = 0


# --- expressions -------------------------------------------------------------------------

@dataclass(slots=True)
class Lit(Node):
    """A literal: int, float, bool, str, Char, or None for `()`."""
    value: object


@dataclass(slots=True)
class Interp(Node):
    """A back-tick string: str segments and Block expressions to convert with to_string."""
    parts: list


@dataclass(slots=True)
class Var(Node):
    name: str


@dataclass(slots=True)
class This(Node):
    pass


@dataclass(slots=True)
class NsVar(Node):
    """`global::NAME` or `module::sub::NAME`."""
    path: list[str]
    name: str


@dataclass(slots=True)
class ArrayLit(Node):
    items: list


@dataclass(slots=True)
class MapLit(Node):
    items: list  # [(key: str, value: Expr)]


@dataclass(slots=True)
class Unary(Node):
    op: str  # '-', '+', '!'
    operand: object


@dataclass(slots=True)
class Binary(Node):
    op: str
    left: object
    right: object


@dataclass(slots=True)
class Logic(Node):
    op: str  # '&&' or '||'
    left: object
    right: object


@dataclass(slots=True)
class Call(Node):
    name: str
    args: list
    namespace: list[str] | None = None   # ['h'] for h::f(); ['global'] is not allowed


@dataclass(slots=True)
class MethodCall(Node):
    target: object
    name: str
    args: list
    safe: bool = False  # ?.


@dataclass(slots=True)
class Prop(Node):
    target: object
    name: str
    safe: bool = False


@dataclass(slots=True)
class Index(Node):
    target: object
    index: object
    safe: bool = False


@dataclass(slots=True)
class Closure(Node):
    params: list[str]
    body: "Block"
    uses_this: bool = False
    has_closure: bool = False


@dataclass(slots=True)
class If(Node):
    cond: object
    then: "Block"
    orelse: object = None  # Block, If or None


@dataclass(slots=True)
class SwitchCase(Node):
    values: list          # literal expressions (Lit/ArrayLit/MapLit) or Range Binary
    guard: object
    body: object          # expression or Block


@dataclass(slots=True)
class Switch(Node):
    subject: object
    cases: list
    default: object = None


@dataclass(slots=True)
class BlockExpr(Node):
    block: "Block"
    self_terminated: bool = True


@dataclass(slots=True)
class StmtExpr(Node):
    """A loop statement used where a value is expected (`let x = loop { break 1; }`)."""
    stmt: object


# --- statements --------------------------------------------------------------------------

@dataclass(slots=True)
class Block(Node):
    stmts: list


@dataclass(slots=True)
class Let(Node):
    name: str
    value: object = None
    const: bool = False
    export: bool = False
    name_col: int = 0
    name_end: int = 0              # source offset after the name
    value_span: tuple = ()         # (start, end) source offsets of the value expression


@dataclass(slots=True)
class Assign(Node):
    target: object
    op: str | None   # None for '=', else the binary operator of a compound assignment
    value: object


@dataclass(slots=True)
class ExprStmt(Node):
    expr: object


@dataclass(slots=True)
class While(Node):
    cond: object   # None for `loop`
    body: Block


@dataclass(slots=True)
class DoWhile(Node):
    body: Block
    cond: object
    until: bool = False


@dataclass(slots=True)
class For(Node):
    var: str
    counter: str | None
    iterable: object
    body: Block


@dataclass(slots=True)
class Break(Node):
    value: object = None


@dataclass(slots=True)
class Continue(Node):
    pass


@dataclass(slots=True)
class Return(Node):
    value: object = None


@dataclass(slots=True)
class Throw(Node):
    value: object = None


@dataclass(slots=True)
class TryCatch(Node):
    body: Block
    var: str | None
    handler: Block


@dataclass(slots=True)
class Import(Node):
    path: object
    alias: str | None


@dataclass(slots=True)
class Export(Node):
    names: list  # [(name, alias)]


@dataclass(slots=True)
class FnDef(Node):
    name: str
    params: list[str]
    body: Block
    private: bool = False
    docs: tuple = ()
    uses_this: bool = False
    has_closure: bool = False


@dataclass(slots=True)
class Script:
    stmts: list
    functions: list = field(default_factory=list)
    module_docs: list = field(default_factory=list)
    source: str = ""
    source_name: str | None = None
    has_closure: bool = False
