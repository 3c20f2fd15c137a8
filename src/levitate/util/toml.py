"""Writing TOML: strings and keys quoted one way, valid TOML 1.0 (tomllib reads the standard
library's side; there is no writer in it).

TOML 1.0 basic strings allow the escapes \\b \\t \\n \\f \\r \\" \\\\ and \\uXXXX only; control
characters (U+0000-U+001F, U+007F) must be escaped, everything else may stand as it is
(https://toml.io/en/v1.0.0#string).
"""

from __future__ import annotations

import re

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def quote(value: str) -> str:
    """`value` as a TOML basic string, quotes included."""
    out = ['"']
    for ch in value:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def key(name: str) -> str:
    """`name` as a TOML key: bare when it may be, quoted otherwise."""
    return name if _BARE_KEY.fullmatch(name) else quote(name)
