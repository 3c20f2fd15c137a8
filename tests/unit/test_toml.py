"""util/toml.py: the one TOML string/key quoting, used by both lock writers (leviso.lock, recipe.lock)."""

from __future__ import annotations

import tomllib

import pytest

from levitate.recipe.lock import format_lock as format_recipe_lock
from levitate.recipe.lock import read_lock as read_recipe_lock
from levitate.recipe.lock import write_lock as write_recipe_lock
from levitate.recipe.recipe import RecipeInfo
from levitate.repo.lock import LockedPackage, read_lock, write_lock
from levitate.util.toml import key, quote
from tests.cheat_aware import cheat_aware

HOSTILE = [
    'quote " and \\ backslash',
    "".join(chr(c) for c in range(0x20)) + "\x7f",      # every C0 control character and DEL
    "tab\tnew\nline\rcr\bbs\fff",
    "non-ASCII: é ü ß 漢字 \u2028 🐍",
    "\\x41 \\u0041 looks like an escape",
    "'single' and ''' and \"\"\"",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_and_key_round_trip(value):
    assert tomllib.loads(f"v = {quote(value)}")["v"] == value
    assert tomllib.loads(f"[t.{key(value)}]\nx = 1")["t"] == {value: {"x": 1}}
    assert key("plain-name_1") == "plain-name_1"


@cheat_aware(protects="recipe.lock is valid TOML whatever a recipe's name and version contain",
             cheats=["escaping with the Rhai lexer's \\xHH (not TOML)", "testing printable ASCII only"],
             consequence="`recipe lock update` writes a lock that every later `recipe install --locked` "
                         "refuses as invalid TOML")
@pytest.mark.parametrize("value", HOSTILE)
def test_recipe_lock_round_trips_hostile_strings(tmp_path, value):
    recipe = tmp_path / "x.rhai"
    recipe.write_text('let name = "x";\n')
    info = RecipeInfo(path=recipe, name=value, version=value)
    lock = tmp_path / "recipe.lock"
    write_recipe_lock(lock, [info])
    assert read_recipe_lock(lock) == {value: {"version": value, "recipe_sha256": info.digest()}}
    assert tomllib.loads(format_recipe_lock([info]))["packages"][value]["version"] == value


@cheat_aware(protects="leviso.lock is valid TOML whatever the repository metadata's strings contain",
             cheats=["testing printable ASCII only"],
             consequence="a lock written from hostile metadata cannot be read back by --locked")
@pytest.mark.parametrize("value", HOSTILE)
def test_repo_lock_round_trips_hostile_strings(tmp_path, value):
    entry = LockedPackage(name=value, epoch=0, version=value, release=value, arch=value, nevra=value,
                          repo=value, size=1, checksum=("sha256", "ab" * 32), location=value)
    path = write_lock(tmp_path / "leviso.lock", [entry])
    assert read_lock(path) == [entry]
