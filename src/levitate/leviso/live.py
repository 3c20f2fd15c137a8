"""The live layer: what only the live medium has, kept OUT of the base image.

It is a small tree of replacement files stacked above the base image by the initramfs. The
installer copies the base image only, so nothing here reaches an installed system: no autologin,
no empty root password.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .profile import Profile
from .staging import apply_overlay, write

SHELL_MARKER = "LEVITATE-LIVE-SHELL-READY"   # the tests (and `leviso test`) wait for this line

AUTOLOGIN_TTY = """\
# LevitateOS live: root is logged in on tty1, as on archiso.
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear %I $TERM
"""

AUTOLOGIN_SERIAL = """\
# LevitateOS live: root is logged in on serial consoles, as on archiso.
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
"""

JOURNALD_VOLATILE = """\
# LevitateOS live: the journal stays in memory; the medium is read-only.
[Journal]
Storage=volatile
"""

WELCOME = """\
Welcome to the {name} live system.

To install it (like Arch: by hand, in a few commands; the full guide:
less /usr/share/doc/levitate/install.md):
  1. Partition and format the disk (sfdisk, fdisk, cfdisk or parted): an EFI system partition
     of 512 MiB or more (mkfs.fat -F 32 /dev/XXX1) and a root partition (mkfs.ext4 /dev/XXX2).
  2. Mount them: mount /dev/XXX2 /mnt && mount --mkdir /dev/XXX1 /mnt/boot
  3. recstrap /mnt                      copy the base system onto the disk
  4. recfstab -U /mnt >> /mnt/etc/fstab record the mounts
  5. recchroot /mnt                     enter it: time zone, locale, hostname, root password
                                        (passwd), a user in the wheel group, then
     recboot                            install the boot loader, kernel and initramfs
  6. exit, umount -R /mnt, reboot

The root account here has no password; the installed system's root is locked until you set one.
"""

PROFILE_SCRIPT = """\
# LevitateOS live: greet interactive login shells (and tell the tests the shell is up).
case "$-" in
  *i*)
    [ -r /etc/levitate/welcome.txt ] && cat /etc/levitate/welcome.txt
    echo "{marker}"
    ;;
esac
"""


def _empty_root_password(shadow: str) -> str:
    lines = []
    for line in shadow.splitlines():
        fields = line.split(":")
        if fields[0] == "root" and len(fields) > 1:
            fields[1] = ""
        lines.append(":".join(fields))
    return "\n".join(lines) + "\n"


def build_live_tree(base: Path, dest: Path, profile: Profile) -> Path:
    """Write the live layer's files into `dest` (a fresh directory)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    write(dest, "/etc/systemd/system/getty@tty1.service.d/10-levitate-autologin.conf", AUTOLOGIN_TTY)
    write(dest, "/etc/systemd/system/serial-getty@.service.d/10-levitate-autologin.conf", AUTOLOGIN_SERIAL)
    write(dest, "/etc/systemd/journald.conf.d/10-levitate-live.conf", JOURNALD_VOLATILE)
    write(dest, "/etc/levitate/welcome.txt", WELCOME.format(name=profile.os_release.name))
    write(dest, "/etc/profile.d/zz-levitate-live.sh", PROFILE_SCRIPT.format(marker=SHELL_MARKER))
    shadow = base / "etc/shadow"
    if shadow.is_file():
        st = shadow.stat()
        write(dest, "/etc/shadow", _empty_root_password(shadow.read_text()), st.st_mode & 0o7777)
        os.chown(dest / "etc/shadow", st.st_uid, st.st_gid)
    # Directories the layer adds must keep the base's metadata (an overlay shows the upper one).
    for directory in sorted({p.parent for p in dest.rglob("*")} - {dest}):
        original = base / directory.relative_to(dest)
        if original.is_dir():
            st = original.stat()
            os.chmod(directory, st.st_mode & 0o7777)
            os.chown(directory, st.st_uid, st.st_gid)
    apply_overlay(profile.live_overlay, dest)
    return dest
