"""The base system's tree: a copy of WORKDIR/rootfs with the profile's base settings and overlay.

WORKDIR/rootfs (part 1's result) is never modified; every build starts from a fresh copy, so
changing or removing an overlay file gives the same image as a clean build. Nothing live-only
goes here: this tree is what gets installed.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..util.errors import LevitateError
from ..util.run import run
from .chroot import in_chroot, tree_has
from .profile import Profile

log = logging.getLogger("levitate")

NETWORKD_WIRED = """\
# LevitateOS: bring wired links up with DHCP.
[Match]
Type=ether

[Network]
DHCP=yes
"""

LOGIND = """\
# LevitateOS: a laptop's lid does not suspend the system.
[Login]
HandleLidSwitch=ignore
HandleLidSwitchExternalPower=ignore
HandleLidSwitchDocked=ignore
"""


def copy_tree(source: Path, dest: Path) -> None:
    """A faithful copy (owners, modes, hardlinks, xattrs incl. capabilities, timestamps)."""
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    run(["cp", "-a", "--reflink=auto", f"{source}/.", str(dest)], what=f"copying {source} to {dest}")


def write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(text)
    os.chmod(target, mode)


def os_release_text(profile: Profile, base: str = "") -> str:
    o = profile.os_release
    fields = {"NAME": o.name, "ID": o.id, "ID_LIKE": o.id_like, "VERSION_ID": o.version_id,
              "VERSION": o.version_id, "PRETTY_NAME": o.pretty_name, "HOME_URL": o.home_url,
              "ANSI_COLOR": "0;36"}
    lines = [f'{key}="{value}"' for key, value in fields.items() if value]
    if base:
        lines.append(f'LEVITATE_BASE="{base}"')
    return "\n".join(lines) + "\n"


def _base_os(root: Path) -> str:
    """The PRETTY_NAME of the distribution the packages came from (for os-release)."""
    for path in ("usr/lib/os-release", "etc/os-release"):
        target = root / path
        if target.is_file() and not target.is_symlink():
            for line in target.read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip('"')
    return ""


def apply_base_settings(root: Path, profile: Profile) -> None:
    """What every LevitateOS system has, installed or live."""
    system = profile.system
    (root / "etc/os-release").unlink(missing_ok=True)
    write(root, "/usr/lib/os-release", os_release_text(profile, _base_os(root)))
    os.symlink("../usr/lib/os-release", root / "etc/os-release")
    write(root, "/etc/hostname", system.hostname + "\n")
    machine_id = root / "etc/machine-id"
    if machine_id.exists() or machine_id.is_symlink():
        machine_id.unlink()
    machine_id.touch()                     # empty: systemd sets it on first boot
    os.chmod(machine_id, 0o444)
    write(root, "/etc/systemd/logind.conf.d/10-levitate-lid.conf", LOGIND)
    enable = list(system.enable)
    if system.network == "systemd-networkd":
        write(root, "/etc/systemd/network/80-levitate-wired.network", NETWORKD_WIRED)
        enable.append("systemd-networkd.service")
    elif system.network != "NetworkManager":
        raise LevitateError(f"unknown [system] network '{system.network}'", "use NetworkManager or systemd-networkd")
    _units(root, enable, system.disable, system.default_target)


def _units(root: Path, enable, disable, default_target: str) -> None:
    """Enable/disable units after presets, with the tree's own systemctl (offline in a chroot)."""
    if not tree_has(root, "/usr/bin/systemctl"):
        raise LevitateError("the tree has no systemctl", "the package set must include systemd")
    for unit in sorted(set(disable)):
        in_chroot(root, ["systemctl", "disable", unit], what=f"systemctl disable {unit}")
    for unit in sorted(set(enable)):
        in_chroot(root, ["systemctl", "enable", unit], what=f"systemctl enable {unit}")
    in_chroot(root, ["systemctl", "set-default", default_target], what=f"systemctl set-default {default_target}")


def apply_overlay(overlay: Path, root: Path) -> None:
    """Copy an overlay tree over root (archiso's airootfs): files replace, directories merge."""
    if overlay.is_dir():
        run(["cp", "-a", "--no-preserve=ownership", f"{overlay}/.", str(root)], what=f"applying overlay {overlay}")
