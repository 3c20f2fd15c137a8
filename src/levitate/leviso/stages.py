"""The build's stages as plain functions over a BuildContext: resolve, download, extract, build.

Each stage can run alone (`leviso download`, `leviso extract`); each logs its time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..repo.lock import check_locked, read_lock, write_lock
from ..repo.repositories import RepoSet, open_repositories
from ..repo.resolve import Resolution, resolve
from ..repo.sources import Source, open_source
from ..repo.trust import Trust, load_trust
from ..rpm.header import RpmFile
from ..rpm.verify import verify_header
from ..util.errors import LevitateError
from ..util.log import Progress, stage
from .context import BuildContext

log = logging.getLogger("levitate")


@dataclass
class Downloaded:
    """Verified packages in the cache, in resolution order."""

    packages: list            # repo.repodata.Package
    paths: list[Path]
    trust: Trust
    resolution: Resolution | None


def profile_source(ctx: BuildContext) -> Source:
    """The source `--source` (or the profile's default) names."""
    spec, settings = ctx.source, ctx.profile.source
    return open_source(spec.kind, spec.location, arch=settings.arch, repos=settings.repos, cache=ctx.cache,
                       parallel=min(8, max(4, ctx.jobs * 2)), iso_file=settings.iso_file,
                       iso_pattern=settings.iso_pattern)


def profile_trust(ctx: BuildContext, source: Source) -> Trust:
    """The release key pinned by [key] in the profile (none under --insecure-skip-signature-checks)."""
    if not ctx.verify_signatures:
        log.warning("WARNING: --insecure-skip-signature-checks: OpenPGP signatures are NOT checked; "
                    "never use the result for anything but a local experiment")
        return Trust(None)
    key = ctx.profile.key
    return load_trust(key.fingerprint, source, key_file=key.file, key_url=key.url, cache=ctx.cache / "keys",
                      setting=f"{ctx.profile.path / 'profile.toml'}: [key] fingerprint",
                      hint="the source may not be genuine; check [key] in profile.toml")


def profile_repositories(ctx: BuildContext, source: Source) -> RepoSet:
    """The pinned key, the DVD's signed CHECKSUM when the source is an ISO, then the repositories."""
    return open_repositories(source, ctx.profile.source.repos, profile_trust(ctx, source), ctx.cache,
                             missing_hint="check the source location and the repository name {repo} in profile.toml")


def resolve_packages(ctx: BuildContext, repos: RepoSet) -> tuple[list, Resolution | None]:
    """The package set: the lock under --locked, else a fresh resolution (written as the lock)."""
    profile = ctx.profile
    if ctx.locked:
        if not profile.lock_path.is_file():
            raise LevitateError(f"--locked given but {profile.lock_path} does not exist",
                                "run `leviso download` once without --locked to create it")
        packages = check_locked(read_lock(profile.lock_path), repos.repos)
        refuse_selinux_policy(packages, None)
        return packages, None
    weak = profile.resolve.weak_deps if ctx.weak_deps is None else ctx.weak_deps
    resolution = resolve(repos.repos, profile.packages, pins=profile.resolve.pins, weak_deps=weak,
                         exclude=profile.resolve.exclude, arch=profile.source.arch)
    refuse_selinux_policy(resolution.packages, resolution)
    write_lock(profile.lock_path, resolution)
    return resolution.packages, resolution


def refuse_selinux_policy(packages, resolution: Resolution | None) -> None:
    """A policy package means SELinux would be wanted, but the images carry no security labels (a
    labelled image needs the policy's file contexts at mkfs time) and every kernel command line
    says selinux=0: refuse rather than ship a system that silently ignores its policy."""
    policies = sorted(p.name for p in packages if p.name.startswith("selinux-policy"))
    if policies:
        why = f" ({resolution.why(policies[0])})" if resolution is not None else ""
        raise LevitateError(f"the package set contains an SELinux policy, {', '.join(policies)}{why}, but "
                            "LevitateOS images are not SELinux-labelled and boot with selinux=0",
                            "remove it from packages.txt, or add it to [resolve] exclude if another package pulls it in")


def download_stage(ctx: BuildContext) -> Downloaded:
    """Resolve the profile, then fetch every package into the cache and check its signature."""
    with stage(f"download from {ctx.source}"), profile_source(ctx) as source:
        repos = profile_repositories(ctx, source)
        trust = repos.trust
        packages, resolution = resolve_packages(ctx, repos)
        total = sum(p.size_package or 0 for p in packages)
        log.info("%d packages, %.1f MiB to fetch or reuse", len(packages), total / 2**20)
        paths = source.fetch_many([repos.package_job(p) for p in packages])
        if trust.enabled:
            with Progress("checking signatures", len(paths)) as bar:
                for path in paths:
                    with RpmFile.open(path) as rpm:
                        verify_header(rpm, trust.keys)
                    bar.advance()
        return Downloaded(packages, paths, trust, resolution)


def extract_stage(ctx: BuildContext) -> Path:
    """WORKDIR/rootfs: the packages extracted and configured by their own tools."""
    from .rootfs import build_rootfs, rootfs_is_current
    if rootfs_is_current(ctx):
        log.info("rootfs is up to date with %s (%s); `leviso download` picks up repository updates",
                 ctx.profile.lock_path.name, ctx.rootfs)
        return ctx.rootfs
    downloaded = download_stage(ctx)
    return build_rootfs(ctx, downloaded)


def build(ctx: BuildContext) -> Path:
    """Every stage; each one that is up to date is skipped."""
    from .boot_stages import boot_stages
    extract_stage(ctx)
    return boot_stages(ctx)


def show_packages(ctx: BuildContext, why: bool = False) -> str:
    """The resolved set: name, EVR, arch, repository and size (and why each package is there)."""
    with profile_source(ctx) as source:
        packages, resolution = resolve_packages(ctx, profile_repositories(ctx, source))
    rows = []
    for p in packages:
        line = f"{p.name:<32} {str(p.evr):<28} {p.arch:<7} {p.repo:<10} {(p.size_installed or 0) / 2**20:9.1f} MiB"
        if why and resolution is not None:
            line += f"  {resolution.why(p.name)}"
        rows.append(line)
    total = sum(p.size_installed or 0 for p in packages)
    rows.append(f"{len(packages)} packages, {total / 2**20:.1f} MiB installed")
    return "\n".join(rows)
