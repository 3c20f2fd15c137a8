"""Package sources: a Rocky mirror over HTTP(S), the DVD ISO, or a local directory tree.

Each source answers two questions the same way: "give me this small file" (repomd.xml, its
signature, the release key) and "put this file, whose checksum I know, in the cache". Everything
above this module (repodata, resolution, verification) is the same for all three.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from ..util import download as dl
from ..util.errors import DownloadError, LevitateError, VerificationError
from ..util.files import atomic_output, write_atomic
from .checksum import newest_matching, parse_checksum
from .repodata import verify_file

log = logging.getLogger("levitate")


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://", "file://"))


def _join(base: str, relpath: str) -> str:
    return base.rstrip("/") + "/" + relpath.lstrip("/")


class Source(ABC):
    """Where repositories live. `relpath`s are relative to the source's root."""

    description: str
    # What vouches for everything read from this source when its repodata carries no signature of
    # its own: set for a DVD whose SHA-256 matched a CHECKSUM that the release key signed.
    covered_by: str | None = None
    unsigned_hint = "the source is incomplete or not an official one"

    @abstractmethod
    def repo_prefix(self, repo: str) -> str:
        """Path of a repository (the directory holding repodata/) relative to the root."""

    @abstractmethod
    def read_small(self, relpath: str) -> bytes | None:
        """A small file's bytes, or None when it does not exist."""

    @abstractmethod
    def fetch_many(self, jobs: list[tuple[str, Path, tuple[str, str], int | None]]) -> list[Path]:
        """Fetch (relpath, cache destination, (algo, hexdigest), size) jobs; return verified paths."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MirrorSource(Source):
    """Rocky's repositories over HTTP(S): URL/REPO/ARCH/os/."""

    def __init__(self, url: str, arch: str, parallel: int):
        self.url, self.arch, self.parallel = url.rstrip("/"), arch, parallel
        self.description = f"mirror {self.url}"

    def repo_prefix(self, repo: str) -> str:
        return f"{repo}/{self.arch}/os"

    def read_small(self, relpath: str) -> bytes | None:
        try:
            return dl.fetch_bytes(_join(self.url, relpath))
        except dl.NotFound:
            return None

    def fetch_many(self, jobs):
        return dl.download_many([dl.DownloadJob(_join(self.url, rel), dest, expected, size)
                                 for rel, dest, expected, size in jobs], parallel=self.parallel)


class DirSource(Source):
    """A tree on local disk, in mirror layout (REPO/ARCH/os/repodata) or DVD layout (REPO/repodata).

    Nothing is copied: files are verified where they are.
    """

    unsigned_hint = ("an unpacked DVD's repodata is not signed: build from the ISO itself (--source "
                     "iso:DIR holding the .iso, CHECKSUM and CHECKSUM.asc), whose signed checksum covers it")

    def __init__(self, path: str, arch: str, repos: Iterable[str]):
        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise LevitateError(f"source directory {self.root} does not exist", "pass --source dir:PATH to a local tree")
        self.description = f"directory {self.root}"
        self.prefixes: dict[str, str] = {}
        for repo in repos:
            for prefix in (f"{repo}/{arch}/os", repo):
                if (self.root / prefix / "repodata" / "repomd.xml").is_file():
                    self.prefixes[repo] = prefix
                    break
            else:
                raise LevitateError(f"{self.root} holds no repository {repo}: neither {repo}/{arch}/os/repodata "
                                    f"nor {repo}/repodata has a repomd.xml",
                                    "point dir: at a mirror copy or an unpacked DVD")

    def repo_prefix(self, repo: str) -> str:
        return self.prefixes[repo]

    def read_small(self, relpath: str) -> bytes | None:
        path = self.root / relpath
        return path.read_bytes() if path.is_file() else None

    def fetch_many(self, jobs):
        paths = []
        for rel, _dest, expected, _size in jobs:
            path = self.root / rel
            if not path.is_file():
                raise DownloadError(f"{path} is missing", "the local tree is incomplete; re-copy it")
            verify_file(path, *expected)
            paths.append(path)
        return paths


class IsoSource(Source):
    """The Rocky DVD: downloaded (or found) once, verified against the signed CHECKSUM, then read
    without mounting it."""

    unsigned_hint = ("the DVD's repodata is trusted through the ISO's signed checksum: put Rocky's CHECKSUM "
                     "and CHECKSUM.asc beside the ISO")

    def __init__(self, location: str, *, cache: Path, iso_file: str = "", iso_pattern: str = ""):
        """`location`: an .iso, or a directory holding CHECKSUM from which `iso_file` (when set)
        or the newest name matching `iso_pattern` is taken; `cache`: where a downloaded ISO and
        the memo of verified local ISOs are kept."""
        self.cache, self.iso_file, self.iso_pattern = cache, iso_file, iso_pattern
        self.checksum_text: bytes | None = None     # CHECKSUM as published
        self.checksum_sig: tuple[str, bytes] | None = None  # (name, bytes) of CHECKSUM.asc / .sig
        self.iso_hash_checked = False                # the ISO matched its CHECKSUM line
        self.iso_path = self._acquire(location)
        from .isoreader import IsoReader
        self.reader = IsoReader(self.iso_path)
        self.description = f"ISO {self.iso_path}"

    # -- finding and verifying the ISO -------------------------------------------------------
    def _read_beside(self, directory: str, name: str) -> bytes | None:
        if _is_url(directory):
            try:
                return dl.fetch_bytes(_join(directory, name))
            except dl.NotFound:
                return None
        path = Path(directory) / name
        return path.read_bytes() if path.is_file() else None

    def _load_checksum(self, directory: str) -> dict[str, tuple[str, str]] | None:
        self.checksum_text = self._read_beside(directory, "CHECKSUM")
        if self.checksum_text is None:
            return None
        for name in ("CHECKSUM.asc", "CHECKSUM.sig"):
            sig = self._read_beside(directory, name)
            if sig is not None:
                self.checksum_sig = (name, sig)
                break
        return parse_checksum(self.checksum_text.decode(errors="replace"))

    def _acquire(self, location: str) -> Path:
        if location.endswith(".iso"):
            directory, _, name = location.rpartition("/")
            checksums = self._load_checksum(directory or ".")
            if checksums is None or name not in checksums:
                log.warning("WARNING: no CHECKSUM lists %s: the ISO itself cannot be verified "
                            "(its packages still are)", name)
                expected = None
            else:
                expected = checksums[name]
        else:
            checksums = self._load_checksum(location)
            if checksums is None:
                raise DownloadError(f"no CHECKSUM file in {location}",
                                    "point iso: at Rocky's isos/x86_64/ directory or at an .iso file")
            if self.iso_file:
                name = self.iso_file
                if name not in checksums:
                    raise LevitateError(f"CHECKSUM in {location} does not list the pinned {name}",
                                        "update iso_file in profile.toml or remove the pin")
            else:
                name = newest_matching(checksums, self.iso_pattern)
                if name is None:
                    raise LevitateError(f"CHECKSUM in {location} lists no ISO matching {self.iso_pattern}",
                                        "check iso_pattern in profile.toml")
            expected = checksums[name]
            directory = location
        if not _is_url(directory or "."):
            local = Path(directory or ".") / name
            if not local.is_file():
                raise LevitateError(f"{local} does not exist", "check the path given to --source iso:")
            if expected:
                self._verify_local_iso(local, expected)
            self.iso_hash_checked = expected is not None
            return local.resolve()
        dest = self.cache / "isos" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dl.download(_join(directory, name), dest, expected=expected, progress_label=name)
        self.iso_hash_checked = expected is not None
        return dest

    def _verify_local_iso(self, path: Path, expected: tuple[str, str]) -> None:
        """Hash a local ISO once; remember the result by (path, size, mtime) so reruns are instant."""
        memo = self.cache / "isos" / ".verified.json"
        stat = path.stat()
        key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{expected[1]}"
        known = json.loads(memo.read_text()) if memo.is_file() else {}
        if known.get(key):
            return
        verify_file(path, *expected)
        known[key] = True
        write_atomic(memo, json.dumps(known))

    # -- Source ----------------------------------------------------------------------------------
    def repo_prefix(self, repo: str) -> str:
        return repo

    def read_small(self, relpath: str) -> bytes | None:
        if not self.reader.exists(relpath):
            return None
        return self.reader.read_bytes(relpath)

    def fetch_many(self, jobs):
        paths = []
        for rel, dest, expected, _size in jobs:
            if dest.is_file():
                try:
                    verify_file(dest, *expected)
                    paths.append(dest)
                    continue
                except VerificationError:
                    dest.unlink()
            if not self.reader.exists(rel):
                raise LevitateError(f"{rel} is missing from {self.iso_path.name}", "the ISO is incomplete or not a Rocky DVD")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(dest) as tmp:              # a file that fails verification is never published
                self.reader.extract(rel, tmp)
                verify_file(tmp, *expected)
            paths.append(dest)
        return paths

    def close(self) -> None:
        self.reader.close()


def open_source(kind: str, location: str, *, arch: str, repos: Iterable[str], cache: Path,
                parallel: int = 4, iso_file: str = "", iso_pattern: str = "") -> Source:
    """The source of `kind` mirror, dir or iso at `location` (see each class)."""
    if kind == "mirror":
        return MirrorSource(location, arch, parallel=parallel)
    if kind == "dir":
        return DirSource(location, arch, repos)
    return IsoSource(location, cache=cache, iso_file=iso_file, iso_pattern=iso_pattern)
