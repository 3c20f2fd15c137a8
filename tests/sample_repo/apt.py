"""The dependency closure of the wanted Debian packages, resolved and downloaded by apt.

apt runs with a configuration of its own (APT_CONFIG, inside OUTDIR/apt): Debian 13 (trixie)
sources signed by the archive keyring, private package lists, an EMPTY dpkg status file (as if
nothing were installed) and private caches. The host's sources, lists, preferences and caches
are never read or touched, so a Debian 12 host builds the same trixie set as any other.
Resolving prints the URIs of the closure (`--print-uris` into an empty archive dir);
the SHA256 of each .deb comes from `apt-cache show` (print-uris gives MD5 or nothing). The
resolved list (name, version, sha256) is what the sample repository is cached by, so a Debian
point release (a new kernel ABI, a security update) is picked up by itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from levitate.util.errors import LevitateError
from levitate.util.run import run

from .debpkg import parse_fields
from .mapping import debvercmp

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"   # debian-archive-keyring (2023.3+) has trixie's keys
# main, and non-free-firmware for intel-microcode/amd64-microcode. Updates and security too:
# the kernel's fixes come through trixie-security, and a point release rebuilds by itself.
SOURCES = (
    f"deb [signed-by={KEYRING}] {MIRROR} trixie main non-free-firmware\n"
    f"deb [signed-by={KEYRING}] {MIRROR} trixie-updates main non-free-firmware\n"
    f"deb [signed-by={KEYRING}] {SECURITY} trixie-security main non-free-firmware\n"
)


def apt_conf(state: Path) -> str:
    """The whole apt configuration: the host's /etc/apt is not read at all (Dir::Etc::main and
    parts point into `state`), only amd64, no translations or Contents (CI starts bare)."""
    opts = {
        "Dir::Etc::main": "/dev/null",
        "Dir::Etc::parts": state / "apt.conf.d",
        "Dir::Etc::sourcelist": state / "sources.list",
        "Dir::Etc::sourceparts": state / "sources.list.d",
        "Dir::Etc::preferences": "/dev/null",
        "Dir::Etc::preferencesparts": state / "preferences.d",
        "Dir::State": state,
        "Dir::State::Lists": state / "lists",
        "Dir::Cache": state / "cache",
        "APT::Architecture": "amd64",
        "Acquire::Languages": "none",
        "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
    }
    return "".join(f'{k} "{v}";\n' for k, v in opts.items()) + 'APT::Architectures { "amd64"; };\n'


@dataclass(frozen=True)
class DebRef:
    """One .deb of the closure, as apt resolved it."""

    name: str
    version: str
    arch: str
    filename: str      # as apt names it in its archive cache (epoch ':' spelled %3a)
    url: str
    size: int
    sha256: str


# A kernel image package of one ABI (not -cloud-, -rt-, -unsigned or -dbg).
KERNEL_IMAGE = re.compile(r"linux-image-\d[^-]*-amd64")


class Apt:
    """apt-get/apt-cache with a private state directory (empty status, own caches)."""

    def __init__(self, state: Path):
        self.state = state
        self.lists = state / "lists"
        self.conf = state / "apt.conf"
        for d in ("apt.conf.d", "sources.list.d", "preferences.d", "lists/partial", "cache",
                  "empty-archives/partial"):
            (state / d).mkdir(parents=True, exist_ok=True)
        self.status = state / "status"
        if not self.status.exists():
            self.status.write_text("")
        for path, text in ((self.conf, apt_conf(state)), (state / "sources.list", SOURCES)):
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)

    def options(self, archives: Path) -> list[str]:
        opts = {
            "Dir::State::status": self.status,
            "Dir::Cache::archives": archives,
            "Dir::Cache::pkgcache": self.state / "pkgcache.bin",
            "Dir::Cache::srcpkgcache": self.state / "srcpkgcache.bin",
            "Debug::NoLocking": "1",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
            "APT::Install-Recommends": "0",
            "APT::Install-Suggests": "0",
        }
        return [a for k, v in opts.items() if v != "" for a in ("-o", f"{k}={v}")]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive", "APT_CONFIG": str(self.conf)}

    def ensure_lists(self) -> None:
        """apt needs its package lists; fetch them only when there are none."""
        if not any(self.lists.glob("*_Packages*")):
            run(["apt-get", *self.options(self.state / "empty-archives"), "update", "-qq"], env=self.env,
                what="apt-get update (Debian 13 lists)",
                hint="the sample repository is built from Debian's archive: is deb.debian.org reachable?")

    def lists_signature(self) -> str:
        """A cheap fingerprint of everything apt resolves from (its private lists and
        configuration): when it is unchanged, so is the closure, and a warm run asks apt nothing."""
        items = [SOURCES, apt_conf(self.state)]
        if self.lists.is_dir():
            for p in sorted(self.lists.iterdir()):
                if p.is_file() and p.name != "lock":
                    st = p.stat()
                    items.append((p.name, st.st_size, st.st_mtime_ns))
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()

    def newest_kernels(self, count: int) -> list[str]:
        """The `count` newest linux-image-ABI-amd64 packages, oldest first. trixie-security keeps
        every kernel it published, each under its own ABI (`uname -r`), so there are several."""
        opts = self.options(self.state / "empty-archives")
        proc = run(["apt-cache", *opts, "pkgnames", "linux-image-"], env=self.env, capture=True,
                   what="apt-cache pkgnames linux-image-")
        names = [n for n in proc.stdout.decode().split() if KERNEL_IMAGE.fullmatch(n)]
        proc = run(["apt-cache", *opts, "show", "--no-all-versions", *names], env=self.env, capture=True,
                   what="apt-cache show (kernel images)") if names else None
        versions = {}
        for stanza in proc.stdout.decode().split("\n\n") if proc else ():
            f = parse_fields(stanza)
            if "Package" in f:
                versions[f["Package"]] = f["Version"]
        if len(versions) < count:
            raise LevitateError(f"Debian's lists offer {len(versions)} kernel image(s), the sample set needs {count}",
                                "the base set takes the older kernel, the update repository the newer one")
        order = sorted(versions, key=functools.cmp_to_key(lambda a, b: debvercmp(versions[a], versions[b])))
        return order[-count:]

    def resolve(self, packages: list[str]) -> list[DebRef]:
        """The closure of `packages` (no Recommends), with each .deb's URL and SHA256."""
        proc = run(["apt-get", *self.options(self.state / "empty-archives"), "--print-uris", "-qq", "-y",
                    "--no-install-recommends", "install", *packages],
                   env=self.env, capture=True, what="apt-get --print-uris (resolving the sample closure)",
                   hint="is `apt-get update` done and deb.debian.org reachable?")
        uris = []
        for line in proc.stdout.decode().splitlines():
            if not line.startswith("'"):
                continue
            url, filename, size = line.split()[:3]
            name, quoted_version, arch = filename.removesuffix(".deb").split("_")
            version = urllib.parse.unquote(quoted_version)
            uris.append((name, version, arch, filename, url.strip("'"), int(size)))
        if not uris:
            raise LevitateError("apt resolved an empty closure",
                                "check the package names in tests/sample_repo/build.py")
        proc = run(["apt-cache", *self.options(self.state / "empty-archives"), "show", "--no-all-versions",
                    *(f"{n}={v}" for n, v, *_ in uris)],
                   env=self.env, capture=True, what="apt-cache show")
        sha = {}
        for stanza in proc.stdout.decode().split("\n\n"):
            f = parse_fields(stanza)
            if "Package" in f:
                sha[(f["Package"], f["Version"])] = f.get("SHA256", "")
        refs = []
        for name, version, arch, filename, url, size in uris:
            digest = sha.get((name, version))
            if not digest:
                raise LevitateError(f"apt-cache show gave no SHA256 for {name} {version}")
            refs.append(DebRef(name, version, arch, filename, url, size, digest))
        return sorted(refs, key=lambda r: r.name)

    def download(self, refs: list[DebRef], cache: Path) -> dict[str, Path]:
        """Fetch the exact resolved versions into `cache` (apt reuses and re-verifies files
        already there), check every SHA256 and drop .debs no longer in the closure."""
        (cache / "partial").mkdir(parents=True, exist_ok=True)
        missing = [r for r in refs if not (cache / r.filename).is_file()]
        if missing:
            run(["apt-get", *self.options(cache), "--download-only", "-qq", "-y", "--no-install-recommends",
                 "install", *(f"{r.name}={r.version}" for r in refs)],
                env=self.env, what="apt-get --download-only", hint="is deb.debian.org reachable?")
        paths = {}
        for r in refs:
            path = cache / r.filename
            if _sha256(path) != r.sha256:
                path.unlink(missing_ok=True)
                raise LevitateError(f"{r.filename}: SHA256 differs from apt's index; removed it",
                                    "run again to download it afresh")
            paths[r.name] = path
        wanted = {r.filename for r in refs}
        for stale in cache.glob("*.deb"):
            if stale.name not in wanted:
                stale.unlink()
        return paths


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
