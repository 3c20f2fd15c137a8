"""The synthetic `setup` and `filesystem` packages: what Debian's maintainer scripts would have
left on disk, shipped as files the way Rocky ships them (its `setup` package owns /etc/passwd and
friends, its `filesystem` package the directory skeleton and the merged-/usr symlinks).

Only what a booting, log-in-able system needs, and only what exists in the set: an alternative
link is made only when its target is shipped by some package and no package ships the link.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from .mapping import RpmEVR
from .repack import Entry
from .rpmspec import RpmPackage

# The "last password change" day written into shadow: fixed, so rebuilds are reproducible.
SHADOW_LASTCHG = 19500

# Links Debian's postinsts make with update-alternatives (or otherwise), pointing straight at
# the winner instead of through /etc/alternatives. (link, target relative to the link's dir).
ALTERNATIVES = (
    ("/usr/bin/sh", "bash"),           # dash's job on Debian; here, as on Rocky, bash is /bin/sh
    ("/usr/bin/awk", "mawk"),          # mawk.postinst
    ("/usr/bin/nawk", "mawk"),         # mawk.postinst (slave link)
    ("/usr/bin/pager", "less"),        # less.postinst (priority 77, beats util-linux's more: 50)
    ("/usr/bin/which", "which.debianutils"),  # debianutils.postinst
    ("/usr/bin/w", "w.procps"),        # procps.postinst (bookworm's and trixie's procps ship w itself)
    ("/usr/bin/mt", "mt-gnu"),         # cpio.postinst
    ("/usr/sbin/rmt", "rmt-tar"),      # tar.postinst
)

# Rocky's `filesystem`: the skeleton with Rocky's modes, and the merged-/usr compat links.
FILESYSTEM_DIRS = (
    ("/boot", 0o555), ("/dev", 0o755), ("/etc", 0o755), ("/home", 0o755), ("/media", 0o755),
    ("/mnt", 0o755), ("/opt", 0o755), ("/proc", 0o555), ("/root", 0o550), ("/run", 0o755),
    ("/srv", 0o755), ("/sys", 0o555), ("/tmp", 0o1777), ("/usr", 0o755), ("/usr/bin", 0o755),
    ("/usr/lib", 0o755), ("/usr/lib64", 0o755), ("/usr/libexec", 0o755), ("/usr/local", 0o755),
    ("/usr/local/bin", 0o755), ("/usr/local/lib", 0o755), ("/usr/local/sbin", 0o755),
    ("/usr/local/share", 0o755), ("/usr/sbin", 0o755), ("/usr/share", 0o755), ("/var", 0o755),
    ("/var/cache", 0o755), ("/var/lib", 0o755), ("/var/log", 0o755), ("/var/opt", 0o755),
    ("/var/spool", 0o755), ("/var/tmp", 0o1777),
)
FILESYSTEM_LINKS = (
    ("/bin", "usr/bin"), ("/sbin", "usr/sbin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"),
    ("/var/run", "../run"), ("/var/lock", "../run/lock"),
)
# No /etc/localtime: on Rocky no package makes it (anaconda or systemd-firstboot does), so with
# systemd-firstboot enabled an image without one asks for a time zone at first boot. Debian's
# tzdata.postinst would make it; the sample must not, or it hides that prompt.

# A file dependency only filelists.xml can resolve (createrepo_c lists only */bin/* and /etc/*
# paths in primary.xml), as real EL10 sets have: kept on `filesystem` so that path always runs.
# `setup` requires only the release package (which requires nothing and owns files as root
# only): it must be installable first, before any package that owns files by the group names
# it defines (rpm orders by Requires; loops break that).
FILESYSTEM_REQUIRES = ("/usr/share/zoneinfo/Etc/UTC",)


@dataclass(frozen=True)
class ShippedPaths:
    """What the repacked Debian packages ship: path -> kind ("dir", "file", "link")."""

    kinds: dict[str, str]

    def ships(self, path: str) -> bool:
        return path in self.kinds

    def ships_target(self, link: str, target: str) -> bool:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
        return self.kinds.get(resolved) in ("file", "link")


class PackageTree:
    """The files of a synthetic package, written under `root` and listed as its entries."""

    def __init__(self, root: Path):
        self.root = root
        self.entries: list[Entry] = []
        root.mkdir(parents=True, exist_ok=True)

    def dir(self, path: str, mode: int = 0o755) -> None:
        (self.root / path[1:]).mkdir(parents=True, exist_ok=True)
        self.entries.append(Entry(path, "dir", mode, "root", "root", path))

    def file(self, path: str, data: str | bytes, mode: int = 0o644, group: str = "root") -> None:
        dest = self.root / path[1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.encode() if isinstance(data, str) else data)
        self.entries.append(Entry(path, "file", mode, "root", group, path))

    def link(self, path: str, target: str) -> None:
        dest = self.root / path[1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)
        self.entries.append(Entry(path, "link", 0o777, "root", "root", path))


def read_master(path: Path) -> list[list[str]]:
    return [line.split(":") for line in path.read_text().splitlines() if line and not line.startswith("#")]


def account_files(passwd_master: Path, group_master: Path) -> dict[str, str]:
    """/etc/passwd, group, shadow, gshadow as base-passwd's update-passwd and passwd's
    `shadowconfig on` (pwconv, grpconv) leave them: passwords moved to the shadow files, locked."""
    users, groups = read_master(passwd_master), read_master(group_master)
    return {
        "/etc/passwd": "".join(":".join([u[0], "x", *u[2:]]) + "\n" for u in users),
        "/etc/shadow": "".join(f"{u[0]}:*:{SHADOW_LASTCHG}:0:99999:7:::\n" for u in users),
        "/etc/group": "".join(":".join([g[0], "x", *g[2:]]) + "\n" for g in groups),
        "/etc/gshadow": "".join(f"{g[0]}:*::{g[3] if len(g) > 3 else ''}\n" for g in groups),
    }


def login_shells(shells_file: Path | None, shells_d: list[Path]) -> str:
    """/etc/shells as debianutils' add-shell builds it on a merged-/usr system."""
    shells = []
    sources = ([shells_file] if shells_file else []) + sorted(shells_d)
    for src in sources:
        for line in src.read_text().splitlines():
            line = line.strip()
            if line.startswith("/"):
                for shell in (line, "/usr" + line if not line.startswith("/usr/") else None):
                    if shell and shell not in shells:
                        shells.append(shell)
    return "# /etc/shells: valid login shells\n" + "".join(s + "\n" for s in shells)


# base-files.postinst copies these from /usr/share/base-files (install_from_default).
BASE_FILES_DEFAULTS = (("profile", "/etc/profile"), ("motd", "/etc/motd"),
                       ("dot.profile", "/root/.profile"), ("dot.bashrc", "/root/.bashrc"))

PAM_STACKS = ("auth", "account", "password", "session", "session-noninteractive")


def _pam_profile(text: str) -> dict[str, list[str]]:
    """A /usr/share/pam-configs file: field -> lines (continuation lines start with whitespace)."""
    fields: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key].append(line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = [value.strip()] if value.strip() else []
    return fields


def pam_common_files(profiles: list[str]) -> dict[str, str]:
    """/etc/pam.d/common-*: what libpam-runtime's postinst (`pam-auth-update --package`) writes for
    the profiles whose Default is yes, highest priority first. A primary module's `success=end`
    jumps over the remaining primaries and pam_deny to pam_permit, as pam-auth-update does."""
    enabled = [f for f in map(_pam_profile, profiles) if f.get("default") == ["yes"]]
    enabled.sort(key=lambda f: -int((f.get("priority") or ["0"])[0]))
    files = {}
    for stack in PAM_STACKS:
        field = "session" if stack == "session-noninteractive" else stack
        primary, additional = [], []
        for prof in enabled:
            kind = (prof.get(f"{field}-type") or [""])[0].lower()
            lines = prof.get(f"{field}-initial" if kind == "primary" and not primary else field, [])
            (primary if kind == "primary" else additional).extend(lines)
        body = [line.replace("success=end", f"success={len(primary) - i}") for i, line in enumerate(primary)]
        if not body:
            body = ["[default=1]\tpam_permit.so"]
        body += ["requisite\tpam_deny.so", "required\tpam_permit.so"] + additional
        files[f"/etc/pam.d/common-{stack}"] = "".join(f"{stack.split('-')[0]}\t{line}\n" for line in body)
    return files


def make_setup(work: Path, shipped: ShippedPaths, passwd_master: Path, group_master: Path,
               shells: str, pam_profiles: list[str] = (), base_files: Path | None = None,
               nsswitch: str | None = None) -> tuple[RpmPackage, list[str]]:
    """The `setup` package and the log lines saying what it left out and why."""
    notes = []
    tree = PackageTree(work / "setup")
    for path, text in account_files(passwd_master, group_master).items():
        shadow = path in ("/etc/shadow", "/etc/gshadow")
        # Debian's modes (0640 root:shadow), not Rocky's 0000: Debian's chage and unix_chkpwd
        # are setgid shadow and must read them.
        tree.file(path, text, 0o640 if shadow else 0o644, "shadow" if shadow else "root")
    extra = {
        "/etc/shells": shells,
        "/etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
        "/etc/fstab": "# /etc/fstab: static file system information.\n",
        **pam_common_files(list(pam_profiles)),
    }
    if nsswitch is not None:
        extra["/etc/nsswitch.conf"] = nsswitch
    if base_files is not None:
        extra |= {dest: (base_files / name).read_text() for name, dest in BASE_FILES_DEFAULTS
                  if (base_files / name).is_file()}
    for path, text in extra.items():
        if shipped.ships(path):
            notes.append(f"setup: {path} is shipped by a Debian package, not adding it")
        else:
            tree.file(path, text)
    for link, target in ALTERNATIVES:
        if shipped.ships(link):
            notes.append(f"setup: {link} is shipped by a Debian package, no alternative link")
        elif not shipped.ships_target(link, target):
            notes.append(f"setup: no {target} in the set, no {link} link")
        else:
            tree.link(link, target)
    config = {e.path for e in tree.entries if e.kind == "file"}
    pkg = RpmPackage(
        name="setup", evr=RpmEVR(None, "10.0", "1"), arch="noarch",
        summary="Accounts, login shells and alternatives links Debian creates in maintainer scripts",
        description=("The files Debian's maintainer scripts create (base-passwd, passwd's "
                     "shadowconfig, debianutils' add-shell, update-alternatives, pam-auth-update, "
                     "libc-bin's /etc/nsswitch.conf, base-files' /etc/profile and root's dot files), shipped "
                     "as plain files the way Rocky Linux ships them in its setup package.\n"
                     "Built for LevitateOS tests only."),
        tree=tree.root, entries=tree.entries, config=config, license="Public Domain",
        provides=["/bin/sh"] if any(e.path == "/usr/bin/sh" for e in tree.entries) else [],
        requires=["system-release"],     # the release package (el10.py), as the EL10 trait asks
    )
    return pkg, notes


def make_filesystem(work: Path, shipped: ShippedPaths) -> tuple[RpmPackage, list[str]]:
    notes = []
    tree = PackageTree(work / "filesystem")
    # filesystem.spec: `%dir %attr(555,root,root) /` -- the package owns the root directory.
    tree.dir("/", 0o555)
    for path, mode in FILESYSTEM_DIRS:
        # A directory a Debian package ships stays its (rpm calls two owners of one directory
        # with different modes a file conflict, and base-files' /root is 0700, not 0550).
        if not shipped.ships(path):
            tree.dir(path, mode)
    for path, target in FILESYSTEM_LINKS:
        if shipped.ships(path):
            notes.append(f"filesystem: {path} is shipped by a Debian package, no link")
        elif target.startswith("../usr/share") and not shipped.ships_target(path, target):
            raise RuntimeError(f"filesystem: {path} would point at {target}, which no package ships")
        else:
            tree.link(path, target)
    pkg = RpmPackage(
        name="filesystem", evr=RpmEVR(None, "10.0", "1"), arch="noarch",
        summary="The basic directory layout and the merged-/usr symlinks",
        description=("/bin, /sbin, /lib and /lib64 as symlinks into /usr, the directory skeleton "
                     "with Rocky Linux's modes.\nBuilt for LevitateOS tests only."),
        tree=tree.root, entries=tree.entries, license="Public Domain",
        requires_pre=["setup"], requires=list(FILESYSTEM_REQUIRES),
    )
    return pkg, notes
