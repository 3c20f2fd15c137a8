"""recstrap: install the base system onto a mounted target, like pacstrap.

The live medium already holds the complete system in its base image, so installing is extracting
it: recstrap mounts the BASE image read-only in a private temporary directory (never the live
layer: no autologin, no empty root password) and copies it exactly into TARGET.

    recstrap TARGET [--rootfs IMAGE] [--force] [--check] [--quiet]

Every check runs before anything is written, each with its own exit code:

    0   installed (or, with --check, every check passed)
    1   the copy itself failed (an I/O error; the target is marked incomplete)
    2   bad command line
    10  not running as root
    11  TARGET does not exist or is not a directory
    12  TARGET is, lies inside or holds a mount of a system path (/, /usr, /usr/share, /etc, ...):
        refused even with --force
    13  TARGET is not writable (read-only filesystem)
    14  TARGET is not a mount point (mount the new root there first; --force skips this)
    15  TARGET is not empty, or holds an interrupted recstrap (--force redoes it)
    16  the base image was not found
    17  the base image is not a regular file
    18  the base image is corrupted (no EROFS/squashfs magic) or truncated
    19  the kernel cannot mount the base image
    20  not enough free space or inodes on TARGET
    130 interrupted (Ctrl-C, SIGTERM); TARGET is marked incomplete, `recstrap --force` redoes it

After the copy: no SSH host keys and no machine-id are carried over (systemd makes a machine-id at
first boot) and root's password stays locked until the user sets one.

Standard library only: it runs with the live system's own python3.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from ..util.errors import LevitateError
from ..util import mountinfo
from ..util.files import atomic_write
from ..util.run import run
from . import mounts, treecopy
from ..util.cli import run_command

PROG = "recstrap"
MEDIA = "/run/levitate/media"
IMAGE_CANDIDATES = (f"{MEDIA}/live/filesystem.erofs", f"{MEDIA}/live/filesystem.squashfs",
                    "/run/initramfs/live/live/filesystem.erofs", "/run/initramfs/live/live/filesystem.squashfs")
SYSTEM_PATHS = ("/", "/usr", "/etc", "/boot", "/efi", "/var", "/home", "/bin", "/sbin", "/lib", "/lib64",
                "/lib32", "/libx32", "/opt", "/root", "/srv", "/run", "/proc", "/sys", "/dev", "/tmp",
                "/usr/local", "/var/lib", "/var/log")
# Trees nothing may be installed into, at any depth (/usr/share too); the others above are refused
# as themselves only, as /mnt and /tmp/x lie inside / and /home/me/new inside /home.
SYSTEM_TREES = ("/usr", "/etc", "/boot", "/efi", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
                "/proc", "/sys", "/dev", "/var/lib", "/var/log")
MARKER = ".recstrap-incomplete"
ALLOWED_IN_EMPTY = {"lost+found", MARKER}
EROFS_MAGIC = (1024, bytes.fromhex("e2e1f5e0"))
SQUASHFS_MAGIC = (0, b"hsqs")
MARGIN_BYTES = 64 << 20
MARGIN_FRACTION = 0.05
BOOTLOADER_COMMAND = "recboot"
MOUNT_PREFIX = "recstrap-image-"
MS_RDONLY = 1

EXIT_COPY, EXIT_NOT_ROOT, EXIT_NOT_DIR, EXIT_SYSTEM_PATH, EXIT_NOT_WRITABLE = 1, 10, 11, 12, 13
EXIT_NOT_MOUNTPOINT, EXIT_NOT_EMPTY, EXIT_NO_IMAGE, EXIT_NOT_FILE, EXIT_BAD_IMAGE = 14, 15, 16, 17, 18
EXIT_CANNOT_MOUNT, EXIT_NO_SPACE = 19, 20

NEXT_STEPS = (
    ("recfstab {t} >> {t}/etc/fstab", "the fstab, sources by UUID"),
    ("recchroot {t}", "enter the new system; in it:"),
    ("  ln -sf /usr/share/zoneinfo/Region/City /etc/localtime", "timezone"),
    ("  echo LANG=en_US.UTF-8 > /etc/locale.conf", "locale"),
    ("  echo myhostname > /etc/hostname", "hostname"),
    ("  passwd", "root's password (root is locked until you set one)"),
    ("  useradd -m -G wheel myuser && passwd myuser", "a user who may use sudo"),
    (f"  {BOOTLOADER_COMMAND}", "boot loader, kernel and initramfs on the ESP"),
    ("  exit", "back to the live system"),
    ("umount -R {t} && reboot", ""),
)


def next_steps(target: str) -> str:
    """What is left after recstrap, as pacstrap's users know it."""
    lines = [(cmd.format(t=target), why) for cmd, why in NEXT_STEPS]
    width = max(len(cmd) for cmd, _ in lines) + 2
    body = "\n".join(f"  {cmd.ljust(width)}# {why}" if why else f"  {cmd}" for cmd, why in lines)
    return f"The base system is on {target}. What is left to do:\n{body}\n"


def die(code: int, message: str, hint: str | None = None) -> LevitateError:
    return LevitateError(message, hint, exit_code=code)


@dataclass(frozen=True)
class Image:
    path: str
    fstype: str            # erofs | squashfs


# ---- checks (nothing is written before they all pass) ----

def check_root() -> None:
    if os.geteuid() != 0:
        raise die(EXIT_NOT_ROOT, "recstrap must run as root", "run it with sudo")


def check_target(target: str, force: bool) -> str:
    """The target's real path, once it is safe to write into."""
    if not os.path.exists(target):
        raise die(EXIT_NOT_DIR, f"{target} does not exist", f"mount the new root there first (mkdir -p {target})")
    if not os.path.isdir(target):
        raise die(EXIT_NOT_DIR, f"{target} is not a directory", "give the directory the new root is mounted on")
    real = os.path.realpath(target)
    if is_system_path(real):
        raise die(EXIT_SYSTEM_PATH, f"{target} is a system path ({real}): recstrap never writes there, "
                  "not even with --force", "mount the new root on an empty directory such as /mnt")
    for entry in mounts.mounts_under(real):
        if entry.target != real and is_system_path(entry.target):
            inner = os.path.relpath(entry.target, real)
            raise die(EXIT_SYSTEM_PATH, f"{target}/{inner} is a mount of a system path ({entry.fsroot} of "
                      f"{entry.source}): recstrap never writes there, not even with --force",
                      f"unmount it first (umount -R {entry.target}); a killed `recchroot --no-unshare` "
                      "leaves such mounts, the next recchroot removes them")
    if os.statvfs(real).f_flag & os.ST_RDONLY or not os.access(real, os.W_OK):
        raise die(EXIT_NOT_WRITABLE, f"{target} is not writable (read-only filesystem?)",
                  f"mount it read-write: mount -o remount,rw {target}")
    if force:
        return real
    if not mounts.is_mount_point(real):
        raise die(EXIT_NOT_MOUNTPOINT, f"{target} is not a mount point: the system would land on the live "
                  "system's RAM overlay", f"mount the new root partition there (mount /dev/XXX {target}), "
                  "or pass --force to install into a plain directory")
    if os.path.lexists(os.path.join(real, MARKER)):
        raise die(EXIT_NOT_EMPTY, f"{target} holds an interrupted recstrap ({MARKER} is there)",
                  f"run `recstrap --force {target}` to redo it")
    extra = leftovers(real)
    if extra:
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        raise die(EXIT_NOT_EMPTY, f"{target} is not empty ({shown})",
                  "install onto an empty, freshly made filesystem, or pass --force to copy over it")
    return real


def leftovers(root: str, rel: str = "") -> list[str]:
    """What is in `root` besides lost+found and empty mount points: the guide mounts the ESP (and
    maybe /home) under the new root before recstrap, as Arch's does before pacstrap."""
    found = []
    for name in sorted(os.listdir(os.path.join(root, rel))):
        path = os.path.join(rel, name)
        if name in ALLOWED_IN_EMPTY:
            continue
        full = os.path.join(root, path)
        if os.path.isdir(full) and not os.path.islink(full) and mounts.is_mount_point(full):
            found += leftovers(root, path)
        else:
            found.append(path)
    return found


NO_UNIX_METADATA = {"vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk"}


def plain_subtrees(target: str) -> tuple[str, ...]:
    """Mounts under the target (relative paths) that cannot keep owners, modes or links: the
    ESP at /boot. Files land there with their content and times only, as pacstrap's do."""
    return tuple(os.path.relpath(entry.target, target) for entry in mountinfo.read()
                 if entry.fstype in NO_UNIX_METADATA and mounts.under(entry.target, target)
                 and entry.target != target)


def is_system_path(real: str) -> bool:
    """`real` is one of the running system's own directories or lies inside one of its trees, by
    device and inode, not by name: a bind mount of /usr elsewhere is /usr too, and a bind mount of
    /usr/share lies inside it (its mount's root is below /usr's on the same filesystem)."""
    try:
        st = os.stat(real)
    except OSError:
        return False
    own = {_identity(path): path for path in SYSTEM_PATHS}
    own.pop(None, None)
    if (st.st_dev, st.st_ino) in own or real in {os.path.realpath(path) for path in SYSTEM_PATHS}:
        return True
    trees = {_identity(path) for path in SYSTEM_TREES} - {None}
    path = real
    while path != "/":                          # the directories above it, as reached from here
        path = os.path.dirname(path)
        if _identity(path) in trees:
            return True
    table = mountinfo.read()                # a bind mount's own root, as the kernel names it
    device, inside = _in_filesystem(real, table)
    for tree in SYSTEM_TREES:
        if os.path.exists(tree):
            tree_device, tree_inside = _in_filesystem(os.path.realpath(tree), table)
            if tree_device == device and mounts.under(inside, tree_inside):
                return True
    return False


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _in_filesystem(real: str, table: list[mountinfo.MountEntry]) -> tuple[str, str]:
    """(device, path inside that filesystem) of a real path: from the mount it is on, the last
    mounted at the longest target above it."""
    best = None
    for entry in table:
        if mounts.under(real, entry.target) and (best is None or len(entry.target) >= len(best.target)):
            best = entry
    if best is None:
        return "", real
    return best.device, os.path.normpath(os.path.join(best.fsroot, os.path.relpath(real, best.target)))


def find_image(given: str | None) -> str:
    if given:
        if not os.path.lexists(given):
            raise die(EXIT_NO_IMAGE, f"base image {given} not found", "give the path of filesystem.erofs")
        return given
    for path in IMAGE_CANDIDATES:
        if os.path.exists(path):
            return path
    raise die(EXIT_NO_IMAGE, f"no base image: none of {', '.join(IMAGE_CANDIDATES[:2])} exists "
              "(is this the LevitateOS live system?)", "pass --rootfs /path/to/filesystem.erofs")


def check_image(path: str) -> Image:
    """A regular file with an EROFS or squashfs superblock whose size the file really has."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise die(EXIT_NO_IMAGE, f"base image {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise die(EXIT_NOT_FILE, f"base image {path} is not a regular file", "give the filesystem.erofs file itself")
    with open(path, "rb") as f:
        head = f.read(1024 + 128)
    fstype, expected = None, 0
    if head[EROFS_MAGIC[0]:EROFS_MAGIC[0] + 4] == EROFS_MAGIC[1]:
        sb = head[1024:]
        blkszbits = sb[12]
        blocks = int.from_bytes(sb[36:40], "little")
        fstype, expected = "erofs", blocks << blkszbits if 9 <= blkszbits <= 16 else 0
    elif head[:4] == SQUASHFS_MAGIC[1]:
        fstype, expected = "squashfs", int.from_bytes(head[40:48], "little")   # bytes_used
    if fstype is None:
        raise die(EXIT_BAD_IMAGE, f"base image {path} is corrupted: neither EROFS nor squashfs magic",
                  "copy it again from the live medium, or check the medium with its .sha512")
    if expected == 0 or expected > st.st_size:
        raise die(EXIT_BAD_IMAGE, f"base image {path} is truncated: {st.st_size} bytes, its superblock "
                  f"says {expected}", "copy it again from the live medium")
    return Image(path, fstype)


def kernel_supports(fstype: str) -> bool:
    try:
        with open("/proc/filesystems") as f:
            if any(line.split()[-1] == fstype for line in f if line.strip()):
                return True
    except OSError:
        pass
    run(["modprobe", "-q", fstype], check=False, missing="install kmod (it provides modprobe)")
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fstype for line in f if line.strip())


def check_space(target: str, plan: treecopy.Plan, force: bool) -> tuple[int, int]:
    """(needed, free) bytes; raises when the image's tree does not fit."""
    vfs = os.statvfs(target)
    block = vfs.f_frsize or vfs.f_bsize
    free = vfs.f_bavail * block
    if force:                          # files an earlier copy left are replaced, their space is reused
        for rel, _ in plan.items:
            try:
                free += os.lstat(f"{target}/{rel}").st_blocks * 512
            except OSError:
                pass
    content = plan.space_needed(block)
    needed = content + max(MARGIN_BYTES, int(content * MARGIN_FRACTION))
    if needed > free:
        raise die(EXIT_NO_SPACE, f"not enough space on {target}: the system needs {mib(needed)} "
                  f"({mib(content)} + margin), {mib(free)} free", "use a bigger partition")
    if vfs.f_files and plan.entries + 1024 > vfs.f_favail:
        raise die(EXIT_NO_SPACE, f"not enough inodes on {target}: {plan.entries} entries, {vfs.f_favail} free",
                  "make the filesystem again with more inodes (mkfs.ext4 -N)")
    return needed, free


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def create_marker(path: str) -> int:
    """A fresh marker file: whatever is at its name (an earlier marker, or a planted symlink to a
    file elsewhere) is removed, never followed, and O_EXCL|O_NOFOLLOW make sure of it."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise die(EXIT_NOT_EMPTY, f"{path} is a directory", f"remove it (rm -r {path})")
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


# ---- the image mount ----

def clean_stale_mounts() -> None:
    """Mounts a killed recstrap (SIGKILL: no cleanup) left behind, recognised by their name."""
    pattern = re.compile(rf"/{MOUNT_PREFIX}(\d+)-[^/]*$")
    for entry in mountinfo.read():
        m = pattern.search(entry.target)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            mounts.umount(entry.target)
            try:
                os.rmdir(entry.target)
            except OSError:
                pass


def prefetch(path: str) -> threading.Thread | None:
    """Read the image once, sequentially, in the background: the copy's scattered reads then come
    from the page cache instead of seeking on the medium (a USB stick or DVD on the live system).
    Skipped when the image would not fit in half of the available memory."""
    size = os.path.getsize(path)
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None
    if size > available // 2:
        return None

    def read() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.posix_fadvise(fd, 0, size, os.POSIX_FADV_WILLNEED)   # the kernel reads it, no copy to us
        except OSError:
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=read, name="prefetch", daemon=True)
    thread.start()
    return thread


def mount_file_backed(image: str, target: str) -> bool:
    """EROFS straight from the file, without a loop device (Linux >= 6.12 with
    EROFS_FS_BACKED_BY_FILE): the same data with less overhead per read. False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.mount(os.fsencode(image), os.fsencode(target), b"erofs", MS_RDONLY, None) == 0
    except (OSError, AttributeError):
        return False


class ImageMount:
    """The image mounted read-only (loop) on a private temporary directory; always unmounted."""

    def __init__(self, image: Image):
        self.image = image
        self.dir: str | None = None
        self.mounted = False

    def __enter__(self) -> str:
        base = "/run" if os.access("/run", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix=f"{MOUNT_PREFIX}{os.getpid()}-", dir=base)
        os.chmod(self.dir, 0o700)
        if self.image.fstype == "erofs" and mount_file_backed(self.image.path, self.dir):
            self.mounted = True
            return self.dir
        try:
            run(["mount", "-t", self.image.fstype, "-o", "ro,loop", self.image.path, self.dir],
                what=f"mounting the base image {self.image.path}",
                hint=f"check the image (fsck.{self.image.fstype}) and that the kernel has {self.image.fstype}")
        except LevitateError as exc:
            self._cleanup()
            raise die(EXIT_CANNOT_MOUNT, exc.message, exc.hint) from None
        self.mounted = True
        return self.dir

    def __exit__(self, *exc) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.mounted and self.dir:
            mounts.umount(self.dir)
            self.mounted = False
        if self.dir:
            try:
                os.rmdir(self.dir)
            except OSError:
                pass
            self.dir = None


# ---- after the copy ----

def scrub(target: str) -> list[str]:
    """What must not carry over from the image to an installed system; returns what was changed."""
    changed = []
    ssh = f"{target}/etc/ssh"
    if os.path.isdir(ssh):
        for name in sorted(os.listdir(ssh)):
            if name.startswith("ssh_host_"):
                os.unlink(f"{ssh}/{name}")
                changed.append(f"removed /etc/ssh/{name}")
    machine_id = f"{target}/etc/machine-id"
    if os.path.isfile(machine_id) and not os.path.islink(machine_id) and os.path.getsize(machine_id):
        with open(machine_id, "r+b") as f:
            f.truncate(0)
        changed.append("emptied /etc/machine-id (systemd makes one at first boot)")
    if lock_root(f"{target}/etc/shadow"):
        changed.append("locked root's password in /etc/shadow (set one with passwd)")
    return changed


def lock_root(shadow: str) -> bool:
    """Make root's shadow entry locked (`!` prefix, as `passwd -l` does) unless it is already."""
    if not os.path.isfile(shadow):
        return False
    fd = os.open(shadow, os.O_RDONLY | os.O_NOATIME)         # its times stay the image's
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and len(fields) > 1:
            if fields[1].startswith(("!", "*")):
                return False
            fields[1] = "!" + fields[1]
            lines[i] = ":".join(fields)
            break
    else:
        return False
    st = os.stat(shadow)
    with atomic_write(shadow, "w", perm=stat.S_IMODE(st.st_mode), owner=(st.st_uid, st.st_gid), sync_dir=True,
                      encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(lines))
    return True


def restore_times(target: str, plan: treecopy.Plan, rels: tuple[str, ...]) -> None:
    """The image's times again on directories the marker and `scrub` touched."""
    times = {rel: st for rel, st in plan.dirs if rel in rels}
    for rel, st in times.items():
        os.utime(f"{target}/{rel}" if rel else target, ns=(st.st_atime_ns, st.st_mtime_ns))


# ---- progress ----

class Progress:
    """`recstrap: 312 MiB of 702 MiB (44%), 8123/14414 files`, rewritten in place on a terminal."""

    def __init__(self, plan: treecopy.Plan, enabled: bool):
        self.total_bytes, self.total_files, self.enabled = plan.data_bytes, len(plan.items), enabled
        self.last = ""

    def __call__(self, copied: int, done: int) -> None:
        if not self.enabled:
            return
        pct = 100 * copied // self.total_bytes if self.total_bytes else 100
        line = f"{PROG}: {mib(copied)} of {mib(self.total_bytes)} ({pct}%), {done}/{self.total_files} files"
        if line != self.last:
            sys.stderr.write("\r" + line.ljust(len(self.last)))
            sys.stderr.flush()
            self.last = line

    def end(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ---- the command ----

def recstrap(args: argparse.Namespace) -> int:
    say = (lambda text: None) if args.quiet else (lambda text: print(f"{PROG}: {text}", flush=True))
    check_root()
    target = check_target(args.target, args.force)
    image = check_image(find_image(args.rootfs))
    if not kernel_supports(image.fstype):
        raise die(EXIT_CANNOT_MOUNT, f"the running kernel cannot mount {image.fstype} ({image.path})",
                  f"load its module: modprobe {image.fstype}")
    clean_stale_mounts()
    if not args.check:
        prefetch(image.path)
    with ImageMount(image) as source:
        plan = treecopy.walk(source)
        needed, free = check_space(target, plan, args.force)
        if args.check:
            say(f"{args.target}: every check passed; {image.path} ({image.fstype}) needs {mib(needed)}, "
                f"{mib(free)} free")
            return 0
        marker = os.path.join(target, MARKER)
        with os.fdopen(create_marker(marker), "w") as f:
            f.write(f"recstrap of {image.path} started {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})\n")
        say(f"installing {image.path} onto {args.target}: {mib(plan.data_bytes)} in {plan.entries} entries")
        start = time.monotonic()
        progress = Progress(plan, enabled=not args.quiet and sys.stderr.isatty())
        try:
            treecopy.copy_tree(source, target, plan, replace=args.force, plain=plain_subtrees(target),
                               progress=progress)
        except treecopy.CopyError as exc:
            raise die(EXIT_COPY, f"copying into {args.target} failed at {exc}",
                      f"fix the cause, then run `recstrap --force {args.target}`") from None
        except OSError as exc:
            raise die(EXIT_COPY, f"copying into {args.target} failed: {exc}",
                      f"fix the cause, then run `recstrap --force {args.target}`") from None
        finally:
            progress.end()
    for change in scrub(target):
        say(change)
    os.unlink(marker)
    restore_times(target, plan, ("", "etc", "etc/ssh"))
    say(f"copied {mib(plan.data_bytes)} in {plan.entries} entries in {time.monotonic() - start:.1f} s")
    if not args.quiet:
        print(next_steps(args.target.rstrip("/") or "/"), end="", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    codes = doc[doc.index("    0   "):doc.index("\nAfter the copy")]
    parser = argparse.ArgumentParser(
        prog=PROG, description="Install the LevitateOS base system onto TARGET (the mounted new root), "
        "like pacstrap.", epilog="exit codes:\n" + codes, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="TARGET", help="the mounted new root, e.g. /mnt")
    parser.add_argument("--rootfs", metavar="IMAGE", help=f"the base image (default: {IMAGE_CANDIDATES[0]} "
                        "or .squashfs)")
    parser.add_argument("--force", action="store_true", help="install even if TARGET is not a mount point "
                        "or not empty, replacing what is there (redoes an interrupted recstrap)")
    parser.add_argument("--check", action="store_true", help="only run the checks, write nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, args, recstrap)


if __name__ == "__main__":
    sys.exit(main())
