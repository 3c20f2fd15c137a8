"""recstrap, recfstab and recchroot through their real command lines, on real loop devices,
filesystems and EROFS images: the round trip keeps everything, every bad input is refused with
one line, its exit code and nothing written, interrupted runs are redone, nothing stays mounted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from levitate.install import mounts, recstrap
from levitate.util import mountinfo
from tests.cheat_aware import cheat_aware

CAP_NET_RAW = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")   # v2, effective, +net_raw


# ---- helpers ----

def tool(name: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"levitate.install.{name}", *map(str, args)],
                          capture_output=True, text=True, **kwargs)


def one_error_line(proc, prog: str, *fragments: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def listing(path: Path) -> list[tuple[str, int, int]]:
    """What is in a tree (names, sizes, mtimes): "nothing written" compares two of these."""
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), path), st.st_size, st.st_mtime_ns))
    st = os.lstat(path)
    return sorted(out) + [(".", st.st_mode, st.st_mtime_ns)]


def manifest(root: Path, skip=("lost+found",)) -> tuple[dict, list]:
    """Every entry's lstat fields (atime too), xattrs, content hash, link target, device number;
    hardlink groups. Everything is lstat'ed before anything is read (reading updates atimes), and
    symlinks are never followed."""
    stats = {root: os.lstat(root)}
    stack = [root]
    while stack:                              # lstat before listing: listing a directory sets its atime
        directory = stack.pop()
        children = sorted(os.listdir(directory))
        if directory == root:
            children = [c for c in children if c not in skip]
        for name in children:
            path = directory / name
            stats[path] = os.lstat(path)
            if stat.S_ISDIR(stats[path].st_mode):
                stack.append(path)
    out, groups = {}, {}
    for path, st in stats.items():
        rel = os.path.relpath(path, root)
        rec = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime_ns,
               "atime": st.st_atime_ns, "nlink": 0 if stat.S_ISDIR(st.st_mode) else st.st_nlink,
               "xattrs": {n: os.getxattr(path, n, follow_symlinks=False)
                          for n in os.listxattr(path, follow_symlinks=False)}}
        if stat.S_ISREG(st.st_mode):
            rec["size"] = st.st_size
            rec["sha"] = hashlib.sha256(path.read_bytes()).hexdigest()
            if st.st_nlink > 1:
                groups.setdefault(st.st_ino, []).append(rel)
        elif stat.S_ISLNK(st.st_mode):
            rec["link"] = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            rec["rdev"] = st.st_rdev
        out[rel] = rec
    return out, sorted(sorted(g) for g in groups.values())


def mounted_under(path: Path) -> list[str]:
    real = os.path.realpath(path)
    return [m.target for m in mountinfo.read() if mounts.under(m.target, real)]


@contextlib.contextmanager
def loop_fs(tmp_path: Path, name: str, size_mib: int, mkfs: list[str], at: Path | None = None):
    """A fresh filesystem on a loop device, mounted; unmounted (and the loop freed) even on failure."""
    image = tmp_path / f"{name}.img"
    with open(image, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    target = at or tmp_path / name
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-R", str(target)], capture_output=True)


@pytest.fixture
def cleanup_mounts(tmp_path):
    """Whatever a killed tool left mounted under tmp_path or as a recstrap image mount is undone."""
    yield
    for entry in reversed(mountinfo.read()):
        if mounts.under(entry.target, str(tmp_path)) or recstrap.MOUNT_PREFIX in entry.target:
            subprocess.run(["umount", "-l", entry.target], capture_output=True)


def rich_tree(root: Path) -> Path:
    """Everything recstrap must keep: hardlinks, xattrs, a file capability, ACLs, a sparse file,
    device nodes, a fifo, symlinks, setuid/setgid/sticky, owners, nanosecond times, odd names."""
    root.mkdir()
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/ssh").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "shared").mkdir()
    (root / "empty").mkdir()
    (root / "usr/bin/tool").write_bytes(os.urandom(300_000))
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-hardlink")
    os.link(root / "usr/bin/tool", root / "shared/tool-third")
    (root / "usr/bin/ping").write_bytes(b"\x7fELF" + os.urandom(5000))
    os.setxattr(root / "usr/bin/ping", "security.capability", CAP_NET_RAW)
    (root / "usr/bin/su").write_bytes(b"su")
    os.chmod(root / "usr/bin/su", 0o4755)
    (root / "usr/bin/wall").write_bytes(b"wall")
    os.chown(root / "usr/bin/wall", 0, 5)
    os.chmod(root / "usr/bin/wall", 0o2755)
    os.chmod(root / "shared", 0o1777)
    (root / "etc/owned").write_text("by 1234:5678\n")
    os.chown(root / "etc/owned", 1234, 5678)
    (root / "etc/with xattr").write_text("x")
    os.setxattr(root / "etc/with xattr", "user.comment", b"kept")
    os.setxattr(root / "etc/with xattr", "trusted.level", b"\x00\x01binary")
    (root / "etc/acl-file").write_text("acl")
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:5678:r", root / "etc/acl-file"], check=True)
    (root / "etc/acl-dir").mkdir()
    subprocess.run(["setfacl", "-m", "u:1234:rwx", "-d", "-m", "u:1234:rx", root / "etc/acl-dir"], check=True)
    (root / "etc/shadow").write_text("root:*:19500:0:99999:7:::\n")
    os.chmod(root / "etc/shadow", 0)
    (root / "etc/machine-id").write_text("")
    with open(root / "sparse.img", "wb") as f:
        f.truncate(64 << 20)
        f.seek(8 << 20)
        f.write(b"data in the middle")
        f.seek(40 << 20)
        f.write(os.urandom(10000))
    (root / "zeros").write_bytes(bytes(3 << 20))
    (root / "empty-file").write_bytes(b"")
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "dev/loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    os.mkfifo(root / "dev/fifo", 0o640)
    os.symlink("usr/bin", root / "bin")
    os.symlink("/usr/bin/tool", root / "absolute-link")
    os.symlink("does/not/exist", root / "dangling")
    os.chown(root / "dangling", 42, 43, follow_symlinks=False)
    (root / "name with spaces\nand newline").write_text("odd")
    os.utime(root / "usr/bin/su", ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))
    os.utime(root / "etc", ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_002))
    os.chmod(root / "empty", 0o700)
    return root


def mkfs_erofs(tree: Path, image: Path, compression: str | None = "lz4hc") -> Path:
    argv = ["mkfs.erofs", "--quiet"] + ([f"-z{compression}"] if compression else []) + [str(image), str(tree)]
    subprocess.run(argv, check=True, capture_output=True)
    return image


@contextlib.contextmanager
def mounted_image(image: Path, at: Path):
    at.mkdir()
    subprocess.run(["mount", "-o", "ro,loop", str(image), str(at)], check=True)
    try:
        yield at
    finally:
        subprocess.run(["umount", str(at)], capture_output=True)


@pytest.fixture(scope="module")
def rich_image(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("rich")
    return mkfs_erofs(rich_tree(base / "tree"), base / "rich.erofs")


# ---- recstrap: the round trip ----

@cheat_aware(protects="the installed system is exactly the base image: owners, modes, setuid, hardlinks, "
             "symlinks, xattrs, capabilities, ACLs, ns timestamps, sparse files, device nodes",
             cheats=["comparing only names or sizes", "skipping xattrs or hardlink groups in the comparison"],
             consequence="ping without its capability, sudo without setuid, a broken or bloated install")
@pytest.mark.parametrize("compression", ["lz4hc", None])
def test_round_trip_keeps_everything(tmp_path, cleanup_mounts, compression):
    image = mkfs_erofs(rich_tree(tmp_path / "tree"), tmp_path / "img.erofs", compression)
    with loop_fs(tmp_path, "target", 256, ["mkfs.ext4", "-q", "-F"]) as target, \
            mounted_image(image, tmp_path / "source") as source:
        proc = tool("recstrap", target, "--rootfs", image)
        assert proc.returncode == 0, proc.stderr
        assert "recfstab" in proc.stdout and recstrap.BOOTLOADER_COMMAND in proc.stdout
        want, want_links = manifest(source)
        got, got_links = manifest(target)
        assert got == want
        assert got_links == want_links == [["shared/tool-third", "usr/bin/tool", "usr/bin/tool-hardlink"]]
        # and what the user built is really there (not only equal to what the image shows)
        assert os.getxattr(target / "usr/bin/ping", "security.capability") == CAP_NET_RAW
        assert "cap_net_raw=ep" in subprocess.run(["getcap", target / "usr/bin/ping"], capture_output=True,
                                                  text=True).stdout
        acl = subprocess.run(["getfacl", "-cp", target / "etc/acl-dir"], capture_output=True, text=True).stdout
        assert "user:1234:rwx" in acl and "default:user:1234:r-x" in acl
        assert stat.S_IMODE(os.lstat(target / "usr/bin/su").st_mode) == 0o4755
        assert os.lstat(target / "usr/bin/su").st_mtime_ns == 1_600_000_000_987_654_321
        assert os.lstat(target / "dev/null").st_rdev == os.makedev(1, 3)
        assert stat.S_ISFIFO(os.lstat(target / "dev/fifo").st_mode)
        sparse = os.lstat(target / "sparse.img")
        assert sparse.st_size == 64 << 20 and sparse.st_blocks * 512 <= 64 << 10     # holes, not 64 MiB
        assert os.lstat(target / "zeros").st_blocks == 0
        assert not (target / recstrap.MARKER).exists()
        assert mounted_under(target) == [str(target)]
    assert not [m for m in mountinfo.read() if recstrap.MOUNT_PREFIX in m.target]


@pytest.mark.slow
def test_sample_image_installs_with_root_locked_and_no_identity(sample_iso, sample_build, tmp_path, cleanup_mounts):
    image = sample_build.workdir / "filesystem.erofs"
    with loop_fs(tmp_path, "target", 2048, ["mkfs.ext4", "-q", "-F"]) as target, \
            mounted_image(image, tmp_path / "source") as source:
        proc = tool("recstrap", target, "--rootfs", image)
        assert proc.returncode == 0, proc.stderr
        assert manifest(target) == manifest(source)
        shadow_root = next(line for line in (target / "etc/shadow").read_text().splitlines() if line.startswith("root:"))
        assert shadow_root.split(":")[1][:1] in ("!", "*")
        assert not list((target / "etc").glob("ssh/ssh_host_*"))
        machine_id = target / "etc/machine-id"
        assert not machine_id.exists() or machine_id.read_text() == ""


# ---- recstrap: bad input, each refused with its code and nothing written ----

@cheat_aware(protects="recstrap never writes into the running system's own directories",
             cheats=["comparing path strings without resolving symlinks", "letting --force bypass the check"],
             consequence="`recstrap --force /usr` overwrites the live system, or the host it runs on")
@pytest.mark.parametrize("target", ["/", "/usr", "/bin", "/etc/"])
def test_system_paths_refused_even_with_force(rich_image, target):
    before = listing(Path(target)) if target == "/etc/" else None
    for extra in ([], ["--force"]):
        proc = tool("recstrap", target, "--rootfs", rich_image, *extra)
        assert proc.returncode == recstrap.EXIT_SYSTEM_PATH
        one_error_line(proc, "recstrap", "system path")
    assert not Path("/", recstrap.MARKER).exists() and not Path("/usr", recstrap.MARKER).exists()
    if before is not None:
        assert listing(Path(target)) == before


def test_bind_mount_of_root_is_still_root(tmp_path, rich_image, cleanup_mounts):
    (tmp_path / "alias").mkdir()
    subprocess.run(["mount", "--bind", "/", tmp_path / "alias"], check=True)
    proc = tool("recstrap", tmp_path / "alias", "--rootfs", rich_image, "--force")
    assert proc.returncode == recstrap.EXIT_SYSTEM_PATH
    one_error_line(proc, "recstrap", "system path")


@contextlib.contextmanager
def read_only_bind(source: str, at: Path):
    """`source` bound at `at` read-only: a tool that wrongly writes there fails instead of
    writing into the host."""
    at.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", source, at], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", at], check=True)
        yield at
    finally:
        subprocess.run(["umount", "-l", at], capture_output=True)


@cheat_aware(protects="recstrap never writes into the host through a bind mount of a system path under the "
             "target, nor into a directory inside a system path",
             cheats=["comparing the target's path with a list of names", "checking only the target itself, "
                     "not the mounts below it", "letting --check skip the check"],
             consequence="after a killed `recchroot --no-unshare`, `recstrap --force /mnt` overwrites the "
             "live system's /usr and /dev")
def test_target_holding_host_binds_or_inside_system_path_refused(tmp_path, rich_image, cleanup_mounts):
    with loop_fs(tmp_path, "target", 256, ["mkfs.ext4", "-q", "-F"]) as target:
        with read_only_bind("/usr", target / "usr"), read_only_bind("/dev", target / "dev"):
            for extra in (["--check", "--force"], ["--force"], ["--check"]):
                proc = tool("recstrap", target, "--rootfs", rich_image, *extra)
                assert proc.returncode == recstrap.EXIT_SYSTEM_PATH, (extra, proc.returncode, proc.stderr)
                one_error_line(proc, "recstrap", "/usr", "system path")
                assert "umount" in proc.stderr
            assert not (target / recstrap.MARKER).exists()
    for extra in (["--check", "--force"], ["--check"]):                 # never without --check on old code
        proc = tool("recstrap", "/usr/share", "--rootfs", rich_image, *extra)
        assert proc.returncode == recstrap.EXIT_SYSTEM_PATH, (extra, proc.returncode, proc.stderr)
        one_error_line(proc, "recstrap", "system path")
    with read_only_bind("/usr/share", tmp_path / "alias") as alias:   # the same directory by another name
        proc = tool("recstrap", alias, "--rootfs", rich_image, "--force")
        assert proc.returncode == recstrap.EXIT_SYSTEM_PATH, (proc.returncode, proc.stderr)
        one_error_line(proc, "recstrap", "system path")


@cheat_aware(protects="`recstrap --force` never follows a planted marker symlink out of the target",
             cheats=["checking the marker only before the copy, then opening it by name"],
             consequence="a file anywhere on the host (such as /etc/shadow) is overwritten by the marker text")
def test_force_does_not_follow_marker_symlink(tmp_path, rich_image):
    victim = tmp_path / "outside/victim"
    victim.parent.mkdir()
    victim.write_text("precious")
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(victim, target / recstrap.MARKER)
    proc = tool("recstrap", target, "--rootfs", rich_image, "--force", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious"
    assert not os.path.lexists(target / recstrap.MARKER)
    assert (target / "etc").is_dir()


def refused(target: Path, code: int, *args, fragment: str) -> None:
    before = listing(target) if target.is_dir() else None
    proc = tool("recstrap", target, *args)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    one_error_line(proc, "recstrap", fragment)
    if before is not None:
        assert listing(target) == before
    assert not [m for m in mountinfo.read() if recstrap.MOUNT_PREFIX in m.target]


def test_not_a_mount_point(tmp_path, rich_image):
    (tmp_path / "plain").mkdir()
    refused(tmp_path / "plain", recstrap.EXIT_NOT_MOUNTPOINT, "--rootfs", rich_image, fragment="not a mount point")


def test_missing_and_file_targets(tmp_path, rich_image):
    refused(tmp_path / "nope", recstrap.EXIT_NOT_DIR, "--rootfs", rich_image, fragment="does not exist")
    (tmp_path / "file").write_text("x")
    refused(tmp_path / "file", recstrap.EXIT_NOT_DIR, "--rootfs", rich_image, fragment="not a directory")


def test_non_empty_target(tmp_path, rich_image, cleanup_mounts):
    with loop_fs(tmp_path, "target", 32, ["mkfs.ext4", "-q", "-F"]) as target:
        (target / "precious").write_text("user data")
        refused(target, recstrap.EXIT_NOT_EMPTY, "--rootfs", rich_image, fragment="not empty")


def test_empty_nested_mount_points_are_allowed(tmp_path, rich_image, cleanup_mounts):
    """The guide mounts the ESP at /mnt/boot before recstrap, as Arch's does before pacstrap."""
    with loop_fs(tmp_path, "target", 256, ["mkfs.ext4", "-q", "-F"]) as target:
        with loop_fs(tmp_path, "esp", 32, ["mkfs.ext4", "-q", "-F"], at=target / "boot") as esp:
            proc = tool("recstrap", target, "--rootfs", rich_image, "--check")
            assert proc.returncode == 0, proc.stderr
            (esp / "old-kernel").write_text("left from another system")
            refused(target, recstrap.EXIT_NOT_EMPTY, "--rootfs", rich_image, fragment="boot/old-kernel")


def test_read_only_target(tmp_path, rich_image, cleanup_mounts):
    with loop_fs(tmp_path, "target", 32, ["mkfs.ext4", "-q", "-F"]) as target:
        subprocess.run(["mount", "-o", "remount,ro", target], check=True)
        refused(target, recstrap.EXIT_NOT_WRITABLE, "--rootfs", rich_image, fragment="not writable")


def test_bad_images(tmp_path, rich_image, cleanup_mounts):
    with loop_fs(tmp_path, "target", 32, ["mkfs.ext4", "-q", "-F"]) as target:
        refused(target, recstrap.EXIT_NO_IMAGE, "--rootfs", tmp_path / "missing.erofs", fragment="not found")
        refused(target, recstrap.EXIT_NOT_FILE, "--rootfs", tmp_path, fragment="not a regular file")
        junk = tmp_path / "junk.erofs"
        junk.write_bytes(os.urandom(1 << 20))
        refused(target, recstrap.EXIT_BAD_IMAGE, "--rootfs", junk, fragment="magic")
        data = rich_image.read_bytes()
        truncated = tmp_path / "truncated.erofs"
        truncated.write_bytes(data[:len(data) // 2])
        refused(target, recstrap.EXIT_BAD_IMAGE, "--rootfs", truncated, fragment="truncated")
        no_default = tool("recstrap", target)                       # no live medium on this host
        assert no_default.returncode == recstrap.EXIT_NO_IMAGE
        one_error_line(no_default, "recstrap", "--rootfs")


def test_filesystem_too_small(tmp_path, cleanup_mounts):
    tree = tmp_path / "big"
    (tree / "data").mkdir(parents=True)
    for i in range(3):
        (tree / f"data/blob{i}").write_bytes(os.urandom(8 << 20))
    image = mkfs_erofs(tree, tmp_path / "big.erofs", None)
    with loop_fs(tmp_path, "small", 24, ["mkfs.ext4", "-q", "-F"]) as target:
        refused(target, recstrap.EXIT_NO_SPACE, "--rootfs", image, fragment="not enough space")


def test_not_root(tmp_path, rich_image):
    """As nobody, with a copy of the package and an interpreter that nobody can reach (the checkout
    and the venv may sit in directories only root may enter)."""
    public = Path(tempfile.mkdtemp(prefix="recstrap-not-root-"))
    try:
        public.chmod(0o755)
        shutil.copytree(Path(recstrap.__file__).parents[1], public / "levitate",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(rich_image, public / "img.erofs")
        (public / "t").mkdir()
        python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-m",
                               "levitate.install.recstrap", str(public / "t"), "--rootfs", str(public / "img.erofs")],
                              capture_output=True, text=True, cwd=public, env=dict(os.environ, PYTHONPATH=str(public)))
    finally:
        shutil.rmtree(public)
    assert proc.returncode == recstrap.EXIT_NOT_ROOT, proc.stderr
    one_error_line(proc, "recstrap", "root")


def test_check_writes_nothing(tmp_path, rich_image, cleanup_mounts):
    with loop_fs(tmp_path, "target", 256, ["mkfs.ext4", "-q", "-F"]) as target:
        before = listing(target)
        proc = tool("recstrap", target, "--rootfs", rich_image, "--check")
        assert proc.returncode == 0, proc.stderr
        assert "every check passed" in proc.stdout
        assert listing(target) == before


# ---- recstrap: interrupted, then --force ----

def start_and_interrupt(target: Path, image: Path, sig: int) -> subprocess.Popen:
    """Start recstrap, wait until it is copying (its marker and some files are there), signal it."""
    proc = subprocess.Popen([sys.executable, "-m", "levitate.install.recstrap", str(target), "--rootfs", str(image)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ((target / recstrap.MARKER).exists() and (target / "data").exists()
               and any((target / "data").iterdir())):
        assert proc.poll() is None, f"recstrap ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(sig)
    proc.stderr_text = proc.communicate(timeout=60)[1]
    return proc


@cheat_aware(protects="an interrupted recstrap is recognisable and `recstrap --force` completes it exactly",
             cheats=["interrupting after the copy finished", "comparing only file names after --force"],
             consequence="a half-copied system that boots into odd failures, or an install that cannot be redone")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_then_force_completes(tmp_path, cleanup_mounts, sig):
    tree = rich_tree(tmp_path / "tree")
    (tree / "data").mkdir()
    for i in range(1200):                      # 150 MiB: still copying when the signal comes, even unloaded
        (tree / f"data/file{i:04}").write_bytes(os.urandom(128 << 10))
    image = mkfs_erofs(tree, tmp_path / "img.erofs", None)
    with loop_fs(tmp_path, "target", 768, ["mkfs.ext4", "-q", "-F"]) as target, \
            mounted_image(image, tmp_path / "source") as source:
        proc = start_and_interrupt(target, image, sig)
        if sig == signal.SIGINT:
            assert proc.returncode == 130, proc.stderr_text
            assert "interrupted" in proc.stderr_text and "Traceback" not in proc.stderr_text
            assert not [m for m in mountinfo.read() if recstrap.MOUNT_PREFIX in m.target]
        assert (target / recstrap.MARKER).exists()
        assert manifest(target)[0] != manifest(source)[0]
        again = tool("recstrap", target, "--rootfs", image)
        assert again.returncode == recstrap.EXIT_NOT_EMPTY
        one_error_line(again, "recstrap", "interrupted")
        assert "--force" in again.stderr
        forced = tool("recstrap", target, "--rootfs", image, "--force")
        assert forced.returncode == 0, forced.stderr
        assert not (target / recstrap.MARKER).exists()
        assert manifest(target) == manifest(source)
    assert not [m for m in mountinfo.read() if recstrap.MOUNT_PREFIX in m.target]


# ---- recfstab ----

def blkid(device: str, tag: str) -> str:
    return subprocess.run(["blkid", "-s", tag, "-o", "value", device], capture_output=True, text=True).stdout.strip()


def source_of(target: Path) -> str:
    return next(m.source for m in reversed(mountinfo.read()) if m.target == os.path.realpath(target))


def fstab_lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cheat_aware(protects="recfstab writes an fstab the installed system boots with: the right UUIDs, types, "
             "pass numbers and the swap",
             cheats=["printing device paths such as /dev/loop0", "checking the output against itself"],
             consequence="the installed system drops to an emergency shell or mounts the wrong disk")
def test_recfstab_root_boot_and_swap(tmp_path, cleanup_mounts):
    boot_fs = "vfat" if "vfat" in Path("/proc/filesystems").read_text().split() else "ext2"
    mkfs_boot = ["mkfs.vfat", "-n", "ESP"] if boot_fs == "vfat" else ["mkfs.ext2", "-q", "-F", "-L", "ESP"]
    with loop_fs(tmp_path, "root", 64, ["mkfs.ext4", "-q", "-F", "-L", "root"]) as root, \
            loop_fs(tmp_path, "boot", 40, mkfs_boot, at=tmp_path / "root/boot") as boot:
        swapfile = root / "swap file"
        with open(swapfile, "wb") as f:
            f.write(bytes(16 << 20))
        swapfile.chmod(0o600)
        subprocess.run(["mkswap", swapfile], check=True, capture_output=True)
        subprocess.run(["swapon", swapfile], check=True)
        try:
            proc = tool("recfstab", root)
            by_label = tool("recfstab", root, "-L")
            only_boot = tool("recfstab", root, "-f", boot)
        finally:
            subprocess.run(["swapoff", swapfile], check=True)
        assert proc.returncode == 0, proc.stderr
        lines = fstab_lines(proc.stdout)
        root_uuid, boot_uuid = blkid(source_of(root), "UUID"), blkid(source_of(boot), "UUID")
        assert root_uuid and boot_uuid
        assert lines == [[f"UUID={root_uuid}", "/", "ext4", "defaults", "0", "1"],
                         [f"UUID={boot_uuid}", "/boot", boot_fs, lines[1][3], "0", "2"],
                         ["/swap\\040file", "none", "swap", "defaults", "0", "0"]]
        assert "rw" not in lines[1][3].split(",") and "relatime" not in lines[1][3].split(",")
        assert f"# {source_of(root)}" in proc.stdout                     # a comment naming each device
        assert fstab_lines(by_label.stdout)[0][0] == "LABEL=root"
        assert [line[1] for line in fstab_lines(only_boot.stdout)] == ["/boot"]


@cheat_aware(protects="recfstab -L writes labels with space, tab and backslash so that mount finds them",
             cheats=["comparing the output with the escaping it produces", "testing only plain labels"],
             consequence="the installed system does not mount its root or /boot at boot")
def test_recfstab_labels_with_blanks_and_backslash_round_trip(tmp_path, cleanup_mounts):
    label = "my r\\o\tt"                   # space, backslash, tab: 10 bytes, within ext4's 16
    with loop_fs(tmp_path, "root", 32, ["mkfs.ext4", "-q", "-F", "-L", label]) as root:
        device = source_of(root)
        proc = tool("recfstab", root, "-L")
        assert proc.returncode == 0, proc.stderr
        fstab = tmp_path / "fstab"
        fstab.write_text(proc.stdout)
        spec = subprocess.run(["findmnt", "--fstab", "--tab-file", fstab, "-J", "-o", "SOURCE", "/"],
                              capture_output=True, text=True)
        source = json.loads(spec.stdout)["filesystems"][0]["source"]     # JSON: the only lossless output
        assert source == f"LABEL={label}", (proc.stdout, source)
        fresh = {**os.environ, "BLKID_FILE": str(tmp_path / "blkid.tab")}   # not a cache of earlier loops
        found = subprocess.run(["findfs", source], capture_output=True, text=True, env=fresh)
        assert found.stdout.strip() == device, (found.stdout, found.stderr)
        evaluated = subprocess.run(["findmnt", "--fstab", "--tab-file", fstab, "--evaluate", "-n", "-o",
                                    "SOURCE", "/"], capture_output=True, text=True, env=fresh)
        assert evaluated.stdout.strip() == device, (proc.stdout, evaluated.stdout, evaluated.stderr)


def test_recfstab_nothing_mounted(tmp_path):
    proc = tool("recfstab", tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    one_error_line(proc, "recfstab", "nothing is mounted")
    missing = tool("recfstab", tmp_path / "missing")
    assert missing.returncode == 1
    one_error_line(missing, "recfstab", "not a directory")


# ---- recchroot ----

@pytest.fixture
def mini_root(tmp_path) -> Path:
    """A root with a static busybox: enough to run commands in the chroot."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    (root / "bin/busybox").write_bytes(busybox.read_bytes())
    (root / "bin/busybox").chmod(0o755)
    for applet in ("sh", "cat", "sleep", "touch", "ls", "ping"):
        os.symlink("busybox", root / f"bin/{applet}")
    return root


def start_recchroot(root: Path, *options: str) -> subprocess.Popen:
    """recchroot running a shell in `root` that waits, once it has touched /ready inside."""
    proc = subprocess.Popen([sys.executable, "-m", "levitate.install.recchroot", *options, str(root),
                             "/bin/sh", "-c", "touch /ready; exec sleep 60"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (root / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def test_recchroot_refuses_missing_and_slash(tmp_path):
    for root, fragment in ((tmp_path / "missing", "does not exist"), ("/", "running system's root")):
        proc = tool("recchroot", root, "true")
        assert proc.returncode == 1
        one_error_line(proc, "recchroot", fragment)
    (tmp_path / "file").write_text("")
    one_error_line(tool("recchroot", tmp_path / "file", "true"), "recchroot", "not a directory")


@pytest.mark.parametrize("mode", [[], ["--no-unshare"]])
def test_recchroot_runs_with_api_filesystems_and_unmounts(mini_root, mode):
    script = "cat /proc/self/mountinfo > /inside; cat /etc/resolv.conf > /resolv; exit 7"
    proc = tool("recchroot", *mode, mini_root, "/bin/sh", "-c", script)
    assert proc.returncode == 7, proc.stderr
    inside = [m.target for m in mountinfo.parse((mini_root / "inside").read_text())]
    for path in ("/proc", "/sys", "/dev", "/dev/pts", "/run"):
        assert path in inside, inside
    if Path("/etc/resolv.conf").exists():
        assert (mini_root / "resolv").read_text() == Path("/etc/resolv.conf").read_text()
    assert mounted_under(mini_root) == []
    assert not (mini_root / "etc/resolv.conf").exists()                  # the file made to bind onto is gone


@cheat_aware(protects="recchroot unmounts everything on failure and on Ctrl-C",
             cheats=["checking only the private namespace, where the host never sees the mounts anyway"],
             consequence="/mnt cannot be unmounted before reboot; the new system's filesystems stay dirty")
@pytest.mark.parametrize("mode", [[], ["--no-unshare"]])
def test_recchroot_ctrl_c_and_failure_unmount(mini_root, mode):
    failing = tool("recchroot", *mode, mini_root, "/bin/does-not-exist")
    assert failing.returncode == 127
    one_error_line(failing, "recchroot", "not found")
    assert mounted_under(mini_root) == []
    proc = start_recchroot(mini_root, *mode)
    if mode:                                  # the shared namespace: the host sees the mounts while it runs
        assert str(mini_root / "proc") in mounted_under(mini_root)
    else:
        assert mounted_under(mini_root) == []
        namespace = Path(f"/proc/{proc.pid}/mountinfo").read_text()
        assert f"{mini_root}/proc" in namespace
    os.killpg(proc.pid, signal.SIGINT)                                  # what Ctrl-C on the terminal does
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr
    assert mounted_under(mini_root) == []


@cheat_aware(protects="an install tool missing a host tool says so in one line, with a hint for this system",
             cheats=["one missing-tool hint for every program (leviso's `leviso preflight`)"],
             consequence="on an installed system the user gets a traceback, or is sent to `leviso preflight`, "
                         "which is not there")
@pytest.mark.parametrize("mode", [[], ["--no-unshare"]])
def test_recchroot_without_mount_names_it(mini_root, mode):
    proc = tool("recchroot", *mode, mini_root, "/bin/sh", "-c", "true", env=dict(os.environ, PATH="/nonexistent"))
    assert proc.returncode == 5
    line = one_error_line(proc, "recchroot", "mount: command not found", "install the package that provides it")
    assert "leviso" not in line
    assert mounted_under(mini_root) == []


def mounts_made_outside(table: str, root: Path, host: Path) -> list[str]:
    """Mount targets under `host` but not under `root`."""
    return [m.target for m in mountinfo.parse(table)
            if mounts.under(m.target, str(host)) and not mounts.under(m.target, str(root))]


@cheat_aware(protects="recchroot mounts and creates only inside ROOT, whatever links ROOT holds",
             cheats=["following ROOT's links on the host", "checking only relative links"],
             consequence="a hostile or broken new root gets the host's /dev or resolv.conf mounted over a "
             "host directory or file, or files created on the host")
@pytest.mark.parametrize("mode", [[], ["--no-unshare"]])
@pytest.mark.parametrize("link", ["relative", "absolute"])
def test_recchroot_bind_targets_stay_inside_root(tmp_path, mini_root, mode, link):
    hostdir, hostdev = tmp_path / "hostdir", tmp_path / "hostdev"
    hostdir.mkdir()
    hostdev.mkdir()
    (hostdir / "resolv.conf").write_text("victim\n")
    if link == "relative":                       # ROOT/etc/../../x is tmp_path/x on the host
        os.symlink("../../x/resolv.conf", mini_root / "etc/resolv.conf")
    else:
        os.symlink("/outside/resolv.conf", mini_root / "etc/resolv.conf")
        os.symlink(hostdir, mini_root / "outside")
    os.symlink(hostdev, mini_root / "dev")
    script = "cat /etc/resolv.conf > /resolv; ls /dev/null > /devnull; touch /ready; exec sleep 60"
    proc = subprocess.Popen([sys.executable, "-m", "levitate.install.recchroot", *mode, str(mini_root),
                             "/bin/sh", "-c", script], start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (mini_root / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    table = Path(f"/proc/{proc.pid}/mountinfo").read_text()         # recchroot's own view: host paths
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    assert f"{mini_root}/proc" in table
    assert mounts_made_outside(table, mini_root, tmp_path) == []
    assert (mini_root / "resolv").read_text() == Path("/etc/resolv.conf").read_text()
    assert (mini_root / "devnull").read_text() == "/dev/null\n"
    assert not (tmp_path / "x").exists()
    assert (hostdir / "resolv.conf").read_text() == "victim\n" and os.listdir(hostdir) == ["resolv.conf"]
    assert os.listdir(hostdev) == []
    assert mounted_under(tmp_path) == []


@cheat_aware(protects="the mounts a SIGKILLed `recchroot --no-unshare` left are undone by the next recchroot",
             cheats=["unmounting by name whatever is under ROOT, including the user's own mounts"],
             consequence="the host's /dev, /proc and /run stay bound under /mnt; `umount /mnt` fails")
def test_recchroot_cleans_up_after_a_killed_no_unshare(mini_root, cleanup_mounts):
    proc = start_recchroot(mini_root, "--no-unshare")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert str(mini_root / "proc") in mounted_under(mini_root)
    again = tool("recchroot", mini_root, "/bin/sh", "-c", "true")
    assert again.returncode == 0, again.stderr
    assert "left by a killed recchroot" in again.stderr
    assert mounted_under(mini_root) == []
