"""recfstab: print the fstab for what is mounted under ROOT, like Arch's genfstab.

    recfstab ROOT [-U | -L | -t TAG] [-f FILTER] [-p | -P]

Mounts come from /proc/self/mountinfo, swap from /proc/swaps (zram left out: it is made at boot,
not mounted from fstab). Sources are named by UUID unless told otherwise; each entry has a comment
line naming the device. Options are the kernel's, cleaned as genfstab does (`rw`, `relatime` and
`seclabel` dropped; `defaults` when nothing is left). Pass 1 for `/`, 2 for other filesystems that
have an fsck, 0 for the rest (genfstab's rule). Exit codes: 0 printed, 1 nothing mounted under
ROOT (or ROOT is not a directory), 2 bad command line.

Standard library only: it runs with the live system's own python3.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass

from ..util import mountinfo
from ..util.errors import LevitateError, MissingToolError
from ..util.run import run
from . import mounts
from ..util.cli import run_command

PROG = "recfstab"
TAGS = ("UUID", "LABEL", "PARTUUID", "PARTLABEL")
BY_DIR = {"UUID": "by-uuid", "LABEL": "by-label", "PARTUUID": "by-partuuid", "PARTLABEL": "by-partlabel"}
# `blkid -o udev`: the label and UUID keys ending in _ENC and ID_PART_ENTRY_NAME hold the value
# \xHH-encoded, losslessly (util-linux misc-utils/blkid.c, print_udev_format: blkid_encode_string);
# ID_PART_ENTRY_UUID is plain hex. The export format is not reversible: it writes a tab as ^I,
# UTF-8 bytes as M-x, a space as `\ `.
BLKID_KEY = {"UUID": "ID_FS_UUID_ENC", "LABEL": "ID_FS_LABEL_ENC", "PARTUUID": "ID_PART_ENTRY_UUID",
             "PARTLABEL": "ID_PART_ENTRY_NAME"}
# genfstab's lists (from util-linux's libmount and the fsck.* tools Arch ships).
PSEUDO_FS = frozenset("""anon_inodefs autofs bdev binfmt_misc bpf cgroup cgroup2 configfs cpuset debugfs
devfs devpts devtmpfs dlmfs efivarfs fuse.gvfs-fuse-daemon fusectl hugetlbfs mqueue nfsd none nsfs
overlay pipefs proc pstore ramfs rootfs rpc_pipefs securityfs selinuxfs sockfs spufs sysfs tmpfs
tracefs""".split())
FSCK_FS = frozenset("cramfs exfat ext2 ext3 ext4 ext4dev jfs minix msdos reiserfs vfat xfs".split())
DROP_OPTIONS = frozenset({"rw", "relatime", "seclabel"})


@dataclass(frozen=True)
class FstabEntry:
    comment: str
    spec: str
    target: str
    fstype: str
    options: str
    dump: int
    passno: int

    def render(self) -> str:
        """genfstab's layout: a comment line, the columns, a blank line."""
        head = f"# {self.comment}\n" if self.comment else ""
        return (f"{head}{self.spec:<20}\t{mounts.escape(self.target):<10}\t{self.fstype:<10}\t"
                f"{self.options:<10}\t{self.dump} {self.passno}\n")


def clean_options(vfs_options: str, super_options: str, fstype: str) -> str:
    """The per-mount options, then the filesystem's own not already there; kernel defaults and
    options a fresh system may not understand dropped; `defaults` when nothing is left."""
    vfs = [o for o in vfs_options.split(",") if o]
    fs = [o for o in super_options.split(",") if o and o not in ("rw", "ro") and o not in vfs]
    options = [o for o in vfs + fs if o not in DROP_OPTIONS]
    if fstype == "btrfs" and any(o.startswith("subvol=") for o in options):
        options = [o for o in options if not o.startswith("subvolid=")]
    return ",".join(dict.fromkeys(options)) or "defaults"


def pass_number(fstype: str, is_root: bool) -> int:
    if fstype not in FSCK_FS:
        return 0
    return 1 if is_root else 2


class Tags:
    """UUID, LABEL, PARTUUID, PARTLABEL of block devices: blkid's low-level probe (what is on the
    disk now), else udev's /dev/disk/by-* links."""

    def __init__(self) -> None:
        self.cache: dict[str, dict[str, str]] = {}

    def of(self, device: str) -> dict[str, str]:
        if device not in self.cache:
            self.cache[device] = self._probe(device) or self._links(device)
        return self.cache[device]

    @staticmethod
    def _probe(device: str) -> dict[str, str]:
        try:
            out = run(["blkid", "-o", "udev", "-p", device], capture=True, check=False).stdout
        except MissingToolError:
            return {}
        lines = out.decode(errors="surrogateescape").splitlines()
        values = dict(line.split("=", 1) for line in lines if "=" in line)
        return {tag: _udev_unescape(values[key]) for tag, key in BLKID_KEY.items() if values.get(key)}

    @staticmethod
    def _links(device: str) -> dict[str, str]:
        real = os.path.realpath(device)
        found = {}
        for tag, sub in BY_DIR.items():
            directory = f"/dev/disk/{sub}"
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                if os.path.realpath(f"{directory}/{name}") == real:
                    found[tag] = _udev_unescape(name)
                    break
        return found


def _udev_unescape(name: str) -> str:
    """udev and blkid write unsafe bytes of labels as \\xHH (a byte each: UTF-8 comes back whole)."""
    raw = os.fsencode(name)
    return os.fsdecode(re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw))


def source_spec(device: str, tag: str, tags: Tags) -> tuple[str, str]:
    """(fs_spec, comment) for a block device: TAG=value, or the device itself when it has none."""
    known = tags.of(device) if device.startswith("/dev/") else {}
    comment = " ".join([device] + [f"{t}={mounts.escape(known[t])}" for t in ("UUID", "LABEL") if t in known and t != tag])
    if tag in known:
        return f"{tag}={mounts.escape(known[tag])}", comment
    return mounts.escape(device), comment


def inside(path: str, root: str) -> str:
    """`path` (under `root`) as the new system sees it."""
    rel = path[len(root):] if root != "/" else path
    return "/" + rel.lstrip("/")


def fstab_entries(root: str, tag: str, filt: str | None, pseudo: bool, table: list[mountinfo.MountEntry],
                  swaps: str, tags: Tags) -> list[FstabEntry]:
    entries = []
    visible = mounts.mounts_under(root, table)
    top_of_device = {}
    for m in table:                                      # where each device's own root is mounted
        if m.fsroot == "/":
            top_of_device.setdefault(m.device, m.target)
    for m in visible:
        if not pseudo and m.fstype in PSEUDO_FS:
            continue
        if filt and not mounts.under(m.target, filt):
            continue
        is_root = m.target == root
        fstype, options, passno = m.fstype, clean_options(m.options, m.super_options, m.fstype), pass_number(m.fstype, is_root)
        source = m.source
        if m.fsroot != "/" and fstype != "btrfs":        # a bind mount
            origin = top_of_device.get(m.device)
            if origin is None:
                continue
            source = os.path.normpath(f"{origin}/{m.fsroot}")
            if source == m.target:
                continue
            if mounts.under(source, root):
                source = inside(source, root)
            fstype, passno = "none", 0
            options = "bind" if options == "defaults" else f"{options},bind"
            spec, comment = mounts.escape(source), f"{m.source} (bind)"
        else:
            spec, comment = source_spec(source, tag, tags)
        entries.append(FstabEntry(comment, spec, inside(m.target, root), fstype, options, 0, passno))
    entries.extend(swap_entries(root, tag, filt, swaps, tags))
    return entries


def swap_entries(root: str, tag: str, filt: str | None, swaps: str, tags: Tags) -> list[FstabEntry]:
    """/proc/swaps: partitions by TAG, swap files inside ROOT by their path there; zram and files
    elsewhere (the live system's) left out."""
    entries = []
    for line in swaps.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        device, kind, prio = mountinfo.unescape(fields[0]), fields[1], int(fields[4])
        if device.endswith(" (deleted)") or os.path.basename(device).startswith("zram"):
            continue
        if filt and not mounts.under(device, filt):
            continue
        options = "defaults" if prio < 0 else f"defaults,pri={prio}"
        if kind == "file":
            if not mounts.under(device, root) or device == root:
                continue
            spec, comment = mounts.escape(inside(device, root)), device
        else:
            spec, comment = source_spec(device, tag, tags)
        entries.append(FstabEntry(comment, spec, "none", "swap", options, 0, 0))
    return entries


def recfstab(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.root):
        raise LevitateError(f"{args.root} is not a directory", "give the directory the new root is mounted on")
    root = os.path.realpath(args.root)
    table = mountinfo.read()
    if not any(m.target == root for m in table):
        raise LevitateError(f"nothing is mounted at {args.root}",
                            f"mount the new root partition there first (mount /dev/XXX {args.root})")
    filt = os.path.realpath(args.filter) if args.filter else None
    with open("/proc/swaps") as f:
        swaps = f.read()
    tag = (args.tag or "UUID").upper()
    if tag not in TAGS:
        raise LevitateError(f"-t {args.tag}: unknown tag", f"use one of {', '.join(TAGS)}", exit_code=2)
    entries = fstab_entries(root, tag, filt, args.pseudo, table, swaps, Tags())
    sys.stdout.write("\n".join(e.render() for e in entries))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Print an fstab for the filesystems mounted under "
                                     "ROOT and the active swap, like genfstab.",
                                     epilog=f"example: {PROG} /mnt >> /mnt/etc/fstab")
    parser.add_argument("root", metavar="ROOT", help="the mounted new root, e.g. /mnt")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("-U", dest="tag", action="store_const", const="UUID", help="sources by UUID (default)")
    how.add_argument("-L", dest="tag", action="store_const", const="LABEL", help="sources by LABEL")
    how.add_argument("-t", dest="tag", metavar="TAG", help="sources by TAG: LABEL, UUID, PARTLABEL or PARTUUID")
    parser.add_argument("-f", dest="filter", metavar="FILTER", help="only mounts at or under FILTER (a path "
                        "as mounted now, e.g. /mnt/boot)")
    pseudo = parser.add_mutually_exclusive_group()
    pseudo.add_argument("-p", dest="pseudo", action="store_false", default=False,
                        help="leave pseudo filesystems (tmpfs, proc, ...) out (default)")
    pseudo.add_argument("-P", dest="pseudo", action="store_true", help="include pseudo filesystems")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, args, recfstab)


if __name__ == "__main__":
    sys.exit(main())
