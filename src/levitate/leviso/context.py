"""The frozen build context every stage receives: which profile, which source, which directories.

Stages are plain functions over this object, so each can run (and be tested) alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..util.epoch import source_date_epoch
from ..util.errors import LevitateError
from .profile import Profile

SOURCE_KINDS = ("mirror", "iso", "dir")


@dataclass(frozen=True)
class SourceSpec:
    """`--source KIND[:LOCATION]`; the location defaults to the profile's setting for KIND."""

    kind: str
    location: str

    @classmethod
    def parse(cls, text: str | None, profile: Profile) -> "SourceSpec":
        text = text or profile.source.default
        kind, _, location = text.partition(":")
        if kind not in SOURCE_KINDS:
            raise LevitateError(f"unknown source '{text}'",
                                "use mirror[:URL], iso[:DIR-OR-URL-OR-FILE.iso] or dir:PATH")
        if not location:
            location = {"mirror": profile.source.mirror_url, "iso": profile.source.iso_url, "dir": ""}[kind]
        if not location:
            raise LevitateError(f"source '{kind}' needs a location: the profile sets none",
                                f"pass --source {kind}:LOCATION")
        return cls(kind, location)

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


@dataclass(frozen=True)
class BuildContext:
    profile: Profile
    source: SourceSpec | None          # None for the stages after extraction
    cache: Path                  # downloads: ISOs, repodata, RPMs, keys (kept by `clean`)
    workdir: Path                # rootfs/ and intermediate images
    output: Path                 # the finished ISO, checksum and manifest
    locked: bool = False         # build exactly leviso.lock or fail
    weak_deps: bool | None = None  # None: the profile decides
    verify_signatures: bool = True
    jobs: int = max(2, os.cpu_count() or 2)

    def __post_init__(self) -> None:
        source_date_epoch()       # a malformed value fails now, not after the rootfs is built

    @property
    def rootfs(self) -> Path:
        return self.workdir / "rootfs"
