"""recchroot: run a command (or a login shell) inside ROOT with the API filesystems, like arch-chroot.

    recchroot ROOT [COMMAND...]

Binds /dev, /dev/pts, /proc, /sys, /sys/firmware/efi/efivars (when the host has it) and /run
(with what is mounted below it, such as the live medium) into ROOT, and the host's resolv.conf
over ROOT/etc/resolv.conf (creating an empty file to bind onto when needed), so name resolution
works in the chroot. Every bind target is resolved inside ROOT, as the chroot sees it: ROOT's links
never lead a mount or a new file out onto the host. ROOT itself is bound onto
itself when it is not a mount point, so tools in the chroot see a mounted /.

Everything is mounted in a private mount namespace, invisible to the rest of the system, and
unmounted in reverse order when the command ends, fails or is interrupted (Ctrl-C, SIGTERM,
SIGHUP); where a namespace cannot be made (or with --no-unshare) the mounts are tracked and undone
the same way. The exit status is the command's (128+N when a signal N ended it); recchroot's own
errors: 1 (ROOT missing, not a directory, or /; a mount failed), 2 (bad command line), 126/127
(the command cannot be run / is not found in ROOT, as chroot(1) says).

Standard library only: it runs with the live system's own python3.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys

from ..util import mountinfo
from ..util.errors import LevitateError
from ..util.run import run, start
from . import mounts
from ..util.cli import Interrupted, run_command

PROG = "recchroot"
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
SHELLS = ("/bin/bash", "/usr/bin/bash", "/bin/sh")


RECORDS = "/run/recchroot"


class Mounts:
    """The mounts recchroot made, undone in reverse; files and directories it created to bind onto,
    removed. Each is also written to RECORDS/PID as it is made, so that the next recchroot can undo
    what a SIGKILLed one (no cleanup runs) left in the shared namespace."""

    def __init__(self) -> None:
        self.mounted: list[tuple[str, bool]] = []     # (target, recursive)
        self.created: list[str] = []
        self.record: str | None = None
        try:
            os.makedirs(RECORDS, mode=0o700, exist_ok=True)
            self.record = f"{RECORDS}/{os.getpid()}"
            open(self.record, "w").close()
        except OSError:
            self.record = None                        # no /run: nothing to clean up after a kill either

    def note(self, kind: str, path: str) -> None:
        if self.record:
            with open(self.record, "a") as f:
                f.write(f"{kind} {mounts.escape(path)}\n")

    def create(self, path: str) -> None:
        self.created.append(path)
        self.note("created", path)

    def bind(self, source: str, target: str, *, recursive: bool = False) -> None:
        self.note("mount", target)
        run(["mount", "--rbind" if recursive else "--bind", source, target], what=f"binding {source} onto {target}")
        self.mounted.append((target, recursive))

    def undo(self) -> list[str]:
        """Unmount everything (recursive binds with what is below them); the targets that stayed."""
        stuck = []
        while self.mounted:
            target, recursive = self.mounted.pop()
            proc = run(["umount", "-R", target] if recursive else ["umount", target], check=False)
            if proc.returncode != 0 and not mounts.umount(target):
                stuck.append(target)
        remove_created(self.created)
        if self.record and not stuck:
            os.unlink(self.record)
        return stuck


def remove_created(paths: list[str]) -> None:
    """Newest first: a file made to bind onto, then the directories made for it (if still empty)."""
    for path in reversed(paths):
        try:
            os.rmdir(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        except OSError:
            pass
    paths.clear()


def read_record(path: str) -> list[tuple[str, str]]:
    """(kind, path) lines of a record; none when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return [(kind, mountinfo.unescape(rest)) for kind, _, rest in
                    (line.rstrip("\n").partition(" ") for line in f) if rest]
    except OSError:
        return []


def clean_stale() -> None:
    """Undo what a killed recchroot (its pid gone) left: its mounts, newest first, and the files it
    made. Only what its record names, never other mounts under ROOT."""
    try:
        names = os.listdir(RECORDS)
    except OSError:
        return
    records = {name: read_record(f"{RECORDS}/{name}") for name in names if name.isdigit()}
    alive = {path for name, lines in records.items() if os.path.exists(f"/proc/{name}") for _, path in lines}
    for name, lines in records.items():
        if os.path.exists(f"/proc/{name}"):
            continue
        record = f"{RECORDS}/{name}"
        table = mountinfo.read()
        left = [path for kind, path in lines if kind == "mount" and path not in alive   # not a running one's
                and mounts.is_mount_point(path, table)]
        for target in reversed(left):
            if run(["umount", "-R", target], check=False).returncode != 0:
                mounts.umount(target)
        remove_created([path for kind, path in lines if kind == "created" and path not in alive])
        if left:
            print(f"{PROG}: unmounted {len(left)} mounts left by a killed recchroot (pid {name}): "
                  f"{', '.join(left)}", file=sys.stderr)
        try:
            os.unlink(record)
        except OSError:
            pass                                      # another recchroot cleaned it up just now


def private_namespace() -> bool:
    """Move this process into its own mount namespace (mounts made here stay here)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            return False
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return True


def inside(root: str, rel: str) -> str:
    """ROOT/rel as a process chrooted into ROOT sees it (openat2's RESOLVE_IN_ROOT): absolute links
    start at ROOT and `..` stops there, so the result, a host path without links, is inside ROOT.
    arch-chroot resolves resolv.conf the same way; mount(8) would follow ROOT's links on the host."""
    done: list[str] = []
    pending = [part for part in reversed(rel.split("/")) if part]
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        path = os.path.join(root, *done, name)
        if os.path.islink(path):
            links += 1
            if links > 40:                            # ELOOP's limit
                raise LevitateError(f"{root}/{rel}: too many levels of symbolic links", "fix the links in ROOT")
            link = os.readlink(path)
            if link.startswith("/"):
                done = []
            pending += [part for part in reversed(link.split("/")) if part]
            continue
        done.append(name)
    return os.path.join(root, *done)


def make_dirs(path: str, track: Mounts) -> None:
    """mkdir -p of a path `inside` gave (no links in it), each new directory noted for removal."""
    if os.path.isdir(path):
        return
    make_dirs(os.path.dirname(path), track)
    os.mkdir(path)
    track.create(path)


def resolv_conf_target(root: str, track: Mounts) -> str | None:
    """Where the host's resolv.conf goes: where ROOT/etc/resolv.conf leads inside ROOT; an empty
    file is made there when nothing is."""
    if not os.path.exists("/etc/resolv.conf"):
        return None
    path = inside(root, "etc/resolv.conf")
    if os.path.isfile(path):
        return path
    if os.path.lexists(path):
        return None                                   # a directory or a device: leave it
    make_dirs(os.path.dirname(path), track)
    with open(path, "x"):
        pass
    track.create(path)
    return path


def setup(root: str, track: Mounts) -> None:
    if not mounts.is_mount_point(root):
        track.bind(root, root)
    at = {}
    for sub in ("proc", "sys", "dev", "dev/pts", "run"):
        at[sub] = inside(root, sub)
        make_dirs(at[sub], track)
    track.bind("/proc", at["proc"])
    track.bind("/sys", at["sys"])
    efivars = "/sys/firmware/efi/efivars"
    if mounts.is_mount_point(efivars) and os.path.isdir(inside(root, efivars)):
        track.bind(efivars, inside(root, efivars))
    track.bind("/dev", at["dev"])
    track.bind("/dev/pts", inside(root, "dev/pts"))
    track.bind("/run", at["run"], recursive=True)
    resolv = resolv_conf_target(root, track)
    if resolv and not os.path.samefile(resolv, "/etc/resolv.conf"):
        track.bind("/etc/resolv.conf", resolv)


def default_command(root: str) -> list[str]:
    """A login shell: $SHELL when ROOT has it, else bash, else sh."""
    candidates = [os.environ["SHELL"]] if os.environ.get("SHELL") else []
    for shell in candidates + list(SHELLS):
        if os.access(f"{root}{shell}", os.X_OK):
            return [shell, "-l"]
    raise LevitateError(f"{root} has no shell ({', '.join(SHELLS)})", "give the command to run")


def run_inside(root: str, command: list[str]) -> int:
    """Run `command` chrooted; Ctrl-C goes to it (the terminal's process group), SIGTERM/SIGHUP
    to recchroot are passed on; its status, shell-style."""
    def enter() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)     # ignored by recchroot, not by the command
        os.chroot(root)
        os.chdir("/")

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = None
    try:
        child = start(command, setup=enter, what=f"{command[0]} in {root}")
        while True:
            try:
                status = child.wait()
                break
            except Interrupted as exc:                   # SIGTERM/SIGHUP: pass it on, then wait
                child.send_signal(exc.args[0] if exc.args else signal.SIGTERM)
    except FileNotFoundError:
        raise LevitateError(f"{command[0]}: command not found in {root}", exit_code=127) from None
    except PermissionError:
        raise LevitateError(f"{command[0]}: permission denied in {root}", exit_code=126) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - status if status < 0 else status


def recchroot(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise LevitateError("recchroot must run as root", "run it with sudo")
    if not os.path.exists(args.root):
        raise LevitateError(f"{args.root} does not exist", "mount the new root there first")
    if not os.path.isdir(args.root):
        raise LevitateError(f"{args.root} is not a directory", "give the directory the new root is mounted on")
    root = os.path.realpath(args.root)
    if root == "/" or os.path.samefile(root, "/"):
        raise LevitateError(f"{args.root} is the running system's root", "give the new root, e.g. /mnt")
    command = args.command or default_command(root)
    clean_stale()                                     # in the shared namespace, where it was left
    if not args.no_unshare and not private_namespace():
        print(f"{PROG}: warning: no private mount namespace here; mounting in the shared one "
              "(undone on exit)", file=sys.stderr)
    track = Mounts()
    try:
        setup(root, track)
        return run_inside(root, command)
    finally:
        stuck = track.undo()
        if stuck:
            print(f"{PROG}: warning: could not unmount {', '.join(stuck)}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Run COMMAND (default: a login shell) inside ROOT "
                                     "with /dev, /proc, /sys, /run and resolv.conf bound in, like arch-chroot.",
                                     epilog=f"examples: {PROG} /mnt    {PROG} /mnt passwd")
    parser.add_argument("--no-unshare", action="store_true", help="mount in the shared mount namespace "
                        "instead of a private one (the mounts are still undone on exit)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("root", metavar="ROOT", help="the new root, e.g. /mnt")
    parser.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER, help="command and arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, args, recchroot)


if __name__ == "__main__":
    sys.exit(main())
