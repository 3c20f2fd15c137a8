"""A Rhai script engine in Python: lexer, parser, compiler to Python code objects, runtime.

Runs the recipes of LevitateOS (Rhai scripts written for the original Rust engine) unchanged.
See docs/rhai.md for the supported language, the deviations from Rhai and the host API.

    from levitate.recipe.rhai import Engine, Limits, RhaiError
"""

from .errors import RhaiError, RhaiSyntaxError

# The engine (compiler, runtime) loads on first use: `recipe list` only needs the parser.
_LAZY = {"AST": "engine", "Engine": "engine", "FnInfo": "engine", "Limits": "limits",
         "NativeContext": "runtime", "Scope": "runtime", "Char": "values", "FnPtr": "values",
         "RhaiRange": "values"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AST", "Engine", "FnInfo", "Limits", "RhaiError", "RhaiSyntaxError", "Scope",
           "NativeContext", "Char", "FnPtr", "RhaiRange"]
