"""recipe's settings, resolved once per command from the command line, the environment and the
defaults (docs/recipe.md, "Settings", lists them), as leviso's profile becomes one BuildContext.

Only this module reads the environment for settings. The environment a recipe's `run()` and
`env()` see is the user's, passed through on purpose (helpers/context.py, helpers/env.py).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..util import download as dl
from ..util.errors import LevitateError
from ..util.paths import RECIPES_SYSTEM_DIR

if TYPE_CHECKING:
    from .helpers.rpm import RockyConfig

CONFIG_NAME = "recipe.toml"        # in the first recipes directory, next to recipe.lock
DEFAULT_PREFIX = Path("/usr/local")
GITHUB_API = "https://api.github.com"
DOWNLOAD_RETRIES = 3
ROCKY_ENV = {"mirror": "RECIPE_ROCKY_MIRROR", "key": "RECIPE_ROCKY_KEY",
             "fingerprint": "RECIPE_ROCKY_FINGERPRINT"}


def search_path(recipes: str | os.PathLike | None, environ: Mapping[str, str]) -> list[Path]:
    """First match wins: --recipes, $RECIPE_PATH (colon-separated), the user's
    $XDG_DATA_HOME/recipe/recipes, the system's; only directories that exist, each once."""
    dirs: list[Path] = []
    if recipes:
        if not Path(recipes).is_dir():
            raise LevitateError(f"recipes directory {recipes} does not exist",
                                "check the path given with --recipes")
        dirs.append(Path(recipes))
    dirs += [Path(p) for p in environ.get("RECIPE_PATH", "").split(":") if p]
    data = environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    dirs += [Path(data) / "recipe" / "recipes", RECIPES_SYSTEM_DIR]
    out: list[Path] = []
    for d in dirs:
        d = Path(os.path.abspath(d))
        if d not in out and d.is_dir():
            out.append(d)
    return out


def _number(environ: Mapping[str, str], name: str, default, kind):
    value = environ.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise LevitateError(f"${name}={value!r} is not a number",
                            f"set it to a number or unset it (default {default})") from None


@dataclass(frozen=True)
class Config:
    """Everything a recipe command is configured by (see `load` for where each comes from)."""

    recipe_dirs: list[Path]                  # the search path, first match wins
    prefix: Path                             # where packages go
    cache: Path                              # partial downloads, Rocky repodata and packages
    build_root: Path                         # BUILD_DIRs and staging roots
    github_api: str
    download_retries: int
    download_speed: tuple[int, float]        # bytes/s, over seconds (curl's --speed-limit/-time)
    rocky_env: dict[str, str]                # the [rocky] keys RECIPE_ROCKY_* set

    @classmethod
    def load(cls, recipes: str | os.PathLike | None = None, prefix: str | os.PathLike | None = None,
             build_dir: str | os.PathLike | None = None,
             environ: Mapping[str, str] | None = None) -> "Config":
        """The settings of one command: options given (None: not given), then the environment."""
        env = os.environ if environ is None else environ
        cache = Path(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "recipe"
        return cls(
            recipe_dirs=search_path(recipes, env),
            prefix=Path(prefix) if prefix else DEFAULT_PREFIX,
            cache=cache,
            build_root=Path(build_dir) if build_dir else cache / "build",
            github_api=env.get("RECIPE_GITHUB_API", GITHUB_API),
            download_retries=_number(env, "RECIPE_DOWNLOAD_RETRIES", DOWNLOAD_RETRIES, int),
            download_speed=(_number(env, "RECIPE_DOWNLOAD_SPEED_LIMIT", dl.SPEED_LIMIT, int),
                            _number(env, "RECIPE_DOWNLOAD_SPEED_TIME", dl.SPEED_TIME, float)),
            rocky_env={k: env[v] for k, v in ROCKY_ENV.items() if env.get(v)},
        )

    def rocky(self, recipes_dir: Path | None) -> "RockyConfig | None":
        """The [rocky] table of RECIPES_DIR/recipe.toml under the RECIPE_ROCKY_* variables, or
        None when no mirror is configured. Read when a recipe is run, so a broken file does not
        stop `recipe list`."""
        from .helpers.rpm import RockyConfig
        data: dict = {}
        path = recipes_dir / CONFIG_NAME if recipes_dir is not None else None
        if path is not None and path.is_file():
            try:
                data = tomllib.loads(path.read_text()).get("rocky", {})
            except (tomllib.TOMLDecodeError, OSError) as e:
                raise LevitateError(f"{path}: {e}", "fix the file") from None
        data = {**data, **self.rocky_env}
        mirror = data.get("mirror")
        if not mirror:
            return None
        key = data.get("key", "")
        if key and recipes_dir is not None and "://" not in key and not os.path.isabs(key):
            key = str(recipes_dir / key)
        fpr = data.get("fingerprint", "").replace(" ", "").upper()
        return RockyConfig(mirror, key, fpr, self.cache / "rpm", tuple(data.get("repos", RockyConfig.repos)),
                           data.get("arch", "x86_64"))
