"""Part 2 of the build, from WORKDIR/rootfs to OUTPUT/levitateos.iso: the base image, the live
layer, the initramfs, the UKIs, and the ISO.

Each stage records a stamp of its inputs (chained: a stage's inputs include the stamps of the
stages it builds on), so a rebuild with nothing changed does nothing and changing an overlay file
redoes only what depends on it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..rpm.vercmp import rpmvercmp
from ..util.download import file_digest
from ..util.errors import LevitateError
from ..util.files import write_atomic
from ..util.log import stage
from . import preflight
from .busybox import acquire_busybox
from .configure import kernels
from .context import BuildContext
from ..boot.cpulevel import CPU_LEVEL_FILE
from ..boot.initramfs import INSTALLED_BUSYBOX, InitramfsSpec, build_initramfs, init_template_path
from .image import build_image, choose_format, kernel_config, tree_size
from .live import build_live_tree
from .rootfs import remove_tree, rootfs_inputs, rootfs_is_current
from .stamp import Inputs, Stamp
from .tooling import install_tooling, tooling_inputs
from .staging import apply_base_settings, apply_overlay, copy_tree, os_release_text

log = logging.getLogger("levitate")

HOST_EFI = Path(preflight.HOST_EFI)
STUB, SDBOOT = "linuxx64.efi.stub", "systemd-bootx64.efi"
# The images carry no SELinux labels (see stages.refuse_selinux_policy), so SELinux is off. Since
# RHEL 9 the kernel has no runtime disable (CONFIG_SECURITY_SELINUX_DISABLE is off, kernel-ark
# MR 685): SELINUX=disabled in /etc/selinux/config no longer turns it off, selinux=0 does.
SELINUX_OFF = "selinux=0"
ENTRIES = {                      # UKI name -> extra kernel command line
    "live": "",
    "emergency": "rd.break",
    "debug": "debug systemd.log_level=debug systemd.show_status=1",
}


def kernel_version(ctx: BuildContext) -> str:
    found = kernels(ctx.rootfs)
    if not found:
        raise LevitateError("the tree has no kernel (usr/lib/modules/*/vmlinuz)", "add a kernel package to packages.txt")
    newest = found[0]
    for kver in found[1:]:
        if rpmvercmp(kver, newest) > 0:
            newest = kver
    return newest


@dataclass(frozen=True)
class EfiBinaries:
    stub: Path
    sdboot: Path
    origin: str                  # "package set" or "build host (...)"
    from_host: bool


def efi_binaries(ctx: BuildContext) -> EfiBinaries:
    """The stub and systemd-boot from the package set when it ships them, else the host's."""
    tree = ctx.rootfs / HOST_EFI.relative_to("/")
    if (tree / STUB).is_file() and (tree / SDBOOT).is_file():
        return EfiBinaries(tree / STUB, tree / SDBOOT, "package set", False)
    if (HOST_EFI / STUB).is_file() and (HOST_EFI / SDBOOT).is_file():
        return EfiBinaries(HOST_EFI / STUB, HOST_EFI / SDBOOT, f"build host ({HOST_EFI})", True)
    raise LevitateError("no systemd EFI stub and boot loader: neither the package set nor the host has "
                        f"{HOST_EFI}/{STUB}", "install systemd-boot-efi (Debian) / systemd-boot (Fedora, Arch)")


def _rootfs_key(ctx: BuildContext) -> str:
    if not rootfs_is_current(ctx):
        raise LevitateError(f"{ctx.rootfs} is missing or out of date", "run `leviso extract` (or `leviso build`)")
    return rootfs_inputs(ctx).hexdigest()


def _image_path(ctx: BuildContext, fmt: str) -> Path:
    return ctx.workdir / f"filesystem.{fmt}"


# -- base image ------------------------------------------------------------------------------------

def base_stage(ctx: BuildContext) -> tuple[Path, str]:
    """WORKDIR/filesystem.erofs (or .squashfs): the installable system. Returns (image, stamp key)."""
    profile = ctx.profile
    kver = kernel_version(ctx)
    fmt = choose_format(kernel_config(ctx.rootfs, kver), profile.image)
    busybox, busybox_origin = acquire_busybox(ctx)
    efi = efi_binaries(ctx)
    inputs = (Inputs("base-image", "1").add("rootfs", _rootfs_key(ctx)).add("fmt", fmt)
              .add("system", profile.system).add("os", profile.os_release).add("image", profile.image)
              .add_tree("overlay", profile.rootfs_overlay).add_file("busybox", busybox)
              .add("efi", efi.origin).add_file("stub", efi.stub).add_file("sdboot", efi.sdboot)
              .add("tooling", tooling_inputs()).add("cpu_level", profile.rootfs.cpu_level))
    image = _image_path(ctx, fmt)
    stamp = Stamp(ctx.workdir / "filesystem.stamp", [image])
    if stamp.current(inputs):
        log.info("base image is up to date (%s)", image)
        return image, inputs.hexdigest()
    stamp.invalidate()
    preflight.require(["image"])
    staging = ctx.workdir / "staging"
    with stage("base image"):
        try:
            copy_tree(ctx.rootfs, staging)
            apply_base_settings(staging, profile)
            _install_boot_files(staging, busybox, efi, profile.rootfs.cpu_level)
            tooling = install_tooling(staging, ctx.cache / "wheels")
            apply_overlay(profile.rootfs_overlay, staging)
            _check_libraries(staging, profile.image.required_binaries)
            size = tree_size(staging)
            for stale in ctx.workdir.glob("filesystem.*"):
                if stale.suffix in (".erofs", ".squashfs"):
                    stale.unlink()
            build_image(staging, image, fmt, profile.image.compression)
        finally:
            remove_tree(staging)
    log.info("    %s: %.0f MiB from %.0f MiB of files", image.name, image.stat().st_size / 2**20, size / 2**20)
    stamp.write(inputs, format=fmt, tree_bytes=size, kernel=kver, busybox=busybox_origin, efi=efi.origin,
                tooling=tooling)
    return image, inputs.hexdigest()


def _install_boot_files(root: Path, busybox: Path, efi: EfiBinaries, cpu_level: str) -> None:
    """busybox and the profile's CPU level (so the installed system can rebuild its initramfs:
    recboot reads both) and, when they came from the host, the EFI stub and boot loader (so
    `bootctl install` works on the installed system)."""
    dest = root / INSTALLED_BUSYBOX.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, dest)
    os.chmod(dest, 0o755)
    (root / CPU_LEVEL_FILE.relative_to("/")).write_text(f"{cpu_level}\n" if cpu_level else "")
    if efi.from_host:
        target = root / HOST_EFI.relative_to("/")
        target.mkdir(parents=True, exist_ok=True)
        for binary in (efi.stub, efi.sdboot):
            shutil.copy2(binary, target / binary.name)


def _check_libraries(root: Path, required: tuple[str, ...]) -> None:
    """readelf, not ldd: every ELF file's DT_NEEDED resolved inside the tree, nothing executed.
    check_tree warns about each gap and fails for the binaries the profile lists."""
    from .elf import check_tree
    report = check_tree(root, required=required)
    log.info("    ELF check: %d files, %d with missing libraries", report.checked, len(report.missing))


# -- live layer ---------------------------------------------------------------------------------------

def live_stage(ctx: BuildContext) -> tuple[Path, str]:
    profile = ctx.profile
    inputs = (Inputs("live-layer", "1").add("rootfs", _rootfs_key(ctx)).add("os", profile.os_release)
              .add_tree("overlay", profile.live_overlay))
    image = ctx.workdir / "live.erofs"
    stamp = Stamp(ctx.workdir / "live.stamp", [image])
    if stamp.current(inputs):
        return image, inputs.hexdigest()
    stamp.invalidate()
    tree = ctx.workdir / "live"
    with stage("live layer"):
        try:
            build_live_tree(ctx.rootfs, tree, profile)
            build_image(tree, image, "erofs" if _base_format(ctx) == "erofs" else "squashfs",
                        profile.image.compression)
        finally:
            remove_tree(tree)
    stamp.write(inputs)
    return image, inputs.hexdigest()


def _base_format(ctx: BuildContext) -> str:
    return Stamp(ctx.workdir / "filesystem.stamp", []).facts().get("format", "erofs")


# -- initramfs -----------------------------------------------------------------------------------------

def initramfs_stage(ctx: BuildContext) -> tuple[Path, str]:
    profile = ctx.profile
    kver = kernel_version(ctx)
    busybox, _origin = acquire_busybox(ctx)
    settings = profile.initramfs
    spec = InitramfsSpec(kernel_version=kver, busybox=busybox, modules=settings.modules,
                         required_modules=settings.required_modules, label=profile.image.label,
                         compression=settings.compression, cpu_level=profile.rootfs.cpu_level)
    inputs = (Inputs("initramfs", "2").add("rootfs", _rootfs_key(ctx)).add("spec", spec)
              .add_file("busybox", busybox).add_file("init", init_template_path()))
    out = ctx.workdir / "initramfs.img"
    stamp = Stamp(ctx.workdir / "initramfs.stamp", [out])
    if stamp.current(inputs):
        return out, inputs.hexdigest()
    stamp.invalidate()
    preflight.require(["initramfs"])
    with stage("initramfs"):
        info = build_initramfs(ctx.rootfs, spec, out)
    log.info("    initramfs.img: %.1f MiB, %s, %d modules", info.size / 2**20, info.compression, len(info.modules))
    stamp.write(inputs, size=info.size, compression=info.compression, modules=sorted(info.modules))
    return out, inputs.hexdigest()


# -- UKIs -----------------------------------------------------------------------------------------------

def cmdline(ctx: BuildContext, entry: str) -> str:
    parts = [f"root=live:LABEL={ctx.profile.image.label}", SELINUX_OFF, ctx.profile.boot.cmdline, ENTRIES[entry]]
    return " ".join(p for p in parts if p)


def uki_stage(ctx: BuildContext, initramfs: Path, initramfs_key: str) -> tuple[dict[str, Path], str]:
    from .uki import build_uki
    kver = kernel_version(ctx)
    kernel = ctx.rootfs / "usr/lib/modules" / kver / "vmlinuz"
    efi = efi_binaries(ctx)
    osrel = os_release_text(ctx.profile).encode()
    inputs = (Inputs("uki", "1").add("initramfs", initramfs_key).add_file("kernel", kernel)
              .add_file("stub", efi.stub).add("osrel", osrel).add("cmdlines", [cmdline(ctx, e) for e in ENTRIES]))
    directory = ctx.workdir / "uki"
    ukis = {entry: directory / f"levitateos-{entry}.efi" for entry in ENTRIES}
    stamp = Stamp(ctx.workdir / "uki.stamp", ukis.values())
    if stamp.current(inputs):
        return ukis, inputs.hexdigest()
    stamp.invalidate()
    directory.mkdir(parents=True, exist_ok=True)
    with stage("unified kernel images"):
        for entry, path in ukis.items():
            build_uki(efi.stub, kernel, initramfs, cmdline(ctx, entry), osrel, kver, path)
    stamp.write(inputs)
    return ukis, inputs.hexdigest()


# -- ISO ---------------------------------------------------------------------------------------------------

def iso_stage(ctx: BuildContext, base: Path, live: Path, initramfs: Path, ukis: dict[str, Path],
              key: str) -> Path:
    from .esp import build_esp
    from .iso import build_iso, loader_conf
    kver = kernel_version(ctx)
    efi = efi_binaries(ctx)
    label = ctx.profile.image.label
    inputs = Inputs("iso", "1").add("upstream", key).add_file("sdboot", efi.sdboot).add("label", label) \
        .add("timeout", ctx.profile.boot.timeout)
    iso = ctx.output / "levitateos.iso"
    stamp = Stamp(ctx.output / ".levitateos.iso.stamp", [iso, ctx.output / "manifest.json"])
    if stamp.current(inputs):
        log.info("ISO is up to date (%s)", iso)
        return iso
    stamp.invalidate()
    preflight.require(["iso"])
    ctx.output.mkdir(parents=True, exist_ok=True)
    tree = ctx.workdir / "iso"
    with stage("ESP and ISO"):
        try:
            remove_tree(tree)
            (tree / "live").mkdir(parents=True)
            (tree / "boot").mkdir()
            for source, dest in ((base, f"live/{base.name}"), (live, "live/live.erofs"),
                                 (ctx.rootfs / "usr/lib/modules" / kver / "vmlinuz", "boot/vmlinuz"),
                                 (initramfs, "boot/initramfs.img")):
                os.link(source, tree / dest) if _same_fs(source, tree) else shutil.copy2(source, tree / dest)
            conf = ctx.workdir / "loader.conf"
            conf.write_text(loader_conf("levitateos-live.efi", ctx.profile.boot.timeout))
            esp_files = {"EFI/BOOT/BOOTX64.EFI": efi.sdboot, "loader/loader.conf": conf}
            esp_files |= {f"EFI/Linux/{p.name}": p for p in ukis.values()}
            esp = build_esp(esp_files, ctx.workdir / "esp.img")
            build_iso(tree, esp, iso, volume_label=label)
        finally:
            remove_tree(tree)
    checksum = file_digest(iso, "sha512")
    write_atomic(ctx.output / "levitateos.iso.sha512", f"{checksum}  {iso.name}\n")
    write_atomic(ctx.output / "manifest.json", json.dumps(manifest(ctx, iso, checksum, base, live, initramfs,
                                                                    ukis, efi), indent=2) + "\n")
    stamp.write(inputs)
    return iso


def _same_fs(source: Path, tree: Path) -> bool:
    return source.stat().st_dev == tree.stat().st_dev


def manifest(ctx, iso, checksum, base, live, initramfs, ukis, efi) -> dict:
    from ..repo.lock import read_lock
    base_facts = Stamp(ctx.workdir / "filesystem.stamp", []).facts()
    packages = [{"nevra": p.nevra, "repo": p.repo, "size": p.size, "sha256": p.sha256}
                for p in read_lock(ctx.profile.lock_path)]
    return {
        "iso": {"file": iso.name, "size": iso.stat().st_size, "sha512": checksum, "label": ctx.profile.image.label},
        "os_release": os_release_text(ctx.profile).splitlines(),
        "kernel": kernel_version(ctx),
        "images": {"base": {"file": f"live/{base.name}", "format": base_facts.get("format"),
                            "size": base.stat().st_size, "tree_bytes": base_facts.get("tree_bytes")},
                   "live": {"file": "live/live.erofs", "size": live.stat().st_size},
                   "initramfs": {"size": initramfs.stat().st_size},
                   "ukis": {name: p.stat().st_size for name, p in ukis.items()}},
        "boot": {"stub": {"origin": efi.origin, "sha256": file_digest(efi.stub, "sha256")},
                 "systemd_boot": {"origin": efi.origin, "sha256": file_digest(efi.sdboot, "sha256")},
                 "busybox": base_facts.get("busybox"),
                 "tooling": base_facts.get("tooling"),
                 "cmdlines": {entry: cmdline(ctx, entry) for entry in ENTRIES}},
        "selinux": {"state": "disabled", "by": f"{SELINUX_OFF} on the kernel command line of every UKI "
                                                 "and of recboot's entries; the images are not labelled"},
        "packages": packages,
    }


def boot_stages(ctx: BuildContext) -> Path:
    """Everything after extraction."""
    base, base_key = base_stage(ctx)
    live, live_key = live_stage(ctx)
    initramfs, initramfs_key = initramfs_stage(ctx)
    ukis, uki_key = uki_stage(ctx, initramfs, initramfs_key)
    return iso_stage(ctx, base, live, initramfs, ukis, f"{base_key}:{live_key}:{uki_key}")
