"""Lexer: Rhai source text -> a list of tokens with 1-based line and column.

Handles Rhai's literal forms: integers (decimal, `0x`, `0o`, `0b`, `_` separators), floats,
strings with escapes and `\\` line continuation, raw strings `#"..."#`, characters, and
back-tick strings whose `${...}` interpolations are lexed recursively into token lists. Comments
`//` and nested `/* */` are skipped; doc comments `///` and `/** */` are attached to the next
token (the parser keeps them for `fn` definitions) and `//!` module docs are collected in
`Lexer.module_docs`.
"""

from __future__ import annotations

import re

from .errors import RhaiSyntaxError

KEYWORDS = frozenset({
    "let", "const", "if", "else", "switch", "do", "while", "until", "loop", "for", "in", "fn",
    "private", "return", "throw", "try", "catch", "import", "export", "as", "break", "continue",
    "this", "true", "false", "global",
})

# Reserved by Rhai for future use: an identifier with one of these names is a syntax error.
RESERVED = frozenset({
    "var", "static", "shared", "goto", "exit", "match", "case", "public", "protected", "new",
    "use", "with", "module", "package", "super", "spawn", "thread", "go", "sync", "async",
    "await", "yield", "default", "void", "null", "nil",
})

# Longest operators first.
OPERATORS = [
    "..=", "<<=", ">>=", "**=", "??=", "!in",
    "::", "=>", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "+=", "-=", "*=", "/=", "%=",
    "&=", "|=", "^=", "**", "..", "?.", "?[", "??", "#{", "->",
    "+", "-", "*", "/", "%", "=", "<", ">", "!", "&", "|", "^", "(", ")", "[", "]", "{", "}",
    ",", ";", ":", ".", "?", "@", "$", "~",
]

_MAX_INT = (1 << 63) - 1


class Token:
    """One token with its position (and the `///` docs before it)."""
    __slots__ = ("kind", "value", "line", "col", "docs", "pos", "end")

    def __init__(self, kind: str, value, line: int, col: int):
        self.kind = kind          # int float str char interp ident kw op eof
        self.value = value
        self.line = line
        self.col = col
        self.docs = None          # tuple of `///` doc comment texts preceding this token

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.value!r}, {self.line}:{self.col})"

    def is_op(self, op: str) -> bool:
        return self.kind == "op" and self.value == op

    def is_kw(self, kw: str) -> bool:
        return self.kind == "kw" and self.value == kw


class InterpPart:
    """One `${...}` inside a back-tick string: its tokens and where it starts."""
    __slots__ = ("tokens", "line", "col")

    def __init__(self, tokens, line, col):
        self.tokens = tokens
        self.line = line
        self.col = col


_ops_pattern = "|".join(re.escape(o) for o in OPERATORS if o != "!in")
_MASTER = re.compile(r"""
    (?P<ws>[ \t\r\f\v\n]+)
  | (?P<doc>//![^\n]*|///(?!/)[^\n]*)
  | (?P<line>//[^\n]*)
  | (?P<block>/\*)
  | (?P<num>0[xX][0-9a-fA-F_]*|0[oO][0-7_]*|0[bB][01_]*
        |[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>")
  | (?P<char>')
  | (?P<tick>`)
  | (?P<raw>\#+")
  | (?P<op>""" + _ops_pattern + r""")
""", re.VERBOSE)

_SIMPLE_ESCAPES = {"\\": "\\", "t": "\t", "r": "\r", "n": "\n", '"': '"', "'": "'", "0": "\0",
                   "`": "`", "$": "$"}


class Lexer:
    """Splits source into tokens; also lexes the code inside `${...}` of a template string."""
    def __init__(self, source: str, source_name: str | None = None, *, line: int = 1,
                 col: int = 1, start: int = 0, stop_at_brace: bool = False):
        self.src = source
        self.source_name = source_name
        self.pos = start
        self.line = line
        # offset of the current line's start, such that col = pos - line_start + 1
        self.line_start = start - (col - 1)
        self.module_docs: list[str] = []
        self.stop_at_brace = stop_at_brace
        self._pending_docs: list[str] = []

    # --- errors -------------------------------------------------------------------------
    def error(self, message: str, line: int | None = None, col: int | None = None):
        return RhaiSyntaxError(message, line if line is not None else self.line,
                               col if col is not None else self.pos - self.line_start + 1,
                               source_name=self.source_name, source=self._root_source())

    def _root_source(self) -> str:
        return self.src

    # --- main loop ----------------------------------------------------------------------
    def tokenize(self) -> list[Token]:
        src = self.src
        n = len(src)
        out: list[Token] = []
        append = out.append
        match = _MASTER.match
        keywords = KEYWORDS
        depth = 0  # brace depth, used to find the end of a `${...}` interpolation
        pos = self.pos
        while pos < n:
            m = match(src, pos)
            if m is None:
                self.pos = pos
                raise self.error(f"unexpected character {src[pos]!r}")
            kind = m.lastgroup
            if kind == "ws":
                text = m.group()
                pos = m.end()
                if "\n" in text:
                    self.line += text.count("\n")
                    self.line_start = m.start() + text.rfind("\n") + 1
                continue
            col = pos - self.line_start + 1
            start = pos
            if kind == "ident":
                text = m.group()
                pos = m.end()
                tok = Token("kw" if text in keywords else "ident", text, self.line, col)
            elif kind == "op":
                text = m.group()
                pos = m.end()
                if text in ("+", "-") and src.startswith(text, pos):
                    # Rhai reserves `++` and `--`; say what to write instead
                    raise self.error(f"'{text}{text}' is not an operator in Rhai: write "
                                     f"'x {text}= 1'", self.line, col)
                if text == "!" and src.startswith("in", pos) and not (
                        pos + 2 < n and (src[pos + 2].isalnum() or src[pos + 2] == "_")):
                    pos += 2
                    text = "!in"
                if self.stop_at_brace:
                    if text in ("{", "#{"):
                        depth += 1
                    elif text == "}":
                        if depth == 0:
                            self.pos = pos
                            eof = Token("eof", None, self.line, col)
                            eof.pos = eof.end = start
                            append(eof)
                            return out
                        depth -= 1
                tok = Token("op", text, self.line, col)
            elif kind == "line":
                pos = m.end()
                continue
            elif kind == "doc":
                text = m.group()
                pos = m.end()
                if text.startswith("//!"):
                    self.module_docs.append(text[3:])
                else:
                    self._pending_docs.append(text[3:])
                continue
            elif kind == "num":
                pos = m.end()
                tok = self._number(m.group(), col)
            else:
                self.pos = pos
                if kind == "block":
                    self._block_comment()
                    pos = self.pos
                    continue
                if kind == "str":
                    tok = self._string(col)
                elif kind == "char":
                    tok = self._char(col)
                elif kind == "tick":
                    tok = self._backtick(col)
                else:  # raw
                    tok = self._raw_string(len(m.group()) - 1, col)
                pos = self.pos
            if self._pending_docs:
                tok.docs = tuple(self._pending_docs)
                self._pending_docs = []
            tok.pos = start
            tok.end = pos
            append(tok)
        self.pos = pos
        if self.stop_at_brace:
            raise self.error("unterminated string interpolation: expecting '}'")
        return self._finish(out)

    def _finish(self, out):
        eof = Token("eof", None, self.line, self.pos - self.line_start + 1)
        eof.pos = eof.end = self.pos
        out.append(eof)
        return out

    # --- pieces -------------------------------------------------------------------------
    def _block_comment(self):
        src = self.src
        line, col = self.line, self.pos - self.line_start + 1
        is_doc = src.startswith("/**", self.pos) and not src.startswith("/**/", self.pos) \
            and not src.startswith("/***", self.pos)
        start = self.pos
        self.pos += 2
        level = 1
        n = len(src)
        while level:
            if self.pos >= n:
                raise self.error("unterminated block comment: expecting '*/'", line, col)
            c = src[self.pos]
            if c == "\n":
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
            elif c == "*" and src.startswith("*/", self.pos):
                level -= 1
                self.pos += 2
            elif c == "/" and src.startswith("/*", self.pos):
                level += 1
                self.pos += 2
            else:
                self.pos += 1
        if is_doc:
            self._pending_docs.append(src[start + 3:self.pos - 2])

    def _number(self, text: str, col: int) -> Token:
        t = text.replace("_", "")
        low = t.lower()
        try:
            if low.startswith("0x"):
                value = int(t[2:], 16)
            elif low.startswith("0o"):
                value = int(t[2:], 8)
            elif low.startswith("0b"):
                value = int(t[2:], 2)
            elif "." in t or "e" in low:
                return Token("float", float(t), self.line, col)
            else:
                value = int(t, 10)
        except ValueError:
            raise self.error(f"invalid number literal '{text}'", self.line, col) from None
        if value > _MAX_INT:
            raise self.error(f"integer literal '{text}' is too large for a 64-bit integer",
                             self.line, col)
        return Token("int", value, self.line, col)

    def _escape(self, quote_line: int, quote_col: int) -> str:
        """Decode one escape sequence; self.pos is at the backslash."""
        src = self.src
        self.pos += 1
        if self.pos >= len(src):
            raise self.error("unterminated string literal", quote_line, quote_col)
        c = src[self.pos]
        if c in _SIMPLE_ESCAPES and c not in "`$":
            self.pos += 1
            return _SIMPLE_ESCAPES[c]
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = src[self.pos + 1:self.pos + 1 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"invalid escape sequence '\\{c}{digits}': expecting {width} "
                                 "hex digits")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error(f"invalid Unicode code point in escape '\\{c}{digits}'")
            self.pos += 1 + width
            return chr(code)
        raise self.error(f"invalid escape sequence '\\{c}'")

    def _string(self, col: int) -> Token:
        src = self.src
        line = self.line
        self.pos += 1
        parts = []
        n = len(src)
        while True:
            if self.pos >= n:
                raise self.error("unterminated string literal: expecting '\"'", line, col)
            c = src[self.pos]
            if c == '"':
                self.pos += 1
                break
            if c == "\n":
                raise self.error("unterminated string literal (use `\\` at the end of a line to "
                                 "continue a string, or a back-tick string for several lines)",
                                 line, col)
            if c == "\\":
                if self.pos + 1 < n and src[self.pos + 1] == "\n":
                    # line continuation: skip whitespace up to the opening quote's indentation
                    self.pos += 2
                    self.line += 1
                    self.line_start = self.pos
                    skipped = 0
                    while self.pos < n and src[self.pos] in " \t" and skipped < col:
                        self.pos += 1
                        skipped += 1
                    continue
                if self.pos + 2 < n and src[self.pos + 1] == "\r" and src[self.pos + 2] == "\n":
                    self.pos += 3
                    self.line += 1
                    self.line_start = self.pos
                    skipped = 0
                    while self.pos < n and src[self.pos] in " \t" and skipped < col:
                        self.pos += 1
                        skipped += 1
                    continue
                parts.append(self._escape(line, col))
                continue
            # fast path: run of ordinary characters
            j = self.pos
            while j < n and src[j] not in '"\\\n':
                j += 1
            parts.append(src[self.pos:j])
            self.pos = j
        return Token("str", "".join(parts), line, col)

    def _raw_string(self, hashes: int, col: int) -> Token:
        src = self.src
        line = self.line
        self.pos += hashes + 1
        end = src.find('"' + "#" * hashes, self.pos)
        if end < 0:
            raise self.error("unterminated raw string literal: expecting '\"" + "#" * hashes + "'",
                             line, col)
        body = src[self.pos:end]
        self._advance_over(body)
        self.pos = end + 1 + hashes
        return Token("str", body, line, col)

    def _advance_over(self, text: str):
        """Update line bookkeeping for text starting at self.pos (self.pos not moved)."""
        nl = text.count("\n")
        if nl:
            self.line += nl
            self.line_start = self.pos + text.rfind("\n") + 1

    def _char(self, col: int) -> Token:
        src = self.src
        line = self.line
        self.pos += 1
        if self.pos >= len(src) or src[self.pos] in "\n'":
            raise self.error("empty or unterminated character literal", line, col)
        if src[self.pos] == "\\":
            ch = self._escape(line, col)
        else:
            ch = src[self.pos]
            self.pos += 1
        if self.pos >= len(src) or src[self.pos] != "'":
            raise self.error("character literal must contain exactly one character "
                             "(use double quotes for strings)", line, col)
        self.pos += 1
        return Token("char", ch, line, col)

    def _backtick(self, col: int) -> Token:
        """A back-tick string: literal text and `${...}` interpolations."""
        src = self.src
        n = len(src)
        line = self.line
        self.pos += 1
        # a line break right after the opening back-tick is skipped (as in Rhai)
        j = self.pos
        if src.startswith("\r\n", j):
            j += 1
        if j < n and src[j] == "\n":
            self.pos = j + 1
            self.line += 1
            self.line_start = self.pos
        parts: list = []
        buf: list[str] = []
        while True:
            if self.pos >= n:
                raise self.error("unterminated back-tick string: expecting '`'", line, col)
            c = src[self.pos]
            if c == "`":
                if src.startswith("``", self.pos):  # a doubled back-tick is a literal one
                    buf.append("`")
                    self.pos += 2
                    continue
                self.pos += 1
                break
            if c == "$" and src.startswith("${", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                iline, icol = self.line, self.pos - self.line_start + 1
                sub = Lexer(src, self.source_name, line=self.line,
                            col=self.pos + 2 - self.line_start + 1, start=self.pos + 2,
                            stop_at_brace=True)
                tokens = sub.tokenize()
                self.pos = sub.pos
                self.line = sub.line
                self.line_start = sub.line_start
                parts.append(InterpPart(tokens, iline, icol))
                continue
            if c == "\n":
                buf.append(c)
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
                continue
            j = self.pos
            while j < n and src[j] not in "`$\n":
                j += 1
            if j == self.pos:  # a lone '$'
                j += 1
            buf.append(src[self.pos:j])
            self.pos = j
        if buf or not parts:
            parts.append("".join(buf))
        if all(isinstance(p, str) for p in parts):
            return Token("str", "".join(parts), line, col)
        return Token("interp", parts, line, col)


def tokenize(source: str, source_name: str | None = None) -> tuple[list[Token], list[str]]:
    """Tokens of `source` and its `//!` module doc lines."""
    lx = Lexer(source, source_name)
    return lx.tokenize(), lx.module_docs
