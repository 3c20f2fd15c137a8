"""The official recipes (recipes/ at the repository root) load and validate without running, and
their Rocky pin is the profile's."""

import tomllib
from pathlib import Path

from levitate.recipe.helpers.rpm import load_config
from levitate.recipe.recipe import validate
from levitate.recipe.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def test_official_recipes_validate():
    recipes = Registry([ROOT / "recipes"]).all()
    assert {"hello", "tree", "jq", "tmux"} <= set(recipes)
    for info in recipes.values():
        validate(info)
        assert not info.installed, f"{info.path} is shipped installed"
        assert info.description


def test_rocky_pin_matches_the_profile(tmp_path):
    cfg = load_config(ROOT / "recipes", tmp_path)
    profile = tomllib.loads((ROOT / "profiles/levitate/profile.toml").read_text())
    assert cfg.fingerprint == profile["key"]["fingerprint"].replace(" ", "").upper()
    assert cfg.mirror == profile["source"]["mirror_url"]
