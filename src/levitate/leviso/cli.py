"""`leviso`: build the LevitateOS live ISO from Rocky Linux 10 packages.

Every command takes the same directory options, so builds can run side by side. User errors end
in one line and a non-zero exit; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from ..util.cli import run_command
from ..util.errors import LevitateError
from ..util.log import setup_logging
from ..util.run import set_missing_tool_hint
from . import preflight
from .context import BuildContext, SourceSpec
from .profile import load_profile

log = logging.getLogger("levitate")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("build directories and inputs")
    group.add_argument("--profile", default="profiles/levitate", help="profile directory (default: %(default)s)")
    group.add_argument("--source", help="mirror[:URL] | iso[:DIR-OR-URL-OR-FILE] | dir:PATH (default: the profile's)")
    group.add_argument("--cache", default="downloads", help="download cache (default: %(default)s)")
    group.add_argument("--workdir", default="work", help="intermediate files (default: %(default)s)")
    group.add_argument("--output", default="output", help="finished images (default: %(default)s)")
    group.add_argument("--locked", action="store_true", help="build exactly the set in leviso.lock or fail")
    group.add_argument("--weak-deps", action="store_true", default=None,
                       help="also install weak dependencies (Recommends, Supplements)")
    group.add_argument("--insecure-skip-signature-checks", action="store_true",
                       help="UNSAFE: do not check OpenPGP signatures (digests are still checked)")
    group.add_argument("-j", "--jobs", type=int, help="parallel downloads/extractions")
    group.add_argument("-v", "--verbose", action="store_true", help="show commands as they run")
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leviso", description=__doc__.splitlines()[0],
                                     parents=[_common_options()])
    # The options work before and after COMMAND; after it only when given, or the command's
    # default would overwrite what was given before it (`leviso --workdir X build`).
    common = _common_options()
    for action in common._actions:
        action.default = argparse.SUPPRESS
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("preflight", parents=[common], help="check the host tools a kind of work needs")
    p.add_argument("work", nargs="*", help=f"kinds of work (default: all): {', '.join(preflight.TOOLS)}")
    sub.add_parser("download", parents=[common], help="resolve the profile and fetch + verify its packages")
    sub.add_parser("extract", parents=[common], help="download, then extract and configure WORKDIR/rootfs")
    sub.add_parser("image", parents=[common], help="build the base image and the live layer from WORKDIR/rootfs")
    sub.add_parser("initramfs", parents=[common], help="build WORKDIR/initramfs.img from WORKDIR/rootfs")
    sub.add_parser("iso", parents=[common], help="build OUTPUT/levitateos.iso from WORKDIR/rootfs "
                   "(stages already up to date are skipped)")
    sub.add_parser("build", parents=[common], help="run every stage: download, extract, images, ISO")
    p = sub.add_parser("test", parents=[common], help="boot the ISO headless in QEMU and check the live system")
    p.add_argument("iso", nargs="?", help="the ISO (default: OUTPUT/levitateos.iso)")
    p.add_argument("--as-disk", action="store_true", help="attach the ISO as a disk, as a USB stick would be")
    p.add_argument("--bus", default="virtio", choices=["virtio", "sata", "nvme", "usb", "scsi"],
                   help="bus of the disk with --as-disk (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the live shell (default: %(default)s)")
    p.add_argument("--memory", type=int, default=2048, help="MiB of guest memory (default: %(default)s)")
    p.add_argument("--log", help="serial console log (default: OUTPUT/test-console.log)")
    p.add_argument("--json", help="also write the report (checks, boot time, systemd-analyze, memory) here")
    p = sub.add_parser("run", parents=[common], help="boot the ISO in an interactive VM")
    p.add_argument("iso", nargs="?", help="the ISO (default: OUTPUT/levitateos.iso)")
    p.add_argument("--disk", metavar="SIZE", help="attach OUTPUT/disk.qcow2, created with SIZE (e.g. 20G) if new")
    p.add_argument("--disk-image", metavar="PATH", help="attach this disk image (created with --disk SIZE if new)")
    p.add_argument("--boot-disk", action="store_true", help="boot the disk instead of the ISO")
    p.add_argument("--no-iso", action="store_true", help="attach no ISO (boot the installed disk only)")
    p.add_argument("--serial", action="store_true", help="the serial console in this terminal, even with a display")
    p.add_argument("--memory", type=int, default=4096, help="MiB of guest memory (default: %(default)s)")
    p.add_argument("--log", help="also log the serial console to this file")
    p = sub.add_parser("show", parents=[common], help="print information about the build")
    p.add_argument("what", choices=["packages"])
    p.add_argument("--why", action="store_true", help="say why each package is in the set")
    p = sub.add_parser("clean", parents=[common], help="remove WORKDIR and OUTPUT (and the cache with --all)")
    p.add_argument("--all", action="store_true", help="also remove the download cache")
    return parser


def make_context(args: argparse.Namespace, needs_source: bool = True) -> BuildContext:
    """The build context; stages after extraction read no source (the lock names the packages)."""
    profile = load_profile(args.profile)
    kwargs = {}
    if args.jobs:
        kwargs["jobs"] = max(1, args.jobs)
    return BuildContext(
        profile=profile,
        source=SourceSpec.parse(args.source, profile) if needs_source or args.source else None,
        cache=Path(args.cache).resolve(),
        workdir=Path(args.workdir).resolve(),
        output=Path(args.output).resolve(),
        locked=args.locked,
        weak_deps=args.weak_deps,
        verify_signatures=not args.insecure_skip_signature_checks,
        **kwargs,
    )


def cmd_preflight(args) -> int:
    works = args.work or list(preflight.TOOLS)
    unknown = [w for w in works if w not in preflight.TOOLS]
    if unknown:
        raise LevitateError(f"unknown kind of work: {', '.join(unknown)}", f"choose from {', '.join(preflight.TOOLS)}")
    text, ok = preflight.report(works)
    print(text)
    return 0 if ok else 1


def cmd_clean(args) -> int:
    targets = [Path(args.workdir), Path(args.output)] + ([Path(args.cache)] if args.all else [])
    for target in targets:
        if target.resolve() in (Path("/"), Path.home()):
            raise LevitateError(f"refusing to remove {target}", "point --workdir/--output/--cache elsewhere")
        if target.exists():
            log.info("removing %s", target)
            shutil.rmtree(target)
    return 0


def cmd_download(args) -> int:
    from .stages import download_stage
    download_stage(make_context(args))
    return 0


def cmd_extract(args) -> int:
    from .stages import extract_stage
    extract_stage(make_context(args))
    return 0


def cmd_build(args) -> int:
    from .stages import build
    print(build(make_context(args)))
    return 0


def cmd_image(args) -> int:
    from .boot_stages import base_stage, live_stage
    ctx = make_context(args, needs_source=False)
    print(base_stage(ctx)[0])
    print(live_stage(ctx)[0])
    return 0


def cmd_initramfs(args) -> int:
    from .boot_stages import initramfs_stage
    print(initramfs_stage(make_context(args, needs_source=False))[0])
    return 0


def cmd_iso(args) -> int:
    from .boot_stages import boot_stages
    print(boot_stages(make_context(args, needs_source=False)))
    return 0


def _iso_argument(args) -> Path:
    return Path(args.iso) if args.iso else Path(args.output) / "levitateos.iso"


def cmd_test(args) -> int:
    from .vmtest import run_live_test
    iso = _iso_argument(args)
    log_path = Path(args.log) if args.log else iso.resolve().parent / "test-console.log"
    report = run_live_test(iso, log_path=log_path, timeout=args.timeout, as_disk=args.as_disk,
                           disk_bus=args.bus, memory=args.memory)
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n")
    return 0 if report.passed else 1


def cmd_run(args) -> int:
    from .vmtest import run_interactive
    iso = None if args.no_iso else _iso_argument(args)
    disk = Path(args.disk_image) if args.disk_image else None
    if disk is None and args.disk and iso is None:
        disk = Path(args.output) / "disk.qcow2"
    return run_interactive(iso, disk=disk, disk_size=args.disk, serial=args.serial, memory=args.memory,
                           boot_from_disk=args.boot_disk, log_path=Path(args.log) if args.log else None)


def cmd_show(args) -> int:
    from .stages import show_packages
    print(show_packages(make_context(args), why=args.why))
    return 0


COMMANDS = {"preflight": cmd_preflight, "clean": cmd_clean, "download": cmd_download,
            "extract": cmd_extract, "build": cmd_build, "show": cmd_show, "image": cmd_image,
            "initramfs": cmd_initramfs, "iso": cmd_iso, "test": cmd_test, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose or args.debug, quiet=args.quiet)
    set_missing_tool_hint("run `leviso preflight` for the install command")
    return run_command("leviso", args, COMMANDS[args.command])


if __name__ == "__main__":
    sys.exit(main())
