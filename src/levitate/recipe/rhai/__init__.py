"""A Rhai script engine in Python: lexer, parser, compiler to Python code objects, runtime.

Runs the recipes of LevitateOS (Rhai scripts written for the original Rust engine) unchanged.
See docs/rhai.md for the supported language, the deviations from Rhai and the host API.

    from levitate.recipe.rhai import Engine, Limits, RhaiError
"""

from .engine import AST, Engine, FnInfo, Limits
from .errors import RhaiError, RhaiSyntaxError
from .runtime import NativeContext, Scope
from .values import Char, FnPtr, RhaiRange

__all__ = ["AST", "Engine", "FnInfo", "Limits", "RhaiError", "RhaiSyntaxError", "Scope",
           "NativeContext", "Char", "FnPtr", "RhaiRange"]
