"""Where recipes are found: the search path and the recipes in it.

The search path (config.search_path), first match wins: `--recipes DIR`, then `$RECIPE_PATH`,
then the user's `$XDG_DATA_HOME/recipe/recipes`, then the system's `/usr/share/recipe/recipes`
(util.paths.RECIPES_SYSTEM_DIR). A recipe is `NAME.rhai` or `NAME/NAME.rhai` in one of them; other
`.rhai` files (helper libraries such as `lib/autotools.rhai`) are not recipes. The first
directory holds `recipe.lock` and `recipe.toml`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..util.errors import LevitateError
from .recipe import RecipeError, RecipeInfo, read_info
from .rhai.errors import RhaiError

log = logging.getLogger("levitate")


def _candidates(d: Path):
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if e.name.endswith(".rhai") and e.is_file():
            yield Path(e.path)
        elif e.is_dir() and os.path.isfile(os.path.join(e.path, e.name + ".rhai")):
            yield Path(e.path) / f"{e.name}.rhai"


class Registry:
    """The recipes of a search path, read (not run) on first use."""

    def __init__(self, dirs: list[Path]):
        if not dirs:
            raise LevitateError("no recipes directory found",
                                "pass --recipes DIR or set RECIPE_PATH")
        self.dirs = dirs
        self._all: dict[str, RecipeInfo] | None = None
        self.broken: list[str] = []

    @property
    def main_dir(self) -> Path:
        return self.dirs[0]

    def all(self) -> dict[str, RecipeInfo]:
        if self._all is None:
            found: dict[str, RecipeInfo] = {}
            for d in self.dirs:
                for path in _candidates(d):
                    try:
                        info = read_info(path)
                    except (RecipeError, RhaiError) as e:
                        self.broken.append(e.headline() if isinstance(e, RhaiError) else e.message)
                        continue
                    found.setdefault(info.name, info)
            self._all = found
        return self._all

    def reload(self) -> dict[str, RecipeInfo]:
        self._all = None
        self.broken = []
        return self.all()

    def get(self, name: str) -> RecipeInfo:
        info = self.all().get(name)
        if info is None:
            for d in self.dirs:
                for path in (d / f"{name}.rhai", d / name / f"{name}.rhai"):
                    if path.is_file():
                        read_info(path)             # raise its own error (syntax, missing name)
            raise LevitateError(f"no recipe named '{name}'",
                                f"`recipe search {name}` lists similar names; recipes are looked "
                                f"for in {', '.join(map(str, self.dirs))}")
        return info
