"""The lock file (`leviso.lock`): the resolved package set, pinned by NEVRA and checksum.

TOML, written by hand (tomllib only reads) in a stable order so that a re-resolution that
changes nothing leaves the file byte-for-byte identical and a diff shows exactly what moved:

    # leviso.lock: ...
    version = 1

    [[package]]
    name = "bash"
    epoch = 0
    version = "5.2.26"
    release = "1.el10"
    arch = "x86_64"
    nevra = "bash-5.2.26-1.el10.x86_64"
    repo = "BaseOS"
    size = 1834519
    sha256 = "0123..."
    location = "Packages/b/bash-5.2.26-1.el10.x86_64.rpm"

A repository whose package checksums are not sha256 gets `checksum = "ALGO:HEX"` instead of
`sha256 = "HEX"`. `check_locked` turns a lock back into the packages of the repositories, or
fails saying which pinned package is missing or changed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..util.errors import LevitateError, VerificationError
from ..util.files import write_atomic
from ..util.toml import quote
from .repodata import Package, Repository

LOCK_VERSION = 1
LOCK_NAME = "leviso.lock"
RELOCK_HINT = "run without --locked to re-resolve (and commit the new lock)"

HEADER = """\
# {name}: the resolved package set, written by the resolver. Do not edit by hand.
# `--locked` builds exactly these packages (same NEVRA, same checksum) or fails;
# running without `--locked` re-resolves and rewrites this file.
"""


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    nevra: str
    repo: str
    size: int
    checksum: tuple[str, str]      # (algorithm, hex), normally ("sha256", ...)
    location: str

    @property
    def sha256(self) -> str | None:
        return self.checksum[1] if self.checksum[0] == "sha256" else None

    @classmethod
    def from_package(cls, p: Package) -> "LockedPackage":
        return cls(p.name, p.epoch, p.version, p.release, p.arch, p.nevra, p.repo, p.size_package,
                   (_normal_algo(p.checksum[0]), p.checksum[1].lower()), p.location)


def _normal_algo(algo: str) -> str:
    algo = algo.lower()
    return "sha1" if algo == "sha" else algo


def format_lock(packages: Iterable[Package | LockedPackage], *, name: str = LOCK_NAME) -> str:
    """The lock file's text for `packages` (sorted by name, then arch)."""
    entries = [p if isinstance(p, LockedPackage) else LockedPackage.from_package(p) for p in packages]
    entries.sort(key=lambda e: (e.name, e.arch, e.nevra))
    lines = [HEADER.format(name=name), f"version = {LOCK_VERSION}", ""]
    for e in entries:
        algo, hexdigest = e.checksum
        lines += [
            "[[package]]",
            f"name = {quote(e.name)}",
            f"epoch = {int(e.epoch)}",
            f"version = {quote(e.version)}",
            f"release = {quote(e.release)}",
            f"arch = {quote(e.arch)}",
            f"nevra = {quote(e.nevra)}",
            f"repo = {quote(e.repo)}",
            f"size = {int(e.size)}",
            f"sha256 = {quote(hexdigest)}" if algo == "sha256" else f"checksum = {quote(f'{algo}:{hexdigest}')}",
            f"location = {quote(e.location)}",
            "",
        ]
    return "\n".join(lines)


def write_lock(path: str | os.PathLike, resolution_or_packages) -> Path:
    """Write the lock for a Resolution (or a list of packages) atomically: a temporary file in
    the same directory, fsync, rename. Returns the path."""
    path = Path(path)
    packages = getattr(resolution_or_packages, "packages", resolution_or_packages)
    text = format_lock(packages, name=path.name)
    write_atomic(path, text, sync_dir=True)
    return path


_FIELDS = {"name": str, "epoch": int, "version": str, "release": str, "arch": str, "nevra": str,
           "repo": str, "size": int, "location": str}


def read_lock(path: str | os.PathLike) -> list[LockedPackage]:
    """Read a lock file; a missing, unreadable or malformed one is a clear LevitateError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LevitateError(f"{path} does not exist, so --locked has nothing to build",
                            "run once without --locked to resolve and write it") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LevitateError(f"{path} is not a valid lock file: {exc}",
                            f"restore it from version control, or {RELOCK_HINT}") from None
    version = data.get("version")
    if version != LOCK_VERSION:
        raise LevitateError(f"{path} has lock format version {version!r}; this tool reads version {LOCK_VERSION}",
                            RELOCK_HINT)
    entries = data.get("package", [])
    if not isinstance(entries, list):
        raise LevitateError(f"{path} is not a valid lock file: 'package' must be an array of tables", RELOCK_HINT)
    out: list[LockedPackage] = []
    for i, entry in enumerate(entries, 1):
        where = f"{path}: package #{i}" + (f" ({entry.get('name')})" if isinstance(entry, dict) and entry.get("name") else "")
        if not isinstance(entry, dict):
            raise LevitateError(f"{where} is not a table", RELOCK_HINT)
        values = {}
        for key, kind in _FIELDS.items():
            value = entry.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise LevitateError(f"{where} lacks a valid '{key}'", RELOCK_HINT)
            values[key] = value
        if isinstance(entry.get("sha256"), str):
            checksum = ("sha256", entry["sha256"].lower())
        elif isinstance(entry.get("checksum"), str) and ":" in entry["checksum"]:
            algo, hexdigest = entry["checksum"].split(":", 1)
            checksum = (_normal_algo(algo), hexdigest.lower())
        else:
            raise LevitateError(f"{where} lacks its 'sha256'", RELOCK_HINT)
        out.append(LockedPackage(checksum=checksum, **values))
    return out


def check_locked(lock_entries: Sequence[LockedPackage], repos: Sequence[Repository], *,
                 lock_name: str = LOCK_NAME) -> list[Package]:
    """The repositories' packages for the locked entries, in lock order. Fails (one line) when
    a locked NEVRA is missing, or present with another checksum. A package found under the
    same NEVRA and checksum in another repository than recorded is accepted (same bytes)."""
    by_repo: dict[str, dict[str, Package]] = {}
    anywhere: dict[str, list[Package]] = {}
    for repo in repos:
        index = by_repo.setdefault(repo.name, {})
        for p in repo.packages:
            index.setdefault(p.nevra, p)
            anywhere.setdefault(p.nevra, []).append(p)
    repo_names = ", ".join(r.name for r in repos) or "no repository"
    out: list[Package] = []
    for e in lock_entries:
        candidates = []
        own = by_repo.get(e.repo, {}).get(e.nevra)
        if own is not None:
            candidates.append(own)
        candidates += [p for p in anywhere.get(e.nevra, ()) if p is not own]
        if not candidates:
            where = e.repo if e.repo in by_repo else f"{e.repo} (not among: {repo_names})"
            raise LevitateError(f"{lock_name} pins {e.nevra} but {where} has no such package", RELOCK_HINT)
        match = next((p for p in candidates
                      if (_normal_algo(p.checksum[0]), p.checksum[1].lower()) == e.checksum), None)
        if match is None:
            p = candidates[0]
            raise VerificationError(
                f"{lock_name} pins {e.nevra} with {e.checksum[0]} {e.checksum[1]}, but {p.repo} now has "
                f"{_normal_algo(p.checksum[0])} {p.checksum[1]} for it (rebuilt under the same version?)",
                f"if that change is expected, {RELOCK_HINT}")
        out.append(match)
    return out
