"""Early microcode in front of the initramfs: which files of the tree are taken (microcode_ctl's
layout, amd-ucode-firmware's .xz files), and the combined image as the host's GNU cpio and the
kernel's rules see it: an uncompressed newc archive first, the compressed main archive after it.
The real kernel booting such an image is in tests/vm/test_initramfs_boot.py."""

from __future__ import annotations

import lzma
import os
import subprocess
from pathlib import Path

import pytest

from levitate.boot.cpulevel import installed_cpu_level, required_flags
from levitate.boot.initramfs import InitramfsSpec, build_initramfs
from levitate.boot.microcode import Cpu, amd_microcode, early_microcode, intel_microcode
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware
from tests.unit.test_initramfs import KVER, fake_busybox, make_moddir, members, unpack

INTEL = "usr/lib/firmware/intel-ucode"
CAVEATS = "usr/share/microcode_ctl/ucode_with_caveats"
AMD = "usr/lib/firmware/amd-ucode"


def put(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ucode_tree(root: Path) -> Path:
    """microcode_ctl as its %post would leave it (one link into the caveat set, one plain file)
    plus caveat-only updates; amd-ucode-firmware with Fedora's .xz files."""
    put(root, f"{CAVEATS}/intel/intel-ucode/06-55-04", b"INTEL-SKX-default")
    put(root, f"{CAVEATS}/intel/intel-ucode/06-8f-05", b"INTEL-SPR")
    put(root, f"{CAVEATS}/intel-06-55-04/intel-ucode/06-55-04", b"INTEL-SKX-caveat")
    put(root, f"{CAVEATS}/intel-06-8c-01/intel-ucode/06-8c-01", b"INTEL-TGL-caveat")
    (root / INTEL).mkdir(parents=True)
    os.symlink(f"/{CAVEATS}/intel/intel-ucode/06-8f-05", root / INTEL / "06-8f-04")   # absolute, as update_ucode
    put(root, f"{INTEL}/06-3c-03", b"INTEL-HSW")
    put(root, f"{INTEL}/06-3c-03.initramfs", b"not an update file")
    put(root, f"{AMD}/microcode_amd_fam19h.bin.xz", lzma.compress(b"AMD-19h", check=lzma.CHECK_CRC32))
    put(root, f"{AMD}/microcode_amd_fam17h.bin", b"AMD-17h")
    put(root, f"{AMD}/microcode_amd_fam17h.bin.sha256", b"not a container")
    return root


@cheat_aware(protects="Intel microcode comes from microcode_ctl's default set, never its caveat sets",
             cheats=["glob every intel-ucode directory of the tree", "follow links out of the tree"],
             consequence="no early microcode on Intel machines, or an update known to hang some of them")
def test_intel_files_from_the_firmware_directory_and_the_default_caveat_set(tmp_path):
    root = ucode_tree(tmp_path / "root")
    os.symlink("/etc/passwd", root / INTEL / "06-9e-0a")                 # a link out of the tree: skipped
    # 06-3c-03 (plain file), 06-55-04 (default set; NOT the caveat revision), 06-8f-04 -> 06-8f-05's
    # content once although two names carry it, sorted by name
    assert intel_microcode(root) == b"INTEL-HSW" + b"INTEL-SKX-default" + b"INTEL-SPR"


def test_amd_containers_are_decompressed_and_concatenated(tmp_path):
    root = ucode_tree(tmp_path / "root")
    assert amd_microcode(root) == b"AMD-17h" + b"AMD-19h"
    put(root, f"{AMD}/microcode_amd_fam19h.bin.xz", b"\xfd7zXZ\0garbage")
    with pytest.raises(LevitateError, match="cannot decompress the AMD microcode .*fam19h"):
        amd_microcode(root)


def test_no_microcode_no_files(tmp_path):
    assert early_microcode(tmp_path) == {}


def _cpio_length(data: bytes) -> int:
    """Where the first newc archive ends (after its TRAILER!!! member), walking the headers."""
    offset = 0
    while True:
        assert data[offset:offset + 6] == b"070701", f"no newc header at {offset}"
        size, namesize = int(data[offset + 54:offset + 62], 16), int(data[offset + 94:offset + 102], 16)
        name = data[offset + 110:offset + 110 + namesize - 1]
        offset += 110 + namesize
        offset += -offset % 4
        offset += size + (-size % 4)
        if name == b"TRAILER!!!":
            return offset


@cheat_aware(protects="the initramfs starts with an uncompressed early cpio holding the microcode, "
                      "then the compressed main archive",
             cheats=["put the microcode inside the compressed archive", "compress the early cpio",
                     "append the microcode after the main archive"],
             consequence="the kernel never sees the microcode: CPUs run without security fixes from boot")
def test_image_is_early_microcode_then_the_compressed_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = ucode_tree(tmp_path / "root")
    make_moddir(root, config="CONFIG_RD_XZ=y\n")
    spec = InitramfsSpec(kernel_version=KVER, busybox=fake_busybox(tmp_path / "busybox"), modules=("erofs",))
    out = tmp_path / "initramfs.img"
    info = build_initramfs(root, spec, out)
    image = out.read_bytes()

    # the host's GNU cpio reads the first archive and stops at its trailer
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=image, capture_output=True, check=True)
    assert listing.stdout.decode().split() == ["kernel", "kernel/x86", "kernel/x86/microcode",
                                               "kernel/x86/microcode/AuthenticAMD.bin",
                                               "kernel/x86/microcode/GenuineIntel.bin"]
    early = _cpio_length(image)
    assert early == info.early_size and info.size == len(image) == out.stat().st_size
    got = members(image[:early])
    assert got["kernel/x86/microcode/GenuineIntel.bin"][1] == b"INTEL-HSW" + b"INTEL-SKX-default" + b"INTEL-SPR"
    assert got["kernel/x86/microcode/AuthenticAMD.bin"][1] == b"AMD-17h" + b"AMD-19h"
    assert "dev/console" not in got
    assert info.microcode == {"GenuineIntel.bin": 35, "AuthenticAMD.bin": 14}
    assert image[early:early + 6] == b"\xfd7zXZ\0"                       # the compressed archive follows
    main = members(unpack(image[early:], "xz"))
    assert "init" in main and "kernel/x86/microcode/GenuineIntel.bin" not in main


def test_without_microcode_the_image_is_the_compressed_archive_alone(tmp_path, caplog):
    root = tmp_path / "root"
    make_moddir(root, config="CONFIG_RD_XZ=y\n")
    spec = InitramfsSpec(kernel_version=KVER, busybox=fake_busybox(tmp_path / "busybox"), modules=("erofs",))
    with caplog.at_level("INFO", logger="levitate"):
        info = build_initramfs(root, spec, tmp_path / "initramfs.img")
    assert (tmp_path / "initramfs.img").read_bytes()[:6] == b"\xfd7zXZ\0"
    assert info.early_size == 0 and info.microcode == {}
    assert "no CPU microcode" in caplog.text


@cheat_aware(protects="/init learns the profile's CPU level as cpuinfo flags; recboot reads it from the image",
             cheats=["hard-code the v3 flags in /init", "skip the check on the installed system"],
             consequence="an old CPU dies in a bare kernel panic after switch_root, with no word why")
def test_cpu_level_reaches_init_and_the_installed_system(tmp_path):
    root = tmp_path / "root"
    make_moddir(root, config="CONFIG_RD_XZ=y\n")
    spec = InitramfsSpec(kernel_version=KVER, busybox=fake_busybox(tmp_path / "busybox"), modules=("erofs",),
                         cpu_level="x86-64-v3")
    build_initramfs(root, spec, tmp_path / "initramfs.img")
    conf = members(unpack((tmp_path / "initramfs.img").read_bytes(), "xz"))["etc/levitate/initramfs.conf"][1].decode()
    assert "CPU_LEVEL=x86-64-v3\n" in conf and "CPU_SUMMARY=AVX2, BMI2, FMA, MOVBE\n" in conf
    flags = next(line for line in conf.splitlines() if line.startswith("CPU_FLAGS=")).split("=", 1)[1].split()
    assert {"avx2", "bmi2", "fma", "movbe", "sse4_2"} <= set(flags) and "avx512f" not in flags
    assert required_flags("") == []

    assert installed_cpu_level(root) == ""
    put(root, "usr/lib/levitate/cpu-level", b"x86-64-v3\n")
    assert installed_cpu_level(root) == "x86-64-v3"
    put(root, "usr/lib/levitate/cpu-level", b"pentium\n")
    with pytest.raises(LevitateError, match="unknown CPU level 'pentium'"):
        installed_cpu_level(root)


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: some CPU
stepping\t: {stepping}
flags\t\t: fpu avx2

processor\t: 1
vendor_id\t: ignored
"""


@cheat_aware(protects="recboot's host-only microcode holds exactly the machine's own update, as dracut's "
                      "host-only default does, so the installed initramfs stays small",
             cheats=["match Intel files by family only", "take every AMD container"],
             consequence="the installed system boots without its CPU's microcode fixes, or carries ~14 MiB "
                         "of uncompressible updates for other CPUs")
@pytest.mark.parametrize("vendor, family, model, stepping, intel, amd", [
    ("GenuineIntel", 6, 0x3c, 3, b"INTEL-HSW", b""),
    ("GenuineIntel", 6, 0x8f, 4, b"INTEL-SPR", b""),          # through microcode_ctl's link
    ("GenuineIntel", 6, 0x3c, 4, b"", b""),                   # another stepping: nothing
    ("AuthenticAMD", 0x19, 0x61, 2, b"", b"AMD-19h"),         # the .xz container, decompressed
    ("AuthenticAMD", 0x17, 0x31, 0, b"", b"AMD-17h"),
])
def test_host_only_takes_the_machines_own_update(tmp_path, vendor, family, model, stepping, intel, amd):
    root = ucode_tree(tmp_path / "root")
    cpu = Cpu.from_cpuinfo(CPUINFO.format(vendor=vendor, family=family, model=model, stepping=stepping))
    assert cpu == Cpu(vendor, family, model, stepping)
    expected = {name: data for name, data in (("GenuineIntel.bin", intel), ("AuthenticAMD.bin", amd)) if data}
    assert early_microcode(root, cpu) == expected
    assert set(early_microcode(root)) == {"GenuineIntel.bin", "AuthenticAMD.bin"}     # the live system: all


def test_unreadable_cpuinfo_means_no_host_only_choice():
    assert Cpu.from_cpuinfo("processor : 0\nflags : fpu\n") is None
