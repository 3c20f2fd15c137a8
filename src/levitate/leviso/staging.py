"""The base system's tree: a copy of WORKDIR/rootfs with the profile's base settings and overlay.

WORKDIR/rootfs (part 1's result) is never modified; every build starts from a fresh copy, so
changing or removing an overlay file gives the same image as a clean build. Nothing live-only
goes here: this tree is what gets installed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from ..util.errors import LevitateError
from ..util.files import in_tree, write_atomic
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


# Rocky's release package ships 85-display-manager, 90-default and 99-default-disable.preset, systemd
# 90-systemd.preset. systemd.preset(5): files from every preset directory are read in the order of
# their names and the first line that matches a unit wins, so 05- comes before all of them. It is
# the distribution's policy, hence /usr/lib; an administrator's /etc file of the same name replaces it.
PRESET_FILE = "/usr/lib/systemd/system-preset/05-levitateos.preset"

_NAME = re.compile(r"[A-Za-z0-9_+.@-]+(/[A-Za-z0-9_+.@-]+)*")
# systemd's PASSWORD_UNPROVISIONED: sysusers (v254+) gives a root it creates this password, and
# firstboot's should_configure() then treats root as not configured and asks for a password.
UNPROVISIONED = "!unprovisioned"
LOCKED = "!*"                          # systemd's PASSWORD_LOCKED_AND_INVALID


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
    # Empty: systemd makes an ID at boot and commits it once / is writable, without first-boot
    # semantics (machine-id(5): only a missing file or "uninitialized" is a first boot). The
    # firstboot defaults and the preset file below are for when a boot is a first boot anyway.
    machine_id.touch()
    os.chmod(machine_id, 0o444)
    write(root, "/etc/systemd/logind.conf.d/10-levitate-lid.conf", LOGIND)
    firstboot_defaults(root, system.timezone, system.locale, system.keymap)
    lock_unprovisioned_root(root)
    mask_dracut(root)
    kernel_install_layout(root)
    enable = list(system.enable)
    if system.network == "systemd-networkd":
        write(root, "/etc/systemd/network/80-levitate-wired.network", NETWORKD_WIRED)
        enable.append("systemd-networkd.service")
    elif system.network != "NetworkManager":
        raise LevitateError(f"unknown [system] network '{system.network}'", "use NetworkManager or systemd-networkd")
    write(root, PRESET_FILE, preset_text(enable, system.disable, system.default_target))
    _units(root, enable, system.disable, system.default_target)


def _checked_name(value: str, setting: str, example: str) -> str:
    if not _NAME.fullmatch(value) or ".." in value.split("/"):
        raise LevitateError(f"[system] {setting} '{value}' is not a valid name", f"use a name like {example}")
    return value


def firstboot_defaults(root: Path, timezone: str, locale: str, keymap: str) -> None:
    """The time zone, locale and console keymap unless the tree has them, so systemd-firstboot finds
    nothing to ask (the link is the one timedatectl writes). It is enabled on EL10 and, on a first
    boot (machine-id missing or "uninitialized"), prompts on the console for each missing one and
    waits for an answer."""
    zone = _checked_name(timezone, "timezone", "UTC or Europe/Berlin")
    files = (("/etc/locale.conf", f"LANG={_checked_name(locale, 'locale', 'C.UTF-8')}"),
             ("/etc/vconsole.conf", f"KEYMAP={_checked_name(keymap, 'keymap', 'us or de')}"))
    if not os.path.lexists(root / "etc/localtime"):
        zoneinfo = root / "usr/share/zoneinfo"
        if zoneinfo.is_dir() and not (zoneinfo / zone).is_file():
            raise LevitateError(f"[system] timezone '{zone}' is not in the tree's /usr/share/zoneinfo",
                                "use a zone name from tzdata, e.g. UTC or Europe/Berlin")
        os.symlink(f"../usr/share/zoneinfo/{zone}", root / "etc/localtime")
    for path, line in files:
        at = root / path.lstrip("/")
        if in_tree(root, at) is None:
            if os.path.lexists(at):        # a dangling link counts as missing for firstboot too
                log.info("    %s is a link to nothing in the tree: replaced with %s", path, line)
                os.unlink(at)
            write(root, path, line + "\n")


def lock_unprovisioned_root(root: Path) -> None:
    """A root password left for firstboot to ask for becomes a locked one: the installed system's
    root stays locked until `passwd` in recchroot (the live layer empties it)."""
    shadow = root / "etc/shadow"
    if shadow.is_symlink() or not shadow.is_file():
        return
    lines = shadow.read_text().splitlines()
    changed = [re.sub(rf"^root:{re.escape(UNPROVISIONED)}:", f"root:{LOCKED}:", line) for line in lines]
    if changed != lines:
        st = shadow.stat()
        write_atomic(shadow, "\n".join(changed) + "\n", perm=st.st_mode & 0o7777, owner=(st.st_uid, st.st_gid))


def mask_dracut(root: Path) -> None:
    """kernel-core requires dracut, whose kernel-install plugins would build a dracut initramfs
    whenever a kernel is installed (kernel-core's %posttrans runs `kernel-install add`). LevitateOS
    boots its own busybox initramfs: mask them the way kernel-install(8) documents, a same-named
    link to /dev/null in /etc/kernel/install.d."""
    plugins = root / "usr/lib/kernel/install.d"
    if plugins.is_symlink() or not plugins.is_dir():
        return
    for plugin in sorted(plugins.glob("*dracut*.install")):
        masks = root / "etc/kernel/install.d"
        masks.mkdir(parents=True, exist_ok=True)
        mask = masks / plugin.name
        if not os.path.lexists(mask):
            os.symlink("/dev/null", mask)


# kernel-install(8), systemd 257: layout=other is "some other layout not understood natively by
# kernel-install": 90-loaderentry.install acts only for layout bls and 90-uki-copy.install only for
# uki, and kernel-install makes the $BOOT/ENTRY-TOKEN/KVER directory only for bls. Left on auto,
# the layout is bls once $BOOT/loader/entries.srel says "type1" (recboot's `bootctl install` writes
# it) or $BOOT/ENTRY-TOKEN exists (ESP/levitateos, where recboot puts the kernels, is one when the
# token is os-release's ID), and a second entry, with no initramfs (dracut's plugin is masked),
# would join LevitateOS's. /etc/kernel/install.conf is the first file kernel-install reads
# (systemd installs its commented example as /usr/lib/kernel/install.conf).
KERNEL_INSTALL_CONF = """\
# LevitateOS: kernels go onto the ESP through /usr/lib/kernel/install.d/90-levitateos.install
# (the busybox initramfs and loader/entries/levitateos-KVER.conf, as recboot writes them).
# layout=other keeps systemd's own 90-loaderentry and 90-uki-copy plugins from adding a second
# entry; see kernel-install(8).
layout=other
"""


def kernel_install_layout(root: Path) -> None:
    """LevitateOS's plugin (leviso.tooling PLUGINS) is the only one that puts kernels on the ESP."""
    write(root, "/etc/kernel/install.conf", KERNEL_INSTALL_CONF)


def preset_text(enable, disable, default_target: str) -> str:
    """The profile's choices as presets, so that the preset-all of a first boot (Rocky's systemd is
    built with first-boot-full-preset) keeps them instead of undoing them. The default target is
    "enabled" too: preset-all removes /etc/systemd/system/default.target when the target it
    points at is disabled by the presets (systemd issue #31236, still so in 257), and Rocky's
    99-default-disable.preset disables everything not named."""
    lines = ["# LevitateOS: the profile's [system] enable/disable, ahead of the distribution's presets.",
             f"enable {default_target}"]
    for unit in sorted(set(enable)):
        template, _, instance = unit.partition("@")
        if instance and not instance.startswith("."):        # foo@bar.service: enable foo@.service bar
            name, _, suffix = instance.rpartition(".")
            lines.append(f"enable {template}@.{suffix} {name}")
        else:
            lines.append(f"enable {unit}")
    lines += [f"disable {unit}" for unit in sorted(set(disable))]
    return "\n".join(lines) + "\n"


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
