"""RPM version comparison: rpmvercmp, EVR ordering and version-range matching.

A faithful port of rpm's `rpmvercmp()` (lib/rpmvercmp.c) and `rpmdsCompare()`, including the
`~` (sorts before everything, e.g. pre-releases) and `^` (sorts after the base, e.g. snapshots)
separators. Only ASCII letters and digits form segments, as in rpm.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

_DIGITS = frozenset("0123456789")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Dependency sense flags, as in rpm's header (RPMSENSE_LESS/GREATER/EQUAL).
LT, GT, EQ = 2, 4, 8
FLAGS_BY_OPERATOR = {"<": LT, "<=": LT | EQ, "=": EQ, "==": EQ, ">=": GT | EQ, ">": GT}
OPERATOR_BY_FLAGS = {LT: "<", LT | EQ: "<=", EQ: "=", GT | EQ: ">=", GT: ">"}
# repodata's primary.xml spells the flags out.
FLAGS_BY_REPODATA = {"LT": LT, "LE": LT | EQ, "EQ": EQ, "GE": GT | EQ, "GT": GT}


@functools.lru_cache(maxsize=65536)
def rpmvercmp(a: str, b: str) -> int:
    """Compare two version (or release) strings: -1, 0 or 1."""
    if a == b:
        return 0
    i, j, la, lb = 0, 0, len(a), len(b)
    while i < la or j < lb:
        while i < la and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < lb and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        kind = _DIGITS if ca in _DIGITS else _ALNUM - _DIGITS
        si, sj = i, j
        while i < la and a[i] in kind:
            i += 1
        while j < lb and b[j] in kind:
            j += 1
        seg_a, seg_b = a[si:i], b[sj:j]
        numeric = kind is _DIGITS
        if not seg_b:
            return 1 if numeric else -1
        if numeric:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


@dataclass(frozen=True, slots=True)
class EVR:
    """Epoch, version and release. A missing release (None) matches any release."""

    epoch: int
    version: str
    release: str | None = None

    @classmethod
    def parse(cls, text: str) -> "EVR":
        """Parse `[epoch:]version[-release]`."""
        epoch = 0
        if ":" in text:
            head, text = text.split(":", 1)
            epoch = int(head) if head else 0
        version, _, release = text.rpartition("-") if "-" in text else (text, "", "")
        return cls(epoch, version, release or None)

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.version}" if self.epoch else self.version
        return f"{text}-{self.release}" if self.release is not None else text


def evrcmp(a: EVR, b: EVR) -> int:
    """Compare EVRs as rpm does; the release is ignored when either side lacks one."""
    if a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    rc = rpmvercmp(a.version, b.version)
    if rc or a.release is None or b.release is None:
        return rc
    return rpmvercmp(a.release, b.release)


def ranges_overlap(flags_a: int, evr_a: EVR | None, flags_b: int, evr_b: EVR | None) -> bool:
    """Do `name FLAGS_A EVR_A` and `name FLAGS_B EVR_B` intersect? (rpmdsCompare)

    An unversioned side (no flags or no EVR) matches anything, as in rpm.
    """
    flags_a &= LT | GT | EQ
    flags_b &= LT | GT | EQ
    if not flags_a or not flags_b or evr_a is None or evr_b is None:
        return True
    sense = evrcmp(evr_a, evr_b)
    if sense < 0:
        return bool(flags_a & GT or flags_b & LT)
    if sense > 0:
        return bool(flags_a & LT or flags_b & GT)
    return bool(flags_a & flags_b & (EQ | LT | GT))
