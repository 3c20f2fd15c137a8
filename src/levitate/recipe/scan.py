"""A fast reader for the declarations at the top of a recipe (`let name = "x";`,
`let installed_files = [...]`): literals only, in one regex pass, so `recipe list` over
thousands of recipes stays well under a second. It answers None whenever the text is anything
but plain literal declarations (block comments, back-tick strings, expressions, unknown
escapes); the caller then uses the real Rhai parser, so a recipe is never misread."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""
    (?P<ws>(?:\s+|//[^\n]*)+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<num>-?\d[\d_]*(?:\.\d[\d_]*)?(?![\w.]))
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<p>\#\{|\(\)|[\[\]{},:;=])
""", re.X | re.S)
_ESCAPE = re.compile(r"\\(?:([tnr\"'\\0])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.S)
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\\": "\\", "0": "\0"}


class _Unsure(Exception):
    pass


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def sub(m):
        if m.group(5) is not None:
            raise _Unsure
        if m.group(1):
            return _SIMPLE[m.group(1)]
        return chr(int(m.group(2) or m.group(3) or m.group(4), 16))
    return _ESCAPE.sub(sub, body)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos, end = 0, len(text)
    match = _TOKEN.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            raise _Unsure
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Reader:
    def __init__(self, toks):
        self.toks = toks
        self.i = 0

    def next(self):
        if self.i >= len(self.toks):
            raise _Unsure
        t = self.toks[self.i]
        self.i += 1
        return t

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def value(self):
        kind, text = self.next()
        if kind == "str":
            return _unescape(text[1:-1])
        if kind == "num":
            text = text.replace("_", "")
            return float(text) if "." in text else int(text)
        if kind == "id" and text in ("true", "false"):
            return text == "true"
        if text == "()":
            return None
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] == ",":
                    self.i += 1
                elif self.peek()[1] != "]":
                    raise _Unsure
            self.i += 1
            return items
        if text == "#{":
            m = {}
            while self.peek()[1] != "}":
                kk, key = self.next()
                if kk not in ("id", "str") or self.next()[1] != ":":
                    raise _Unsure
                m[key if kk == "id" else _unescape(key[1:-1])] = self.value()
                if self.peek()[1] == ",":
                    self.i += 1
                elif self.peek()[1] != "}":
                    raise _Unsure
            self.i += 1
            return m
        raise _Unsure


def declarations(text: str) -> dict | None:
    """name -> value of the `let`/`const` statements in `text` (the last one of each name), or
    None if `text` holds anything else."""
    try:
        r = _Reader(_tokens(text))
        values = {}
        while r.i < len(r.toks):
            kind, word = r.next()
            if kind != "id" or word not in ("let", "const"):
                raise _Unsure
            kind, name = r.next()
            if kind != "id":
                raise _Unsure
            sep = r.next()[1]
            if sep == ";":
                values[name] = None
                continue
            if sep != "=":
                raise _Unsure
            values[name] = r.value()
            if r.next()[1] != ";":
                raise _Unsure
        return values
    except (_Unsure, ValueError):
        return None
