"""util/mountinfo.py: the one reader of /proc/self/mountinfo (install tools, recboot, leviso)."""

from __future__ import annotations

import os
import subprocess

import pytest

from levitate.leviso.rootfs import unmount_below
from levitate.util import mountinfo
from tests.cheat_aware import cheat_aware

# Lines as the kernel writes them (a tmpfs mounted at "/mnt/my data", "/mnt/tab<TAB>x", "/mnt/back\slash",
# "/mnt/café" and at a name that is not UTF-8, plus a bind mount with optional fields).
LINES = (b"22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro\n"
         b"70 22 0:50 / /mnt/my\\040data rw,relatime shared:40 - tmpfs my\\040src rw,size=1024k\n"
         b"71 22 0:51 / /mnt/tab\\011x rw,relatime - tmpfs tmpfs rw\n"
         b"72 22 0:52 / /mnt/back\\134slash rw,relatime - tmpfs tmpfs rw\n"
         b"73 22 0:53 / /mnt/caf\xc3\xa9 rw,relatime - tmpfs tmpfs rw\n"
         b"74 22 0:54 / /mnt/bad\xff rw,relatime - tmpfs tmpfs rw\n"
         b"75 22 8:4 /sub\\040dir /srv rw,noatime master:1 shared:34 - ext4 /dev/vda4 rw,lowerdir=a\\054b\n")


def test_fields_are_unescaped_once_and_decoded_as_file_names():
    table = {e.mount_id: e for e in mountinfo.parse(LINES)}
    assert table[70].target == "/mnt/my data" and table[70].source == "my src"
    assert table[71].target == "/mnt/tab\tx"
    assert table[72].target == "/mnt/back\\slash"
    assert table[73].target == "/mnt/café"
    assert os.fsencode(table[74].target) == b"/mnt/bad\xff"            # undecodable bytes survive
    assert (table[75].fsroot, table[75].target, table[75].fstype) == ("/sub dir", "/srv", "ext4")
    assert table[75].super_options == "rw,lowerdir=a\\054b"               # options stay as written
    assert mountinfo.parse(LINES.decode("utf-8", "surrogateescape")) == list(table.values())


@pytest.fixture
def hostile_mount(tmp_path):
    """A real tmpfs mounted at a path with a space, a backslash and a non-ASCII letter."""
    point = tmp_path / "build dir\\é" / "rootfs.partial" / "proc"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", point], check=True)
    yield point
    subprocess.run(["umount", "--lazy", point], capture_output=True)


def test_the_kernels_own_table(hostile_mount):
    assert str(hostile_mount) in [e.target for e in mountinfo.read()]


@cheat_aware(protects="leviso removes a half-built tree only after unmounting what a killed run left mounted in it",
             cheats=["decoding mount points with unicode_escape (mangles non-ASCII)", "testing ASCII paths only"],
             consequence="with a work directory named in non-ASCII, rmtree walks into a still-mounted /proc or /dev")
def test_unmount_below_finds_mounts_under_any_name(hostile_mount):
    unmount_below(hostile_mount.parent)
    assert str(hostile_mount) not in [e.target for e in mountinfo.read()]
