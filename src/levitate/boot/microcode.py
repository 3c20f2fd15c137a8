"""Early CPU microcode: the uncompressed cpio the kernel reads before it unpacks the initramfs.

The kernel's early loader (Documentation/arch/x86/microcode.rst) looks for
kernel/x86/microcode/GenuineIntel.bin and kernel/x86/microcode/AuthenticAMD.bin in an
UNCOMPRESSED "newc" cpio at the very start of the initrd; the compressed main archive follows
it. Each file is the vendor's update files concatenated (the loader picks the newest revision
that matches the CPU), as dracut's early microcode step writes them on Rocky.

Where the files come from in the tree (Rocky 10 package layout):
  Intel: microcode_ctl. Its RHEL 8/9 spec installs the updates under
    /usr/share/microcode_ctl/ucode_with_caveats/<caveat>/intel-ucode/FF-MM-SS and its %post
    (update_ucode, not replayed here) links the enabled ones into /usr/lib/firmware/intel-ucode.
    Taken: /usr/lib/firmware/intel-ucode/FF-MM-SS, and for names not there, the "intel" caveat
    directory, the default set. Its only caveat is early loading inside VMs on old RHEL 7
    kernels (README.caveats), which current kernels avoid themselves. The other caveat
    directories hold newer revisions known to hang some machines (Broadwell-EP 06-4f-01,
    SNB-EP 06-2d-07, SKL 06-55-04/06-4e-03/06-5e-03, Dell 06-8e/06-9e, TGL 06-8c-01); update_ucode
    enables them only after checks this build cannot make, so they are left out: those CPUs
    keep the older revision of the default set (or their firmware's).
  AMD: amd-ucode-firmware's /usr/lib/firmware/amd-ucode/microcode_amd*.bin, xz-compressed
    (.bin.xz) as Fedora-family linux-firmware ships them: decompressed here.

Standard library only: the installed system rebuilds its initramfs with this module.
"""

from __future__ import annotations

import hashlib
import io
import logging
import lzma
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from levitate.util.errors import LevitateError
from levitate.util.files import in_tree

log = logging.getLogger("levitate")

EARLY_DIR = "kernel/x86/microcode"
INTEL_DIRS = ("usr/lib/firmware/intel-ucode", "usr/share/microcode_ctl/ucode_with_caveats/intel/intel-ucode")
AMD_DIR = "usr/lib/firmware/amd-ucode"
_INTEL_NAME = re.compile(r"[0-9a-f]{2}-[0-9a-f]{2}-[0-9a-f]{2}")        # family-model-stepping
_AMD_NAME = re.compile(r"microcode_amd(_fam[0-9a-f]{2}h)?\.bin(\.xz)?")


def _inside(root: Path, path: Path) -> Path | None:
    """The regular file `path` names inside the tree (update_ucode writes absolute links into
    /usr/share); None when that leaves the tree."""
    real = in_tree(root, path)
    return real if real is not None and stat.S_ISREG(real.stat().st_mode) else None


def _files(root: Path, directory: str, pattern: re.Pattern) -> dict[str, Path]:
    base = root / directory
    found: dict[str, Path] = {}
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            if pattern.fullmatch(entry.name) and (real := _inside(root, entry)) is not None:
                found[entry.name] = real
            elif pattern.fullmatch(entry.name):
                log.warning("microcode: %s is not a file inside the tree: skipped", entry)
    return found


def intel_microcode(root: Path, cpu: "Cpu | None" = None) -> bytes:
    """The Intel update files of the tree concatenated (each distinct file once), sorted by name;
    with `cpu`, only its own."""
    files: dict[str, Path] = {}
    for directory in INTEL_DIRS:
        for name, path in _files(root, directory, _INTEL_NAME).items():
            if cpu is None or cpu.wants(name):
                files.setdefault(name, path)
    seen: set[bytes] = set()
    out = io.BytesIO()
    for name in sorted(files):
        data = files[name].read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest not in seen:                   # 06-8f-04..08 are one file under four names
            seen.add(digest)
            out.write(data)
    return out.getvalue()


def amd_microcode(root: Path, cpu: "Cpu | None" = None) -> bytes:
    """The AMD container files of the tree concatenated, .xz ones decompressed; a plain file wins
    over an .xz one of the same name. With `cpu`, only its family's."""
    files = {name: path for name, path in _files(root, AMD_DIR, _AMD_NAME).items() if cpu is None or cpu.wants(name)}
    out = io.BytesIO()
    for name in sorted({n.removesuffix(".xz") for n in files}):
        path = files.get(name) or files[name + ".xz"]
        data = path.read_bytes()
        if path.name.endswith(".xz"):
            try:
                data = lzma.decompress(data)
            except lzma.LZMAError as exc:
                raise LevitateError(f"cannot decompress the AMD microcode {path}: {exc}",
                                    "the amd-ucode-firmware package may be damaged: extract it again") from exc
        out.write(data)
    return out.getvalue()


@dataclass(frozen=True)
class Cpu:
    """The CPU the image will run on, as /proc/cpuinfo names it."""

    vendor: str                  # GenuineIntel, AuthenticAMD, ...
    family: int
    model: int
    stepping: int

    @classmethod
    def from_cpuinfo(cls, text: str) -> "Cpu | None":
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                if fields:
                    break                  # the first processor is enough
                continue
            fields.setdefault(key.strip(), value.strip())
        try:
            return cls(fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]), int(fields["stepping"]))
        except (KeyError, ValueError):
            return None

    def wants(self, name: str) -> bool:
        """Is this update file (an early-cpio vendor file's source) for this CPU? dracut's
        host-only rule: Intel FF-MM-SS by exact signature; AMD by family (0x15 and up have a file
        of their own, older ones share microcode_amd.bin)."""
        if self.vendor == "GenuineIntel":
            return name == f"{self.family:02x}-{self.model:02x}-{self.stepping:02x}"
        if self.vendor == "AuthenticAMD":
            base = name.removesuffix(".xz")
            return base == (f"microcode_amd_fam{self.family:02x}h.bin" if self.family >= 0x15 else "microcode_amd.bin")
        return False


def early_microcode(root: Path, cpu: Cpu | None = None) -> dict[str, bytes]:
    """{"GenuineIntel.bin": ..., "AuthenticAMD.bin": ...} for the vendors the tree has updates for;
    with `cpu`, only that CPU's update (host-only, as dracut does by default on Rocky: an installed
    system needs its own CPU's ~0.1-3 MiB, not every CPU's ~14 MiB, which cannot be compressed)."""
    blobs = {"GenuineIntel.bin": intel_microcode(root, cpu), "AuthenticAMD.bin": amd_microcode(root, cpu)}
    return {name: data for name, data in blobs.items() if data}
