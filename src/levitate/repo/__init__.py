"""RPM repositories: repodata, dependency expressions, resolution and the lock file.

Shared by leviso and recipe.
"""
