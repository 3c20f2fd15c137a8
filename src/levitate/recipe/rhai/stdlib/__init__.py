"""Rhai's standard functions and methods (being split by receiver type)."""

from .strings import GETTERS, NON_PURE, TABLE, NoGetter

__all__ = ["GETTERS", "NON_PURE", "TABLE", "NoGetter"]
