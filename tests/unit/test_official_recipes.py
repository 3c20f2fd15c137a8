"""The official recipes (recipes/ at the repository root) load and validate without running, and
their Rocky pin is the profile's; the upstream-source ones pin the checksum their header names,
acquire() fetches exactly the pinned URL, and a file that does not match stops the install."""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import urllib.parse
from pathlib import Path

import pytest

from levitate.recipe.config import Config
from levitate.recipe.recipe import validate
from levitate.recipe.registry import Registry
from levitate.util.download import download
from tests.httpserver import http_serve  # noqa: F401 - fixture
from tests.support import sample_dir

ROOT = Path(__file__).resolve().parents[2]


def test_official_recipes_validate():
    recipes = Registry([ROOT / "recipes"]).all()
    assert {"hello", "tree", "jq", "tmux"} <= set(recipes)
    for info in recipes.values():
        validate(info)
        assert not info.installed, f"{info.path} is shipped installed"
        assert info.description


def test_rocky_pin_matches_the_profile(tmp_path):
    cfg = Config.load(environ={}).rocky(ROOT / "recipes")
    profile = tomllib.loads((ROOT / "profiles/levitate/profile.toml").read_text())
    assert cfg.fingerprint == profile["key"]["fingerprint"].replace(" ", "").upper()
    assert cfg.mirror == profile["source"]["mirror_url"]


# --- upstream-source recipes: pinned checksums, acquire() against a loopback server -------------

UPSTREAM = ["lz4", "pv", "zstd", "llama.cpp"]      # recipes of upstream release files
# Where each recipe says its checksum comes from: a repository, path and 40-hex commit of public
# packaging, or Debian's .dsc (apt-verified).
_SOURCE = re.compile(r"^// Checksum source: +(.*?)(?=^// [A-Z]|\Z)", re.M | re.S)


def _header(name: str) -> dict:
    """What a recipe's header comment declares, and what its acquire() pins."""
    text = (ROOT / "recipes" / f"{name}.rhai").read_text()
    header = text.split("\nlet ", 1)[0]
    pins = re.findall(r"^// Pins: +(\S+)$", header, re.M)
    shas = re.findall(r"^// sha256: +(\S+)$", header, re.M)
    source = _SOURCE.search(header)
    verified = re.findall(r'verify_sha256\("([^"]*)"\)', text)
    assert len(pins) == 1 and len(shas) == 1 and source, f"{name}.rhai: header lacks Pins/sha256/Checksum source"
    return {"text": text, "url": pins[0], "sha": shas[0], "verified": verified,
            "source": " ".join(line.lstrip("/ ").strip() for line in source.group(1).splitlines())}


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ, RECIPE_DOWNLOAD_RETRIES="0", XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("RECIPE_PATH", None)
    env.update(extra)
    return env


def _recipe(tmp_path, recipes, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "levitate.recipe.cli", "--recipes", str(recipes),
           "--prefix", str(tmp_path / "prefix"), "--build-dir", str(tmp_path / "build"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env or _env(tmp_path), stdin=subprocess.DEVNULL)


def _served_copy(tmp_path, name: str, base_url: str, sha: str | None = None) -> tuple[str, str]:
    """recipes/NAME.rhai copied to tmp_path/recipes with the pinned URL's origin (scheme and host)
    replaced by the loopback server's, the path kept (and the checksum replaced when given).
    Returns (the URL path the recipe will ask for, the file's basename)."""
    h = _header(name)
    url = urllib.parse.urlsplit(h["url"])
    origin = f"{url.scheme}://{url.netloc}/"
    text = h["text"]
    assert text.count(origin) >= 2                  # the Pins comment and the download() call
    text = text.replace(origin, base_url.rstrip("/") + "/")
    if sha is not None:
        text = text.replace(h["sha"], sha)
    (tmp_path / "recipes").mkdir(exist_ok=True)
    (tmp_path / "recipes" / f"{name}.rhai").write_text(text)
    return url.path, os.path.basename(url.path)


def test_upstream_recipes_pin_their_checksum_and_say_where_from():
    for name in UPSTREAM:
        h = _header(name)
        assert re.fullmatch(r"[0-9a-f]{64}", h["sha"]), name
        assert h["verified"] == [h["sha"]], f"{name}: verify_sha256 is not the sha256 of the header"
        assert h["url"].startswith("https://"), name
        # a public repository, path and full commit, or Debian's signed source package
        assert re.search(r"\S+/\S+, \S+ at commit [0-9a-f]{40}", h["source"]) or \
            re.search(r"Debian \w+, \S+\.dsc", h["source"]), f"{name}: {h['source']}"
    # the ones whose checksum has a single source say so
    for name in ("zstd", "llama.cpp"):
        assert re.search(r"not confirmed", _header(name)["text"], re.I), name


def test_upstream_recipes_acquire_the_pinned_url(tmp_path):
    """acquire() of the shipped recipes, unchanged, as a dry run (nothing is fetched): it downloads
    exactly the URL of its header and verifies the header's sha256."""
    plan = _recipe(tmp_path, ROOT / "recipes", "--json", "install", "--dry-run", *UPSTREAM)
    assert plan.returncode == 0, plan.stderr
    by_name = {step["name"]: step for step in json.loads(plan.stdout)}
    assert set(by_name) == set(UPSTREAM)
    for name in UPSTREAM:
        h = _header(name)
        assert by_name[name]["note"] is None
        assert [(f["kind"], f["url"], f["checksum"]) for f in by_name[name]["fetch"]] == \
            [("download", h["url"], {"sha256": h["sha"]})], name
    assert not (tmp_path / "prefix").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", UPSTREAM)
def test_upstream_recipe_refuses_a_file_that_does_not_match(tmp_path, http_serve, name):  # noqa: F811
    """Served from a loopback server at the pinned path, a file other than the pinned one stops
    the install with the checksum error (exit 3) before anything is built or installed."""
    srv = tmp_path / "srv"
    server = http_serve(srv)
    path, base = _served_copy(tmp_path, name, server.base_url)
    bogus = srv / path.lstrip("/")
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"not the release tarball\n")
    recipe_before = (tmp_path / "recipes" / f"{name}.rhai").read_text()
    proc = _recipe(tmp_path, tmp_path / "recipes", "install", name)
    assert proc.returncode == 3, proc.stderr
    assert f"sha256 mismatch for {base}" in proc.stderr
    assert [r.path for r in server.log()] == [path]          # the pinned path, nothing else
    assert not (tmp_path / "prefix").exists() or not any(
        p for p in (tmp_path / "prefix").rglob("*") if "var/lib/recipe" not in str(p) and p.is_file())
    assert (tmp_path / "recipes" / f"{name}.rhai").read_text() == recipe_before


def test_llama_cpp_build_names_its_missing_build_tools(tmp_path, http_serve):  # noqa: F811
    """Without cmake (or a compiler) on PATH, build() stops with one line naming what to install."""
    srv = tmp_path / "srv"
    server = http_serve(srv)
    h = _header("llama.cpp")
    path = urllib.parse.urlsplit(h["url"]).path
    tgz = srv / path.lstrip("/")
    tgz.parent.mkdir(parents=True)
    with tarfile.open(tgz, "w:gz") as tar:
        data = b"cmake_minimum_required(VERSION 3.14)\n"
        info = tarfile.TarInfo("llama.cpp-b7710/CMakeLists.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _served_copy(tmp_path, "llama.cpp", server.base_url, sha=hashlib.sha256(tgz.read_bytes()).hexdigest())
    only_sh = tmp_path / "path"                 # a PATH with a shell and nothing else
    only_sh.mkdir()
    (only_sh / "sh").symlink_to(shutil.which("sh"))
    proc = _recipe(tmp_path, tmp_path / "recipes", "install", "llama.cpp", env=_env(tmp_path, PATH=str(only_sh)))
    assert proc.returncode != 0
    assert "building llama.cpp needs cmake, which is not installed" in proc.stderr
    assert "dnf install cmake gcc-c++ make" in proc.stderr
    assert not (tmp_path / "prefix" / "bin").exists()


# Debian's pool copies of the upstream release files: the same bytes (the recipes' sha256 says so),
# fetched from Debian's archive, which the tests reach anyway for the sample repository. zstd's
# tarball has no such copy (Debian repacks zstd), so its recipe's build is not tested here.
DEBIAN_POOL = "http://deb.debian.org/debian/pool/main"
REAL_FILES = {"lz4": f"{DEBIAN_POOL}/l/lz4/lz4_1.9.4.orig.tar.gz",
              "pv": f"{DEBIAN_POOL}/p/pv/pv_1.6.20.orig.tar.bz2"}


def _real_file(name: str, sha: str) -> Path:
    """The release file the recipe pins: from $LEVITATE_RECIPE_SOURCES (found by its sha256) if
    set, else downloaded once from Debian's pool into the sample repository's cache and verified."""
    if os.environ.get("LEVITATE_RECIPE_SOURCES"):
        found = [p for p in Path(os.environ["LEVITATE_RECIPE_SOURCES"]).iterdir()
                 if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == sha]
        assert found, f"no file with {name}'s pinned sha256 in $LEVITATE_RECIPE_SOURCES"
        return found[0]
    url = REAL_FILES[name]
    dest = sample_dir().parent / "recipe-sources" / url.rsplit("/", 1)[1]
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        download(url, dest, expected=("sha256", sha))
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("name, check", [("lz4", ["lz4", "--version"]), ("pv", ["pv", "--version"])])
def test_upstream_recipe_builds_the_real_file(tmp_path, http_serve, name, check):  # noqa: F811
    """With the real release file (Debian's identical copy, or one in $LEVITATE_RECIPE_SOURCES),
    the shipped recipe is installed for real: served at its pinned path, checksum verified, built,
    installed, the tool runs, and it is removed again."""
    h = _header(name)
    real = _real_file(name, h["sha"])
    srv = tmp_path / "srv"
    server = http_serve(srv)
    path, _base = _served_copy(tmp_path, name, server.base_url)
    (srv / path.lstrip("/")).parent.mkdir(parents=True)
    shutil.copyfile(real, srv / path.lstrip("/"))
    proc = _recipe(tmp_path, tmp_path / "recipes", "install", name, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([tmp_path / "prefix" / "bin" / check[0], *check[1:]], capture_output=True, text=True)
    assert out.returncode == 0 and h["text"].split('let version = "')[1].split('"')[0] in out.stdout + out.stderr
    assert _recipe(tmp_path, tmp_path / "recipes", "remove", name).returncode == 0
