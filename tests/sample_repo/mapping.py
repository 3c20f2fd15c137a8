"""Debian -> RPM metadata mapping: versions, relationship fields, merged-/usr paths.

Pure functions, no I/O, so the rules the sample repository is built by are unit-tested on their
own. Debian version ordering (dpkg's algorithm) is implemented here too: the builder checks its
Conflicts and its dependency closure against the Debian data it came from, independently of the
project's RPM code (the code under test must not shape its own test input).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Versions

_RPM_VERSION_BAD = re.compile(r"[^A-Za-z0-9._+~^]")


@dataclass(frozen=True)
class DebVersion:
    """A Debian version split as dpkg splits it: [epoch:]upstream[-revision]."""

    epoch: int
    upstream: str
    revision: str  # "" when the version has none

    @classmethod
    def parse(cls, text: str) -> "DebVersion":
        text = text.strip()
        epoch = 0
        if ":" in text:
            head, text = text.split(":", 1)
            epoch = int(head)
        upstream, sep, revision = text.rpartition("-")
        if not sep:
            upstream, revision = text, ""
        if not upstream:
            raise ValueError(f"bad Debian version {text!r}")
        return cls(epoch, upstream, revision)

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


@dataclass(frozen=True)
class RpmEVR:
    epoch: int | None  # None: the Debian version had no epoch (RPM header gets no Epoch tag)
    version: str
    release: str

    def __str__(self) -> str:
        text = f"{self.version}-{self.release}"
        return f"{self.epoch}:{text}" if self.epoch is not None else text


def deb_to_evr(version: str) -> RpmEVR:
    """Debian version -> RPM epoch/version/release.

    The revision becomes the release ("0" when there is none: dpkg treats a missing revision as
    "0", and RPM must not leave it out of a requirement, or `libc-bin (>> 2.36)` would turn into
    `> 2.36`, which 2.36-9 does not satisfy under RPM's "missing release matches any" rule). RPM
    forbids '-' (and ':') inside Version, so those upstream characters become '_' (rpmvercmp
    treats '_' as a separator, as dpkg does not: close enough for the versions in this set).
    """
    v = DebVersion.parse(version)
    upstream = _RPM_VERSION_BAD.sub("_", v.upstream)
    release = _RPM_VERSION_BAD.sub("_", v.revision) if v.revision else "0"
    return RpmEVR(v.epoch if v.epoch else None, upstream, release)


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp (lib/dpkg/version.c)."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and a[i].isdigit() and j < lb and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def debvercmp(a: str, b: str) -> int:
    """Compare two Debian versions as dpkg does: negative, 0 or positive."""
    va, vb = DebVersion.parse(a), DebVersion.parse(b)
    if va.epoch != vb.epoch:
        return va.epoch - vb.epoch
    return _verrevcmp(va.upstream, vb.upstream) or _verrevcmp(va.revision, vb.revision)


# ---------------------------------------------------------------------------------------------
# Relationship fields (Depends, Pre-Depends, Provides, Conflicts, Recommends)

# Debian operator -> RPM operator. "<" and ">" are Debian's deprecated spellings of <= and >=.
_OPERATORS = {">=": ">=", "<=": "<=", "=": "=", ">>": ">", "<<": "<", ">": ">=", "<": "<="}

_REL = re.compile(r"""^\s*(?P<name>[a-z0-9][a-z0-9+.\-]*)(?::[a-z0-9\-]+)?\s*   # name[:arch]
                      (?:\(\s*(?P<op><<|<=|=|>=|>>|<|>)\s*(?P<ver>[0-9][^)\s]*)\s*\))?\s*
                      (?:\[[^\]]*\]\s*)?(?:<[^>]*>\s*)*$""", re.X)


@dataclass(frozen=True)
class Rel:
    """One Debian relation: `name (op version)`, arch qualifier dropped."""

    name: str
    op: str | None = None
    version: str | None = None

    def to_rpm(self) -> str:
        if self.op is None:
            return self.name
        return f"{self.name} {_OPERATORS[self.op]} {deb_to_evr(self.version)}"

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


def parse_relations(field: str | None) -> list[list[Rel]]:
    """A Depends-style field: comma-separated groups of '|'-separated alternatives."""
    if not field or not field.strip():
        return []
    groups = []
    for group in " ".join(field.split()).split(","):
        if not group.strip():
            continue
        alts = []
        for alt in group.split("|"):
            m = _REL.match(alt)
            if not m:
                raise ValueError(f"cannot parse Debian relation {alt.strip()!r} in {field!r}")
            alts.append(Rel(m["name"], m["op"], m["ver"]))
        groups.append(alts)
    return groups


def group_to_rpm(group: list[Rel]) -> str:
    """An alternative group -> one RPM requirement: plain, or a rich `(a or b >= 2-0)`."""
    if len(group) == 1:
        return group[0].to_rpm()
    return "(" + " or ".join(r.to_rpm() for r in group) + ")"


def relations_to_rpm(field: str | None) -> list[str]:
    return [group_to_rpm(g) for g in parse_relations(field)]


# ---------------------------------------------------------------------------------------------
# Evaluating relations against the set (Debian semantics)

@dataclass(frozen=True)
class Member:
    """What a package of the set offers to relations: its name, version and Provides."""

    name: str
    version: str
    provides: tuple[Rel, ...] = ()


def satisfies(rel: Rel, member: Member) -> bool:
    """Does `member` satisfy `rel`, by its own name or a Provides, under Debian's rules?

    As in dpkg, an unversioned Provides satisfies only unversioned relations.
    """
    candidates = []
    if member.name == rel.name:
        candidates.append(member.version)
    for p in member.provides:
        if p.name == rel.name:
            if rel.op is None:
                return True
            if p.version is not None:
                candidates.append(p.version)
    for version in candidates:
        if rel.op is None or _version_ok(version, rel.op, rel.version):
            return True
    return False


def _version_ok(have: str, op: str, want: str) -> bool:
    c = debvercmp(have, want)
    return {"<<": c < 0, "<=": c <= 0, "<": c <= 0, "=": c == 0,
            ">=": c >= 0, ">": c >= 0, ">>": c > 0}[op]


# ---------------------------------------------------------------------------------------------
# Merged /usr

_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def merged_usr(path: str) -> str:
    """/bin/x -> /usr/bin/x and likewise for sbin and lib*: the RPMs ship a merged-/usr tree,
    as Rocky's do; /bin etc. become symlinks owned by the synthetic `filesystem` package."""
    parts = path.split("/", 2)
    if len(parts) >= 2 and parts[0] == "" and parts[1] in _MERGED:
        return "/usr" + path
    return path


def merged_link_target(link_path: str, target: str, new_link_path: str) -> str:
    """Rewrite a symlink's target for the merged tree, keeping relative links relative.

    `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-...` becomes an absolute link into
    /usr/lib; a relative link is resolved from its ORIGINAL place, mapped, and made relative to
    its new place (`/bin/x -> ../usr/bin/y` must not become `/usr/bin/x -> ../usr/bin/y`).
    """
    if target.startswith("/"):
        return merged_usr(target)
    absolute = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    mapped = merged_usr(absolute)
    if mapped == absolute and new_link_path == link_path:
        return target
    return posixpath.relpath(mapped, posixpath.dirname(new_link_path))
