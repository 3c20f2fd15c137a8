"""The install tools' pure logic: mountinfo parsing, fstab escaping and options, genfstab's pass
rule, image superblock checks, root locking, the space estimate."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from levitate.install import mounts, recchroot, recfstab, recstrap, treecopy
from levitate.util import mountinfo
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

MOUNTINFO = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
60 22 8:3 / /mnt rw,relatime shared:30 - ext4 /dev/vda2 rw
61 60 8:1 / /mnt/boot rw,relatime shared:31 - vfat /dev/vda1 rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,utf8,errors=remount-ro
62 60 0:40 / /mnt/tmp rw,nosuid,nodev shared:32 - tmpfs tmpfs rw,size=100k
63 60 8:4 / /mnt/my\\040data rw,noatime shared:33 - ext4 /dev/vda4 rw,seclabel
64 60 8:4 /sub /mnt/srv rw,noatime shared:34 - ext4 /dev/vda4 rw
65 22 8:5 / /mntx rw shared:35 - ext4 /dev/vdb1 rw
"""
SWAPS = """\
Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/vda3                               partition\t1048572\t\t0\t\t-2
/dev/zram0                              partition\t1048572\t\t0\t\t100
/mnt/swap\\040file                      file\t\t65532\t\t0\t\t5
/live/swapfile                          file\t\t65532\t\t0\t\t-3
"""


def known_tags() -> recfstab.Tags:
    tags = recfstab.Tags()
    tags.cache.update({
        "/dev/vda1": {"UUID": "ABCD-1234", "LABEL": "ESP", "PARTUUID": "p-1", "PARTLABEL": "EFI system"},
        "/dev/vda2": {"UUID": "1111-root", "PARTUUID": "p-2"},
        "/dev/vda3": {"UUID": "3333-swap"},
        "/dev/vda4": {"UUID": "4444-data", "LABEL": "my data"},
    })
    return tags


def test_mountinfo_parsing_unescapes_paths():
    table = mountinfo.parse(MOUNTINFO)
    data = next(m for m in table if m.mount_id == 63)
    assert data.target == "/mnt/my data"
    assert (data.fstype, data.source, data.options, data.super_options) == ("ext4", "/dev/vda4", "rw,noatime",
                                                                            "rw,seclabel")
    assert next(m for m in table if m.mount_id == 64).fsroot == "/sub"
    assert [m.target for m in mounts.mounts_under("/mnt", table)] == [
        "/mnt", "/mnt/boot", "/mnt/tmp", "/mnt/my data", "/mnt/srv"]      # not /mntx


def test_mountinfo_optional_fields_and_hidden_mounts():
    text = "30 1 0:5 / /a rw master:1 shared:2 - tmpfs t1 rw\n31 1 0:6 / /a rw - tmpfs t2 rw\n"
    visible = mounts.mounts_under("/a", mountinfo.parse(text))
    assert [m.source for m in visible] == ["t2"]                         # the later mount hides the first


@pytest.mark.parametrize("raw", ["/mnt/a b", "tab\there", "back\\slash", "new\nline", "plain/path", "nb\u00a0sp é"])
def test_fstab_escaping_round_trips(raw):
    escaped = mounts.escape(raw)
    assert not any(c in escaped for c in " \t\n") and mountinfo.unescape(escaped) == raw
    if " " in raw:
        assert "\\040" in escaped


def test_options_cleaned_like_genfstab():
    assert recfstab.clean_options("rw,relatime", "rw", "ext4") == "defaults"
    assert recfstab.clean_options("rw,relatime", "rw,errors=remount-ro", "ext4") == "errors=remount-ro"
    assert recfstab.clean_options("ro,noatime", "ro,seclabel", "ext4") == "ro,noatime"
    assert recfstab.clean_options("rw,relatime", "rw,subvolid=256,subvol=/@", "btrfs") == "subvol=/@"


@pytest.mark.parametrize("fstype,is_root,expected", [
    ("ext4", True, 1), ("ext4", False, 2), ("vfat", False, 2), ("xfs", False, 2),
    ("btrfs", True, 0), ("tmpfs", False, 0), ("f2fs", False, 0)])
def test_pass_numbers_follow_genfstab(fstype, is_root, expected):
    assert recfstab.pass_number(fstype, is_root) == expected


def entries(tag="UUID", filt=None, pseudo=False):
    return recfstab.fstab_entries("/mnt", tag, filt, pseudo, mountinfo.parse(MOUNTINFO), SWAPS, known_tags())


def test_fstab_entries_by_uuid():
    got = {e.target: e for e in entries()}
    assert set(got) == {"/", "/boot", "/my data", "/srv", "none"}       # tmpfs left out (-p)
    root, boot = got["/"], got["/boot"]
    assert (root.spec, root.fstype, root.options, root.passno) == ("UUID=1111-root", "ext4", "defaults", 1)
    assert boot.spec == "UUID=ABCD-1234" and boot.passno == 2 and "rw" not in boot.options.split(",")
    assert "LABEL=ESP" in boot.comment and "/dev/vda1" in boot.comment
    assert got["/my data"].render().split("\t")[1].strip() == "/my\\040data"
    assert got["/my data"].options == "noatime"
    srv = got["/srv"]                                                     # a bind mount of /mnt/my data/sub
    assert (srv.spec, srv.fstype, srv.passno) == ("/my\\040data/sub", "none", 0) and srv.options.endswith("bind")


def test_swap_entries():
    swaps = [e for e in entries() if e.fstype == "swap"]
    assert [(s.spec, s.options) for s in swaps] == [("UUID=3333-swap", "defaults"),
                                                    ("/swap\\040file", "defaults,pri=5")]   # no zram, no /live


def test_other_tags_and_filters():
    by_label = {e.target: e.spec for e in entries("LABEL")}
    assert by_label["/boot"] == "LABEL=ESP" and by_label["/my data"] == "LABEL=my\\040data"
    assert by_label["/"] == "/dev/vda2"                                   # no label: the device itself
    assert {e.target: e.spec for e in entries("PARTLABEL")}["/boot"] == "PARTLABEL=EFI\\040system"
    assert {e.target: e.spec for e in entries("PARTUUID")}["/"] == "PARTUUID=p-2"
    assert [e.target for e in entries(filt="/mnt/boot")] == ["/boot"]
    assert "/tmp" in {e.target for e in entries(pseudo=True)}


def test_udev_label_unescaping():
    assert recfstab._udev_unescape("my\\x20data") == "my data"
    assert recfstab._udev_unescape("a\\x5cb\\x09c\\xc3\\xa9") == "a\\b\tcé"     # bytes, UTF-8 whole


def test_bind_targets_resolve_inside_root(tmp_path):
    """As a process chrooted into ROOT sees them: absolute links from ROOT, `..` stops at ROOT."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("../../../x/resolv.conf", root / "etc/resolv.conf")
    os.symlink(tmp_path, root / "dev")
    os.symlink("/etc/../loop", root / "loop")
    assert recchroot.inside(str(root), "etc/resolv.conf") == f"{root}/x/resolv.conf"
    assert recchroot.inside(str(root), "dev/pts") == f"{root}{tmp_path}/pts"
    with pytest.raises(LevitateError, match="too many levels"):
        recchroot.inside(str(root), "loop")


def write_image(path, head: bytes, size: int):
    with open(path, "wb") as f:
        f.write(head.ljust(size, b"\0"))


def test_image_magic_and_truncation(tmp_path):
    sb = bytearray(1024 + 128)
    sb[1024:1028] = bytes.fromhex("e2e1f5e0")
    sb[1024 + 12] = 12                                                   # 4 KiB blocks
    sb[1024 + 36:1024 + 40] = (4).to_bytes(4, "little")                  # 4 blocks = 16 KiB
    write_image(tmp_path / "ok.erofs", bytes(sb), 16384)
    assert recstrap.check_image(str(tmp_path / "ok.erofs")).fstype == "erofs"
    write_image(tmp_path / "short.erofs", bytes(sb), 8192)
    with pytest.raises(LevitateError, match="truncated") as err:
        recstrap.check_image(str(tmp_path / "short.erofs"))
    assert err.value.exit_code == recstrap.EXIT_BAD_IMAGE
    write_image(tmp_path / "junk", b"not an image", 16384)
    with pytest.raises(LevitateError, match="magic"):
        recstrap.check_image(str(tmp_path / "junk"))
    sq = bytearray(96)
    sq[:4] = b"hsqs"
    sq[40:48] = (4096).to_bytes(8, "little")
    write_image(tmp_path / "ok.squashfs", bytes(sq), 4096)
    assert recstrap.check_image(str(tmp_path / "ok.squashfs")).fstype == "squashfs"
    with pytest.raises(LevitateError) as err:
        recstrap.check_image(str(tmp_path))
    assert err.value.exit_code == recstrap.EXIT_NOT_FILE


def test_real_erofs_image_passes(tmp_path):
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree/file").write_bytes(os.urandom(50000))
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", tmp_path / "img", tmp_path / "tree"], check=True)
    assert recstrap.check_image(str(tmp_path / "img")).fstype == "erofs"


@pytest.mark.parametrize("before,after,changed", [
    ("root:*:19500:0:99999:7:::", "root:*:19500:0:99999:7:::", False),
    ("root:!$6$x$y:19500::::::", "root:!$6$x$y:19500::::::", False),
    ("root::19500:0:99999:7:::", "root:!:19500:0:99999:7:::", True),
    ("root:$6$salt$hash:19500:0:99999:7:::", "root:!$6$salt$hash:19500:0:99999:7:::", True),
])
def test_root_stays_locked(tmp_path, before, after, changed):
    shadow = tmp_path / "shadow"
    shadow.write_text(f"{before}\nbin:*:19500::::::\n")
    shadow.chmod(0o640)
    assert recstrap.lock_root(str(shadow)) is changed
    assert shadow.read_text() == f"{after}\nbin:*:19500::::::\n"
    assert stat.S_IMODE(shadow.stat().st_mode) == 0o640


def test_system_paths_refused_by_path_and_inode(tmp_path):
    for path in ("/", "/usr", "/etc", "/bin", "/tmp", "/var"):
        assert recstrap.is_system_path(os.path.realpath(path)), path
    assert not recstrap.is_system_path(str(tmp_path))


def test_space_estimate_rounds_to_blocks(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/one").write_bytes(b"x")
    (tmp_path / "d/big").write_bytes(b"y" * 5000)
    os.link(tmp_path / "d/big", tmp_path / "d/big2")
    os.symlink("one", tmp_path / "d/short")
    plan = treecopy.walk(str(tmp_path / "d"))
    assert len(plan.links) == 1 and plan.data_bytes == 5001               # a hardlink counts once
    assert plan.space_needed(4096) == 4096 + 4096 + 8192                 # the dir, one, big


def test_next_steps_name_every_step():
    text = recstrap.next_steps("/mnt")
    for step in ("recfstab /mnt >> /mnt/etc/fstab", "recchroot /mnt", "zoneinfo", "locale.conf", "/etc/hostname",
                 "passwd", "useradd", recstrap.BOOTLOADER_COMMAND, "reboot"):
        assert step in text, step


def test_tools_import_only_the_standard_library():
    """They run with the live system's own python3, which has none of this project's dependencies."""
    src = str(Path(recstrap.__file__).parents[2])
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules)\n"
            "import levitate.install.recstrap, levitate.install.recfstab, levitate.install.recchroot\n"
            "print(sorted(m for m in set(sys.modules) - before\n"
            "             if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'levitate'))" % src)
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for name in ("recstrap", "recfstab", "recchroot", "treecopy", "mounts"):
        text = (Path(src) / "levitate/install" / f"{name}.py").read_text()
        imports = {line.split()[1] for line in text.splitlines() if line.startswith(("from ..", "import levitate"))}
        assert imports <= {"..util.errors", "..util.run", "..util.files", "..util.cli", "..util"}, (name, imports)


def test_plain_subtrees_get_content_and_times_only(tmp_path):
    """The ESP at /mnt/boot (FAT) cannot hold owners or links: files get content and times, an
    existing mount-point directory is used as it is, and a link there is a clear error."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "boot/efi/EFI/rocky").mkdir(parents=True)
    (src / "boot/efi/EFI/rocky/grub.cfg").write_text("cfg")
    os.chown(src / "boot/efi/EFI/rocky/grub.cfg", 1234, 1234)
    os.utime(src / "boot/efi/EFI/rocky/grub.cfg", ns=(1_600_000_000_000_000_000,) * 2)
    (src / "etc").mkdir()
    (src / "etc/owned").write_text("x")
    os.chown(src / "etc/owned", 1234, 1234)
    (dst / "boot").mkdir(parents=True)                       # the mount point recstrap allowed
    treecopy.copy_tree(str(src), str(dst), treecopy.walk(str(src)), workers=1, plain=("boot",))
    copied = dst / "boot/efi/EFI/rocky/grub.cfg"
    assert copied.read_text() == "cfg" and copied.stat().st_uid == 0
    assert copied.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert (dst / "etc/owned").stat().st_uid == 1234          # outside the plain subtree: exact

    (src / "boot/vmlinuz").symlink_to("vmlinuz-6.1")
    (tmp_path / "dst2/boot").mkdir(parents=True)
    with pytest.raises(treecopy.CopyError, match="symlink cannot be stored"):
        treecopy.copy_tree(str(src), str(tmp_path / "dst2"), treecopy.walk(str(src)), workers=1, plain=("boot",))


def test_plain_subtrees_are_the_fat_mounts_under_the_target(monkeypatch):
    table = mountinfo.parse(MOUNTINFO)
    monkeypatch.setattr(mountinfo, "read", lambda: table)
    assert recstrap.plain_subtrees("/mnt") == ("boot",)
    assert recstrap.plain_subtrees("/mntx") == ()


def test_recboot_entry_turns_selinux_off_unless_told_otherwise():
    from levitate.install.recboot import kernel_options
    assert kernel_options(None, "root=live:LABEL=X console=ttyS0,115200").split()[0] == "selinux=0"
    assert "selinux=0" not in kernel_options("selinux=1 enforcing=0", "").split()


# ---- the kernel-install plugin ----

@cheat_aware(protects="a kernel version from kernel-install's command line names one directory on the ESP",
             cheats=["only refuse a literal '/'", "resolve the path and hope it stays inside"],
             consequence="`kernel-install remove ../..` deletes the ESP's boot loader, or writes outside the ESP")
@pytest.mark.parametrize("kver", ["../levitateos", "..", "6.1/../../EFI", "", "-rf", ".hidden", "6.1 x", "6.1:x",
                                  "a..b"])
def test_kernel_versions_from_the_command_line_are_checked(kver):
    from levitate.install.recboot import checked_kernel_version
    with pytest.raises(LevitateError, match="is not a kernel version"):
        checked_kernel_version(kver)


@pytest.mark.parametrize("kver", ["6.12.0-55.9.1.el10_0.x86_64", "6.12.118+deb13-amd64",
                                  "6.12.0-55.el10.x86_64+debug", "6.12.0~rc1"])
def test_real_kernel_versions_pass(kver):
    from levitate.install.recboot import checked_kernel_version
    assert checked_kernel_version(kver) == kver


@cheat_aware(protects="the plugin writes only onto a mounted filesystem (the ESP), never the root's /boot directory",
             cheats=["trust $KERNEL_INSTALL_BOOT_ROOT as it is", "only check that it is a directory"],
             consequence="with the ESP unmounted, kernel-install's fallback /boot directory on the root "
                         "filesystem gets the entries; the firmware never sees them and the new kernel never boots")
def test_plugin_writes_only_onto_a_mounted_esp(tmp_path):
    from levitate.install.kernelinstall import boot_root
    table = mountinfo.parse(MOUNTINFO)
    assert boot_root("/mnt/boot", table) == Path("/mnt/boot")
    for value, fragment in (("/", "is not a mounted EFI system partition"),
                            ("/boot", "is not a mounted EFI system partition"),
                            ("/mnt/boot/loader", "is not a mounted EFI system partition"),
                            ("", "KERNEL_INSTALL_BOOT_ROOT is not set"), (None, "KERNEL_INSTALL_BOOT_ROOT is not set")):
        with pytest.raises(LevitateError, match=fragment):
            boot_root(value, table)


def test_removing_a_kernel_touches_only_its_entry_and_files(tmp_path):
    from levitate.install.recboot import remove_kernel
    esp = tmp_path / "esp"
    for kver in ("6.1.0-1", "6.1.0-2", "6.1.0-10"):
        (esp / "levitateos" / kver).mkdir(parents=True)
        (esp / "levitateos" / kver / "linux").write_text(kver)
        (esp / "loader/entries").mkdir(parents=True, exist_ok=True)
        (esp / "loader/entries" / f"levitateos-{kver}.conf").write_text(kver)
    (esp / "loader/entries/other-6.1.0-1.conf").write_text("another system's entry")
    assert remove_kernel(esp, "6.1.0-1") is True
    assert remove_kernel(esp, "6.1.0-1") is False
    assert sorted(p.name for p in (esp / "loader/entries").iterdir()) == [
        "levitateos-6.1.0-10.conf", "levitateos-6.1.0-2.conf", "other-6.1.0-1.conf"]
    assert sorted(p.name for p in (esp / "levitateos").iterdir()) == ["6.1.0-10", "6.1.0-2"]


@cheat_aware(protects="after `bootctl install`, recboot's loader.conf (a menu timeout, default levitateos-*) is "
                      "what the ESP carries; a loader.conf the user edited is kept",
             cheats=["keep any existing loader.conf", "overwrite the user's edits"],
             consequence="the installed system shows no boot menu: rolling back to the previous kernel "
                         "needs a key held at the right moment (or the user's settings are lost)")
def test_recboot_replaces_bootctls_commented_loader_conf_but_keeps_an_edited_one(tmp_path):
    from levitate.install import recboot

    conf = tmp_path / "loader/loader.conf"
    conf.parent.mkdir()
    conf.write_text("#timeout 3\n#console-mode keep\n")          # what bootctl install (systemd 257) writes
    recboot.write_loader_conf(tmp_path)
    assert conf.read_text() == recboot.LOADER_CONF
    conf.write_text("timeout 10\n")
    recboot.write_loader_conf(tmp_path)
    assert conf.read_text() == "timeout 10\n"
