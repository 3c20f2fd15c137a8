"""recipe: the LevitateOS package manager; recipes are Rhai scripts run by `recipe.rhai`."""
