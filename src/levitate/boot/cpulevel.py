"""x86-64 micro-architecture levels (psABI "x86-64-v2/v3/v4") as the CPU flags /proc/cpuinfo shows.

Used twice: the build host must run the tree's tools (configure.check_cpu_level), and the
initramfs's /init refuses, in one line, a CPU the system's binaries cannot run on. Standard
library only: the installed system imports it to rebuild its initramfs.
"""

from __future__ import annotations

from pathlib import Path

from ..util.errors import LevitateError

# The profile's [rootfs] cpu_level as the base image carries it, for recboot (one line, may be empty)
CPU_LEVEL_FILE = Path("/usr/lib/levitate/cpu-level")

CPU_LEVEL_FLAGS = {
    "x86-64-v2": {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"},
    "x86-64-v3": {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"},
    "x86-64-v4": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}
# What a user recognises a level by (in /init's message)
CPU_LEVEL_SUMMARY = {"x86-64-v2": "SSE4.2, POPCNT", "x86-64-v3": "AVX2, BMI2, FMA, MOVBE", "x86-64-v4": "AVX-512"}


def required_flags(level: str) -> list[str]:
    """Every /proc/cpuinfo flag `level` needs (its own and the lower levels'), sorted; none for ""."""
    if not level:
        return []
    if level not in CPU_LEVEL_FLAGS:
        raise LevitateError(f"unknown cpu_level '{level}' in the profile", f"use one of {', '.join(CPU_LEVEL_FLAGS)}")
    needed: set[str] = set()
    for name, flags in CPU_LEVEL_FLAGS.items():
        needed |= flags
        if name == level:
            break
    return sorted(needed)


def installed_cpu_level(root: Path) -> str:
    """The level the installed system at `root` was built for ("" when the file is absent or empty)."""
    path = root / CPU_LEVEL_FILE.relative_to("/")
    level = path.read_text().strip() if path.is_file() else ""
    if level and level not in CPU_LEVEL_FLAGS:
        raise LevitateError(f"{CPU_LEVEL_FILE} names an unknown CPU level {level!r}",
                            f"write one of {', '.join(CPU_LEVEL_FLAGS)} there, or empty it to skip the check")
    return level
