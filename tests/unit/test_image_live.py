"""Image format choice from the kernel config, image building, and the live layer's files."""

from __future__ import annotations

import os

import shutil
import subprocess
from pathlib import Path

import pytest

from levitate.leviso.image import build_image, choose_format, image_format
from levitate.leviso.live import SHELL_MARKER, build_live_tree
from levitate.leviso.profile import ImageSettings, load_profile
from levitate.leviso.staging import os_release_text
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

REPO = Path(__file__).resolve().parents[2]
EROFS_LZ4 = {"CONFIG_EROFS_FS": "m", "CONFIG_EROFS_FS_ZIP": "y", "CONFIG_SQUASHFS": "m",
             "CONFIG_SQUASHFS_ZSTD": "y"}


@cheat_aware(protects="the image format is one the kernel can mount",
             cheats=["always build EROFS", "read the build host's kernel config"],
             consequence="the ISO builds fine and then cannot mount its root at boot")
def test_format_follows_the_kernel_config():
    settings = ImageSettings()
    assert choose_format(EROFS_LZ4, settings) == "erofs"
    no_zip = dict(EROFS_LZ4, CONFIG_EROFS_FS_ZIP="n")
    assert choose_format(no_zip, settings) == "squashfs"
    with pytest.raises(LevitateError, match="forbids squashfs"):
        choose_format(no_zip, ImageSettings(allow_squashfs=False))
    with pytest.raises(LevitateError, match="neither EROFS nor zstd squashfs"):
        choose_format({"CONFIG_EROFS_FS": "y"}, settings)


@pytest.mark.parametrize("fmt", ["erofs", "squashfs"])
def test_build_image_is_reproducible_with_source_date_epoch(tmp_path, monkeypatch, fmt):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("levitateos\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = build_image(tree, tmp_path / "a" / f"x.{fmt}", fmt)
    b = build_image(tree, tmp_path / "b" / f"x.{fmt}", fmt)
    assert image_format(a) == fmt
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob("*/*.tmp"))


def test_os_release_names_levitateos_and_its_heritage():
    text = os_release_text(load_profile(REPO / "profiles/levitate"))
    assert 'ID="levitateos"' in text and 'ID_LIKE="rocky rhel' in text and "PRETTY_NAME=" in text


@cheat_aware(protects="live-only settings (autologin, empty root password) live in the live layer only",
             cheats=["put autologin into the base image", "blank the base's shadow file"],
             consequence="every installed system logs root in without a password")
def test_live_tree(tmp_path):
    base = tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc/shadow").write_text("root:$6$hash:19000:0:99999:7:::\nbin:*:19000::::::\n")
    (base / "etc/shadow").chmod(0o640)
    profile = load_profile(REPO / "profiles/levitate")
    live = build_live_tree(base, tmp_path / "live", profile)
    assert (live / "etc/shadow").read_text().startswith("root::19000:")
    assert (live / "etc/shadow").stat().st_mode & 0o777 == 0o640
    assert (base / "etc/shadow").read_text().startswith("root:$6$hash")
    assert "--autologin root" in (live / "etc/systemd/system/serial-getty@.service.d/10-levitate-autologin.conf").read_text()
    assert SHELL_MARKER in (live / "etc/profile.d/zz-levitate-live.sh").read_text()
    assert "recstrap /mnt" in (live / "etc/levitate/welcome.txt").read_text()


@cheat_aware(protects="a root left for firstboot to ask about (sysusers >= 254: !unprovisioned) is locked instead",
             cheats=["blank the password", "rewrite the file without its mode"],
             consequence="the installed system's first boot stops at a root password prompt, or root has no password")
def test_unprovisioned_root_is_locked(tmp_path):
    from levitate.leviso.staging import lock_unprovisioned_root
    shadow = tmp_path / "etc/shadow"
    shadow.parent.mkdir()
    shadow.write_text("root:!unprovisioned:19000:0:99999:7:::\nbin:!*:19000::::::\n")
    shadow.chmod(0o600)
    lock_unprovisioned_root(tmp_path)
    assert shadow.read_text() == "root:!*:19000:0:99999:7:::\nbin:!*:19000::::::\n"
    assert shadow.stat().st_mode & 0o777 == 0o600


def test_firstboot_defaults_refuse_bad_names(tmp_path):
    from levitate.leviso.staging import firstboot_defaults
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/share/zoneinfo").mkdir(parents=True)
    (tmp_path / "usr/share/zoneinfo/UTC").write_text("TZif")
    for zone, locale, keymap, what in (("../../etc/passwd", "C.UTF-8", "us", "timezone"),
                                       ("Mars/Base", "C.UTF-8", "us", "not in the tree"),
                                       ("UTC", "C.UTF-8\nLANG=x", "us", "locale")):
        with pytest.raises(LevitateError, match=what):
            firstboot_defaults(tmp_path, zone, locale, keymap)
    assert not (tmp_path / "etc/localtime").exists()
    firstboot_defaults(tmp_path, "UTC", "C.UTF-8", "us")
    assert (tmp_path / "etc/vconsole.conf").read_text() == "KEYMAP=us\n"


def test_preset_lines_for_instances():
    from levitate.leviso.staging import preset_text
    text = preset_text(["sshd.service", "getty@tty2.service"], ["systemd-pstore.service"], "multi-user.target")
    assert text.splitlines()[1:] == ["enable multi-user.target", "enable getty@.service tty2", "enable sshd.service",
                                     "disable systemd-pstore.service"]


def test_firstboot_defaults_replace_links_to_nothing_and_keep_real_settings(tmp_path):
    """Debian's systemd ships /etc/vconsole.conf -> default/keyboard; without that file firstboot
    sees no keymap and asks. An absolute link is followed inside the tree, never on the host."""
    from levitate.leviso.staging import firstboot_defaults
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "usr/share/zoneinfo").mkdir(parents=True)
    (tmp_path / "usr/share/zoneinfo/UTC").write_text("TZif")
    os.symlink("default/keyboard", tmp_path / "etc/vconsole.conf")           # dangling
    os.symlink("/etc/default/locale", tmp_path / "etc/locale.conf")          # absolute: inside the tree
    (tmp_path / "etc/default/locale").write_text("LANG=de_DE.UTF-8\n")
    firstboot_defaults(tmp_path, "UTC", "C.UTF-8", "us")
    assert not (tmp_path / "etc/vconsole.conf").is_symlink()
    assert (tmp_path / "etc/vconsole.conf").read_text() == "KEYMAP=us\n"
    assert os.readlink(tmp_path / "etc/locale.conf") == "/etc/default/locale"   # a real setting stays
