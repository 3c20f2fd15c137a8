"""Tests of the Rhai engine (levitate.recipe.rhai), one module per language area."""
