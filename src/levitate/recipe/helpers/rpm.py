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

recipe and dnf (docs/recipe.md, "recipe and dnf"): dnf owns the Rocky packages of the system, as
pacman owns Arch's and makepkg leaves /usr alone. So rpm_install refuses the system's own prefix
(`/` or `/usr`, however it is spelled: `..`, a trailing slash, a symlink), refuses to put a file
where a package of the system's RPM database has one (through a symlink in the prefix, say), and
skips the packages that database already has, saying that dnf provides them.

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
# Where the system's packages install: RPMs map /usr/X to PREFIX/X, so PREFIX `/usr` (or `/`, with
# merged /usr) writes exactly where dnf does. /usr/local, /opt/NAME and ~/.local are the local
# administrator's and the user's: FHS 3.0, 4.9 says /usr/local "needs to be safe from being
# overwritten when the system software is updated".
SYSTEM_PREFIXES = ("/", "/usr")


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


def _rpm_query(fmt: str) -> list[str]:
    """`rpm -qa --qf FMT` over the system's RPM database (rpm's own %_dbpath: on LevitateOS, as
    on EL10, /usr/lib/sysimage/rpm), as lines; none when there is no rpm tool."""
    if shutil.which("rpm") is None:
        return []
    proc = run(["rpm", "-qa", "--qf", fmt], check=False, capture=True)
    if proc.returncode != 0:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["rpm failed"])[-1]
        raise HelperError(f"rpm_install: cannot read the system's RPM database: {why}",
                          "check it with `rpm -qa` (as root: `rpm --rebuilddb` repairs its indexes)")
    return proc.stdout.decode(errors="surrogateescape").splitlines()


def system_packages() -> set[str]:
    """Names in the system's RPM database: the packages dnf installed."""
    return set(_rpm_query("%{NAME}\\n"))


def system_files() -> dict[str, str]:
    """Every path the system's RPM database lists -> the package owning it. A file name holding a
    newline reads as bogus extra paths: more refusals, never fewer."""
    owned = {}
    for line in _rpm_query("[%{FILENAMES}\\t%{=NAME}\\n]"):
        path, _, name = line.rpartition("\t")
        if path:
            owned[path] = name
    return owned


def _real(path: str, dirs: dict[str, str]) -> str:
    """PATH with the symlinks of its directory resolved (not its last component: a package's
    symlink is its own file), the directories' answers cached."""
    parent, name = os.path.split(path)
    if parent not in dirs:
        dirs[parent] = os.path.realpath(parent)
    return os.path.join(dirs[parent], name)


def refuse_system_prefix(ctx: Context, names: list[str]) -> None:
    """dnf owns the system's prefix: refuse it however it is spelled (ctx.prefix is already
    normalised: no `..`, no trailing slash; realpath resolves the symlinks, /bin -> usr/bin too)."""
    real = os.path.realpath(ctx.prefix)
    if real in SYSTEM_PREFIXES:
        shown = str(ctx.prefix) if str(ctx.prefix) == real else f"{ctx.prefix} ({real})"
        raise HelperError(f"rpm_install: {shown} is the system's prefix, where dnf installs Rocky packages",
                          f"as root, run `dnf install {' '.join(names)}`; or install this recipe into "
                          "another prefix (--prefix /usr/local, ~/.local or /opt/NAME)")


def refuse_system_files(ctx: Context, names: list[str], dests: list[Path]) -> None:
    """No mapped file may land where the system's RPM database lists a path (a symlink in the
    prefix leading into /usr, say): dnf would replace it, or rpm -V report it changed."""
    owned = system_files()
    if not owned:
        return
    dirs: dict[str, str] = {}
    system = {_real(path, dirs): (path, name) for path, name in owned.items()}
    hits = [(d, *system[key]) for d in sorted(dests) if (key := _real(str(d), dirs)) in system]
    if hits:
        dest, path, owner = hits[0]
        more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
        raise HelperError(f"rpm_install: {dest} leads to {path}, which the system's package {owner} owns{more}",
                          f"dnf owns the system's files: install into a prefix that does not lead into "
                          f"them, or as root run `dnf install {' '.join(names)}`")


def _map_into_prefix(ctx: Context, root: Path) -> list[Path]:
    """Move an extracted tree into the stage under PREFIX (see the module docstring); returns the
    real paths (under PREFIX) of the files and symlinks staged."""
    dests: list[Path] = []
    for top in sorted(os.listdir(root)):
        src = root / top
        if src.is_symlink():
            continue                                  # merged-/usr links: /bin -> usr/bin
        dest = ctx.prefix if top == "usr" else ctx.prefix / top
        _merge(ctx, src, dest, dests)
    return dests


def _merge(ctx: Context, src: Path, dest: Path, dests: list[Path]) -> None:
    staged = ctx.staged(dest)
    if src.is_dir() and not src.is_symlink():
        staged.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(src):
            _merge(ctx, src / name, dest / name, dests)
        return
    if os.path.lexists(staged):
        staged.unlink()
    staged.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, staged)
    dests.append(dest)


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
    system, recipes = system_packages(), ctx.provided()
    todo = [p for p in resolution.packages if p.name not in system | recipes]
    if from_dnf := [p.name for p in resolution.packages if p.name in system]:
        ctx.log(f"  installed system-wide, dnf provides them (not installed again): {', '.join(from_dnf)}")
    if from_recipes := [p.name for p in resolution.packages if p.name in recipes - system]:
        ctx.log(f"  installed by recipes already: {', '.join(from_recipes)}")
    return todo, [repos.package_job(p) for p in todo]


def dry_plan(ctx: Context, names) -> list[dict]:
    """What rpm_install(names) would fetch: one entry per package (name, nevra, url, checksum)."""
    names = name_list(names)
    cfg = _config(ctx)
    refuse_system_prefix(ctx, names)
    with _source(cfg) as source:
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
    refuse_system_prefix(ctx, names)
    with _source(cfg) as source:
        trust = _trust(cfg, source)
        todo, jobs = plan(ctx, names, source, trust)
        if not todo:
            return []
        ctx.log(f"  fetching {len(todo)} Rocky package(s): {', '.join(p.name for p in todo)}")
        paths = source.fetch_many(jobs)
    out, dests = [], []
    for p, path in zip(todo, paths):
        with tempfile.TemporaryDirectory(dir=ctx.build_dir, prefix=".rpm-") as tmp:
            extract_rpm(path, tmp, trusted_keys=trust.keys, set_caps=False)
            dests += _map_into_prefix(ctx, Path(tmp))
        out.append(p.nevra)
        ctx.rpms_installed.append(p.name)
    refuse_system_files(ctx, names, dests)
    return out


def register(engine, ctx: Context) -> None:
    engine.register_fn("rpm_install", lambda names: rpm_install(ctx, names))
