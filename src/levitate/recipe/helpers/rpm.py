"""Rocky packages by name: `rpm_install("tree")` resolves the package against the configured
Rocky repositories and installs it, with the part of its dependency closure that neither the
system's RPM database nor an installed recipe already provides, into PREFIX.

The chain of trust is leviso's, through the same functions (levitate.repo): the release key is
looked for where leviso looks (the cached key, the mirror's root, then the configured location)
and used only when its fingerprint equals the configured pin, repomd.xml must carry its valid
signature, repodata files match repomd.xml, each RPM matches primary's digest and its header
signature and payload digest are checked while it is extracted (the same `extract_rpm`). Paths
are mapped into the prefix: `/usr/X` -> `PREFIX/X`, anything else `/Y` -> `PREFIX/Y`; the
merged-/usr links at the top (`/bin -> usr/bin`) are skipped.

Configuration: `[rocky]` in `recipe.toml` in the first recipes directory (mirror, key,
fingerprint, repos, arch), or the environment: RECIPE_ROCKY_MIRROR, RECIPE_ROCKY_KEY,
RECIPE_ROCKY_FINGERPRINT (read by config.Config.rocky).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...repo.repositories import RepoSet, open_repositories
from ...repo.resolve import resolve
from ...repo.sources import MirrorSource, Source, open_source
from ...repo.trust import Trust, load_trust
from ...rpm.extract import extract_rpm
from ...util.errors import LevitateError
from ...util.run import run
from .context import Context, HelperError

DEFAULT_KEY_FILE = "RPM-GPG-KEY-Rocky-10"     # leviso's default [key] file too


@dataclass(frozen=True)
class RockyConfig:
    mirror: str                    # URL (or dir:PATH) holding REPO/ARCH/os/repodata
    key: str                       # where the release key is (path or URL)
    fingerprint: str               # its pinned fingerprint (40 hex digits)
    cache: Path
    repos: tuple[str, ...] = ("BaseOS", "AppStream")
    arch: str = "x86_64"


def _source(cfg: RockyConfig) -> Source:
    kind, location = ("dir", cfg.mirror[4:]) if cfg.mirror.startswith("dir:") else ("mirror", cfg.mirror)
    return open_source(kind, location, arch=cfg.arch, repos=cfg.repos, cache=cfg.cache)


def _trust(cfg: RockyConfig, source: Source) -> Trust:
    """The pinned release key, looked for as leviso does: CACHE/keys/NAME, NAME at the mirror's
    root, then `key` itself (NAME is the last component of `key`)."""
    if not cfg.fingerprint:
        raise LevitateError("the Rocky release key's fingerprint is not configured",
                            "set fingerprint (40 hex digits) under [rocky] in recipe.toml")
    name = posixpath.basename(cfg.key.rstrip("/"))
    if name in ("", ".", ".."):
        name = DEFAULT_KEY_FILE
    return load_trust(cfg.fingerprint, source, key_file=name, key_url=cfg.key, cache=cfg.cache / "keys",
                      setting="[rocky] fingerprint",
                      hint="the source may not be genuine; check [rocky] key and fingerprint in recipe.toml")


def _repositories(cfg: RockyConfig, source: Source, trust: Trust) -> RepoSet:
    return open_repositories(source, cfg.repos, trust, cfg.cache,
                             missing_hint="check [rocky] mirror and repos in recipe.toml")


def system_packages() -> set[str]:
    """Names in the system's RPM database (empty when there is no rpm tool or database)."""
    if shutil.which("rpm") is None:
        return set()
    proc = run(["rpm", "-qa", "--qf", "%{NAME}\\n"], check=False, capture=True)
    return set(proc.stdout.decode(errors="replace").split()) if proc.returncode == 0 else set()


def _map_into_prefix(ctx: Context, root: Path) -> None:
    """Move an extracted tree into the stage under PREFIX (see the module docstring)."""
    for top in sorted(os.listdir(root)):
        src = root / top
        if src.is_symlink():
            continue                                  # merged-/usr links: /bin -> usr/bin
        dest = ctx.staged(ctx.prefix) if top == "usr" else ctx.staged(ctx.prefix / top)
        _merge(src, dest)


def _merge(src: Path, dest: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        dest.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(src):
            _merge(src / name, dest / name)
        return
    if os.path.lexists(dest):
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)


def name_list(names) -> list[str]:
    return [str(n) for n in (names if isinstance(names, list) else [names])]


def _config(ctx: Context) -> RockyConfig:
    if ctx.rocky is None:
        raise HelperError("rpm_install: no Rocky repositories are configured",
                          "set [rocky] mirror, key and fingerprint in recipe.toml in the recipes "
                          "directory (or RECIPE_ROCKY_MIRROR)")
    return ctx.rocky


def plan(ctx: Context, names: list[str], source, trust: Trust) -> tuple[list, list]:
    """The packages of the closure of `names` to install (those neither the system nor an
    installed recipe provides) and their fetch jobs (relative location, cache path, checksum,
    size). Reads the repositories' metadata; fetches no package."""
    cfg = ctx.rocky
    repos = _repositories(cfg, source, trust)
    resolution = resolve(repos.repos, names, arch=cfg.arch)
    have = system_packages() | ctx.provided()
    todo = [p for p in resolution.packages if p.name not in have]
    for p in resolution.packages:
        if p.name in have and p.name in names:
            ctx.log(f"  {p.name} is already provided by the system")
    return todo, [repos.package_job(p) for p in todo]


def dry_plan(ctx: Context, names) -> list[dict]:
    """What rpm_install(names) would fetch: one entry per package (name, nevra, url, checksum)."""
    names = name_list(names)
    with _source(_config(ctx)) as source:
        todo, jobs = plan(ctx, names, source, _trust(ctx.rocky, source))
        where = (lambda rel: f"{source.url}/{rel}") if isinstance(source, MirrorSource) \
            else (lambda rel: str(source.root / rel))
        return [{"name": p.name, "nevra": p.nevra, "url": where(rel),
                 "dest": Path(p.location).name, "checksum": {algo: digest}}
                for p, (rel, _dest, (algo, digest), _size) in zip(todo, jobs)]


def rpm_install(ctx: Context, names) -> list[str]:
    """Install Rocky packages (a name or an array of names); returns the NEVRAs installed."""
    names = name_list(names)
    cfg = _config(ctx)
    with _source(cfg) as source:
        trust = _trust(cfg, source)
        todo, jobs = plan(ctx, names, source, trust)
        ctx.log(f"  fetching {len(todo)} Rocky package(s): {', '.join(p.name for p in todo)}")
        paths = source.fetch_many(jobs)
    out = []
    for p, path in zip(todo, paths):
        with tempfile.TemporaryDirectory(dir=ctx.build_dir, prefix=".rpm-") as tmp:
            extract_rpm(path, tmp, trusted_keys=trust.keys, set_caps=False)
            _map_into_prefix(ctx, Path(tmp))
        out.append(p.nevra)
        ctx.rpms_installed.append(p.name)
    return out


def register(engine, ctx: Context) -> None:
    engine.register_fn("rpm_install", lambda names: rpm_install(ctx, names))
