"""This project's own commands in the image: recstrap, recfstab, recchroot, recboot, recipe,
rhai-run, the official recipes in /usr/share/recipe/recipes (recipe's system directory) and the
installation guide in /usr/share/doc/levitate/.

The image's python3 runs them, not the build host's: its version can differ (Rocky 10 has 3.12)
and it may have no pip. So the package and its dependencies are copied into
/usr/lib/levitate/python as files: the project's sources, pure-Python dependencies as installed
on the build host, and compiled ones (zstandard) from wheels for the image's Python and ABI
(`pip download`, cached) unless the host's Python is the same version. Thin scripts in /usr/bin
run `python3 -I` on that directory, and the tree's own python3 compiles the bytecode (the image is
read-only, so it could not write it later).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import logging
import re
import shutil
import sys
import zipfile
from pathlib import Path

from ..util.errors import LevitateError
from ..util.paths import RECIPES_SYSTEM_DIR as RECIPES
from ..util.run import run
from .chroot import in_chroot

log = logging.getLogger("levitate")

SITE = "/usr/lib/levitate/python"
PROJECT = "levitate"
COMMANDS = {                        # command -> module with main()
    "recstrap": "levitate.install.recstrap",
    "recfstab": "levitate.install.recfstab",
    "recchroot": "levitate.install.recchroot",
    "recboot": "levitate.install.recboot",
    "recipe": "levitate.recipe.cli",
    "rhai-run": "levitate.recipe.rhai.cli",
}
# kernel-install(8) runs every executable *.install in /usr/lib/kernel/install.d in the lexical
# order of their names; 90-: after 50-depmod.install, whose modules.dep the initramfs is built from.
PLUGINS = {"/usr/lib/kernel/install.d/90-levitateos.install": "levitate.install.kernelinstall"}
DOCS = "/usr/share/doc/levitate"
GUIDES = ("install.md", "install-tools.md", "recipe.md")       # from the repository's docs/
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

SCRIPT = """\
#!/usr/bin/python3 -I
# {command}: part of the LevitateOS tooling, installed by leviso into {site}.
import sys
sys.path.insert(0, "{site}")
from {module} import main
sys.exit(main())
"""


def image_python(root: Path) -> str:
    """The tree's python3 version as "3.11" (from /usr/bin/python3.X next to /usr/bin/python3)."""
    versions = sorted((p.name[len("python"):] for p in (root / "usr/bin").glob("python3.*")
                       if re.fullmatch(r"python3\.\d+", p.name)), key=lambda v: int(v.split(".")[1]))
    if not versions or not (root / "usr/bin/python3").exists():
        raise LevitateError("the tree has no python3, which runs recstrap, recfstab, recchroot and recipe",
                            "add python3 to packages.txt")
    return versions[-1]


def dependencies(name: str = PROJECT) -> list[metadata.Distribution]:
    """The installed distributions `name` needs at run time (extras left out), recursively."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [name]
    while pending:
        for requirement in metadata.requires(pending.pop()) or []:
            if "extra ==" in requirement:
                continue
            dep = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            key = dep.lower().replace("_", "-")
            if key not in seen:
                seen[key] = metadata.distribution(dep)
                pending.append(dep)
    return [seen[k] for k in sorted(seen)]


def _is_pure(dist: metadata.Distribution) -> bool:
    return "Root-Is-Purelib: true" in (dist.read_text("WHEEL") or "")


def _copy_installed(dist: metadata.Distribution, site: Path) -> None:
    """The files a distribution installed into site-packages (its code and metadata), no bytecode."""
    for file in dist.files or []:
        parts = file.parts
        if parts[0] == ".." or "__pycache__" in parts or file.suffix == ".pyc":
            continue
        source = Path(dist.locate_file(file))
        dest = site / file
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)


def _wheel_for(dist: metadata.Distribution, version: str, cache: Path) -> Path:
    """A wheel of `dist` (same version as on the build host) for the image's CPython `version`."""
    tag = "cp" + version.replace(".", "")
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                "--python-version", version, "--implementation", "cp", "--abi", tag, "-d", cache]
        for platform in WHEEL_PLATFORMS:
            argv += ["--platform", platform]
        run([*argv, f"{dist.metadata['Name']}=={dist.version}"],
            what=f"pip download {dist.metadata['Name']} {dist.version} for Python {version}",
            hint="the build host needs PyPI (or put the wheel into the cache directory named above)")
        found = sorted(cache.glob(pattern))
    if not found:
        raise LevitateError(f"no wheel of {dist.metadata['Name']} {dist.version} for CPython {version} in {cache}")
    return found[0]


def _unpack_wheel(wheel: Path, site: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = Path(info.filename)
            if info.is_dir() or name.is_absolute() or ".." in name.parts or name.parts[0].endswith(".data"):
                continue
            dest = site / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(archive.read(info))


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]                # src/levitate


def _recipes_dir() -> Path:
    return _package_dir().parents[1] / "recipes"              # the repository's official recipes


def _docs_dir() -> Path:
    return _package_dir().parents[1] / "docs"


def tooling_inputs() -> str:
    """What the installed tooling depends on: the package's sources, its dependencies' versions
    and the build host's Python (which decides between copying and downloading compiled ones), and
    the recipes and guides it ships."""
    from .stamp import tree_digest
    deps = [f"{d.metadata['Name']}=={d.version}" for d in dependencies()]
    guides = [hashlib.sha256(p.read_bytes()).hexdigest() for p in map(_docs_dir().joinpath, GUIDES) if p.is_file()]
    return (f"{tree_digest(_package_dir(), ('__pycache__',))} {tree_digest(_recipes_dir())} {' '.join(guides)} "
            f"{' '.join(deps)} {sys.version_info[:2]}")


def install_tooling(root: Path, wheel_cache: Path) -> dict[str, str]:
    """Install the package, its dependencies and the commands into `root`. Returns name -> version
    (and where compiled ones came from) for the manifest."""
    version = image_python(root)
    host_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = root / SITE.lstrip("/")
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    shutil.copytree(_package_dir(), site / PROJECT, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    origins = {PROJECT: metadata.version(PROJECT)}
    for dist in dependencies():
        name = dist.metadata["Name"]
        if _is_pure(dist) or version == host_version:
            _copy_installed(dist, site)
            origins[name] = dist.version
        else:
            wheel = _wheel_for(dist, version, wheel_cache)
            _unpack_wheel(wheel, site)
            origins[name] = f"{dist.version} ({wheel.name})"
    scripts = {f"/usr/bin/{command}": module for command, module in COMMANDS.items()} | PLUGINS
    for path, module in scripts.items():
        if not (site / (module.replace(".", "/") + ".py")).is_file():
            continue                                          # a command this version does not have
        script = root / path.lstrip("/")
        command = script.name
        script.parent.mkdir(parents=True, exist_ok=True)
        script.unlink(missing_ok=True)
        script.write_text(SCRIPT.format(command=command, site=SITE, module=module))
        script.chmod(0o755)
    recipes = root / RECIPES.relative_to("/")
    if recipes.exists():
        shutil.rmtree(recipes)
    if _recipes_dir().is_dir():
        shutil.copytree(_recipes_dir(), recipes)
    else:
        log.warning("    tooling: no official recipes at %s (not a source checkout); %s stays empty",
                    _recipes_dir(), RECIPES)
    docs = root / DOCS.lstrip("/")
    docs.mkdir(parents=True, exist_ok=True)
    for guide in GUIDES:
        if (_docs_dir() / guide).is_file():
            shutil.copyfile(_docs_dir() / guide, docs / guide)
    in_chroot(root, ["/usr/bin/python3", "-m", "compileall", "-q",
                     "--invalidation-mode", "unchecked-hash", SITE],
              what=f"compiling {SITE} with the image's Python {version}")
    log.info("    tooling: %s for Python %s in %s", ", ".join(f"{k} {v}" for k, v in origins.items()), version, SITE)
    return origins
