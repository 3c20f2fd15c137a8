"""The UKI's PE layout, checked against the host's systemd EFI stub: the stub's sections kept
byte for byte, the new sections in ukify's order at aligned addresses after them, `.linux` last
with the kernel's in-memory size, one `.sbat`, consistent headers. Cross-checked with objdump when
it is installed. (That such a file really boots is tests/vm/test_uki_boot.py.)"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pefile
import pytest

from levitate.leviso.uki import build_uki, describe_uki, read_os_release, read_uki, round_up
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
CMDLINE = "console=tty0 console=ttyS0,115200 root=live:LABEL=LEVITATEOS"
OS_RELEASE = b'NAME="LevitateOS"\nID=levitateos\nVERSION_ID=1\nPRETTY_NAME="LevitateOS 1"\n'
UNAME = "6.12.0-55.el10.x86_64"
KERNEL_EXTRA = 3 << 20          # the fake kernel asks for 3 MiB more in memory than its file size

pytestmark = pytest.mark.skipif(not STUB.is_file(), reason="no systemd EFI stub on the host "
                                "(Debian: apt-get install systemd-boot-efi)")


def _name(s) -> str:
    return s.Name.rstrip(b"\0").decode()


def fake_kernel(path: Path, *, sbat_entry: str | None = None) -> Path:
    """A PE image standing in for a kernel: a copy of the stub whose SizeOfImage exceeds its file
    size (as a bzImage's does), optionally with an extra SBAT entry in its .sbat."""
    pe = pefile.PE(data=STUB.read_bytes(), fast_load=True)
    data = bytearray(pe.__data__)
    if sbat_entry is not None:
        sbat = next(s for s in pe.sections if _name(s) == ".sbat")
        text = ("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
                f"{sbat_entry}\n").encode() + b"\0"
        data[sbat.PointerToRawData:sbat.PointerToRawData + sbat.SizeOfRawData] = \
            text + bytes(sbat.SizeOfRawData - len(text))
        sbat.Misc_VirtualSize = len(text)
    pe.OPTIONAL_HEADER.SizeOfImage = round_up(len(data) + KERNEL_EXTRA, 4096)
    pe.__data__ = data
    path.write_bytes(pe.write())
    return path


@pytest.fixture
def inputs(tmp_path):
    kernel = fake_kernel(tmp_path / "vmlinuz")
    initrd = tmp_path / "initramfs.img"
    initrd.write_bytes(os.urandom(300_001))        # odd size: VirtualSize must be exact
    return kernel, initrd


@pytest.fixture
def uki(inputs, tmp_path):
    kernel, initrd = inputs
    return build_uki(STUB, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, tmp_path / "out" / "levitateos-live.efi")


def test_sections_in_ukify_order_after_the_stubs(uki):
    stub_names = [_name(s) for s in pefile.PE(str(STUB), fast_load=True).sections]
    names = [s.name for s in uki.sections]
    assert names == stub_names + [".osrel", ".cmdline", ".uname", ".initrd", ".linux"]


@cheat_aware(
    protects="the systemd stub inside the UKI is the stub that was given, unchanged",
    cheats=["comparing only section names", "rebuilding the stub's sections with new addresses"],
    consequence="the stub's code and relocations no longer match its addresses: the UKI does not start",
)
def test_stub_sections_unchanged(uki):
    stub = pefile.PE(str(STUB), fast_load=True)
    built = pefile.PE(str(uki.path), fast_load=True)
    assert built.OPTIONAL_HEADER.AddressOfEntryPoint == stub.OPTIONAL_HEADER.AddressOfEntryPoint
    assert built.OPTIONAL_HEADER.SectionAlignment == stub.OPTIONAL_HEADER.SectionAlignment
    for old, new in zip(stub.sections, built.sections):
        assert _name(old) == _name(new)
        assert (old.VirtualAddress, old.Misc_VirtualSize, old.Characteristics) == \
               (new.VirtualAddress, new.Misc_VirtualSize, new.Characteristics)
        assert old.get_data()[: old.SizeOfRawData] == new.get_data()[: new.SizeOfRawData], _name(old)


@cheat_aware(
    protects="every section at an aligned address after the previous one, none overlapping, and "
             "headers (NumberOfSections, SizeOfImage) that match",
    cheats=["checking only the new sections' order", "trusting pefile to load whatever it is given"],
    consequence="firmware refuses the image or loads sections over each other: no boot",
)
def test_layout_aligned_without_overlap(uki):
    pe = pefile.PE(str(uki.path), fast_load=True)
    opt = pe.OPTIONAL_HEADER
    assert pe.get_warnings() == []
    assert pe.FILE_HEADER.NumberOfSections == len(pe.sections) == len(uki.sections)
    table_end = pe.sections[-1].get_file_offset() + 40
    assert table_end <= opt.SizeOfHeaders <= min(s.PointerToRawData for s in pe.sections)
    new = pe.sections[-5:]
    for s in new:
        assert s.VirtualAddress % opt.SectionAlignment == 0, _name(s)
        assert s.PointerToRawData % opt.FileAlignment == 0, _name(s)
        assert s.SizeOfRawData % opt.FileAlignment == 0, _name(s)
    for a, b in zip(pe.sections, pe.sections[1:]):
        assert b.VirtualAddress >= a.VirtualAddress + a.Misc_VirtualSize, (_name(a), _name(b))
        assert b.PointerToRawData >= a.PointerToRawData + a.SizeOfRawData, (_name(a), _name(b))
    last = pe.sections[-1]
    assert opt.SizeOfImage == round_up(last.VirtualAddress + last.Misc_VirtualSize, opt.SectionAlignment)
    assert last.PointerToRawData + last.SizeOfRawData == uki.path.stat().st_size
    assert pe.FILE_HEADER.PointerToSymbolTable == 0       # the stub's COFF symbols are dropped


@cheat_aware(
    protects=".linux is last and as large in memory as the kernel asks (its own SizeOfImage)",
    cheats=["VirtualSize = file size", "putting .linux before .initrd"],
    consequence="the kernel has no room to decompress or for its bss: early crash or silent hang",
)
def test_linux_last_with_room(uki, inputs):
    kernel, _ = inputs
    linux = uki.sections[-1]
    want = pefile.PE(str(kernel), fast_load=True).OPTIONAL_HEADER.SizeOfImage
    assert linux.name == ".linux"
    assert linux.vsize == want > kernel.stat().st_size
    assert linux.raw_size >= kernel.stat().st_size
    assert linux.flags & 0x20 and linux.flags & 0x40000000        # code, readable (as ukify)


def test_section_contents(uki, inputs):
    kernel, initrd = inputs
    pe = pefile.PE(str(uki.path), fast_load=True)
    content = {_name(s): s.get_data()[: min(s.Misc_VirtualSize, s.SizeOfRawData)] for s in pe.sections}
    sizes = {_name(s): s.Misc_VirtualSize for s in pe.sections}
    assert content[".osrel"] == OS_RELEASE and sizes[".osrel"] == len(OS_RELEASE)
    assert content[".cmdline"] == CMDLINE.encode() and sizes[".cmdline"] == len(CMDLINE)
    assert content[".uname"] == UNAME.encode()
    assert content[".initrd"] == initrd.read_bytes() and sizes[".initrd"] == initrd.stat().st_size
    body = kernel.read_bytes()
    assert content[".linux"][: len(body)] == body and not any(content[".linux"][len(body):])
    assert uki.cmdline == CMDLINE and uki.uname == UNAME


@cheat_aware(
    protects="exactly one .sbat, the stub's",
    cheats=["appending a second .sbat section", "dropping the stub's SBAT data"],
    consequence="shim and SBAT revocation see a malformed image; Secure Boot setups refuse it",
)
def test_one_sbat_the_stubs(uki):
    names = [s.name for s in uki.sections]
    assert names.count(".sbat") == 1
    stub = pefile.PE(str(STUB), fast_load=True)
    stub_sbat = next(s for s in stub.sections if _name(s) == ".sbat")
    assert uki.sbat == stub_sbat.get_data()[: stub_sbat.Misc_VirtualSize].decode().rstrip("\0")
    assert uki.sbat.startswith("sbat,1,")


def test_kernel_sbat_merged_into_the_stubs(tmp_path, inputs):
    _, initrd = inputs
    kernel = fake_kernel(tmp_path / "vmlinuz-sbat", sbat_entry="k,1,K,k,1,u")
    info = build_uki(STUB, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, tmp_path / "merged.efi")
    assert [s.name for s in info.sections].count(".sbat") == 1
    lines = info.sbat.splitlines()
    assert lines[0].startswith("sbat,1,") and sum(ln.startswith("sbat,") for ln in lines) == 1
    assert "k,1,K,k,1,u" in lines and any(ln.startswith("systemd,") for ln in lines)
    sbat = info.section(".sbat")
    nxt = min(s.vaddr for s in info.sections if s.vaddr > sbat.vaddr)
    assert sbat.vaddr + sbat.vsize <= nxt and sbat.vsize <= sbat.raw_size


def test_kernel_sbat_too_large_keeps_the_stubs(tmp_path, inputs, caplog):
    _, initrd = inputs
    kernel = fake_kernel(tmp_path / "vmlinuz-sbat", sbat_entry="linux,1,The Linux Developers,linux,6.12.0,"
                                                             "https://linux.org/" + "x" * 200)
    with caplog.at_level(logging.WARNING, logger="levitate"):
        info = build_uki(STUB, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, tmp_path / "kept.efi")
    assert "linux,1," not in info.sbat
    assert [s.name for s in info.sections].count(".sbat") == 1
    assert "do not fit" in caplog.text


def test_non_pe_kernel_gets_its_file_size(tmp_path, inputs):
    _, initrd = inputs
    raw = tmp_path / "Image"
    raw.write_bytes(os.urandom(100_000))
    info = build_uki(STUB, raw, initrd, CMDLINE, OS_RELEASE, UNAME, tmp_path / "raw.efi")
    assert info.sections[-1].vsize == 100_000


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_objdump_agrees(uki):
    """An independent PE reader sees the same sections at the same addresses."""
    out = subprocess.run(["objdump", "-h", str(uki.path)], capture_output=True, text=True, check=True).stdout
    rows = re.findall(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out, re.M)
    assert [r[0] for r in rows] == [s.name for s in uki.sections]
    for (name, _size, vma, off), s in zip(rows, uki.sections):
        assert int(vma, 16) == s.vaddr and int(off, 16) == s.raw_offset, name


def test_describe_roundtrip(uki):
    assert read_uki(uki.path) == uki
    d = describe_uki(uki.path)
    assert d == uki.as_dict()
    assert [(s["name"], s["vaddr"], s["vsize"], s["raw_size"]) for s in d["sections"]] == \
           [(s.name, s.vaddr, s.vsize, s.raw_size) for s in uki.sections]
    assert d["size"] == uki.path.stat().st_size and len(d["sha256"]) == 64
    assert d["cmdline"] == CMDLINE and d["uname"] == UNAME


def test_written_atomically(inputs, tmp_path):
    kernel, initrd = inputs
    out = tmp_path / "uki.efi"
    build_uki(STUB, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, out)
    before = out.read_bytes()
    bad_stub = tmp_path / "not-a-stub.efi"
    bad_stub.write_bytes(b"MZ" + os.urandom(4000))
    with pytest.raises(LevitateError):
        build_uki(bad_stub, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["uki.efi", "not-a-stub.efi", "vmlinuz",
                                                                 "initramfs.img"])


def test_refuses_bad_input(inputs, tmp_path, uki):
    kernel, initrd = inputs
    out = tmp_path / "x.efi"
    with pytest.raises(LevitateError, match="already has"):
        build_uki(uki.path, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, out)       # a UKI is not a stub
    with pytest.raises(LevitateError, match="ASCII"):
        build_uki(STUB, kernel, initrd, "console=ttyS0 café", OS_RELEASE, UNAME, out)
    with pytest.raises(LevitateError, match="not found"):
        build_uki(STUB, tmp_path / "missing", initrd, CMDLINE, OS_RELEASE, UNAME, out)
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    with pytest.raises(LevitateError, match="empty"):
        build_uki(STUB, kernel, empty, CMDLINE, OS_RELEASE, UNAME, out)
    assert not out.exists()


def test_read_os_release(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_bytes(OS_RELEASE)
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    assert read_os_release(tmp_path) == OS_RELEASE
    (tmp_path / "etc/os-release").unlink()
    (tmp_path / "etc/os-release").symlink_to("/usr/lib/os-release")     # absolute: inside the tree
    assert read_os_release(tmp_path) == OS_RELEASE
    with pytest.raises(LevitateError):
        read_os_release(tmp_path / "nowhere")


def test_signed_stub_loses_its_signature(inputs, tmp_path, uki, caplog):
    """A signature covers the stub alone; the UKI is the same as one built from the unsigned stub."""
    kernel, initrd = inputs
    pe = pefile.PE(data=STUB.read_bytes(), fast_load=True)
    data = bytearray(pe.__data__)
    data += bytes(-len(data) % 8)
    cert = struct.pack("<IHH", 8 + 100, 0x0200, 0x0002) + os.urandom(100)    # WIN_CERTIFICATE, PKCS#7
    security = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]]
    security.VirtualAddress, security.Size = len(data), len(cert)
    pe.__data__ = bytes(data + cert)
    signed = tmp_path / "signed.stub"
    signed.write_bytes(pe.write())
    with caplog.at_level(logging.WARNING, logger="levitate"):
        info = build_uki(signed, kernel, initrd, CMDLINE, OS_RELEASE, UNAME, tmp_path / "from-signed.efi")
    assert "signed" in caplog.text
    assert info.path.read_bytes() == uki.path.read_bytes()
