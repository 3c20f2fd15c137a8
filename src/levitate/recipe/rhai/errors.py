"""Errors raised by the Rhai engine.

Every problem a script can cause surfaces as a `RhaiError` (a `LevitateError`, so command-line
entry points print it as one clear message): syntax errors while compiling, runtime errors while
running. Each carries Rhai's error kind (`ErrorParsing`, `ErrorFunctionNotFound`, ... the names of
Rhai's `EvalAltResult` variants), a message without position, the file, 1-based line and column,
and renders the offending source line with a caret under the spot.

Runtime errors are catchable by the script's `try`/`catch` unless they come from a safety limit
(too many operations, stack overflow, data too large, too many modules), as in Rhai. A caught
error becomes the value Rhai gives it: the thrown value for `throw`, otherwise an object map
`#{message, error, line, position, ...}` (see `catch_value`).
"""

from __future__ import annotations

import difflib

from levitate.util.errors import LevitateError

# Error kinds that a `try`/`catch` in the script may not intercept (Rhai: system exceptions).
UNCATCHABLE = frozenset({
    "ErrorParsing", "ErrorSystem", "ErrorTooManyOperations", "ErrorTooManyVariables",
    "ErrorTooManyModules", "ErrorStackOverflow", "ErrorDataTooLarge", "ErrorTerminated",
})


class RhaiError(LevitateError):
    """A syntax or runtime error in a Rhai script, with its position in the source."""

    def __init__(self, kind: str, message: str, line: int | None = None,
                 column: int | None = None, *, source_name: str | None = None,
                 source: str | None = None, hint: str | None = None, value=None,
                 fields: dict | None = None):
        super().__init__(message, hint)
        self.kind = kind
        self.line = line
        self.column = column
        self.source_name = source_name
        self.source = source
        self.value = value              # the thrown value (ErrorRuntime from `throw`)
        self.fields = fields or {}      # extra fields for the catch map (variable, function...)
        self.call_stack: list[tuple[str, int, int]] = []   # (function, line, column) outermost last
        self.call_sources: list = []    # the file of each call-stack entry
        self.module_stack: list[str] = []

    # --- position -----------------------------------------------------------------------
    @property
    def catchable(self) -> bool:
        return self.kind not in UNCATCHABLE

    @property
    def has_position(self) -> bool:
        return self.line is not None

    def set_position(self, line: int, column: int, source_name: str | None = None,
                     source: str | None = None) -> "RhaiError":
        if self.line is None:
            self.line, self.column = line, column
            if source_name is not None:
                self.source_name = source_name
            if source is not None:
                self.source = source
        return self

    def position_text(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}, position {self.column}"

    def excerpt(self) -> str:
        """The offending source line with a caret under the column (empty if unknown)."""
        if self.line is None or not self.source:
            return ""
        lines = self.source.splitlines()
        if not 1 <= self.line <= len(lines):
            return ""
        text = lines[self.line - 1].replace("\t", " ")
        gutter = f"{self.line:>4} | "
        col = max(1, self.column or 1)
        return f"{gutter}{text}\n{' ' * (len(gutter) + col - 1)}^"

    # --- rendering ----------------------------------------------------------------------
    def headline(self) -> str:
        """`file:line:col: message` on one line."""
        where = self.source_name or "<script>"
        if self.line is not None:
            where = f"{where}:{self.line}:{self.column}"
        return f"{where}: {self.message}"

    def render(self) -> str:
        parts = [self.headline()]
        ex = self.excerpt()
        if ex:
            parts.append(ex)
        for text, count in _collapse(self.call_stack, self.call_sources, self.source_name):
            parts.append(f"  {text}" + (f" [repeated {count} times]" if count > 1 else ""))
        for mod in self.module_stack:
            parts.append(f"  in module '{mod}'")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"RhaiError({self.kind}, {self.message!r}, line={self.line}, column={self.column})"


class RhaiSyntaxError(RhaiError):
    """The script does not parse (never catchable by the script)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, **kw):
        super().__init__("ErrorParsing", message, line, column, **kw)


def _collapse(stack, sources=(), here=None):
    """Call-stack lines, with runs of identical lines (deep recursion) folded."""
    out: list[list] = []
    sources = list(sources) + [None] * (len(stack) - len(sources))
    for (fn, line, col), src in zip(stack, sources):
        where = f"{src} " if src and src != here else ""
        text = f"in call to function '{fn}' ({where}line {line}, position {col})"
        if out and out[-1][0] == text:
            out[-1][1] += 1
        else:
            out.append([text, 1])
    return out


# --- helpers used by the runtime ---------------------------------------------------------

def did_you_mean(name: str, candidates) -> str | None:
    """A suggestion for a misspelled name, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.75)
    return close[0] if close else None


def thrown(value, message: str) -> RhaiError:
    """The error for `throw value`; `message` is the value's printed form."""
    text = f"Runtime error: {message}" if message else "Runtime error"
    return RhaiError("ErrorRuntime", text, value=value)


def catch_value(err: RhaiError):
    """The value a `catch (e)` block sees for `err` (Rhai's shape)."""
    if err.kind == "ErrorRuntime":
        return err.value
    m = {"message": err.message, "error": err.kind}
    if err.source_name:
        m["source"] = err.source_name
    if err.line is not None:
        m["line"] = err.line
        m["position"] = err.column
    for k, v in err.fields.items():
        m[k] = v
    return m


def host_error(fn_name: str, exc: BaseException) -> RhaiError:
    """A Python exception raised inside a registered host function."""
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return RhaiError("ErrorRuntime", msg, hint=getattr(exc, "hint", None), value=msg)
