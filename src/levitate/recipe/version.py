"""Versions and constraints of recipe dependencies (`"openssl >= 3.0"`, `"zlib ^1.2, <1.4"`).

Comparison rule:
  * When both versions parse as semver (an optional `v`, one to three numeric components with the
    missing ones taken as 0, an optional `-prerelease` and `+build`), semver precedence decides:
    numeric components, then a prerelease sorts before its release, prerelease identifiers
    compared numerically or lexically; build metadata is ignored.
  * Otherwise (`1.1.1w`, `2024.01a`, `r1234`) the RPM algorithm decides (rpmvercmp): the strings
    are cut into runs of digits and runs of letters, digit runs compare as numbers, letter runs
    as strings, a digit run is newer than a letter run, and a longer version with an equal start
    is newer. So `1.1.1w > 1.1.1v > 1.1.1`, `2024.10 > 2024.9`.

Constraint operators: `>=`, `>`, `<=`, `<`, `=` (also `==`), `!=`, `^` (compatible: same first
non-zero component: `^1.2.3` is `>=1.2.3, <2.0.0`, `^0.2.3` is `>=0.2.3, <0.3.0`), `~`
(`~1.2.3` is `>=1.2.3, <1.3.0`; `~1` is `>=1, <2`), and a bare version means `=`. Several
constraints are combined with commas and must all hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..rpm.vercmp import rpmvercmp
from ..util.errors import LevitateError

_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
_OPS = (">=", "<=", "==", "!=", ">", "<", "=", "^", "~")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]*")


class VersionError(LevitateError):
    """A version or constraint that does not parse."""


def _semver(text: str):
    m = _SEMVER.fullmatch(text.strip())
    if not m:
        return None
    nums = tuple(int(g) if g else 0 for g in m.group(1, 2, 3))
    pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                for p in m.group(4).split(".")) if m.group(4) else None
    return nums, pre


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older, equal to or newer than `b`."""
    sa, sb = _semver(str(a)), _semver(str(b))
    if sa and sb:
        if sa[0] != sb[0]:
            return -1 if sa[0] < sb[0] else 1
        pa, pb = sa[1], sb[1]
        if pa == pb:
            return 0
        if pa is None:
            return 1
        if pb is None:
            return -1
        return -1 if pa < pb else 1
    return rpmvercmp(str(a).lstrip("v") if sa else str(a), str(b).lstrip("v") if sb else str(b))


def _numeric_parts(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text.split("-", 1)[0])]


def _upper_bound(op: str, text: str) -> str:
    """The exclusive upper bound of `^text` or `~text`."""
    parts = _numeric_parts(text)
    if not parts:
        raise VersionError(f"'{op}{text}' needs a numeric version", "write e.g. ^1.2 or ~1.2.3")
    if op == "^":
        for i, p in enumerate(parts):
            if p != 0 or i == len(parts) - 1:
                bumped = parts[:i] + [p + 1]
                break
    else:
        bumped = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
    return ".".join(map(str, bumped))


@dataclass(frozen=True)
class Constraint:
    """One comparison, e.g. `>= 3.0`."""

    op: str
    version: str

    def allows(self, version: str) -> bool:
        c = compare(version, self.version)
        if self.op in ("^", "~"):
            return c >= 0 and compare(version, _upper_bound(self.op, self.version)) < 0
        return {">=": c >= 0, ">": c > 0, "<=": c <= 0, "<": c < 0, "=": c == 0, "==": c == 0,
                "!=": c != 0}[self.op]

    def __str__(self) -> str:
        return f"{self.op}{self.version}" if self.op in "^~" else f"{self.op} {self.version}"


def parse_constraints(text: str) -> tuple[Constraint, ...]:
    """`">= 1.2, < 2"` -> constraints that must all hold (an empty text allows anything)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        op = next((o for o in _OPS if part.startswith(o)), "=")
        ver = part[len(op):].strip() if part.startswith(op) else part
        if not ver or " " in ver:
            raise VersionError(f"bad version constraint '{part}'",
                               "write e.g. '>= 1.2', '^1.2', '~1.2.3' or '1.2.3', comma-separated")
        out.append(Constraint("==" if op == "==" else op, ver))
    return tuple(out)


@dataclass(frozen=True)
class Requirement:
    """A dependency: a recipe name and the constraints its version must meet."""

    name: str
    constraints: tuple[Constraint, ...] = ()

    def allows(self, version: str) -> bool:
        return all(c.allows(version) for c in self.constraints)

    def __str__(self) -> str:
        return self.name + ("" if not self.constraints else
                            " " + ", ".join(str(c) for c in self.constraints))


def parse_requirement(text: str) -> Requirement:
    """`"openssl >= 3.0"`, `"zlib"`, `"foo^1.2"`, `"bar >=1, <2"` -> Requirement."""
    text = str(text).strip()
    m = _NAME.match(text)
    if not m:
        raise VersionError(f"bad dependency '{text}'", "write a recipe name, optionally followed "
                           "by a constraint, e.g. 'openssl >= 3.0'")
    name = m.group(0)
    rest = text[m.end():].strip()
    # a name may end in digits and dots ("python3.11"); a constraint starts with an operator
    if rest and not rest.startswith(_OPS):
        raise VersionError(f"bad dependency '{text}'",
                           "put an operator before the version, e.g. 'openssl >= 3.0' or 'zlib =1.3'")
    return Requirement(name, parse_constraints(rest))
