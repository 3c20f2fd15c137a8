"""RPM repositories: repodata, dependency expressions, resolution and the lock file.

Shared by leviso and recipe; nothing here knows about profiles or recipes (callers pass what
they configured as arguments).

    repodata      parse_repomd, iter_primary, iter_filelists, lookup_files, verify_file,
                  read_local_repository; Package, Repository, Repomd, RepomdRecord
    deps          Dep, parse_requirement (plain and rich deps), evaluate
    resolve       resolve(repos, wanted, ...) -> Resolution; ResolutionError
    lock          write_lock, read_lock, check_locked; LockedPackage
    sources       open_source(kind, location, ...); MirrorSource, DirSource, IsoSource
    isoreader     IsoReader (files out of an ISO 9660 image, unmounted)
    checksum      parse_checksum(s), newest_matching, clearsigned_body (CHECKSUM lists)
    trust         load_trust(fingerprint, source, key_file=, key_url=, cache=, ...) -> Trust;
                  verify_iso_checksum
    repositories  open_repositories(source, names, trust, cache, ...) -> RepoSet
"""

from .deps import Dep, DepParseError, parse_dep, parse_requirement
from .lock import LockedPackage, check_locked, read_lock, write_lock
from .repodata import (Package, Repomd, RepomdRecord, Repository, iter_filelists, iter_primary, lookup_files,
                       parse_repomd, read_local_repository, read_primary, verify_file)
from .resolve import Resolution, ResolutionError, resolve

__all__ = [
    "Dep", "DepParseError", "parse_dep", "parse_requirement",
    "LockedPackage", "check_locked", "read_lock", "write_lock",
    "Package", "Repomd", "RepomdRecord", "Repository", "iter_filelists", "iter_primary", "lookup_files",
    "parse_repomd", "read_local_repository", "read_primary", "verify_file",
    "Resolution", "ResolutionError", "resolve",
]
