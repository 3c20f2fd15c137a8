"""Rhai's standard functions and methods, with Rhai's semantics, one module per receiver type.

`registry` holds the table (how entries are registered and called); importing the modules
below fills it: `core` (printing, types, function pointers), `numbers`, `strings` (and
characters), `arrays`, `maps`, `ranges`, and `containers` for the methods that strings, arrays
and maps share. The runtime and the engine look entries up in `TABLE` and `GETTERS`.
"""

from . import arrays, containers, core, maps, numbers, ranges, strings  # noqa: F401
from .registry import GETTERS, NON_PURE, TABLE, NoGetter

__all__ = ["GETTERS", "NON_PURE", "TABLE", "NoGetter"]
