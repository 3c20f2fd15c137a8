"""The engine's safety limits and the ones in force on this thread.

`Engine` puts its `Limits` in force while a script runs (`set_current`); the operators, the
standard library and value copying read them from here (`current`), so this module sits below
all of them and imports only the errors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import RhaiError


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits; 0 means unlimited (as in Rhai)."""
    max_operations: int = 0        # loop iterations and calls weighted by statement count
    max_call_levels: int = 64      # nested function calls
    max_expr_depth: int = 64       # nesting of expressions and blocks, checked when parsing
    max_string_size: int = 0       # characters
    max_array_size: int = 0        # elements
    max_map_size: int = 0          # properties
    max_modules: int = 0           # imports per run

    @classmethod
    def sandbox(cls) -> "Limits":
        """Reasonable limits for running recipes."""
        return cls(max_operations=50_000_000, max_call_levels=64, max_expr_depth=64,
                   max_string_size=16 * 1024 * 1024, max_array_size=1_000_000,
                   max_map_size=100_000, max_modules=64)


_UNLIMITED = Limits()
_THREAD = threading.local()


def current() -> Limits:
    """The limits of the engine running on this thread (none outside a run)."""
    return getattr(_THREAD, "limits", _UNLIMITED)


def set_current(new: Limits) -> Limits:
    """Put `new` in force on this thread; returns the previous limits to restore."""
    old = getattr(_THREAD, "limits", _UNLIMITED)
    _THREAD.limits = new
    return old


def too_large(what: str) -> RhaiError:
    """Rhai's ErrorDataTooLarge for a string, array or map over its limit."""
    return RhaiError("ErrorDataTooLarge", f"{what} too large", fields={"type": what},
                     hint="the engine's data size limits stop runaway scripts")


__all__ = ["Limits", "current", "set_current", "too_large"]
