"""WORKDIR/rootfs: every package extracted (in parallel, verified while streaming), owners applied
by name, then configured by the tree's own tools.

The tree is built under WORKDIR/rootfs.partial and renamed into place only when complete, with a
stamp of its inputs written last: an interrupted run never leaves a tree a later run would trust,
and a rerun with unchanged inputs does nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from dataclasses import replace
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

from ..rpm.extract import ExtractResult, apply_ownership, extract_rpm, read_id_map
from ..rpm.header import RpmFile
from ..util import mountinfo
from ..util.errors import LevitateError
from ..util.log import Progress, stage
from ..util.run import run
from . import preflight
from .configure import ConfigureInput, check_cpu_level, configure
from .context import BuildContext
from .stamp import Inputs, Stamp

log = logging.getLogger("levitate")

STAMP_VERSION = "1"         # bump when extraction or configuration changes what a tree contains
FIRST = ("filesystem", "setup")   # lay down the top-level layout (merged-/usr links) before the rest


def rootfs_inputs(ctx: BuildContext) -> Inputs:
    """What the tree depends on: the signature policy, the profile and its lock. Not the source:
    the lock names every package by its digest, wherever it came from, so `leviso iso` after
    `leviso extract --source ...` needs no --source."""
    inputs = Inputs("rootfs", STAMP_VERSION).add("verify", ctx.verify_signatures)
    for name in ("profile.toml", "packages.txt", "leviso.lock"):
        inputs.add_file(name, ctx.profile.path / name)
    return inputs


def _stamp(ctx: BuildContext) -> Stamp:
    return Stamp(ctx.workdir / "rootfs.stamp", [ctx.rootfs])


def rootfs_is_current(ctx: BuildContext) -> bool:
    return _stamp(ctx).current(rootfs_inputs(ctx))


def unmount_below(path: Path) -> None:
    """Unmount anything mounted at or below `path` (left by a killed run) before deleting it."""
    prefix = str(path.resolve())
    points = [entry.target for entry in mountinfo.read()]
    for point in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True):
        run(["umount", "--lazy", point], check=False)


def remove_tree(path: Path) -> None:
    if os.path.lexists(path):
        unmount_below(path)
        shutil.rmtree(path)


POSTIN = 1024   # RPMTAG_POSTIN: the %post scriptlet's text


def _read_headers(paths: list[Path]) -> dict[Path, tuple[str, str, str]]:
    """path -> (name, NEVRA, %post text), read once from each header."""
    facts = {}
    for path in paths:
        with RpmFile.open(path) as rpm:
            facts[path] = (rpm.name, rpm.nevra, rpm.header.get_str(POSTIN) or "")
    return facts


def extract_packages(paths: list[Path], root: Path, keys, jobs: int,
                     names: dict[Path, str] | None = None) -> list[ExtractResult]:
    """Extract the layout packages first, then the rest `jobs` at a time (one process each:
    decompression, hashing and file creation run truly in parallel)."""
    names = names or {path: facts[0] for path, facts in _read_headers(paths).items()}
    first = [p for p in paths if names[p] in FIRST]
    rest = [p for p in paths if p not in first]
    results: list[ExtractResult] = []
    with Progress("extracting", len(paths)) as bar:
        for path in first:
            results.append(extract_rpm(path, root, trusted_keys=keys))
            bar.advance()
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(extract_rpm, path, root, trusted_keys=keys) for path in rest]
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        results.append(future.result())
                        bar.advance()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return results


def _apply_owners(root: Path, results: list[ExtractResult]) -> None:
    """chown by the names in the headers, now that the tree's users and groups exist.

    A name the tree does not know falls back to root with a warning, as rpm does.
    """
    users, groups = read_id_map(root / "etc/passwd"), read_id_map(root / "etc/group")
    owners, unknown = [], set()
    for result in results:
        for owner in result.owners:
            missing = [f"user {owner.user}"] * (owner.user not in users) + \
                      [f"group {owner.group}"] * (owner.group not in groups)
            unknown.update(missing)
            if missing:
                owner = replace(owner, user=owner.user if owner.user in users else "root",
                                group=owner.group if owner.group in groups else "root")
            owners.append(owner)
    for name in sorted(unknown):
        log.warning("%s does not exist in the tree - using root (as rpm does)", name)
    users.setdefault("root", 0)
    groups.setdefault("root", 0)
    apply_ownership(root, owners, [cap for r in results for cap in r.capabilities], users=users, groups=groups)


def build_rootfs(ctx: BuildContext, downloaded) -> Path:
    preflight.require_root("extracting the root tree")
    preflight.require(["extract"])
    check_cpu_level(ctx.profile.rootfs.cpu_level)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    partial = ctx.workdir / "rootfs.partial"
    _stamp(ctx).invalidate()
    if os.path.lexists(partial):
        log.info("removing the half-built tree of an interrupted run")
        remove_tree(partial)
    partial.mkdir(mode=0o755)
    keys = downloaded.trust.keys
    try:
        with stage(f"extract {len(downloaded.paths)} packages"):
            started = time.monotonic()
            facts = _read_headers(downloaded.paths)
            names = {path: fact[0] for path, fact in facts.items()}
            results = extract_packages(downloaded.paths, partial, keys, ctx.jobs, names)
            size = sum(r.bytes_written for r in results)
            elapsed = time.monotonic() - started
            log.info("    %.0f MiB in %.1f s (%.0f MiB/s)", size / 2**20, elapsed, size / 2**20 / max(elapsed, 1e-6))
        with stage("configure the tree with its own tools"):
            postin = {nevra: script for _, nevra, script in facts.values() if script}
            configure(ConfigureInput(partial, list(downloaded.paths), postin),
                      before_rest=lambda: _apply_owners(partial, results))
    except OSError as exc:
        remove_tree(partial)
        if exc.errno == errno.ENOSPC:
            raise LevitateError(f"disk full while building {partial}",
                                "free space or pass --workdir on a larger disk") from None
        raise
    except BaseException:
        remove_tree(partial)
        raise
    if os.path.lexists(ctx.rootfs):
        remove_tree(ctx.rootfs)
    os.rename(partial, ctx.rootfs)        # a whole tree, built in place under its own name: no files helper
    _stamp(ctx).write(rootfs_inputs(ctx), packages=len(downloaded.paths))
    return ctx.rootfs
