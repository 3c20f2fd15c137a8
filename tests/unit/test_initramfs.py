"""The initramfs builder without a real kernel: the cpio writer (checked against GNU cpio and the
project's own cpio reader), module selection from modules.dep/builtin/softdep/alias, the
compression choice from a kernel config, module decompression, and a whole build over a synthetic
module tree. Boots of the real thing are in tests/vm/test_initramfs_boot.py."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from levitate.boot import initramfs
from levitate.boot.initramfs import (CpioEntry, InitramfsSpec, ModuleIndex, build_initramfs, choose_compression,
                                       compress, read_module, render_init, select_modules, write_cpio_newc)
from levitate.rpm.cpio import CpioReader
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

KVER = "6.1.0-test"

# Lines as depmod wrote them for Debian's 6.1 kernel (the sample repository's kernel).
MODULES_DEP = """\
kernel/fs/erofs/erofs.ko.xz: kernel/lib/libcrc32c.ko.xz
kernel/lib/libcrc32c.ko.xz:
kernel/crypto/crc32c_generic.ko.zst:
kernel/arch/x86/crypto/crc32c-intel.ko.gz:
kernel/fs/overlayfs/overlay.ko:
kernel/fs/isofs/isofs.ko.xz: kernel/drivers/cdrom/cdrom.ko.xz
kernel/drivers/cdrom/cdrom.ko.xz:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/net/unrelated.ko:
"""
MODULES_BUILTIN = "kernel/drivers/block/loop.ko\nkernel/fs/squashfs/squashfs.ko\n"
MODULES_SOFTDEP = "# Soft dependencies extracted from modules themselves.\nsoftdep libcrc32c pre: crc32c\n"
MODULES_ALIAS = """\
alias crypto-crc32c-intel crc32c_intel
alias crc32c crc32c_intel
alias cpu:type:x86,ven*fam*mod*:feature:*0094* crc32c_intel
alias crc32c crc32c_generic
alias fs-erofs erofs
"""
RD_ALL = "CONFIG_RD_GZIP=y\nCONFIG_RD_XZ=y\nCONFIG_RD_ZSTD=y\n# CONFIG_RD_LZ4 is not set\n"


def fake_module(name: str) -> bytes:
    """Not a real module (depmod only warns about it), but distinct bytes to follow through the build."""
    return b"\x7fELF-fake-module:" + name.encode() * 50


def _compressed(data: bytes, suffix: str) -> bytes:
    if suffix == ".xz":
        return lzma.compress(data)
    if suffix == ".gz":
        return gzip.compress(data)
    if suffix == ".zst":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return data


def make_moddir(root: Path, *, config: str | None = RD_ALL) -> Path:
    """A tree with ROOT/usr/lib/modules/KVER as depmod leaves it, modules compressed as listed."""
    moddir = root / "usr/lib/modules" / KVER
    moddir.mkdir(parents=True)
    for line in MODULES_DEP.splitlines():
        rel = line.split(":")[0]
        path = moddir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = Path(rel).suffix if not rel.endswith(".ko") else ""
        path.write_bytes(_compressed(fake_module(initramfs.module_name(rel)), suffix))
    (moddir / "modules.dep").write_text(MODULES_DEP)
    (moddir / "modules.builtin").write_text(MODULES_BUILTIN)
    (moddir / "modules.softdep").write_text(MODULES_SOFTDEP)
    (moddir / "modules.alias").write_text(MODULES_ALIAS)
    (moddir / "modules.order").write_text("".join(ln.split(":")[0] + "\n" for ln in MODULES_DEP.splitlines()))
    if config is not None:
        (moddir / "config").write_text(config)
    return moddir


def fake_busybox(path: Path, applets: tuple[str, ...] | None = None) -> Path:
    """A stand-in with busybox's sorted, NUL-separated applet name table (never executed)."""
    names = sorted(set(applets if applets is not None else initramfs.APPLETS) | {"acpid", "zcat"})
    path.write_bytes(b"\x7fELF" + b"\0" * 60 + b"\0".join(n.encode() for n in names) + b"\0" + b"\xff" * 64)
    path.chmod(0o755)
    return path


def unpack(image: bytes, method: str) -> bytes:
    if method == "gzip":
        return gzip.decompress(image)
    if method == "xz":
        return lzma.decompress(image)
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=image, capture_output=True, check=True).stdout


def members(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """path -> (mode, data) through the project's independent cpio reader."""
    reader = CpioReader(io.BytesIO(archive), what="initramfs")
    return {entry.name: (entry.mode, reader.read()) for entry in reader}


# -- cpio writer -----------------------------------------------------------------------------------------------

def sample_entries(tmp_path: Path) -> list[CpioEntry]:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(70001))                   # streamed from disk, odd size for padding
    return [
        CpioEntry.file("usr/bin/tool", b"#!/bin/sh\necho hi\n", perm=0o755),
        CpioEntry.symlink("bin", "usr/bin"),
        CpioEntry.file("/etc/levitate/x.conf", b"a=1\n"),  # a leading "/" is dropped; parents added
        CpioEntry.file("data/big.bin", source=src),
        CpioEntry.directory("sysroot", 0o700),
        CpioEntry.symlink("usr/bin/sh", "tool"),
        CpioEntry.file("empty", b""),
    ]


@cheat_aware(protects="the initramfs archive unpacks with standard cpio to exactly the files given",
             cheats=["compare the writer's output with itself", "only check the magic number"],
             consequence="the kernel unpacks a truncated or garbled initramfs and the boot dies in /init")
def test_cpio_extracts_with_gnu_cpio(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    entries = sample_entries(tmp_path)
    buf = io.BytesIO()
    count = write_cpio_newc(entries, buf)
    archive = buf.getvalue()
    assert len(archive) % 4 == 0

    out = tmp_path / "out"
    out.mkdir()
    listing = subprocess.run(["cpio", "-tv", "--quiet"], input=archive, capture_output=True, check=True).stdout.decode()
    assert len(listing.splitlines()) == count
    for line in listing.splitlines():
        assert line.split()[2:4] == ["root", "root"], line      # uid/gid 0 whoever builds it
    assert "5,   1" in listing and "dev/console" in listing
    assert "1,   3" in listing and "dev/null" in listing
    subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/*"],
                   input=archive, cwd=out, check=True, capture_output=True)
    assert (out / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((out / "usr/bin/tool").stat().st_mode) == 0o755
    assert (out / "data/big.bin").read_bytes() == (tmp_path / "big.bin").read_bytes()
    assert os.readlink(out / "bin") == "usr/bin" and os.readlink(out / "usr/bin/sh") == "tool"
    assert (out / "etc/levitate/x.conf").read_text() == "a=1\n"
    assert (out / "empty").read_bytes() == b""
    assert stat.S_IMODE((out / "sysroot").stat().st_mode) == 0o700
    assert (out / "usr/bin/tool").stat().st_mtime == 1700000000


def test_cpio_is_sorted_deterministic_and_readable_by_our_reader(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    entries = sample_entries(tmp_path)
    a, b = io.BytesIO(), io.BytesIO()
    write_cpio_newc(entries, a)
    write_cpio_newc(list(reversed(entries)), b)
    assert a.getvalue() == b.getvalue()                 # order of the input does not matter

    parsed = list(CpioReader(io.BytesIO(a.getvalue())))
    names = [e.name for e in parsed]
    assert names == sorted(names)
    assert {"etc", "etc/levitate", "data", "usr", "usr/bin", "dev", "dev/console", "dev/null"} <= set(names)
    for entry in parsed:
        assert (entry.uid, entry.gid, entry.mtime) == (0, 0, 0)
    console = next(e for e in parsed if e.name == "dev/console")
    assert stat.S_ISCHR(console.mode) and (console.rdevmajor, console.rdevminor) == (5, 1)
    got = members(a.getvalue())
    assert got["usr/bin/tool"][1] == b"#!/bin/sh\necho hi\n"
    assert got["data/big.bin"][1] == (tmp_path / "big.bin").read_bytes()
    assert stat.S_ISLNK(got["bin"][0]) and got["bin"][1] == b"usr/bin"


def test_cpio_keeps_given_device_nodes_and_can_leave_them_out():
    buf = io.BytesIO()
    write_cpio_newc([CpioEntry.chardev("dev/console", 5, 1, 0o620)], buf)
    assert stat.S_IMODE(members(buf.getvalue())["dev/console"][0]) == 0o620
    buf = io.BytesIO()
    write_cpio_newc([CpioEntry.file("a", b"x")], buf, devices=False)
    assert set(members(buf.getvalue())) == {"a"}


@pytest.mark.parametrize("entries, message", [
    ([CpioEntry.file("a", b"1"), CpioEntry.file("./a", b"2")], "twice"),
    ([CpioEntry.file("../etc/passwd", b"")], "bad path"),
    ([CpioEntry.file("", b"")], "bad path"),
    ([CpioEntry.file("a", b""), CpioEntry.file("a/b", b"")], "not a directory"),
])
def test_cpio_refuses_bad_member_lists(entries, message):
    with pytest.raises(LevitateError, match=message):
        write_cpio_newc(entries, io.BytesIO())


# -- module selection -----------------------------------------------------------------------------------------

@pytest.fixture
def index(tmp_path) -> ModuleIndex:
    return ModuleIndex.load(make_moddir(tmp_path))


@cheat_aware(protects="every module the boot needs is in the initramfs with its dependencies",
             cheats=["ship only the named modules", "ship every module of the kernel"],
             consequence="modprobe erofs fails at boot (libcrc32c missing) or the initramfs is 100 MB")
def test_closure_comes_from_modules_dep(index):
    sel = select_modules(index, ["erofs", "overlay", "isofs", "virtio_blk", "ahci"])
    assert set(sel.files) == {"erofs", "libcrc32c", "crc32c_generic", "crc32c_intel", "overlay", "isofs",
                              "cdrom", "virtio_blk", "virtio", "virtio_ring", "ahci", "libahci", "libata",
                              "scsi_mod", "scsi_common"}
    assert "unrelated" not in sel.files
    pos = sel.files.index
    assert pos("scsi_common") < pos("scsi_mod") < pos("libata") < pos("libahci") < pos("ahci")
    assert pos("libcrc32c") < pos("erofs") and pos("cdrom") < pos("isofs")
    # what /init loads: the wanted ones in order, soft dependencies (alternatives) first and optional
    assert sel.load == [("crc32c_intel", True), ("crc32c_generic", True),
                        ("erofs", False), ("overlay", False), ("isofs", False), ("virtio_blk", False),
                        ("ahci", False)]


def test_builtins_are_skipped_and_unknown_names_only_reported(index):
    sel = select_modules(index, ["loop", "squashfs", "usb-storage", "nvme", "efivarfs"], required=["loop"])
    assert sel.builtin == ["loop", "squashfs"]
    assert sel.missing == ["nvme", "efivarfs"]
    assert "loop" not in sel.files and "squashfs" not in [m for m, _ in sel.load]
    assert ("usb_storage", False) in sel.load           # usb-storage.ko is the module usb_storage
    assert set(sel.files) == {"usb_storage", "scsi_mod", "scsi_common"}


def test_aliases_resolve_wanted_names(index):
    assert select_modules(index, ["fs-erofs"]).load[-1] == ("erofs", False)


@cheat_aware(protects="a required module that the kernel lacks stops the build",
             cheats=["warn and carry on", "treat builtins as missing"],
             consequence="an ISO that cannot mount its own medium, found only when a user boots it")
def test_missing_required_module_is_an_error(index):
    with pytest.raises(LevitateError, match="required .* missing: erofs2, zram") as err:
        select_modules(index, ["overlay"], required=["erofs2", "loop", "zram"])
    assert err.value.hint


# -- compression --------------------------------------------------------------------------------------------------

@cheat_aware(protects="the initramfs is compressed with something the kernel can unpack",
             cheats=["always use zstd", "look at the build host's kernel"],
             consequence="the kernel panics with 'VFS: Unable to mount root fs' or 'junk in compressed archive'")
def test_compression_follows_the_kernel_config():
    assert choose_compression("auto", RD_ALL) == "zstd"
    assert choose_compression("auto", "CONFIG_RD_GZIP=y\nCONFIG_RD_XZ=y\n# CONFIG_RD_ZSTD is not set\n") == "xz"
    assert choose_compression("auto", "CONFIG_RD_GZIP=y\n") == "gzip"
    assert choose_compression("xz", RD_ALL) == "xz"
    assert choose_compression("gzip", RD_ALL) == "gzip"
    with pytest.raises(LevitateError, match="CONFIG_RD_ZSTD"):
        choose_compression("zstd", "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=m\n")
    with pytest.raises(LevitateError, match="cannot unpack"):
        choose_compression("auto", "CONFIG_RD_LZ4=y\n")
    with pytest.raises(LevitateError, match="unknown initramfs compression"):
        choose_compression("lz4", RD_ALL)
    assert choose_compression("auto", None) == "gzip"     # no config shipped: what every kernel has


@pytest.mark.parametrize("method", ["gzip", "xz", "zstd"])
def test_compress_round_trips_in_kernel_compatible_form(method):
    data = os.urandom(4096) + b"\x00" * 200000 + b"kernel module" * 1000
    image = compress(data, method)
    assert len(image) < len(data) / 4
    assert unpack(image, method) == data
    if method == "xz":
        assert image[:6] == b"\xfd7zXZ\x00" and image[6:8] == b"\x00\x01"   # CRC32 check, as the kernel requires
    assert compress(data, method) == image                # reproducible


def test_zstd_without_the_zstandard_module_uses_the_command(monkeypatch):
    monkeypatch.setattr(initramfs, "_zstandard", lambda: None)
    data = b"initramfs " * 10000
    assert unpack(compress(data, "zstd"), "zstd") == data


# -- module decompression -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".xz", ".zst", ".gz"])
@pytest.mark.parametrize("with_zstandard", [True, False])
def test_read_module_decompresses(tmp_path, monkeypatch, suffix, with_zstandard):
    if not with_zstandard:
        monkeypatch.setattr(initramfs, "_zstandard", lambda: None)
    data = fake_module("erofs")
    path = tmp_path / f"erofs.ko{suffix}"
    path.write_bytes(_compressed(data, suffix))
    assert read_module(path) == data


@pytest.mark.parametrize("suffix", [".xz", ".zst", ".gz"])
@pytest.mark.parametrize("with_zstandard", [True, False])
def test_read_module_reports_a_damaged_module(tmp_path, monkeypatch, suffix, with_zstandard):
    if not with_zstandard:
        monkeypatch.setattr(initramfs, "_zstandard", lambda: None)
    path = tmp_path / f"erofs.ko{suffix}"
    path.write_bytes(_compressed(fake_module("erofs"), suffix)[:-20])
    with pytest.raises(LevitateError, match="cannot decompress the kernel module"):
        read_module(path)


# -- /init and the whole build over a synthetic kernel ------------------------------------------------------------

def test_render_init_bakes_in_the_label_and_refuses_shell_syntax():
    text = render_init("MYLIVE_1")
    assert "LABEL_DEFAULT='MYLIVE_1'" in text and "@LABEL@" not in text
    assert text.startswith("#!/bin/sh\n")
    for bad in ("A'; reboot -f; '", "", "X" * 33, "A B"):
        with pytest.raises(LevitateError, match="label"):
            render_init(bad)


def test_init_template_is_valid_shell():
    subprocess.run(["sh", "-n", str(initramfs.init_template_path())], check=True)   # busybox sh: tests/vm


@cheat_aware(protects="the initramfs carries busybox, /init, the decompressed modules and their modules.dep",
             cheats=["copy the compressed .ko.xz files", "skip depmod", "write the archive uncompressed"],
             consequence="busybox modprobe cannot load .ko.xz or find modules.dep: no disk, no boot")
def test_build_initramfs_over_a_synthetic_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = tmp_path / "root"
    moddir = make_moddir(root, config="CONFIG_RD_GZIP=y\nCONFIG_RD_XZ=y\n")
    busybox = fake_busybox(tmp_path / "busybox")
    extra = tmp_path / "extra.txt"
    extra.write_text("extra\n")
    spec = InitramfsSpec(kernel_version=KVER, busybox=busybox, modules=("erofs", "isofs", "usb_storage", "nvme", "loop"),
                         required_modules=("isofs", "loop"), label="TESTLABEL",
                         extra_files=((extra, "/etc/extra.txt"),))
    out = tmp_path / "work" / "initramfs.img"
    info = build_initramfs(root, spec, out)

    assert info.compression == "xz"                        # the best this kernel config allows
    assert info.size == out.stat().st_size
    assert sorted(info.modules) == sorted(["erofs", "libcrc32c", "crc32c_generic", "crc32c_intel", "isofs",
                                           "cdrom", "usb_storage", "scsi_mod", "scsi_common"])
    got = members(unpack(out.read_bytes(), "xz"))
    assert info.files == len(got)
    kdir = f"usr/lib/modules/{KVER}"
    for rel in ("kernel/fs/erofs/erofs.ko", "kernel/crypto/crc32c_generic.ko", "kernel/arch/x86/crypto/crc32c-intel.ko",
                "kernel/drivers/usb/storage/usb-storage.ko", "kernel/drivers/scsi/scsi_mod.ko"):
        assert got[f"{kdir}/{rel}"][1] == fake_module(initramfs.module_name(rel)), rel
    assert not [p for p in got if p.endswith((".xz", ".zst", ".gz"))]
    assert f"{kdir}/kernel/net/unrelated.ko" not in got
    dep = got[f"{kdir}/modules.dep"][1].decode()          # written by depmod over the initramfs tree
    assert "kernel/fs/erofs/erofs.ko:" in dep and "unrelated" not in dep
    assert got[f"{kdir}/modules.builtin"][1].decode() == MODULES_BUILTIN
    assert got[f"{kdir}/modules.order"][1].decode().splitlines()[0] == "kernel/fs/erofs/erofs.ko"
    assert got["etc/levitate/modules"][1].decode().splitlines() == [
        "crc32c_intel optional", "crc32c_generic optional", "erofs", "isofs", "usb_storage"]
    init_mode, init_text = got["init"]
    assert stat.S_IMODE(init_mode) == 0o755 and b"LABEL_DEFAULT='TESTLABEL'" in init_text
    assert got["usr/bin/busybox"][1] == busybox.read_bytes()
    for applet in ("sh", "mount", "modprobe", "switch_root", "setsid", "cttyhack", "acpid"):
        assert got[f"usr/bin/{applet}"][1] == b"busybox", applet
    assert "usr/bin/init" not in got                        # /init is the kernel's; no stray init applet
    for link, target in (("bin", b"usr/bin"), ("sbin", b"usr/bin"), ("lib", b"usr/lib")):
        assert stat.S_ISLNK(got[link][0]) and got[link][1] == target
    assert stat.S_ISCHR(got["dev/console"][0]) and stat.S_ISCHR(got["dev/null"][0])
    assert got["etc/extra.txt"][1] == b"extra\n"
    assert {p.name for p in out.parent.iterdir()} == {"initramfs.img"}    # no temp leftovers

    again = tmp_path / "again.img"
    build_initramfs(root, spec, again)
    assert again.read_bytes() == out.read_bytes()          # reproducible
    assert moddir.joinpath("modules.dep").read_text() == MODULES_DEP    # the tree is not touched


def test_build_refuses_what_cannot_boot(tmp_path):
    root = tmp_path / "root"
    make_moddir(root)
    busybox = fake_busybox(tmp_path / "busybox")
    out = tmp_path / "initramfs.img"
    base = dict(kernel_version=KVER, busybox=busybox, modules=("erofs",))
    with pytest.raises(LevitateError, match="required .* missing: zram"):
        build_initramfs(root, InitramfsSpec(**base, required_modules=("zram",)), out)
    with pytest.raises(LevitateError, match="no modules for kernel 9.9"):
        build_initramfs(root, InitramfsSpec(**dict(base, kernel_version="9.9")), out)
    small = fake_busybox(tmp_path / "small", applets=tuple(a for a in initramfs.APPLETS if a != "switch_root"))
    with pytest.raises(LevitateError, match="lacks applets /init needs: switch_root"):
        build_initramfs(root, InitramfsSpec(**dict(base, busybox=small)), out)
    make_moddir(tmp_path / "r2", config="CONFIG_RD_GZIP=y\n")
    with pytest.raises(LevitateError, match="CONFIG_RD_ZSTD"):
        build_initramfs(tmp_path / "r2", InitramfsSpec(**base, compression="zstd"), out)
    assert not out.exists()


def test_busybox_applets_are_read_from_the_name_table_without_running_it(tmp_path):
    applets = sorted(initramfs.APPLETS)
    table = b"\0".join(a.encode() for a in applets) + b"\0"
    # other strings right before and after the table must neither cut it short nor join it
    path = tmp_path / "busybox"
    path.write_bytes(b"\x7fELF\0\0usage: %s\0zzz\0yyy\0" + table + b"tail\0after\0\xff")
    assert initramfs.busybox_applets(path) == set(applets)
    (tmp_path / "notbusybox").write_bytes(b"\x7fELF" + b"\0" * 1000 + b"a\0b\0c\0")
    assert initramfs.busybox_applets(tmp_path / "notbusybox") is None
