"""`cheat_aware`: marks a test that guards something users rely on.

In the spirit of the original LevitateOS `#[cheat_aware]` macro: each guarding test states what it
protects, how it could be cheated (made to pass without the behaviour being there) and what a user
suffers if it is. When such a test fails, the report repeats that statement (see conftest.py), so
nobody "fixes" it by weakening the check.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class CheatAware:
    protects: str
    cheats: tuple[str, ...]
    consequence: str
    severity: str

    def report(self) -> str:
        cheats = "; ".join(self.cheats)
        return (f"[{self.severity}] protects: {self.protects}\n"
                f"  do not cheat by: {cheats}\n  if cheated, users suffer: {self.consequence}")


def cheat_aware(*, protects: str, cheats: list[str] | tuple[str, ...], consequence: str,
                severity: str = "HIGH"):
    """Decorate a test that guards user-visible behaviour."""
    if not (protects and cheats and consequence):
        raise ValueError("cheat_aware needs protects, cheats and consequence")
    info = CheatAware(protects, tuple(cheats), consequence, severity)

    def decorate(test):
        test.cheat_aware = info
        return pytest.mark.cheat_aware(info)(test)

    return decorate
