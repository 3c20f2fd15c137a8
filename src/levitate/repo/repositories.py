"""Load a source's repositories: signed repomd.xml -> verified primary (and filelists on demand).

The signature on repomd.xml covers the checksums of every other repodata file, and those cover
each package's checksum: verifying repomd.xml.asc first makes everything after it trustworthy.
leviso and recipe's `rpm_install` both open their repositories here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ..util.errors import LevitateError
from ..util.files import write_atomic
from .repodata import Repository, parse_repomd, read_primary
from .sources import IsoSource, Source
from .trust import Trust, verify_iso_checksum

log = logging.getLogger("levitate")


def open_repositories(source: Source, names: Iterable[str], trust: Trust, cache: Path, *,
                      missing_hint: str) -> "RepoSet":
    """The DVD's signed CHECKSUM when the source is an ISO, then the repositories `names`.

    `cache` holds repodata/REPO/ (repomd.xml and the verified records) and packages/;
    `missing_hint` says what to check when a repository has no repomd.xml ({repo} is its name).
    """
    if isinstance(source, IsoSource):
        verify_iso_checksum(source, trust)
    return RepoSet(source, names, trust, cache, missing_hint)


class RepoSet:
    """The repositories as read from one source, with their repomd records."""

    def __init__(self, source: Source, names: Iterable[str], trust: Trust, cache: Path, missing_hint: str):
        self.source, self.trust, self.cache, self.missing_hint = source, trust, cache, missing_hint
        self.repomds = {}
        self.repos: list[Repository] = []
        for name in names:
            self.repos.append(self._load(name))

    def _load(self, name: str) -> Repository:
        prefix = self.source.repo_prefix(name)
        repomd_bytes = self.source.read_small(f"{prefix}/repodata/repomd.xml")
        if repomd_bytes is None:
            raise LevitateError(f"{self.source.description} has no {prefix}/repodata/repomd.xml",
                                self.missing_hint.format(repo=name))
        signature = self.source.read_small(f"{prefix}/repodata/repomd.xml.asc")
        if signature is None and self.source.covered_by and self.trust.enabled:
            log.info("%s repomd.xml carries no signature (as on Rocky's DVD); covered by %s",
                     name, self.source.covered_by)
        else:
            self.trust.check_detached(f"{name} repomd.xml", repomd_bytes, signature, self.source.unsigned_hint)
        write_atomic(self.cache / "repodata" / name / "repomd.xml", repomd_bytes)
        repomd = parse_repomd(repomd_bytes, repo=name)
        self.repomds[name] = repomd
        packages = read_primary(self._fetch_record(name, "primary"), repo=name)
        log.info("%s: %d packages (repodata revision %s)", name, len(packages), repomd.revision)
        # filelists is fetched (and verified) only if a file dependency needs it.
        return Repository(name=name, base=prefix, packages=packages, revision=repomd.revision,
                          filelists=lambda: self._fetch_record(name, "filelists"))

    def _fetch_record(self, repo: str, kind: str) -> Path:
        record = self.repomds[repo].records.get(kind)
        if record is None:
            raise LevitateError(f"{repo} repomd.xml lists no {kind} metadata", "the repository is incomplete")
        prefix = self.source.repo_prefix(repo)
        dest = self.cache / "repodata" / repo / Path(record.location).name
        [path] = self.source.fetch_many([(f"{prefix}/{record.location}", dest, record.checksum, record.size)])
        return path

    def package_job(self, package) -> tuple[str, Path, tuple[str, str], int | None]:
        """The fetch job for one package: cache file name keyed by its checksum."""
        algo, hexdigest = package.checksum
        dest = self.cache / "packages" / f"{hexdigest[:16]}-{Path(package.location).name}"
        prefix = self.source.repo_prefix(package.repo)
        return (f"{prefix}/{package.location}", dest, package.checksum, package.size_package)
