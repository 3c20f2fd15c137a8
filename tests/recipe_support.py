"""What the `recipe` tests share: source tarballs and recipes made on the fly, a recipes
directory served next to them, and the real command line run as a user would."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "integration" / "recipes"


def tarball(dest: Path, top: str, files: dict[str, tuple[str, int]]) -> str:
    """Write DEST (a .tar.gz whose entries are under `top/`); returns its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for rel, (content, mode) in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def recipe(name: str, version: str, *, sha: str | None = None, deps: list[str] | None = None,
           install: str = 'install_bin("bin/*");', extra: str = "", build: str | None = None) -> str:
    """A release-tarball recipe downloading from the test server ($SRV)."""
    deps_text = "" if deps is None else "let deps = [\n" + "".join(
        f'    "{d}",   // needed\n' for d in deps) + "];\n"
    verify = f'    verify_sha256("{sha}");\n' if sha else ""
    build = build if build is not None else f'    extract("tar.gz");\n    cd(`{name}-${{version}}`);\n'
    return (f"// {name}: a test recipe\n"
            f'let name = "{name}";\n'
            f'let version = "{version}";   // upstream version\n'
            f'let description = "test package {name}";\n'
            f"{deps_text}"
            f"let installed = false;\n\n"
            f"fn acquire() {{\n"
            f'    download(`${{env("SRV")}}/{name}-${{version}}.tar.gz`);\n{verify}}}\n\n'
            f"fn build() {{\n{build}}}\n\n"
            f"fn install() {{\n    {install}\n}}\n{extra}")


@dataclass
class World:
    """A recipes directory, a served directory of sources, a prefix and a build directory."""

    root: Path
    server: object

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def srv(self) -> Path:
        return self.root / "srv"

    @property
    def prefix(self) -> Path:
        return self.root / "prefix"

    def add(self, name: str, version: str, files: dict[str, tuple[str, int]] | None = None,
            **kw) -> Path:
        """Serve NAME-VERSION.tar.gz and write recipes/NAME.rhai for it (checksum pinned)."""
        files = files or {f"bin/{name}": (f"#!/bin/sh\necho {name} {version}\n", 0o755)}
        sha = tarball(self.srv / f"{name}-{version}.tar.gz", f"{name}-{version}", files)
        path = self.recipes / f"{name}.rhai"
        path.write_text(recipe(name, version, sha=kw.pop("sha", sha), **kw))
        return path

    def env(self, **extra) -> dict:
        env = dict(os.environ, SRV=self.server.base_url, RECIPE_DOWNLOAD_RETRIES="0",
                   XDG_CACHE_HOME=str(self.root / "cache"), XDG_DATA_HOME=str(self.root / "data"))
        env.pop("RECIPE_PATH", None)
        env.update(extra)
        return env

    def cmd(self, *args) -> list[str]:
        return [sys.executable, "-m", "levitate.recipe.cli", "--recipes", str(self.recipes),
                "--prefix", str(self.prefix), "--build-dir", str(self.root / "build"), *map(str, args)]

    def run(self, *args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=timeout,
                              env=env or self.env(), stdin=subprocess.DEVNULL)

    def ok(self, *args, **kw) -> subprocess.CompletedProcess:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, f"recipe {' '.join(map(str, args))} failed:\n{proc.stderr}"
        return proc

    def files(self) -> set[str]:
        """Files and symlinks in the prefix (relative), the lock's own directory left out."""
        out = set()
        for dirpath, _dirs, names in os.walk(self.prefix):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), self.prefix)
                if not rel.startswith("var/lib/recipe"):
                    out.add(rel)
        return out

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the prefix and the recipes directory, with content."""
        out = {}
        for base in (self.prefix, self.recipes):
            for dirpath, _dirs, names in os.walk(base):
                for n in names:
                    p = Path(dirpath) / n
                    if "var/lib/recipe" not in str(p):
                        out[str(p)] = p.read_bytes() if not p.is_symlink() else os.readlink(p).encode()
        return out
