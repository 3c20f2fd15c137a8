"""Unified kernel images: the systemd EFI stub with the kernel, initramfs, command line and
os-release added as PE sections, laid out as systemd's `ukify` lays them out.

    stub sections (kept as they are)  .text .reloc .data ... .sbat .sdmagic
    appended, in this order           .osrel .cmdline .uname .initrd .linux (last)

Each new section starts at the next SectionAlignment boundary after the previous one in memory
and at the next FileAlignment boundary in the file. `.linux` comes last and its VirtualSize is
the kernel's own SizeOfImage (when that is larger than the file), so the image the firmware loads
leaves the kernel the room it asks for. The stub's `.sbat` is kept; a kernel's SBAT entries are
merged into it (never a second `.sbat`). Debian 12 has no ukify: pefile does the PE surgery here,
as it does inside ukify.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pefile

from levitate.util.errors import LevitateError
from levitate.util.files import write_atomic

log = logging.getLogger("levitate")

SECTION_ORDER = (".osrel", ".cmdline", ".uname", ".initrd", ".linux")
SECTION_HEADER_SIZE = 40

_SCN_CNT_CODE = 0x00000020
_SCN_CNT_INITIALIZED_DATA = 0x00000040
_SCN_MEM_READ = 0x40000000
_SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]


@dataclass(frozen=True)
class UkiSection:
    name: str
    vaddr: int          # VirtualAddress (RVA)
    vsize: int          # VirtualSize: bytes in memory
    raw_offset: int     # PointerToRawData
    raw_size: int       # SizeOfRawData: bytes in the file (FileAlignment multiple)
    flags: int          # Characteristics

    def as_dict(self) -> dict:
        return {"name": self.name, "vaddr": self.vaddr, "vsize": self.vsize,
                "raw_offset": self.raw_offset, "raw_size": self.raw_size, "flags": self.flags}


@dataclass(frozen=True)
class UkiInfo:
    path: Path
    size: int
    sha256: str
    sections: tuple[UkiSection, ...]
    cmdline: str
    uname: str
    sbat: str           # the one .sbat section's text (the stub's, merged with the kernel's)

    def section(self, name: str) -> UkiSection:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(name)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "size": self.size, "sha256": self.sha256,
                "cmdline": self.cmdline, "uname": self.uname, "sbat": self.sbat,
                "sections": [s.as_dict() for s in self.sections]}


def round_up(value: int, alignment: int) -> int:
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment {alignment} is not a power of two")
    return (value + alignment - 1) // alignment * alignment


def _name(section) -> str:
    return section.Name.rstrip(b"\0").decode("ascii", errors="replace")


def _parse(data: bytes, what: Path) -> pefile.PE:
    try:
        return pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError as e:
        raise LevitateError(f"{what} is not a PE/EFI image: {e}",
                            "point at the systemd EFI stub (linuxx64.efi.stub from systemd-boot)") from e


# -- the stub ----------------------------------------------------------------------------------------

def _load_stub(stub: Path) -> pefile.PE:
    """Parse the stub and bring it into the shape ukify expects before sections are added."""
    pe = _parse(stub.read_bytes(), stub)
    if pe.FILE_HEADER.Machine != pefile.MACHINE_TYPE["IMAGE_FILE_MACHINE_AMD64"]:
        raise LevitateError(f"{stub} is not an x86-64 EFI stub (machine {pe.FILE_HEADER.Machine:#x})",
                            "use linuxx64.efi.stub")
    names = [_name(s) for s in pe.sections]
    if ".sdmagic" not in names and ".text" not in names:
        raise LevitateError(f"{stub} does not look like a systemd EFI stub (sections: {names})")
    taken = sorted(set(names) & set(SECTION_ORDER))
    if taken:
        raise LevitateError(f"{stub} already has the section(s) {', '.join(taken)}: it is a UKI, not a stub",
                            "use the plain linuxx64.efi.stub")
    data = bytearray(pe.__data__)
    opt = pe.OPTIONAL_HEADER

    # A signature covers the stub alone and is void once sections are added: drop it when it is the
    # file's tail (where signing tools put it); refuse anything stranger.
    security = opt.DATA_DIRECTORY[_SECURITY]
    if security.VirtualAddress:
        if security.VirtualAddress + security.Size != len(data):
            raise LevitateError(f"{stub} is signed in a layout this builder does not handle",
                                "use an unsigned stub (systemd-boot's linuxx64.efi.stub)")
        log.warning("%s is signed; the signature is dropped (a UKI must be signed as a whole)", stub)
        del data[security.VirtualAddress:]
        security.VirtualAddress = 0
        security.Size = 0

    # Old stubs keep a COFF symbol table at the end of the file; image files should not have one
    # and new sections go where it was.
    if symtab := pe.FILE_HEADER.PointerToSymbolTable:
        end = symtab + 18 * pe.FILE_HEADER.NumberOfSymbols
        if end + 4 <= len(data):
            end += int.from_bytes(data[end:end + 4], "little")   # the string table's own size field
        if not any(data[end:]):                                    # nothing but padding after it
            del data[symtab:]
            pe.FILE_HEADER.PointerToSymbolTable = 0
            pe.FILE_HEADER.NumberOfSymbols = 0
            pe.FILE_HEADER.IMAGE_FILE_LOCAL_SYMS_STRIPPED = True

    for s in pe.sections:
        if s.PointerToRawData % opt.FileAlignment or s.SizeOfRawData % opt.FileAlignment:
            raise LevitateError(f"{stub}: section {_name(s)} is not aligned to FileAlignment "
                                f"{opt.FileAlignment:#x}", "use an unmodified systemd EFI stub")
    # Room for the new section headers: pad SizeOfHeaders to FileAlignment (the first section's data
    # starts at such a boundary, so the space before it is unused).
    opt.SizeOfHeaders = round_up(opt.SizeOfHeaders, opt.FileAlignment)
    first_raw = min((s.PointerToRawData for s in pe.sections if s.SizeOfRawData), default=len(data))
    if opt.SizeOfHeaders > first_raw:
        raise LevitateError(f"{stub}: headers overlap the first section", "use an unmodified systemd EFI stub")
    pe.__data__ = bytes(data)
    pe = pefile.PE(data=bytes(pe.write()), fast_load=True)   # the header edits above, applied
    if warnings := pe.get_warnings():
        raise LevitateError(f"{stub}: pefile warns about the stub: {'; '.join(warnings)}",
                            "use an unmodified systemd EFI stub")
    return pe


# -- SBAT ---------------------------------------------------------------------------------------------

def _sbat_entries(text: str) -> list[str]:
    lines = [ln for ln in text.replace("\0", "").splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith("sbat,")]


def _merge_sbat(pe: pefile.PE, data: bytearray, kernel_pe: pefile.PE | None) -> None:
    """Add the kernel's SBAT entries (if it has any) to the stub's own `.sbat`, in place.

    The stub's section keeps its address; the merged text must fit both its file space and the
    gap before the next section in memory. If it does not, the stub's `.sbat` stays as it is.
    """
    if kernel_pe is None:
        return
    kernel_sbat = next((s for s in kernel_pe.sections if _name(s) == ".sbat"), None)
    if kernel_sbat is None:
        return
    extra = _sbat_entries(kernel_sbat.get_data()[: kernel_sbat.Misc_VirtualSize].decode(errors="replace"))
    sections = list(pe.sections)
    idx = next((i for i, s in enumerate(sections) if _name(s) == ".sbat"), None)
    if idx is None:
        log.warning("the EFI stub has no .sbat section; the kernel's SBAT entries are not carried over")
        return
    own = sections[idx]
    text = own.get_data()[: own.Misc_VirtualSize].decode(errors="replace").replace("\0", "")
    head = [ln for ln in text.splitlines() if ln.startswith("sbat,")] or [
        "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md"]
    entries = _sbat_entries(text)
    new = [e for e in extra if e not in entries]
    if not new:
        return
    merged = ("\n".join(head[:1] + entries + new) + "\n").encode() + b"\0"
    room = own.SizeOfRawData
    later = [s.VirtualAddress for s in sections if s.VirtualAddress > own.VirtualAddress]
    if later:
        room = min(room, min(later) - own.VirtualAddress)
    if len(merged) > room:
        log.warning("the kernel's SBAT entries do not fit into the stub's .sbat (%d > %d bytes); "
                    "kept the stub's .sbat alone", len(merged), room)
        return
    start = own.PointerToRawData
    data[start:start + own.SizeOfRawData] = merged + bytes(own.SizeOfRawData - len(merged))
    own.Misc_VirtualSize = len(merged)


# -- assembly ----------------------------------------------------------------------------------------

def _kernel_pe(kernel: Path, data: bytes) -> pefile.PE | None:
    try:
        return pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError:
        log.warning("%s is not a PE image (no EFI stub in the kernel?): its in-memory size is its file size",
                    kernel)
        return None


def _append_sections(pe: pefile.PE, data: bytearray, contents: Mapping[str, bytes],
                     linux_vsize: int) -> None:
    opt = pe.OPTIONAL_HEADER
    for name in SECTION_ORDER:
        body = contents[name]
        if not body:
            raise LevitateError(f"the UKI's {name} section would be empty", "check the kernel, initramfs and command line")
        header = pefile.SectionStructure(pe.__IMAGE_SECTION_HEADER_format__, pe=pe)
        header.__unpack__(bytes(header.sizeof()))
        offset = pe.sections[-1].get_file_offset() + SECTION_HEADER_SIZE
        if offset + SECTION_HEADER_SIZE > opt.SizeOfHeaders:
            raise LevitateError(f"no room in the stub's headers for the {name} section header",
                                "use a systemd EFI stub with room for section headers (any recent systemd)")
        last = pe.sections[-1]
        header.set_file_offset(offset)
        header.Name = name.encode()
        header.Misc_VirtualSize = max(len(body), linux_vsize) if name == ".linux" else len(body)
        header.VirtualAddress = round_up(last.VirtualAddress + max(last.Misc_VirtualSize, 1), opt.SectionAlignment)
        header.PointerToRawData = round_up(len(data), opt.FileAlignment)
        header.SizeOfRawData = round_up(len(body), opt.FileAlignment)
        # .linux as code: old kernels booted through the EFI handover protocol run in place.
        header.Characteristics = _SCN_MEM_READ | (_SCN_CNT_CODE if name == ".linux" else _SCN_CNT_INITIALIZED_DATA)
        data += bytes(header.PointerToRawData - len(data))
        data += body
        data += bytes(header.SizeOfRawData - len(body))
        pe.FILE_HEADER.NumberOfSections += 1
        opt.SizeOfInitializedData += header.Misc_VirtualSize
        pe.__structures__.append(header)
        pe.sections.append(header)
    last = pe.sections[-1]
    opt.SizeOfImage = round_up(last.VirtualAddress + last.Misc_VirtualSize, opt.SectionAlignment)
    opt.CheckSum = 0        # as ukify: UEFI does not check it, and computing it means reading it all


def build_uki(stub: Path, kernel: Path, initrd: Path, cmdline: str, os_release: bytes, uname: str,
              out: Path) -> UkiInfo:
    """Assemble a UKI from the systemd EFI stub and write it to `out` (temporary name, renamed)."""
    stub, kernel, initrd, out = Path(stub), Path(kernel), Path(initrd), Path(out)
    for what, path in (("EFI stub", stub), ("kernel", kernel), ("initramfs", initrd)):
        if not path.is_file():
            raise LevitateError(f"{what} {path} not found", "build the earlier stages first (`leviso build`)")
    cmdline = " ".join(cmdline.split())
    if not cmdline.isascii() or not cmdline.isprintable():
        raise LevitateError(f"the kernel command line must be printable ASCII: {cmdline!r}",
                            "fix the command line in the profile")
    if not os_release.strip():
        raise LevitateError("os-release for the UKI is empty", "the staged tree needs /etc/os-release (or /usr/lib/os-release)")

    pe = _load_stub(stub)
    data = bytearray(pe.__data__)
    kernel_data = kernel.read_bytes()
    kernel_pe = _kernel_pe(kernel, kernel_data)
    linux_vsize = kernel_pe.OPTIONAL_HEADER.SizeOfImage if kernel_pe is not None else 0
    _merge_sbat(pe, data, kernel_pe)
    _append_sections(pe, data, {
        ".osrel": os_release,
        ".cmdline": cmdline.encode(),
        ".uname": uname.strip().encode(),
        ".initrd": initrd.read_bytes(),
        ".linux": kernel_data,
    }, linux_vsize)
    # Section data went into `data`; the edited headers come from pefile.
    pe.__data__ = data
    image = pe.write()

    write_atomic(out, image, perm=0o644)
    info = read_uki(out)
    log.info("UKI %s: %.1f MiB (%s)", out.name, info.size / 2**20, ", ".join(s.name for s in info.sections))
    return info


# -- reading one back --------------------------------------------------------------------------------

def describe_uki(path: Path) -> dict:
    """A UKI's layout for the manifest: {"path", "size", "sha256", "cmdline", "uname", "sbat",
    "sections": [{"name", "vaddr", "vsize", "raw_offset", "raw_size", "flags"}]}."""
    return read_uki(path).as_dict()


def read_uki(path: Path) -> UkiInfo:
    """Read a UKI (or any PE image) back: its sections and the text sections' content."""
    path = Path(path)
    raw = path.read_bytes()
    pe = _parse(raw, path)
    sections = tuple(UkiSection(_name(s), s.VirtualAddress, s.Misc_VirtualSize, s.PointerToRawData,
                                s.SizeOfRawData, s.Characteristics) for s in pe.sections)

    def text(name: str) -> str:
        for s in pe.sections:
            if _name(s) == name:
                return s.get_data()[: min(s.Misc_VirtualSize, s.SizeOfRawData)].decode(errors="replace").rstrip("\0")
        return ""

    return UkiInfo(path=path, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), sections=sections,
                   cmdline=text(".cmdline"), uname=text(".uname"), sbat=text(".sbat"))


def read_os_release(tree: Path) -> bytes:
    """The tree's os-release (etc/ first, then usr/lib/, as systemd reads it)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        p = Path(tree) / rel
        if p.is_file() or p.is_symlink():
            target = p
            if p.is_symlink():
                link = os.readlink(p)
                target = (Path(tree) / link.lstrip("/")) if link.startswith("/") else p.parent / link
            if target.is_file():
                return target.read_bytes()
    raise LevitateError(f"{tree} has no os-release", "the profile must provide /etc/os-release")
