"""The image's own kernel-install, run as Rocky's kernel-core runs it (%posttrans: `kernel-install add
KVER /lib/modules/KVER/vmlinuz`, %preun: `kernel-install remove KVER /lib/modules/KVER/vmlinuz`),
in a chroot of the sample's base image (copy-on-write: an overlay over the mounted image) with a
real FAT filesystem at /boot: LevitateOS's plugin writes the busybox initramfs and the entry, dracut
and systemd's own entry plugins write nothing, a second kernel keeps the first one's entry, remove
takes only its own kernel's files, and a failure is one line and a non-zero exit."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from levitate.rpm.cpio import CpioReader
from tests.cheat_aware import cheat_aware

pytestmark = pytest.mark.slow

PLUGIN = "90-levitateos.install"
ROOT_UUID = "0c4a5e7e-5d1b-4d3e-9a54-0123456789ab"
TOOLS = ("mkfs.vfat", "mkfs.ext2", "zstd")
# The ESP is FAT; a host kernel without vfat (some CI VMs) gets ext2 for it: the plugin needs a
# mounted filesystem there, of any type, as recboot --esp does.
VFAT = "vfat" in Path("/proc/filesystems").read_text().split()

missing_tools = [t for t in TOOLS if shutil.which(t) is None]
if missing_tools:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"missing host tools: {', '.join(missing_tools)}")]


@contextlib.contextmanager
def mounted(argv: list[str], target: Path):
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([*argv, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def system(sample_iso, sample_build, tmp_path):
    """An installed-looking root: the base image under a writable overlay, an fstab naming the
    root by UUID, a FAT filesystem at /boot with an (empty) loader directory, as recboot leaves it."""
    image = sample_build.workdir / "filesystem.erofs"
    esp_image = tmp_path / "esp.img"
    with open(esp_image, "wb") as f:
        f.truncate(256 << 20)
    mkfs = ["mkfs.vfat", "-F", "32"] if VFAT else ["mkfs.ext2", "-q", "-F"]
    subprocess.run([*mkfs, str(esp_image)], check=True, capture_output=True)
    for d in ("upper", "work"):
        (tmp_path / d).mkdir()
    with mounted(["mount", "-o", "ro,loop", str(image)], tmp_path / "lower") as lower, \
            mounted(["mount", "-t", "overlay", "overlay", "-o",
                     f"lowerdir={lower},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}"],
                    tmp_path / "root") as root, \
            mounted(["mount", "-o", "loop", str(esp_image)], root / "boot"):
        (root / "etc/fstab").write_text(f"UUID={ROOT_UUID} / ext4 defaults 0 1\n/boot /boot {'vfat' if VFAT else 'ext2'} defaults 0 2\n")
        (root / "boot/loader/entries").mkdir(parents=True)
        yield root


def kernel_install(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`kernel-install ARGS` inside `root`, through recchroot (/proc, /sys, /dev, /run)."""
    return subprocess.run([sys.executable, "-m", "levitate.install.recchroot", str(root), "kernel-install", *args],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def kernel_version(root: Path) -> str:
    (kver,) = [d.name for d in (root / "usr/lib/modules").iterdir() if (d / "vmlinuz").is_file()]
    return kver


def files_of(esp: Path) -> dict[str, tuple[int, int]]:
    """Every file on the ESP: size and mtime (what "untouched" compares)."""
    return {str(p.relative_to(esp)): (p.stat().st_size, p.stat().st_mtime_ns) for p in esp.rglob("*") if p.is_file()}


def main_archive(initrd: bytes) -> dict[str, bytes]:
    """The members of the zstd archive after the early (uncompressed) microcode cpio."""
    early = CpioReader(io.BytesIO(initrd), what="early cpio")
    for _ in early:
        pass
    rest = initrd[early.offset:].lstrip(b"\0")
    assert rest[:4] == b"\x28\xb5\x2f\xfd", "the main archive is not zstd"
    archive = subprocess.run(["zstd", "-d", "-q", "-c"], input=rest, capture_output=True, check=True).stdout
    reader = CpioReader(io.BytesIO(archive), what="initramfs")
    return {e.name: reader.read() for e in reader}


def plugin_errors(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith(f"{PLUGIN}: ")]


@cheat_aware(protects="a kernel installed by dnf (kernel-core's kernel-install add) boots with LevitateOS's "
                      "initramfs and entry, keeps the previous kernel's entry, and its removal takes only its files",
             cheats=["call the plugin directly instead of through the image's kernel-install",
                     "check only that an entry exists, not which initramfs it names",
                     "let add rewrite every kernel's entry (as recboot does)"],
             consequence="after `dnf upgrade` the new kernel boots dracut's initramfs or no entry at all, "
                         "the fallback kernel vanishes from the menu, or removing an old kernel breaks the new one")
def test_kernel_install_add_and_remove(system):
    root, esp = system, system / "boot"
    kver = kernel_version(root)
    started = time.monotonic()
    proc = kernel_install(root, "add", kver, f"/lib/modules/{kver}/vmlinuz")
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert plugin_errors(proc) == [] and PLUGIN not in proc.stdout, proc.stdout + proc.stderr   # quiet

    entry = (esp / f"loader/entries/levitateos-{kver}.conf").read_text()
    assert f"linux   /levitateos/{kver}/linux\n" in entry and f"initrd  /levitateos/{kver}/initramfs.img\n" in entry
    assert f"options root=UUID={ROOT_UUID} ro selinux=0" in entry
    assert (esp / f"levitateos/{kver}/linux").read_bytes() == (root / f"usr/lib/modules/{kver}/vmlinuz").read_bytes()
    initrd = (esp / f"levitateos/{kver}/initramfs.img").read_bytes()
    members = main_archive(initrd)
    assert b"LEVITATE-INIT" in members["init"] and "usr/bin/busybox" in members
    assert f"usr/lib/modules/{kver}/modules.dep" in members          # built for this kernel
    assert not any(name.startswith(("usr/lib/dracut", "usr/lib/systemd")) for name in members)
    # only LevitateOS's files: no dracut initrd (the sample's dracut plugin would leave one), no
    # second entry from 90-loaderentry, no UKI from 90-uki-copy, no $BOOT/ENTRY-TOKEN directory
    assert set(files_of(esp)) == {f"loader/entries/levitateos-{kver}.conf", "loader/loader.conf",
                                  f"levitateos/{kver}/initramfs.img", f"levitateos/{kver}/linux"}
    assert not list(esp.glob("*/*/initrd")) and not (esp / "EFI").exists()
    print(f"\nkernel-install add {kver}: {seconds:.1f} s, initramfs {len(initrd) / 2**20:.1f} MiB")
    assert len(initrd) < 40 << 20

    # a second kernel: its own entry, the first one's entry and files untouched (the fallback)
    other = f"{kver.split('-')[0]}-99.levitate-test"
    shutil.copytree(root / f"usr/lib/modules/{kver}", root / f"usr/lib/modules/{other}", symlinks=True)
    before = files_of(esp)
    proc = kernel_install(root, "-v", "add", other, f"/lib/modules/{other}/vmlinuz")
    assert proc.returncode == 0, proc.stderr
    assert f"{PLUGIN}: kernel {other}:" in proc.stdout, proc.stdout    # -v (KERNEL_INSTALL_VERBOSE=1) says what it did
    after = files_of(esp)
    assert {k: v for k, v in after.items() if other not in k} == before
    assert {f"loader/entries/levitateos-{other}.conf", f"levitateos/{other}/initramfs.img",
            f"levitateos/{other}/linux"} == set(after) - set(before)
    # the same entry, ours (90-loaderentry.install would write one of the same name, without initrd)
    assert (esp / f"loader/entries/levitateos-{other}.conf").read_text() == entry.replace(kver, other)
    assert f"usr/lib/modules/{other}/modules.dep" in main_archive(
        (esp / f"levitateos/{other}/initramfs.img").read_bytes())

    # removing the first kernel as kernel-core's %preun does: only its entry and files go
    proc = kernel_install(root, "remove", kver, f"/lib/modules/{kver}/vmlinuz")
    assert proc.returncode == 0, proc.stderr
    assert plugin_errors(proc) == [], proc.stderr
    assert files_of(esp) == {k: v for k, v in after.items() if kver not in k}
    assert not (esp / "levitateos" / kver).exists()


@cheat_aware(protects="a kernel-install failure is one line from the plugin and a non-zero exit, nothing written",
             cheats=["exit 0 so the transaction goes on", "print a traceback", "write the entry before the checks"],
             consequence="dnf reports success while the new kernel has no entry, or a half-made entry that "
                         "does not boot is the default")
def test_failures_are_one_line_and_write_nothing(system):
    root, esp = system, system / "boot"
    kver = kernel_version(root)
    before = files_of(esp)

    proc = kernel_install(root, "add", "6.99.0-1.missing", f"/lib/modules/{kver}/vmlinuz")
    assert proc.returncode != 0
    (line,) = plugin_errors(proc)
    assert line.startswith(f"{PLUGIN}: error: kernel 6.99.0-1.missing has no modules in "
                           "/usr/lib/modules/6.99.0-1.missing") and "(hint: " in line, line

    # no ESP mounted where kernel-install looks: its fallback is a plain directory, refused
    (root / "efi").mkdir()
    proc = kernel_install(root, "add", kver, f"/lib/modules/{kver}/vmlinuz", env={"BOOT_ROOT": "/efi"})
    assert proc.returncode != 0
    (line,) = plugin_errors(proc)
    assert "/efi is not a mounted EFI system partition" in line, line
    assert list((root / "efi").iterdir()) == []
    assert files_of(esp) == before
