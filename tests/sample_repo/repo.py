"""Rocky's publishing layout: mirror trees with repodata, the DVD ISO and its signed CHECKSUM.

Mirror:  mirror/REPO/x86_64/os/{Packages/<first letter>/*.rpm, repodata/} as on
         dl.rockylinux.org (Rocky files packages under one-letter directories).
DVD ISO: REPO/{Packages,repodata} at the ISO's root (no x86_64/os level; repodata without
         repomd.xml.asc, as the install DVDs of this family), the key file,
         media.repo and .treeinfo, built from the very same files (no rebuild, no copy).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from levitate.util.run import run

RELEASE = "10.0"
PRODUCT = "LevitateSample"
ISO_NAME = f"{PRODUCT}-{RELEASE}-x86_64-dvd1.iso"
ISO_PATTERN = f"{PRODUCT}-10.*-x86_64-dvd1.iso"
ISO_LABEL = f"{PRODUCT}-{RELEASE.replace('.', '-')}-x86_64-dvd"
REPOS = ("BaseOS", "AppStream")
# One repository's metadata compressed with xz, the other with createrepo_c's default (gzip),
# so readers meet both (Rocky's own choice has varied between releases).
REPODATA_COMPRESSION = {"BaseOS": None, "AppStream": "xz"}


def repo_dir(mirror: Path, repo: str) -> Path:
    return mirror / repo / "x86_64" / "os"


def package_dir(mirror: Path, repo: str, filename: str) -> Path:
    return repo_dir(mirror, repo) / "Packages" / filename[0].lower()


def createrepo(path: Path, compression: str | None) -> Path:
    """repodata/ for `path` (sha256, primary/filelists/other, no sqlite); returns repomd.xml."""
    cmd = ["createrepo_c", "--quiet", "--no-database", "--workers", str(os.cpu_count() or 2)]
    if compression:
        cmd += ["--general-compress-type", compression]
    run([*cmd, path], what=f"createrepo_c {path.parent.parent.name}")
    return path / "repodata" / "repomd.xml"


def media_repo() -> str:
    return (f"[InstallMedia]\nname={PRODUCT} Linux {RELEASE}\nmediaid=None\nmetadata_expire=-1\n"
            "gpgcheck=0\ncost=500\n")


def treeinfo(timestamp: int) -> str:
    """.treeinfo as productmd writes it for Rocky's DVD."""
    parts = [
        "[header]\ntype = productmd.treeinfo\nversion = 1.2\n",
        f"[release]\nname = {PRODUCT} Linux\nshort = {PRODUCT}\nversion = {RELEASE}\n",
        f"[tree]\narch = x86_64\nbuild_timestamp = {timestamp}\nplatforms = x86_64\n"
        f"variants = {','.join(sorted(REPOS))}\n",
        f"[general]\narch = x86_64\nfamily = {PRODUCT} Linux\nname = {PRODUCT} Linux {RELEASE}\n"
        f"packagedir = BaseOS/Packages\nplatforms = x86_64\nrepository = BaseOS\n"
        f"timestamp = {timestamp}\nvariant = BaseOS\nversion = {RELEASE}\n",
    ]
    for repo in sorted(REPOS):
        parts.append(f"[variant-{repo}]\nid = {repo}\nname = {repo}\npackages = {repo}/Packages\n"
                     f"repository = {repo}\ntype = variant\nuid = {repo}\n")
    return "\n".join(parts)


def make_iso(mirror: Path, iso: Path, key: Path, scratch: Path) -> Path:
    """The DVD: graft each mirror repository's os/ directory as /REPO (xorriso reads the files
    where they are, so the ISO's RPMs are the mirror's bytes), plus key, media.repo, .treeinfo."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "media.repo").write_text(media_repo())
    (scratch / ".treeinfo").write_text(treeinfo(int(time.time())))
    iso.parent.mkdir(parents=True, exist_ok=True)
    # The repodata without repomd.xml.asc: install DVDs of this family carry an unsigned
    # repomd.xml (trust comes from CHECKSUM.asc over the whole ISO); the mirror keeps its .asc.
    grafts = []
    for repo in REPOS:
        root = repo_dir(mirror, repo)
        grafts.append(f"/{repo}/Packages={root / 'Packages'}")
        grafts += [f"/{repo}/repodata/{f.name}={f}" for f in sorted((root / "repodata").iterdir())
                   if f.name != "repomd.xml.asc"]
    grafts += [f"/{key.name}={key}", f"/media.repo={scratch / 'media.repo'}",
               f"/.treeinfo={scratch / '.treeinfo'}"]
    run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-R", "-J", "-joliet-long", "-iso-level", "3",
         "-V", ISO_LABEL, "-graft-points", *grafts], what="xorriso (DVD ISO)")
    return iso


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_checksum(iso: Path) -> Path:
    """CHECKSUM beside the ISO, in Rocky's format (a size comment, then the BSD-style line)."""
    out = iso.parent / "CHECKSUM"
    out.write_text(f"# {iso.name}: {iso.stat().st_size} bytes\n"
                   f"SHA256 ({iso.name}) = {sha256_file(iso)}\n")
    return out
