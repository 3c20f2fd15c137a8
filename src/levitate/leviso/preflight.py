"""`leviso preflight`: check every host tool a piece of work needs, up front, with install commands.

One table says which tool each kind of work needs and which package provides it on Debian/Ubuntu,
Fedora/Rocky and Arch, so the error a user sees names the exact command to run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..util.errors import MissingToolError


@dataclass(frozen=True)
class HostTool:
    name: str               # command name, or an absolute path for data files
    purpose: str
    debian: str             # package names
    fedora: str
    arch: str
    optional: bool = False  # missing: a warning, not an error
    probe: Callable[[], bool] | None = None    # for what is not one command or file

    def present(self) -> bool:
        if self.probe is not None:
            return self.probe()
        if self.name.startswith("/"):
            return Path(self.name).exists()
        return shutil.which(self.name) is not None


def _ovmf_present() -> bool:
    from .qemu import find_ovmf
    try:
        find_ovmf()
    except Exception:
        return False
    return True


HOST_EFI = "/usr/lib/systemd/boot/efi"

# Work -> the tools it needs.
TOOLS: dict[str, tuple[HostTool, ...]] = {
    "extract": (
        HostTool("chroot", "configure the tree with its own tools", "coreutils", "coreutils", "coreutils"),
        HostTool("mount", "bind /dev and /proc into the configuration chroot", "mount", "util-linux", "util-linux"),
        HostTool("rpm", "register packages in the tree's RPM database when the tree has no rpm",
                 "rpm", "rpm", "rpm-tools", optional=True),
    ),
    "sample-repo": (
        HostTool("apt-get", "resolve and download the Debian packages the sample repository repacks",
                 "apt", "-", "-"),
        HostTool("dpkg-deb", "unpack Debian packages", "dpkg", "dpkg", "dpkg"),
        HostTool("rpmbuild", "repack packages as RPMs", "rpm", "rpm-build", "rpm-tools"),
        HostTool("rpmsign", "sign the sample RPMs", "rpm", "rpm-sign", "rpm-tools"),
        HostTool("createrepo_c", "write repodata", "createrepo-c", "createrepo_c", "createrepo_c"),
        HostTool("gpg", "make and use the sample signing key", "gnupg", "gnupg2", "gnupg"),
        HostTool("xorriso", "wrap the sample repository in a DVD-layout ISO", "xorriso", "xorriso", "libisoburn"),
    ),
    "image": (
        HostTool("mkfs.erofs", "build the EROFS base image and live layer", "erofs-utils", "erofs-utils",
                 "erofs-utils"),
        HostTool("mksquashfs", "build a squashfs image when the kernel cannot mount EROFS", "squashfs-tools",
                 "squashfs-tools", "squashfs-tools", optional=True),
    ),
    "initramfs": (
        HostTool("depmod", "index the initramfs's kernel modules", "kmod", "kmod", "kmod"),
    ),
    "iso": (
        HostTool("xorriso", "write the hybrid UEFI ISO", "xorriso", "xorriso", "libisoburn"),
        HostTool("mkfs.fat", "create the ESP image", "dosfstools", "dosfstools", "dosfstools"),
        HostTool("mcopy", "fill the ESP image without mounting it", "mtools", "mtools", "mtools"),
        HostTool(f"{HOST_EFI}/linuxx64.efi.stub", "EFI stub and systemd-boot when the package set has none",
                 "systemd-boot-efi", "systemd-boot-unsigned", "systemd", optional=True),
    ),
    "vm": (
        HostTool("qemu-system-x86_64", "boot the ISO (`leviso test`, `leviso run`)", "qemu-system-x86",
                 "qemu-system-x86-core", "qemu-system-x86"),
        HostTool("qemu-img", "create disk images for `leviso run --disk`", "qemu-utils", "qemu-img", "qemu-img"),
        HostTool("OVMF", "UEFI firmware for QEMU (or set OVMF_CODE and OVMF_VARS)", "ovmf", "edk2-ovmf",
                 "edk2-ovmf", probe=_ovmf_present),
    ),
}

DISTROS = (("Debian/Ubuntu", "debian", "sudo apt-get install -y"),
           ("Fedora/Rocky", "fedora", "sudo dnf install -y"),
           ("Arch", "arch", "sudo pacman -S --needed"))


def install_commands(tools: list[HostTool]) -> list[str]:
    lines = []
    for label, attr, command in DISTROS:
        packages = sorted({p for t in tools for p in getattr(t, attr).split() if p != "-"})
        if packages:
            lines.append(f"{label}: {command} {' '.join(packages)}")
    return lines


def check(works: list[str]) -> tuple[list[HostTool], list[HostTool]]:
    """Return (missing required, missing optional) tools for the given kinds of work."""
    seen, missing, optional = set(), [], []
    for work in works:
        for tool in TOOLS[work]:
            if tool.name in seen:
                continue
            seen.add(tool.name)
            if not tool.present():
                (optional if tool.optional else missing).append(tool)
    return missing, optional


def require(works: list[str]) -> None:
    """Raise MissingToolError naming every missing tool and the install commands."""
    missing, _ = check(works)
    if missing:
        names = ", ".join(t.name for t in missing)
        raise MissingToolError(f"missing host tools: {names}", "; ".join(install_commands(missing)))


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise MissingToolError(f"{what} needs root (it sets owners and runs the tree's tools in a chroot)",
                               "run it with sudo")


def report(works: list[str]) -> tuple[str, bool]:
    """Text for `leviso preflight` and whether everything required is present."""
    lines, ok = [], True
    width = max(len(t.name) for work in works for t in TOOLS[work])
    for work in works:
        lines.append(f"{work}:")
        for tool in TOOLS[work]:
            state = "ok" if tool.present() else ("missing (optional)" if tool.optional else "MISSING")
            ok &= tool.present() or tool.optional
            lines.append(f"  {tool.name:<{width}}  {state:<18} {tool.purpose}")
    missing, optional = check(works)
    if missing or optional:
        lines.append("install with:")
        lines += [f"  {line}" for line in install_commands(missing + optional)]
    return "\n".join(lines), ok
