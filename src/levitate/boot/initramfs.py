"""The tiny initramfs: a static busybox, the kernel modules needed to reach the medium, and /init.

    modules wanted (profile)  -> closure from modules.dep (+ soft dependencies), builtins skipped
    staging tree              -> busybox + applet links, decompressed modules, `depmod -b`, /init
    cpio "newc" written here  -> sorted, owned by root, fixed timestamps, /dev/console + /dev/null
    compressed                -> zstd | xz | gzip, one the kernel's config says it can unpack
    early microcode in front  -> an uncompressed cpio (microcode.py) when the tree has updates

Standard library only (plus levitate.util): the installed system runs this module with its own
Python to rebuild its initramfs when the kernel changes. /init itself is `init.sh` beside this
file, with the default medium label filled in.
"""

from __future__ import annotations

import gzip
import io
import logging
import lzma
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from levitate.util.epoch import source_date_epoch
from levitate.util.errors import LevitateError
from levitate.util.files import write_atomic
from levitate.util.run import run

from .cpulevel import CPU_LEVEL_SUMMARY, required_flags
from .microcode import EARLY_DIR, Cpu, early_microcode

log = logging.getLogger("levitate")

COMPRESSIONS = ("zstd", "xz", "gzip")            # the order "auto" prefers
KERNEL_OPTION = {"zstd": "CONFIG_RD_ZSTD", "xz": "CONFIG_RD_XZ", "gzip": "CONFIG_RD_GZIP"}
MODULES_LIST = "etc/levitate/modules"           # read by /init: one module a line, in load order
# The busybox leviso puts into the base image, so the installed system (recboot) can build its own
INSTALLED_BUSYBOX = Path("/usr/lib/levitate/busybox")
# Applets /init uses (as links in the archive, so /init never depends on anything else) and a
# few that make the emergency shell useful.
APPLETS = (
    "sh", "mount", "umount", "mkdir", "cat", "echo", "sleep", "dd", "od", "sed", "grep", "tail", "cut",
    "tr", "ls", "dmesg", "modprobe", "switch_root", "setsid", "cttyhack", "uname", "findfs",
    "blkid", "losetup", "lsmod", "insmod", "rmmod", "depmod", "ln", "rm", "cp", "mv", "ps",
    "kill", "vi", "less", "head", "find", "reboot", "poweroff", "sync", "chroot", "free", "df",
    "mknod", "stat", "readlink", "hexdump", "env", "test", "[", "true", "false", "printf",
)
REQUIRED_APPLETS = ("sh", "mount", "mkdir", "cat", "sleep", "dd", "od", "sed", "grep", "tail", "cut", "tr",
                    "ls", "dmesg", "modprobe", "switch_root", "setsid", "cttyhack", "uname", "findfs")
_LABEL_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


# -- the spec and the result -----------------------------------------------------------------------------

@dataclass(frozen=True)
class InitramfsSpec:
    kernel_version: str
    busybox: Path                                   # a static busybox binary (verified by the caller)
    modules: tuple[str, ...]                        # wanted; the closure comes from modules.dep
    required_modules: tuple[str, ...] = ()          # must exist (as a module or built in)
    label: str = "LEVITATEOS"                       # default medium label (root=live:LABEL= overrides)
    compression: str = "auto"                       # auto | zstd | xz | gzip
    extra_files: tuple[tuple[Path, str], ...] = ()  # host file -> path inside
    cpu_level: str = ""                             # e.g. "x86-64-v3": /init refuses an older CPU
    microcode_for: Cpu | None = None                # only this CPU's microcode (host-only); None: all


@dataclass(frozen=True)
class InitramfsInfo:
    size: int                                       # bytes of the image (early microcode + compressed)
    compression: str
    modules: list[str]                              # module names included (the closure)
    files: int                                      # archive members (dirs, files, links, nodes)
    microcode: dict[str, int] = field(default_factory=dict)  # early cpio file name -> bytes
    early_size: int = 0                             # bytes of the uncompressed early cpio


# -- cpio "newc" ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpioEntry:
    """One member of an archive to write. `path` is relative ("usr/bin/busybox")."""

    path: str
    mode: int                                       # full st_mode: type bits and permissions
    data: bytes = b""                               # file contents, or a symlink's target
    source: Path | None = None                      # file contents streamed from here instead
    rdev: tuple[int, int] = (0, 0)                  # device nodes: (major, minor)

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> "CpioEntry":
        return cls(path, stat.S_IFDIR | perm)

    @classmethod
    def file(cls, path: str, data: bytes = b"", *, source: Path | None = None, perm: int = 0o644) -> "CpioEntry":
        return cls(path, stat.S_IFREG | perm, data, source)

    @classmethod
    def symlink(cls, path: str, target: str) -> "CpioEntry":
        return cls(path, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def chardev(cls, path: str, major: int, minor: int, perm: int = 0o600) -> "CpioEntry":
        return cls(path, stat.S_IFCHR | perm, rdev=(major, minor))

    def size(self) -> int:
        return self.source.stat().st_size if self.source is not None else len(self.data)


# Nodes the kernel needs before devtmpfs is mounted: it opens /dev/console as init's stdin/out/err.
DEVICE_NODES = (CpioEntry.chardev("dev/console", 5, 1, 0o600), CpioEntry.chardev("dev/null", 1, 3, 0o666))


def _clean_path(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise LevitateError(f"bad path for the initramfs archive: {path!r}")
    return "/".join(parts)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, mode: int, nlink: int, mtime: int, size: int, rdev: tuple[int, int], namesize: int) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], namesize, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def write_cpio_newc(entries: Iterable[CpioEntry], fileobj: BinaryIO, *, mtime: int | None = None,
                    devices: bool = True) -> int:
    """Write `entries` as a cpio "newc" archive the kernel can unpack; return the member count.

    Reproducible: members sorted by path (parents before children), owned by 0:0, every mtime
    `mtime` (default SOURCE_DATE_EPOCH or 0), inode numbers counted from 1. Missing parent
    directories are added (0755); with `devices`, /dev/console and /dev/null are added unless given.
    """
    if mtime is None:
        mtime = source_date_epoch() or 0
    members: dict[str, CpioEntry] = {}
    for entry in entries:
        path = _clean_path(entry.path)
        if path in members:
            raise LevitateError(f"the initramfs archive would hold {path} twice")
        members[path] = entry
    for node in DEVICE_NODES if devices else ():
        members.setdefault(node.path, node)
    for path in list(members):
        parent = path.rpartition("/")[0]
        while parent and parent not in members:
            members[parent] = CpioEntry.directory(parent)
            parent = parent.rpartition("/")[0]
    for path, entry in members.items():
        parent = path.rpartition("/")[0]
        if parent and not stat.S_ISDIR(members[parent].mode):
            raise LevitateError(f"the initramfs archive holds {path} below {parent}, which is not a directory")

    count = 0
    for ino, path in enumerate(sorted(members), start=1):
        entry = members[path]
        mode = entry.mode
        kind = stat.S_IFMT(mode)
        size = entry.size() if kind in (stat.S_IFREG, stat.S_IFLNK) else 0
        name = path.encode() + b"\0"
        nlink = 2 if kind == stat.S_IFDIR else 1
        fileobj.write(_header(ino, mode, nlink, mtime, size, entry.rdev, len(name)) + name + _pad(110 + len(name)))
        if kind in (stat.S_IFREG, stat.S_IFLNK):
            if entry.source is not None:
                written = 0
                with open(entry.source, "rb") as src:
                    while chunk := src.read(1 << 20):
                        fileobj.write(chunk)
                        written += len(chunk)
                if written != size:
                    raise LevitateError(f"{entry.source} changed size while being archived")
            else:
                fileobj.write(entry.data)
            fileobj.write(_pad(size))
        count += 1
    name = b"TRAILER!!!\0"
    fileobj.write(_header(0, 0, 1, 0, 0, (0, 0), len(name)) + name + _pad(110 + len(name)))
    return count


def entries_from_tree(root: Path) -> list[CpioEntry]:
    """Every directory, file and symlink below `root` (not `root` itself), with its permissions."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entries.append(CpioEntry.symlink(rel, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(CpioEntry.directory(rel, perm))
            elif stat.S_ISREG(st.st_mode):
                entries.append(CpioEntry.file(rel, source=full, perm=perm))
            else:
                raise LevitateError(f"{full}: only files, directories and symlinks go into the initramfs")
    return entries


def early_cpio(blobs: dict[str, bytes]) -> bytes:
    """The uncompressed archive the kernel's early microcode loader reads: kernel/, kernel/x86/,
    kernel/x86/microcode/ and the vendor files; no device nodes (the main archive has them)."""
    buffer = io.BytesIO()
    write_cpio_newc([CpioEntry.file(f"{EARLY_DIR}/{name}", data) for name, data in blobs.items()], buffer,
                    devices=False)
    return buffer.getvalue()


# -- compression -----------------------------------------------------------------------------------------

def kernel_config(rootfs: Path, kver: str) -> str | None:
    """The kernel's config text (usr/lib/modules/KVER/config or boot/config-KVER), if shipped."""
    for candidate in (modules_dir(rootfs, kver, must_exist=False) / "config", rootfs / "boot" / f"config-{kver}"):
        if candidate.is_file():
            return candidate.read_text(errors="replace")
    return None


def kernel_decompressors(config: str) -> set[str]:
    """Which of our compressions the kernel can unpack an initramfs with (CONFIG_RD_*=y)."""
    enabled = {m.group(1) for m in re.finditer(r"^(CONFIG_RD_\w+)=y\s*$", config, re.M)}
    return {name for name, option in KERNEL_OPTION.items() if option in enabled}


def choose_compression(requested: str, config: str | None) -> str:
    """`requested` if the kernel can unpack it; for "auto" the best one it can."""
    if requested != "auto" and requested not in COMPRESSIONS:
        raise LevitateError(f"unknown initramfs compression {requested!r}",
                            f"use one of: auto, {', '.join(COMPRESSIONS)}")
    if config is None:
        if requested == "auto":
            log.warning("the kernel ships no config: compressing the initramfs with gzip, which every kernel unpacks")
            return "gzip"
        return requested
    supported = kernel_decompressors(config)
    if requested == "auto":
        for name in COMPRESSIONS:
            if name in supported:
                return name
        raise LevitateError("the kernel cannot unpack a zstd, xz or gzip initramfs (no CONFIG_RD_ZSTD/XZ/GZIP)",
                            "use a kernel built with CONFIG_RD_GZIP=y")
    if requested not in supported:
        raise LevitateError(f"the kernel cannot unpack a {requested} initramfs ({KERNEL_OPTION[requested]} is not set)",
                            f"use compression = \"auto\" or one of: {', '.join(sorted(supported)) or 'none'}")
    return requested


def _zstandard():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def compress(data: bytes, method: str) -> bytes:
    """Compress an initramfs the way the kernel's decompressors expect it."""
    if method == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "xz":
        # The kernel's XZ decoder checks CRC32 only (not the default CRC64); the x86 BCJ filter
        # helps executable code. The dictionary need not exceed the input.
        dict_size = max(1 << 20, min(1 << 26, 1 << (len(data) - 1).bit_length()))
        filters = [{"id": lzma.FILTER_X86},
                   {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dict_size}]
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)
    if method == "zstd":
        zstandard = _zstandard()
        if zstandard is not None:
            return zstandard.ZstdCompressor(level=19).compress(data)
        return run(["zstd", "-19", "-q", "-c", "-"], input=data, capture=True, what="zstd (initramfs)",
                   hint="install zstd, or set the initramfs compression to xz or gzip").stdout
    raise LevitateError(f"unknown initramfs compression {method!r}")


# -- kernel modules ---------------------------------------------------------------------------------------

def module_name(path: str) -> str:
    """kernel/fs/erofs/erofs.ko.xz -> erofs; usb-storage.ko -> usb_storage (as the kernel names it)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def modules_dir(rootfs: Path, kver: str, *, must_exist: bool = True) -> Path:
    for candidate in (rootfs / "usr/lib/modules" / kver, rootfs / "lib/modules" / kver):
        if candidate.is_dir():
            return candidate
    if must_exist:
        raise LevitateError(f"no modules for kernel {kver} in {rootfs} (usr/lib/modules/{kver})",
                            "install the kernel's modules package into the tree")
    return rootfs / "usr/lib/modules" / kver


@dataclass
class ModuleIndex:
    """What depmod wrote about a kernel's modules: files, dependencies, builtins, aliases, softdeps."""

    paths: dict[str, str] = field(default_factory=dict)              # name -> path relative to the dir
    deps: dict[str, list[str]] = field(default_factory=dict)         # name -> dependency names
    builtin: set[str] = field(default_factory=set)
    aliases: dict[str, list[str]] = field(default_factory=dict)      # exact (non-glob) alias -> names
    softdeps: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # name -> (pre, post)

    @classmethod
    def load(cls, moddir: Path) -> "ModuleIndex":
        index = cls()
        dep = moddir / "modules.dep"
        if not dep.is_file():
            raise LevitateError(f"{dep} is missing", f"run `depmod -b ROOT {moddir.name}` on the tree first")
        for line in dep.read_text().splitlines():
            target, sep, rest = line.partition(":")
            if not sep:
                continue
            name = module_name(target.strip())
            index.paths[name] = target.strip()
            index.deps[name] = [module_name(d) for d in rest.split()]
        builtin = moddir / "modules.builtin"
        if builtin.is_file():
            index.builtin = {module_name(line.strip()) for line in builtin.read_text().splitlines() if line.strip()}
        alias = moddir / "modules.alias"
        if alias.is_file():
            for line in alias.read_text(errors="replace").splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == "alias" and not any(c in words[1] for c in "*?["):
                    index.aliases.setdefault(words[1].replace("-", "_"), []).append(words[2].replace("-", "_"))
        softdep = moddir / "modules.softdep"
        if softdep.is_file():
            for line in softdep.read_text().splitlines():
                words = line.split()
                if len(words) < 3 or words[0] != "softdep":
                    continue
                pre, post = index.softdeps.setdefault(words[1].replace("-", "_"), ([], []))
                bucket = None
                for word in words[2:]:
                    if word in ("pre:", "post:"):
                        bucket = pre if word == "pre:" else post
                    elif bucket is not None:
                        bucket.append(word)
        return index

    def resolve(self, name: str) -> list[str]:
        """Module names a requested name stands for: itself, or what an exact alias names."""
        key = name.replace("-", "_")
        if key in self.paths:
            return [key]
        return [m for m in self.aliases.get(key, []) if m in self.paths]

    def closure(self, name: str) -> list[str]:
        """`name` and everything it depends on, dependencies first."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(mod: str) -> None:
            if mod in seen:
                return
            seen.add(mod)
            for dep in self.deps.get(mod, []):
                visit(dep)
            order.append(mod)

        visit(name)
        return order


@dataclass(frozen=True)
class ModuleSelection:
    load: list[tuple[str, bool]]      # (module, optional) in the order /init loads them
    files: list[str]                  # every module to include (the closure), dependencies first
    builtin: list[str]                # wanted names built into the kernel: nothing to load
    missing: list[str]                # wanted names this kernel does not have


def select_modules(index: ModuleIndex, wanted: Iterable[str], required: Iterable[str] = ()) -> ModuleSelection:
    """The modules to ship and the order to load them in.

    Each wanted module brings its dependencies (modules.dep) and its soft dependencies (a
    "softdep X pre: Y" means X works only with Y loaded first: libcrc32c needs a crc32c). Soft
    dependencies are loaded explicitly, before what needs them, and may fail (they name
    alternatives such as crc32c_intel and crc32c_generic, of which one is enough).
    """
    required = tuple(required)
    wanted = list(dict.fromkeys([*wanted, *required]))
    load: list[tuple[str, bool]] = []
    files: list[str] = []
    builtin: list[str] = []
    missing: list[str] = []
    loaded: set[str] = set()

    def include(mod: str) -> None:
        for m in index.closure(mod):
            if m not in files:
                files.append(m)

    def add_load(mod: str, optional: bool) -> None:
        if mod not in loaded:
            loaded.add(mod)
            load.append((mod, optional))

    def soft(mod: str, which: int) -> list[str]:
        names = []
        for dep in index.softdeps.get(mod, ([], []))[which]:
            for m in index.resolve(dep):
                if m not in names and m not in index.builtin:
                    names.append(m)
        return names

    for name in wanted:
        key = name.replace("-", "_")
        targets = index.resolve(key)
        if not targets:
            if key in index.builtin:
                builtin.append(key)
            else:
                missing.append(key)
            continue
        for target in targets:
            closure = index.closure(target)
            for mod in closure:                       # softdeps of anything in the closure, first
                for pre in soft(mod, 0):
                    include(pre)
                    add_load(pre, True)
            include(target)
            add_load(target, False)
            for mod in closure:
                for post in soft(mod, 1):
                    include(post)
                    add_load(post, True)

    absent = [name for name in dict.fromkeys(r.replace("-", "_") for r in required) if name in missing]
    if absent:
        raise LevitateError(f"kernel modules required for the initramfs are missing: {', '.join(absent)} "
                            "(neither in modules.dep nor in modules.builtin)",
                            "use a kernel that has them, or fix [initramfs] required_modules in profile.toml")
    return ModuleSelection(load, files, builtin, missing)


def read_module(path: Path) -> bytes:
    """A module's ELF bytes, decompressed from .ko.xz / .ko.zst / .ko.gz."""
    data = path.read_bytes()
    try:
        if path.name.endswith(".xz"):
            return lzma.decompress(data)
        if path.name.endswith(".gz"):
            return gzip.decompress(data)
        if path.name.endswith(".zst"):
            return _unzstd(path, data)
    except (lzma.LZMAError, OSError, EOFError, LevitateError) as exc:
        raise LevitateError(f"cannot decompress the kernel module {path}: {exc}",
                            "the kernel package may be damaged: extract it again") from exc
    return data


def _unzstd(path: Path, data: bytes) -> bytes:
    zstandard = _zstandard()
    if zstandard is None:
        return run(["zstd", "-d", "-q", "-c", path], capture=True, what="zstd -d",
                   hint="install zstd (or the zstandard Python module)").stdout
    try:
        dobj = zstandard.ZstdDecompressor().decompressobj()
        out = dobj.decompress(data)
    except zstandard.ZstdError as exc:
        raise LevitateError(str(exc)) from exc
    if not dobj.eof:
        raise LevitateError("truncated zstd data")
    return out


# -- /init --------------------------------------------------------------------------------------------------

def init_template_path() -> Path:
    return Path(__file__).with_name("init.sh")


def render_init(label: str) -> str:
    if not _LABEL_RE.fullmatch(label):
        raise LevitateError(f"medium label {label!r} cannot be baked into /init",
                            "use 1-32 characters of A-Z, a-z, 0-9, _ . -")
    return init_template_path().read_text().replace("@LABEL@", label)


# -- busybox -----------------------------------------------------------------------------------------------

def busybox_applets(busybox: Path) -> set[str] | None:
    """The applets a busybox binary has, read from its applet name table without running it.

    busybox keeps the names as one sorted run of NUL-terminated strings ("[", "[[", "acpid", ...):
    the longest sorted run of short NUL-terminated strings in the binary. None when there is no
    such run (then nothing can be checked).
    """
    data = busybox.read_bytes()
    best: list[bytes] = []
    for match in re.finditer(rb"(?:[\x21-\x7e]{1,32}\0){20,}", data):
        run: list[bytes] = []
        for name in match.group().split(b"\0")[:-1]:
            run = run + [name] if not run or run[-1] < name else [name]
            if len(run) > len(best):
                best = run
    return {n.decode() for n in best} if len(best) >= 20 else None


# -- the build ----------------------------------------------------------------------------------------------

def _uncompressed(rel: str) -> str:
    return re.sub(r"\.(xz|zst|gz)$", "", rel)


def _stage_modules(moddir: Path, index: ModuleIndex, staging: Path, kver: str, selection: ModuleSelection) -> None:
    """Decompressed modules under staging/usr/lib/modules/KVER, then `depmod -b` over them."""
    dest = staging / "usr/lib/modules" / kver
    dest.mkdir(parents=True)
    kept = set()
    for name in selection.files:
        rel = index.paths[name]
        out = dest / _uncompressed(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(read_module(moddir / rel))
        kept.add(_uncompressed(rel))
    # depmod and modprobe learn the load order and what is built in from these
    order = moddir / "modules.order"
    if order.is_file():
        lines = [_uncompressed(ln.strip()) for ln in order.read_text().splitlines()]
        (dest / "modules.order").write_text("".join(f"{ln}\n" for ln in lines if ln in kept))
    for extra in ("modules.builtin", "modules.builtin.modinfo"):
        if (moddir / extra).is_file():
            shutil.copyfile(moddir / extra, dest / extra)
    run(["depmod", "-b", staging, kver], what="depmod (initramfs)", hint="install kmod (it provides depmod)")


def build_initramfs(rootfs: Path, spec: InitramfsSpec, out: Path) -> InitramfsInfo:
    """Build the initramfs for `spec.kernel_version` from the tree `rootfs` into `out`."""
    kver = spec.kernel_version
    moddir = modules_dir(rootfs, kver)
    method = choose_compression(spec.compression, kernel_config(rootfs, kver))
    if not spec.busybox.is_file():
        raise LevitateError(f"busybox {spec.busybox} does not exist")
    init_text = render_init(spec.label)
    cpu_flags = required_flags(spec.cpu_level)
    microcode = early_microcode(rootfs, spec.microcode_for)
    if not microcode:
        log.info("initramfs: the tree has no CPU microcode (microcode_ctl, amd-ucode-firmware): no early cpio")

    index = ModuleIndex.load(moddir)
    selection = select_modules(index, spec.modules, spec.required_modules)
    for name in selection.missing:
        log.warning("kernel %s has no module %s: the initramfs goes without it", kver, name)

    applets = busybox_applets(spec.busybox)
    if applets is not None:
        lacking = [a for a in REQUIRED_APPLETS if a not in applets]
        if lacking:
            raise LevitateError(f"busybox {spec.busybox} lacks applets /init needs: {', '.join(lacking)}",
                                "use a fuller static busybox build (the busybox.net binaries have them all)")

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="levitate-initramfs-") as tmp:
        staging = Path(tmp) / "root"
        staging.mkdir()
        # merged /usr, as the tree: busybox modprobe looks in /lib/modules/$(uname -r)
        for d in ("usr/bin", "usr/lib", "etc/levitate", "dev", "proc", "sys", "run", "tmp", "sysroot", "root"):
            (staging / d).mkdir(parents=True, exist_ok=True)
        os.chmod(staging / "tmp", 0o1777)
        os.chmod(staging / "root", 0o700)
        for link, target in (("bin", "usr/bin"), ("sbin", "usr/bin"), ("lib", "usr/lib"), ("usr/sbin", "bin")):
            os.symlink(target, staging / link)
        _stage_modules(moddir, index, staging, kver, selection)

        entries = entries_from_tree(staging)
        entries.append(CpioEntry.file("usr/bin/busybox", source=spec.busybox, perm=0o755))
        # every applet as a link when the table is readable (a usable emergency shell), else /init's
        names = sorted(applets - {"init", "linuxrc", "busybox"}) if applets else list(APPLETS)
        entries += [CpioEntry.symlink(f"usr/bin/{a}", "busybox") for a in names]
        entries.append(CpioEntry.file("init", init_text.encode(), perm=0o755))
        entries.append(CpioEntry.file(MODULES_LIST, "".join(
            f"{name}{' optional' if optional else ''}\n" for name, optional in selection.load).encode()))
        # /init reads CPU_FLAGS (the profile's [rootfs] cpu_level as cpuinfo flags) and refuses
        # to switch_root on a CPU that lacks one
        entries.append(CpioEntry.file("etc/levitate/initramfs.conf", (
            f"KERNEL_VERSION={kver}\nLABEL={spec.label}\nCOMPRESSION={method}\n"
            f"CPU_LEVEL={spec.cpu_level}\nCPU_SUMMARY={CPU_LEVEL_SUMMARY.get(spec.cpu_level, '')}\n"
            f"CPU_FLAGS={' '.join(cpu_flags)}\n").encode()))
        taken = {e.path for e in entries}
        for host, inside in spec.extra_files:
            inside = _clean_path(inside)
            if not Path(host).is_file():
                raise LevitateError(f"extra initramfs file {host} does not exist")
            if inside in taken:
                raise LevitateError(f"extra initramfs file {inside} would replace one the initramfs needs")
            entries.append(CpioEntry.file(inside, source=Path(host), perm=stat.S_IMODE(Path(host).stat().st_mode)))
            taken.add(inside)

        buffer = io.BytesIO()
        count = write_cpio_newc(entries, buffer)
        early = early_cpio(microcode) if microcode else b""
        image = early + compress(buffer.getvalue(), method)
        write_atomic(out, image)
    log.debug("initramfs: %d modules, loaded in this order: %s", len(selection.files),
              " ".join(m for m, _ in selection.load))
    log.debug("initramfs: %d members, %.1f MiB cpio -> %.2f MiB %s, after %.2f MiB of early microcode (%s)",
              count, len(buffer.getvalue()) / 2**20, (len(image) - len(early)) / 2**20, method, len(early) / 2**20,
              ", ".join(sorted(microcode)) or "none")
    return InitramfsInfo(size=len(image), compression=method, modules=sorted(selection.files), files=count,
                         microcode={name: len(data) for name, data in microcode.items()}, early_size=len(early))
