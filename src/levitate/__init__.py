"""LevitateOS tooling: leviso, the install tools and recipe."""

__version__ = "0.1.0"
