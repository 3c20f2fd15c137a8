"""Rewriting top-level variables in a script's source: recipes keep their state in the file
(`let installed = false;` becomes `let installed = true;`), the rest of the text (comments,
layout) stays as it is.

    new_source = set_variables(source, {"installed": True, "installed_files": ["/usr/bin/rg"]})
    rhai_literal({"a": [1, "x"]})   # '#{a: [1, "x"]}'
"""

from __future__ import annotations

import math

from . import ast as A
from .errors import RhaiError
from .parser import parse
from .values import Char, RhaiRange


def rhai_literal(value) -> str:
    """Rhai source text that evaluates to `value` (a Python or Rhai value)."""
    if value is None:
        return "()"
    t = type(value)
    if t is bool:
        return "true" if value else "false"
    if t is int:
        if not -(1 << 63) <= value < (1 << 63):
            raise RhaiError("ErrorArithmetic", f"integer {value} does not fit in 64 bits")
        return str(value) if value >= 0 else f"-{-value}" if value != -(1 << 63) else \
            "-9223372036854775807 - 1"
    if t is float:
        if math.isnan(value):
            return "(0.0 / 0.0)"
        if math.isinf(value):
            return "(1.0 / 0.0)" if value > 0 else "(-1.0 / 0.0)"
        r = repr(value)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    if t is Char:
        return "'" + _escape(str(value), "'") + "'"
    if isinstance(value, str):
        return '"' + _escape(value, '"') + '"'
    if t is RhaiRange:
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(rhai_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            k = str(k)
            key = k if k.isidentifier() and k.isascii() else '"' + _escape(k, '"') + '"'
            parts.append(f"{key}: {rhai_literal(v)}")
        return "#{" + ", ".join(parts) + "}"
    raise RhaiError("ErrorMismatchDataType",
                    f"cannot write a {type(value).__name__} as a Rhai literal")


def _escape(s: str, quote: str) -> str:
    out = []
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == quote:
            out.append("\\" + quote)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def top_level_variables(source: str, source_name: str | None = None) -> dict:
    """The last top-level `let`/`const` of each name: name -> the `ast.Let` node (with the
    source span of its value)."""
    script = parse(source, source_name)
    found = {}
    for stmt in script.stmts:
        if isinstance(stmt, A.Let):
            found[stmt.name] = stmt
    return found


def set_variables(source: str, values: dict, *, source_name: str | None = None) -> str:
    """`source` with the values of top-level variables replaced (the last `let` of each name).
    A `let x;` without value gets one. Unknown names are an error."""
    lets = top_level_variables(source, source_name)
    missing = [n for n in values if n not in lets]
    if missing:
        raise RhaiError("ErrorVariableNotFound",
                        f"no top-level variable {', '.join(repr(m) for m in missing)} to update",
                        source_name=source_name,
                        hint="declare it at the top of the script: let name = ...;")
    edits = []
    for name, value in values.items():
        node = lets[name]
        text = rhai_literal(value)
        if node.value_span:
            start, end = node.value_span
            edits.append((start, end, text))
        else:
            edits.append((node.name_end, node.name_end, f" = {text}"))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source
