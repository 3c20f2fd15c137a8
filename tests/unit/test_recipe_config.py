"""recipe's settings come from one place (recipe/config.py): options, then the environment, then
the defaults; `[rocky]` of recipe.toml under the RECIPE_ROCKY_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from levitate.recipe.config import Config
from levitate.util import download as dl
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

ROCKY = '[rocky]\nmirror = "https://mirror.example/rocky/10"\nkey = "RPM-GPG-KEY"\nfingerprint = "ab cd"\n'


def test_defaults_and_the_environment(tmp_path):
    home = {"HOME": str(tmp_path)}
    cfg = Config.load(environ=home)
    assert (cfg.prefix, cfg.github_api, cfg.download_retries) == (Path("/usr/local"), "https://api.github.com", 3)
    assert cfg.download_speed == (dl.SPEED_LIMIT, dl.SPEED_TIME)
    mine = tmp_path / "mine"
    mine.mkdir()
    cfg = Config.load(build_dir=tmp_path / "b", environ={
        "XDG_CACHE_HOME": str(tmp_path / "c"), "RECIPE_PATH": f"{mine}:{tmp_path / 'absent'}",
        "RECIPE_GITHUB_API": "http://127.0.0.1:1", "RECIPE_DOWNLOAD_RETRIES": "0",
        "RECIPE_DOWNLOAD_SPEED_LIMIT": "10", "RECIPE_DOWNLOAD_SPEED_TIME": "0.5"})
    assert cfg.recipe_dirs[0] == mine and tmp_path / "absent" not in cfg.recipe_dirs
    assert (cfg.cache, cfg.build_root) == (tmp_path / "c/recipe", tmp_path / "b")
    assert (cfg.github_api, cfg.download_retries, cfg.download_speed) == ("http://127.0.0.1:1", 0, (10, 0.5))


def test_a_setting_that_is_not_a_number_is_one_line():
    with pytest.raises(LevitateError, match=r"\$RECIPE_DOWNLOAD_RETRIES='many' is not a number") as err:
        Config.load(environ={"RECIPE_DOWNLOAD_RETRIES": "many"})
    assert "default 3" in err.value.hint


@cheat_aware(protects="RECIPE_ROCKY_* override [rocky] of recipe.toml; a relative key is in the recipes directory",
             cheats=["read recipe.toml only", "resolve the key against the working directory"],
             consequence="a user's mirror or pin is ignored, or the key is looked for in the wrong place")
def test_rocky_from_recipe_toml_under_the_environment(tmp_path):
    (tmp_path / "recipe.toml").write_text(ROCKY)
    cfg = Config.load(environ={}).rocky(tmp_path)
    assert (cfg.mirror, cfg.key, cfg.fingerprint) == ("https://mirror.example/rocky/10",
                                                      str(tmp_path / "RPM-GPG-KEY"), "ABCD")
    assert cfg.cache == Config.load(environ={}).cache / "rpm"
    env = {"RECIPE_ROCKY_MIRROR": "dir:/srv/rocky", "RECIPE_ROCKY_FINGERPRINT": "ef"}
    cfg = Config.load(environ=env).rocky(tmp_path)
    assert (cfg.mirror, cfg.fingerprint, cfg.repos) == ("dir:/srv/rocky", "EF", ("BaseOS", "AppStream"))
    assert Config.load(environ={}).rocky(tmp_path / "nothing-here") is None
    (tmp_path / "recipe.toml").write_text("[rocky\n")
    with pytest.raises(LevitateError, match="recipe.toml"):
        Config.load(environ={}).rocky(tmp_path)
