"""recipe.lock: the versions of the recipes in a recipes directory, pinned (TOML).

    # recipe.lock: written by `recipe lock update`; `recipe install --locked` installs only these.
    [packages.ripgrep]
    version = "14.1.1"
    recipe_sha256 = "…"          # the recipe file when the lock was written (informational)

`install --locked` fails when a package involved (requested or pulled in) is missing from the
lock or its recipe's version differs from it; `lock verify` checks every entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..util.errors import LevitateError
from ..util.toml import key, quote
from .recipe import RecipeInfo
from .state import write_text_atomic

LOCK_NAME = "recipe.lock"


class LockError(LevitateError):
    """The lock file is missing, malformed or disagrees with the recipes."""

    exit_code = 9


def read_lock(path: Path) -> dict[str, dict]:
    if not path.is_file():
        raise LockError(f"{path} does not exist", "create it with `recipe lock update`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LockError(f"{path} is not valid TOML: {e}", "recreate it with `recipe lock update`") from None
    pkgs = data.get("packages", {})
    if not isinstance(pkgs, dict) or not all(isinstance(v, dict) and "version" in v
                                             for v in pkgs.values()):
        raise LockError(f"{path}: every [packages.NAME] needs a version",
                        "recreate it with `recipe lock update`")
    return pkgs


def format_lock(recipes: Iterable[RecipeInfo]) -> str:
    lines = ["# recipe.lock: written by `recipe lock update`; `recipe install --locked` installs",
             "# exactly these versions.", ""]
    for r in sorted(recipes, key=lambda r: r.name):
        lines += [f"[packages.{key(r.name)}]", f"version = {quote(r.version)}",
                  f"recipe_sha256 = {quote(r.digest())}", ""]
    return "\n".join(lines)


def write_lock(path: Path, recipes: Iterable[RecipeInfo]) -> None:
    text = format_lock(recipes)
    if not path.exists():
        path.write_text("", encoding="utf-8")
    write_text_atomic(path, text)


def differences(lock: Mapping[str, dict], recipes: Mapping[str, RecipeInfo],
                names: Iterable[str] | None = None) -> list[str]:
    """One line per package whose recipe disagrees with the lock (all, or only `names`)."""
    out = []
    for name in sorted(lock if names is None else set(names)):
        r = recipes.get(name)
        entry = lock.get(name)
        if entry is None:
            out.append(f"{name}: not in the lock (recipe version {r.version if r else '?'})")
        elif r is None:
            out.append(f"{name}: locked at {entry['version']} but there is no such recipe")
        elif str(entry["version"]) != r.version:
            out.append(f"{name}: locked at {entry['version']}, recipe has {r.version}")
    return out
