"""The kernel-install(8) plugin: a kernel that dnf installs gets LevitateOS's initramfs and entry.

Rocky's kernel-core runs `kernel-install add KVER /lib/modules/KVER/vmlinuz` in its %posttrans
and `kernel-install remove KVER ...` in its %preun (kernel.spec: kernel_variant_posttrans,
kernel_variant_preun), and kernel-install (systemd 257) runs each plugin as

    90-levitateos.install add KVER ENTRY-DIR KERNEL-IMAGE [INITRD-FILE...]
    90-levitateos.install remove KVER ENTRY-DIR

with the ESP it chose in $KERNEL_INSTALL_BOOT_ROOT. `add` does what recboot does for that one
kernel, with recboot's code and rules (entry_settings): the busybox initramfs, the kernel and the
entry levitateos-KVER.conf; every other kernel's entry stays, so the previous kernel is the
fallback in the boot menu. `remove` deletes that kernel's entry and files only. ENTRY-DIR is not
used: the image's /etc/kernel/install.conf says layout=other, so kernel-install makes no such
directory, and systemd's own entry plugins stand aside (leviso.staging). Quiet unless
$KERNEL_INSTALL_VERBOSE=1; a failure is one line and a non-zero exit, which kernel-install (and so
kernel-core's scriptlet, and dnf) reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..util import mountinfo
from ..util.cli import run_command
from ..util.errors import LevitateError
from . import recboot

PROG = "90-levitateos.install"


def boot_root(value: str | None, table: list[mountinfo.MountEntry]) -> Path:
    """$KERNEL_INSTALL_BOOT_ROOT, which must be a mounted filesystem of its own (the ESP): with no
    ESP mounted, kernel-install falls back to the root filesystem's /boot directory, which no
    firmware reads. (The type is not checked, as with `recboot --esp`.)"""
    if not value:
        raise LevitateError("KERNEL_INSTALL_BOOT_ROOT is not set: this plugin is run by kernel-install",
                            "run `kernel-install add KVER`, or `recboot`")
    path = os.path.realpath(value)
    if path == "/" or path not in {m.target for m in table}:
        raise LevitateError(f"{value} is not a mounted EFI system partition",
                            f"mount the ESP at {value} (`mount {value}`), then run `kernel-install add KVER` again")
    return Path(value)


def add(root: Path, esp: Path, kver: str, image: Path, table: list[mountinfo.MountEntry]) -> Path:
    """Kernel, initramfs and entry of `kver`, nothing else touched; returns the entry."""
    modules = root / "usr/lib/modules" / kver
    if not modules.is_dir():
        raise LevitateError(f"kernel {kver} has no modules in /usr/lib/modules/{kver}: its initramfs is built from them",
                            "reinstall the kernel (`dnf reinstall kernel-core-VERSION`)")
    if not image.is_file():
        raise LevitateError(f"kernel image {image} is missing", f"pass /usr/lib/modules/{kver}/vmlinuz")
    recboot.require_busybox(root)
    entry = recboot.install_kernel(root, esp, kver, recboot.entry_settings(root, table), image)
    recboot.write_loader_conf(esp)
    return entry


def plugin(args: argparse.Namespace, root: Path = Path("/")) -> int:
    if args.command not in ("add", "remove"):
        return 0                                  # a verb of a later kernel-install: not ours
    kver = recboot.checked_kernel_version(args.kver)
    table = mountinfo.read()
    esp = boot_root(os.environ.get("KERNEL_INSTALL_BOOT_ROOT"), table)
    verbose = os.environ.get("KERNEL_INSTALL_VERBOSE", "0") not in ("", "0")
    if args.command == "add":
        if not args.rest:
            raise LevitateError(f"add {kver}: no kernel image given", "kernel-install passes it as the 4th argument")
        if args.rest[1:] and verbose:
            print(f"{PROG}: ignoring {' '.join(args.rest[1:])}: the LevitateOS initramfs carries its own "
                  "microcode and modules", flush=True)
        entry = add(root, esp, kver, Path(args.rest[0]), table)
        if verbose:
            print(f"{PROG}: kernel {kver}: {esp / recboot.ESP_DIR / kver}/{{linux,initramfs.img}}, entry {entry}",
                  flush=True)
    elif recboot.remove_kernel(esp, kver) and verbose:
        print(f"{PROG}: removed the entry and files of kernel {kver} from {esp}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("command", help="add or remove (others are ignored)")
    parser.add_argument("kver", metavar="KERNEL-VERSION")
    parser.add_argument("entry_dir", metavar="ENTRY-DIR", help="not used (layout=other)")
    parser.add_argument("rest", nargs="*", metavar="KERNEL-IMAGE [INITRD-FILE...]")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv), plugin)


if __name__ == "__main__":
    sys.exit(main())
