"""Paths on a LevitateOS system that more than one program knows (here so none imports another)."""

from pathlib import Path

# recipe's system recipes directory, last on its search path; leviso puts the official recipes there
RECIPES_SYSTEM_DIR = Path("/usr/share/recipe/recipes")
