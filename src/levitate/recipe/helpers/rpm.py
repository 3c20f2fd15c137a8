"""Rocky packages by name: `rpm_install("tree")` resolves the package against the configured
Rocky repositories and installs it, with the part of its dependency closure that neither the
system's RPM database nor an installed recipe already provides, into PREFIX.

The chain of trust is leviso's: the release key is used only when its fingerprint equals the
configured pin, repomd.xml must carry its valid signature, repodata files match repomd.xml, each
RPM matches primary's digest and its header signature and payload digest are checked while it
is extracted (the same `extract_rpm`). Paths are mapped into the prefix: `/usr/X` -> `PREFIX/X`,
anything else `/Y` -> `PREFIX/Y`; the merged-/usr links at the top (`/bin -> usr/bin`) are
skipped.

Configuration: `[rocky]` in `recipe.toml` in the first recipes directory (mirror, key,
fingerprint, repos, arch), or the environment: RECIPE_ROCKY_MIRROR, RECIPE_ROCKY_KEY,
RECIPE_ROCKY_FINGERPRINT (read by config.Config.rocky).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...leviso.sources import DirSource, MirrorSource
from ...leviso.trust import Trust
from ...repo.repodata import Repository, parse_repomd, read_primary
from ...repo.resolve import resolve
from ...rpm import openpgp
from ...rpm.extract import extract_rpm
from ...util import download as dl
from ...util.errors import LevitateError, VerificationError
from .context import Context, HelperError


@dataclass(frozen=True)
class RockyConfig:
    mirror: str                    # URL (or dir:PATH) holding REPO/ARCH/os/repodata
    key: str                       # where the release key is (path or URL)
    fingerprint: str               # its pinned fingerprint (40 hex digits)
    cache: Path
    repos: tuple[str, ...] = ("BaseOS", "AppStream")
    arch: str = "x86_64"


def _trust(cfg: RockyConfig) -> Trust:
    if not cfg.fingerprint:
        raise LevitateError("the Rocky release key's fingerprint is not configured",
                            "set fingerprint (40 hex digits) under [rocky] in recipe.toml")
    try:
        pin = openpgp.normalize_fingerprint(cfg.fingerprint)
    except openpgp.OpenPGPError as exc:
        raise LevitateError(f"[rocky] fingerprint: {exc.message}", exc.hint) from None
    try:
        data = dl.fetch_bytes(cfg.key) if "://" in cfg.key else Path(cfg.key).read_bytes()
    except OSError as e:
        raise LevitateError(f"cannot read the release key {cfg.key}: {e.strerror}") from None
    pinned = tuple(k for k in openpgp.load_keyring(data) if (k.primary or k).fingerprint == pin)
    if not pinned:
        raise VerificationError(f"the key at {cfg.key} does not have the pinned fingerprint "
                                f"{pin}", "check [rocky] key and fingerprint")
    return Trust(pinned, pin)


def _source(cfg: RockyConfig):
    if cfg.mirror.startswith("dir:"):
        return DirSource(cfg.mirror[4:], cfg.arch, cfg.repos)
    return MirrorSource(cfg.mirror, cfg.arch, parallel=4)


def _repositories(cfg: RockyConfig, source, trust: Trust) -> list[Repository]:
    repos = []
    for name in cfg.repos:
        prefix = source.repo_prefix(name)
        repomd_bytes = source.read_small(f"{prefix}/repodata/repomd.xml")
        if repomd_bytes is None:
            raise LevitateError(f"{source.description} has no {prefix}/repodata/repomd.xml",
                                "check [rocky] mirror and repos in recipe.toml")
        trust.check_detached(f"{name} repomd.xml", repomd_bytes,
                             source.read_small(f"{prefix}/repodata/repomd.xml.asc"))
        repomd = parse_repomd(repomd_bytes, repo=name)

        def fetch(kind: str, prefix=prefix, repomd=repomd, name=name) -> Path:
            record = repomd.records.get(kind)
            if record is None:
                raise LevitateError(f"{name} repomd.xml lists no {kind} metadata",
                                    "the repository is incomplete")
            dest = cfg.cache / "repodata" / name / Path(record.location).name
            [path] = source.fetch_many([(f"{prefix}/{record.location}", dest, record.checksum,
                                         record.size)])
            return path

        repos.append(Repository(name=name, base=prefix, revision=repomd.revision,
                                packages=read_primary(fetch("primary"), repo=name),
                                filelists=lambda fetch=fetch: fetch("filelists")))
    return repos


def system_packages() -> set[str]:
    """Names in the system's RPM database (empty when there is no rpm tool or database)."""
    if shutil.which("rpm") is None:
        return set()
    proc = subprocess.run(["rpm", "-qa", "--qf", "%{NAME}\\n"], capture_output=True, text=True)
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


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
    resolution = resolve(repos, names, arch=cfg.arch)
    have = system_packages() | ctx.provided()
    todo = [p for p in resolution.packages if p.name not in have]
    for p in resolution.packages:
        if p.name in have and p.name in names:
            ctx.log(f"  {p.name} is already provided by the system")
    jobs = [(f"{source.repo_prefix(p.repo)}/{p.location}",
             cfg.cache / "packages" / f"{p.checksum[1][:16]}-{Path(p.location).name}",
             p.checksum, p.size_package) for p in todo]
    return todo, jobs


def dry_plan(ctx: Context, names) -> list[dict]:
    """What rpm_install(names) would fetch: one entry per package (name, nevra, url, checksum)."""
    names = name_list(names)
    trust = _trust(_config(ctx))
    with _source(ctx.rocky) as source:
        todo, jobs = plan(ctx, names, source, trust)
        where = (lambda rel: f"{source.url}/{rel}") if isinstance(source, MirrorSource) \
            else (lambda rel: str(source.root / rel))
        return [{"name": p.name, "nevra": p.nevra, "url": where(rel),
                 "dest": Path(p.location).name, "checksum": {algo: digest}}
                for p, (rel, _dest, (algo, digest), _size) in zip(todo, jobs)]


def rpm_install(ctx: Context, names) -> list[str]:
    """Install Rocky packages (a name or an array of names); returns the NEVRAs installed."""
    names = name_list(names)
    cfg = _config(ctx)
    trust = _trust(cfg)
    with _source(cfg) as source:
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
