"""The VM plumbing every boot test relies on, proven end to end without the project's ISO: the
sample kernel boots (-kernel/-initrd) a tiny busybox initramfs built here, whose /init prints the
live shell marker and opens a shell on the serial console. Then commands run over that console
with their output and exit status, failures are detected fast (a kernel panic, the init's error
marker, a silent console) instead of waiting out a timeout, QEMU is always stopped, and OVMF
boots with its own copy of the variable store. Each TCG boot takes ~10 s here.

The kernel and busybox come from the session's `sample_build` (one `leviso extract` of the sample
repository); LEVITATE_TEST_ROOTFS=DIR points at an already extracted tree instead (read only).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from levitate.leviso import qemu
from levitate.leviso.qemu import SHELL_MARKER, VM, VmError
from tests.cheat_aware import cheat_aware

pytestmark = pytest.mark.slow

if shutil.which(qemu.QEMU) is None or shutil.which("cpio") is None:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason="needs qemu-system-x86_64 and cpio")]

INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
echo {SHELL_MARKER}
exec setsid cttyhack sh
"""
CMDLINE = "console=ttyS0,115200"


@dataclass(frozen=True)
class Boot:
    kernel: Path
    initrd: Path


@pytest.fixture(scope="module")
def boot_files(request, tmp_path_factory) -> Boot:
    override = os.environ.get("LEVITATE_TEST_ROOTFS")
    rootfs = Path(override) if override else request.getfixturevalue("sample_build").rootfs
    kernels = sorted((rootfs / "usr/lib/modules").glob("*/vmlinuz"))
    assert kernels, f"no kernel in {rootfs}"
    busybox = rootfs / "usr/bin/busybox"
    assert busybox.is_file(), f"no busybox in {rootfs}"

    base = tmp_path_factory.mktemp("plumbing")
    tree = base / "initramfs"
    for d in ("bin", "proc", "sys", "dev"):
        (tree / d).mkdir(parents=True)
    shutil.copy2(busybox, tree / "bin/busybox")
    (tree / "bin/sh").symlink_to("busybox")
    (tree / "init").write_text(INIT)
    (tree / "init").chmod(0o755)
    initrd = base / "initrd.gz"
    subprocess.run(f"find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > {initrd}", shell=True, cwd=tree,
                   check=True)
    with gzip.open(initrd) as f:
        assert f.read(6) == b"070701"                # newc
    return Boot(kernels[-1], initrd)


def _vm(boot: Boot, tmp_path: Path, name: str, **kw) -> VM:
    kw.setdefault("append", CMDLINE)
    return VM(kernel=boot.kernel, initrd=boot.initrd, memory=512, network=False,
              log_path=tmp_path / f"{name}.log", **kw)


@cheat_aware(protects="commands run over the serial console give their real output and exit status, "
                      "and boot failures are reported at once with the console's last lines",
             cheats=["parse the echo of the typed command as output", "assume status 0",
                     "only check for the marker and never look for failure patterns"],
             consequence="`leviso test` passes broken ISOs, or every broken boot waits out its full timeout")
def test_serial_console_commands_and_fast_failures(boot_files, tmp_path):
    with _vm(boot_files, tmp_path, "shell") as vm:
        vm.start()
        vm.wait_for(SHELL_MARKER, timeout=120)
        assert 0 < vm.last_match_seconds < 120

        assert vm.run("echo hi; false") == ("hi", 1)
        assert vm.run("true") == ("", 0)
        assert vm.run("printf '%s\\n' \"a'b\" 'c\\d' $((6*7)); (exit 3)") == ("a'b\nc\\d\n42", 3)
        assert vm.run("echo one\necho two >&2") == ("one\ntwo", 0)      # stderr too, multi-line
        assert vm.run("cat") == ("", 0)                                # stdin is /dev/null, no hang
        out, status = vm.run("cat /proc/1/comm; readlink /proc/1/exe")
        assert (out.splitlines(), status) == (["sh", "/bin/busybox"], 0)   # /init exec'd the shell
        with pytest.raises(VmError, match="did not finish within 2 s"):
            vm.run("sleep 30", timeout=2)
        assert vm.run("echo back") == ("back", 0)                      # Ctrl-C gave the shell back

        # a failure pattern on the console ends the wait at once (typed split so the echo differs)
        vm.sendline("echo LEVITATE-INIT:' 'ERROR: no medium found")
        started = time.monotonic()
        with pytest.raises(VmError) as err:
            vm.wait_for("NEVER-PRINTED", timeout=120)
        assert time.monotonic() - started < 15
        assert "LEVITATE-INIT: ERROR" in err.value.message
        assert "no medium found" in err.value.message                 # the log tail is in the error
        assert str(vm.log_path) in err.value.hint

        # a console that stays silent
        started = time.monotonic()
        with pytest.raises(VmError, match="no console output for"):
            vm.wait_for("NEVER-PRINTED", timeout=120, silence_timeout=3)
        assert time.monotonic() - started < 10
        process = vm.process
    assert process.poll() is not None                                 # QEMU is gone
    log = vm.log_path.read_bytes()                                     # kept for the user
    assert SHELL_MARKER.encode() in log and b"\nhi\r\n" in log


@cheat_aware(protects="a kernel panic stops the wait at once, even when the kernel then hangs",
             cheats=["rely on QEMU exiting (panic=-1, -no-reboot) instead of reading the console",
                     "wait for the full timeout"],
             consequence="each broken boot costs the whole timeout (minutes under TCG) and says nothing useful")
def test_kernel_panic_fails_fast_and_qemu_is_stopped(boot_files, tmp_path):
    # no init: the kernel panics and, without panic=N, hangs there for ever
    vm = _vm(boot_files, tmp_path, "panic", append=f"{CMDLINE} rdinit=/no-such-init")
    started = time.monotonic()
    with pytest.raises(VmError) as err, vm:
        vm.start()
        vm.wait_for(SHELL_MARKER, timeout=300, silence_timeout=300)
    assert time.monotonic() - started < 60
    assert "Kernel panic" in err.value.message
    assert "not syncing" in err.value.message
    assert vm.process.poll() is not None
    assert not vm.runtime_dir.exists()


@cheat_aware(protects="OVMF boots with a read-only CODE and the VM's own writable copy of VARS",
             cheats=["boot without firmware", "hand OVMF the system's VARS template"],
             consequence="UEFI boots are untested, or the first test run corrupts the system's OVMF template")
def test_ovmf_boot_with_a_fresh_vars_copy(boot_files, tmp_path):
    code, template = qemu.find_ovmf()
    template_bytes = template.read_bytes()
    with _vm(boot_files, tmp_path, "ovmf", firmware=True) as vm:
        vm.start()
        vm.wait_for(SHELL_MARKER, timeout=120)
        out, status = vm.run("ls /sys/firmware/efi/efivars | head -3; [ -d /sys/firmware/efi ]")
        assert status == 0, out                                       # the kernel was started by UEFI
        own = vm.vars_path.read_bytes()
        assert vm.vars_path.parent == vm.runtime_dir
    assert own != template_bytes                                      # OVMF wrote to its copy ...
    assert template.read_bytes() == template_bytes                    # ... never to the template


@cheat_aware(protects="`leviso test` reports a medium that does not boot as FAIL, quickly, with the log path",
             cheats=["report PASS when the boot never reached the shell", "wait out the timeout"],
             consequence="a broken ISO ships, or its test hangs for minutes without saying why")
def test_live_test_of_an_unbootable_medium_fails_fast(tmp_path):
    from levitate.leviso.vmtest import run_live_test

    iso = tmp_path / "blank.iso"
    iso.write_bytes(b"\0" * (1 << 20))                # no El Torito: OVMF ends at its shell
    lines: list[str] = []
    started = time.monotonic()
    report = run_live_test(iso, log_path=tmp_path / "test.log", timeout=200, memory=512, echo=lines.append)
    assert time.monotonic() - started < 60
    assert not report.passed
    assert report.boot_seconds is None
    assert "UEFI Interactive Shell" in report.error
    assert lines[-1] == f"FAIL: {iso} (cdrom); console log: {tmp_path / 'test.log'}"
    assert any(line.startswith("FAIL  boot reaches the live shell") for line in lines)
    assert iso.read_bytes() == b"\0" * (1 << 20)
