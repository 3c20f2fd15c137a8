"""QEMU plumbing without booting anything: firmware lookup, accelerator choice, the command line
of a VM, the console command protocol and the `leviso test` parsers."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from levitate.leviso import qemu, vmtest
from levitate.leviso.qemu import VM, Disk
from levitate.util.errors import LevitateError, MissingToolError
from tests.cheat_aware import cheat_aware

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64")


@pytest.fixture
def fake_ovmf(tmp_path, monkeypatch):
    """A CODE/VARS pair in tmp_path, named through the environment."""
    code, vars_ = tmp_path / "fw" / "OVMF_CODE_4M.fd", tmp_path / "fw" / "OVMF_VARS_4M.fd"
    code.parent.mkdir()
    code.write_bytes(b"code" * 1024)
    vars_.write_bytes(b"template-vars" * 100)
    monkeypatch.setenv("OVMF_CODE", str(code))
    monkeypatch.setenv("OVMF_VARS", str(vars_))
    return code, vars_


@pytest.fixture
def iso(tmp_path):
    path = tmp_path / "levitate, test.iso"            # a comma: QEMU option lists need it doubled
    path.write_bytes(b"\0" * 4096)
    return path


@pytest.fixture
def clean_kvm_cache():
    qemu.kvm_usable.cache_clear()
    yield
    qemu.kvm_usable.cache_clear()


def option_after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


# --- firmware ------------------------------------------------------------------------------------


def test_ovmf_environment_variables_win(fake_ovmf):
    code, vars_ = fake_ovmf
    assert qemu.find_ovmf(candidates=[("/nonexistent/C", "/nonexistent/V")]) == (code, vars_)


def test_ovmf_code_alone_finds_the_matching_vars_beside_it(fake_ovmf, monkeypatch):
    code, vars_ = fake_ovmf
    monkeypatch.delenv("OVMF_VARS")
    assert qemu.find_ovmf() == (code, vars_)


def test_ovmf_variable_naming_a_missing_file_is_a_clear_error(fake_ovmf, monkeypatch, tmp_path):
    monkeypatch.setenv("OVMF_CODE", str(tmp_path / "missing.fd"))
    with pytest.raises(LevitateError, match="OVMF_CODE=.*missing.fd: no such file"):
        qemu.find_ovmf()


def test_ovmf_usual_paths_in_order(tmp_path):
    pairs = []
    for name in ("debian", "fedora", "arch"):
        d = tmp_path / name
        d.mkdir()
        pairs.append((d / "CODE.fd", d / "VARS.fd"))
    env: dict[str, str] = {}
    for code, vars_ in pairs[1:]:
        code.write_bytes(b"c")
        vars_.write_bytes(b"v")
    pairs[0][0].write_bytes(b"c")                       # a CODE without its VARS is skipped
    assert qemu.find_ovmf(env, pairs) == pairs[1]
    pairs[0][1].write_bytes(b"v")
    assert qemu.find_ovmf(env, pairs) == pairs[0]


def test_missing_ovmf_names_the_install_commands():
    with pytest.raises(MissingToolError) as err:
        qemu.find_ovmf({}, [("/nonexistent/CODE.fd", "/nonexistent/VARS.fd")])
    assert "apt-get install -y ovmf" in err.value.hint
    assert "dnf install -y edk2-ovmf" in err.value.hint
    assert "pacman -S --needed edk2-ovmf" in err.value.hint


def test_default_candidates_cover_the_distributions():
    codes = [c for c, _ in qemu.OVMF_CANDIDATES]
    assert codes[0] == "/usr/share/OVMF/OVMF_CODE_4M.fd"
    assert "/usr/share/edk2/ovmf/OVMF_CODE.fd" in codes
    assert "/usr/share/edk2/x64/OVMF_CODE.4m.fd" in codes
    assert not any("secboot" in c for c in codes)


# --- accelerator ---------------------------------------------------------------------------------


@cheat_aware(protects="VMs run where KVM is broken: TCG with a CPU model that has x86-64-v3",
             cheats=["return the KVM arguments when /dev/kvm exists", "drop -cpu max under TCG"],
             consequence="`leviso test` hangs or the Rocky userspace dies with illegal instructions")
def test_accel_falls_back_to_tcg_with_cpu_max(monkeypatch):
    monkeypatch.delenv(qemu.ACCEL_ENV, raising=False)
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    assert qemu.accel_args() == ["-accel", "tcg", "-cpu", "max"]
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    assert qemu.accel_args() == ["-accel", "kvm", "-cpu", "host"]


def test_accel_can_be_forced(monkeypatch):
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    monkeypatch.setenv(qemu.ACCEL_ENV, "tcg")
    assert qemu.accel_args()[:2] == ["-accel", "tcg"]
    monkeypatch.setattr(qemu, "kvm_usable", lambda: pytest.fail("forced: no probe"))
    monkeypatch.setenv(qemu.ACCEL_ENV, "kvm")
    assert qemu.accel_args() == ["-accel", "kvm", "-cpu", "host"]
    monkeypatch.setenv(qemu.ACCEL_ENV, "hvf")
    with pytest.raises(LevitateError, match="unknown accelerator"):
        qemu.accel_args()


def test_kvm_probe_runs_once_per_process(monkeypatch, tmp_path, clean_kvm_cache):
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    monkeypatch.setattr(qemu, "KVM_DEVICE", str(device))
    calls = []
    monkeypatch.setattr(qemu, "probe_accel", lambda args, **kw: calls.append(list(args)) or False)
    assert qemu.kvm_usable() is False
    assert qemu.kvm_usable() is False
    assert calls == [["-accel", "kvm", "-cpu", "host"]]


def test_kvm_probe_result_true_is_cached_too(monkeypatch, tmp_path, clean_kvm_cache):
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    monkeypatch.setattr(qemu, "KVM_DEVICE", str(device))
    calls = []
    monkeypatch.setattr(qemu, "probe_accel", lambda args, **kw: calls.append(1) or True)
    assert qemu.kvm_usable() and qemu.kvm_usable()
    assert len(calls) == 1


def test_no_kvm_device_means_no_probe(monkeypatch, tmp_path, clean_kvm_cache):
    monkeypatch.setattr(qemu, "KVM_DEVICE", str(tmp_path / "absent"))
    monkeypatch.setattr(qemu, "probe_accel", lambda *a, **k: pytest.fail("probed without /dev/kvm"))
    assert qemu.kvm_usable() is False


@needs_qemu
@cheat_aware(protects="the KVM probe really runs guest code through long mode and reports success",
             cheats=["a probe that always fails (every host would be stuck with slow TCG)",
                     "a probe that only checks that QEMU starts"],
             consequence="KVM hosts boot 10x slower, or broken-KVM hosts hang at every boot")
def test_probe_rom_succeeds_under_tcg_and_fails_on_a_broken_accelerator():
    started = time.monotonic()
    assert qemu.probe_accel(["-accel", "tcg", "-cpu", "max"]) is True
    assert qemu.probe_accel(["-accel", "tcg"]) is True
    assert time.monotonic() - started < 6
    assert qemu.probe_accel(["-accel", "no-such-accelerator"]) is False


@needs_qemu
def test_probe_rom_that_never_reports_is_a_failure_within_its_timeout(monkeypatch):
    monkeypatch.setattr(qemu, "_PROBE_CODE", b"\xeb\xfe")          # jmp $: spins forever
    started = time.monotonic()
    assert qemu.probe_accel(["-accel", "tcg"], timeout=2) is False
    assert time.monotonic() - started < 6


def test_probe_rom_layout():
    rom = qemu.probe_rom()
    assert len(rom) == 0x10000
    assert rom[0xFFF0:0xFFF5] == b"\xea\x00\x00\x00\xf0"            # reset vector -> 0xF000:0000
    assert rom.startswith(b"\xfa")                                  # cli


# --- the VM's command line -----------------------------------------------------------------------


@cheat_aware(protects="every VM gets a fresh copy of the OVMF variable store; CODE stays read-only",
             cheats=["pass the system's OVMF_VARS file itself", "share one copy between VMs"],
             consequence="a VARS file left by an earlier boot makes OVMF stop at its shell; "
                         "writing the system's template corrupts it for every later VM")
def test_each_vm_gets_a_fresh_vars_copy(fake_ovmf, iso):
    code, template = fake_ovmf
    with VM(iso, accel=qemu.TCG_ARGS) as first, VM(iso, accel=qemu.TCG_ARGS) as second:
        a, b = first.command(), second.command()
        pflash_a = [d for d in option_after(a, "-drive") if d.startswith("if=pflash")]
        pflash_b = [d for d in option_after(b, "-drive") if d.startswith("if=pflash")]
        assert pflash_a[0] == f"if=pflash,format=raw,unit=0,readonly=on,file={code}"
        vars_a = Path(pflash_a[1].split("file=", 1)[1])
        vars_b = Path(pflash_b[1].split("file=", 1)[1])
        assert "readonly" not in pflash_a[1]
        assert vars_a != vars_b and template not in (vars_a, vars_b)
        assert vars_a.parent == first.runtime_dir and vars_b.parent == second.runtime_dir
        assert vars_a.read_bytes() == template.read_bytes() == vars_b.read_bytes()
        runtime = first.runtime_dir
    assert not runtime.exists()                          # closed: the copy is gone
    assert template.read_bytes() == b"template-vars" * 100


def test_vars_copy_is_kept_across_restarts_of_one_vm(fake_ovmf, iso):
    code, template = fake_ovmf
    with VM(iso, accel=qemu.TCG_ARGS) as vm:
        vm.command()
        vm.vars_path.write_bytes(b"boot entries written by the guest")
        again = vm.command()                             # the next start of the same VM
        assert f"if=pflash,format=raw,unit=1,file={vm.vars_path}" in option_after(again, "-drive")
        assert vm.vars_path.read_bytes() == b"boot entries written by the guest"


def test_persistent_vars_path_is_created_once(fake_ovmf, iso, tmp_path):
    _, template = fake_ovmf
    keep = tmp_path / "disk.qcow2.OVMF_VARS.fd"
    with VM(iso, accel=qemu.TCG_ARGS, vars_path=keep) as vm:
        vm.command()
    assert keep.read_bytes() == template.read_bytes()    # outlives the VM
    keep.write_bytes(b"installed system's entries")
    with VM(iso, accel=qemu.TCG_ARGS, vars_path=keep) as vm:
        vm.command()
    assert keep.read_bytes() == b"installed system's entries"


def test_iso_as_cd(fake_ovmf, iso):
    with VM(iso, accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
    drives = option_after(argv, "-drive")
    devices = option_after(argv, "-device")
    escaped = str(iso).replace(",", ",,")
    assert f"if=none,id=cd0,file={escaped},format=raw,media=cdrom,readonly=on" in drives
    assert "ide-cd,drive=cd0,bus=ide.0,bootindex=0" in devices
    assert option_after(argv, "-machine") == ["q35"]


@cheat_aware(protects="the ISO boots as a disk (a USB stick) without being modified",
             cheats=["attach it as a CD in both modes", "attach it writable without snapshot=on"],
             consequence="the USB-stick boot path is never tested, or a test run rewrites the user's ISO")
@pytest.mark.parametrize("bus,device", [("virtio", "virtio-blk-pci,drive=isodisk,bootindex=0"),
                                        ("sata", "ide-hd,drive=isodisk,bus=ide.0,bootindex=0"),
                                        ("usb", "usb-storage,bus=xhci.0,drive=isodisk,removable=on,bootindex=0"),
                                        ("nvme", "nvme,drive=isodisk,serial=levitate-isodisk,bootindex=0")])
def test_iso_as_disk(fake_ovmf, iso, bus, device):
    with VM(iso, iso_as_disk=True, iso_bus=bus, accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
    drives = [d for d in option_after(argv, "-drive") if "id=isodisk" in d]
    assert len(drives) == 1
    assert "snapshot=on" in drives[0] and "format=raw" in drives[0]
    assert "media=cdrom" not in drives[0]
    assert device in option_after(argv, "-device")
    assert not any(d.startswith("ide-cd") for d in option_after(argv, "-device"))


def test_extra_disks_follow_the_iso_in_boot_order(fake_ovmf, iso, tmp_path):
    target = tmp_path / "target.qcow2"
    raw = tmp_path / "data.img"
    with VM(iso, disks=[target, Disk(raw, bus="sata")], accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
    drives = option_after(argv, "-drive")
    devices = option_after(argv, "-device")
    assert f"if=none,id=disk0,file={target},format=qcow2" in drives
    assert f"if=none,id=disk1,file={raw},format=raw" in drives
    assert "virtio-blk-pci,drive=disk0,bootindex=1" in devices
    assert "ide-hd,drive=disk1,bus=ide.1,bootindex=2" in devices


def test_boot_from_disk_leaves_the_iso_out_of_the_boot_order(fake_ovmf, iso, tmp_path):
    with VM(iso, disks=[tmp_path / "target.qcow2"], boot_from="disk", accel=qemu.TCG_ARGS) as vm:
        devices = option_after(vm.command(), "-device")
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in devices
    assert "ide-cd,drive=cd0,bus=ide.0" in devices


def test_direct_kernel_boot_has_no_firmware(fake_ovmf, tmp_path):
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd.gz"
    with VM(kernel=kernel, initrd=initrd, append="console=ttyS0 panic=-1", no_reboot=True,
            accel=qemu.TCG_ARGS, network=False, memory=512, cpus=1) as vm:
        argv = vm.command()
        assert not vm.vars_path.exists()
    assert not any(d.startswith("if=pflash") for d in option_after(argv, "-drive"))
    assert option_after(argv, "-kernel") == [str(kernel)]
    assert option_after(argv, "-initrd") == [str(initrd)]
    assert option_after(argv, "-append") == ["console=ttyS0 panic=-1"]
    assert "-no-reboot" in argv
    assert option_after(argv, "-m") == ["512"] and option_after(argv, "-smp") == ["1"]
    assert "-netdev" not in argv


def test_serial_console_is_a_logged_pipe(fake_ovmf, iso, tmp_path):
    log_path = tmp_path / "console.log"
    with VM(iso, log_path=log_path, accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
        chardev = option_after(argv, "-chardev")[0]
    assert chardev.startswith(f"pipe,id=ser0,path={vm.runtime_dir / 'console'},")
    assert f"logfile={log_path}" in chardev
    assert option_after(argv, "-serial") == ["chardev:ser0"]
    assert option_after(argv, "-display") == ["none"]
    assert argv[argv.index("-accel"):argv.index("-accel") + 4] == ["-accel", "tcg", "-cpu", "max"]
    assert "virtio-net-pci,netdev=net0,romfile=" in option_after(argv, "-device")


def test_interactive_consoles(fake_ovmf, iso):
    with VM(iso, console="stdio", accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
    assert any(c.startswith("stdio,id=con0,mux=on,signal=off") for c in option_after(argv, "-chardev"))
    assert option_after(argv, "-serial") == ["chardev:con0"]
    with VM(iso, console="gui", accel=qemu.TCG_ARGS) as vm:
        argv = vm.command()
    assert "-display" not in argv and option_after(argv, "-vga") == ["std"]


def test_missing_iso_is_a_clear_error(fake_ovmf, tmp_path):
    with VM(tmp_path / "nope.iso", accel=qemu.TCG_ARGS) as vm, pytest.raises(LevitateError, match="no such ISO"):
        vm.command()


# --- disks for `leviso run` ----------------------------------------------------------------------


@pytest.mark.parametrize("text,size", [("20G", 20 << 30), ("512M", 512 << 20), ("1.5T", int(1.5 * (1 << 40))),
                                       ("8GiB", 8 << 30), ("2097152", 2 << 20)])
def test_parse_size(text, size):
    assert qemu.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "20X", "-1G", "10"])
def test_parse_size_rejects_nonsense(text):
    with pytest.raises(LevitateError):
        qemu.parse_size(text)


def test_create_raw_disk_is_sparse(tmp_path):
    disk = qemu.create_disk(tmp_path / "disk.img", "2G")
    assert disk.stat().st_size == 2 << 30
    assert disk.stat().st_blocks == 0
    with pytest.raises(LevitateError, match="already exists"):
        qemu.create_disk(disk, "1G")


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
def test_create_qcow2_disk(tmp_path):
    disk = qemu.create_disk(tmp_path / "disk.qcow2", "20G")
    info = subprocess.run(["qemu-img", "info", disk], capture_output=True, text=True, check=True).stdout
    assert "file format: qcow2" in info and "20 GiB" in info
    assert not list(tmp_path.glob(".*tmp"))


def test_prepare_disk_never_wipes_an_existing_disk(tmp_path, iso):
    existing = tmp_path / "mine.img"
    existing.write_bytes(b"installed system")
    assert vmtest.prepare_disk(iso, existing, "20G") == existing
    assert existing.read_bytes() == b"installed system"
    made = vmtest.prepare_disk(iso, None, "1G")
    assert made == iso.parent / vmtest.DEFAULT_DISK_NAME and made.exists()
    assert vmtest.prepare_disk(iso, None, None) is None
    with pytest.raises(LevitateError, match="no such disk image"):
        vmtest.prepare_disk(iso, tmp_path / "absent.img", None)


# --- the console command protocol ----------------------------------------------------------------

TRICKY = [
    "echo hi; false",
    "printf '%s\\n' \"a'b\" 'c\\d' $((6*7))",
    "echo 'multi\nline'; echo second\n(exit 3)",
    "echo é ü \\\\ \\$HOME '$HOME'",
    "cat",                                     # stdin is /dev/null: must not hang
    "echo %s %d %b",
]


def _run_locally(shell: str, cmd: str) -> tuple[str, int]:
    nonce = "lvtest1234"
    line = qemu.shell_command_line(cmd, nonce)
    out = subprocess.run([shell], input=line + "\n", capture_output=True, text=True, timeout=10).stdout
    match = qemu.command_output_pattern(nonce).search(out)
    assert match, out
    return qemu.parse_command_output(match)


@pytest.mark.parametrize("cmd", TRICKY)
@pytest.mark.parametrize("shell", ["sh", "bash", "busybox"])
def test_command_line_runs_exactly_the_command(shell, cmd, tmp_path):
    """The line sent over the console gives the same output and status as the command itself."""
    argv = ["busybox", "sh"] if shell == "busybox" else [shell]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"no {argv[0]}")
    if shell == "busybox":
        shell_path = tmp_path / "busybox-sh"
        shell_path.write_text('#!/bin/sh\nexec busybox sh "$@"\n')
        shell_path.chmod(0o755)
        shell = str(shell_path)
    direct = subprocess.run([shell, "-c", cmd], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert _run_locally(shell, cmd) == (direct.stdout.rstrip("\n"), direct.returncode)


def test_command_line_never_contains_its_own_markers():
    """The terminal's echo of the line must not look like output (the markers are assembled by printf)."""
    line = qemu.shell_command_line("echo lv0000:B lv0000:E:0:", "lv1234")
    assert "lv1234:B" not in line and "lv1234:E" not in line


def test_command_output_parsing_with_crlf_and_noise():
    nonce = "lvabc"
    console = ("printf '\\n%s:B\\n' lvabc; eval ...\r\n[   12.3] random: crng init done\r\n\r\n"
               "lvabc:B\r\nhi\r\n\r\nlvabc:E:1:\r\n# ")
    assert qemu.parse_command_output(qemu.command_output_pattern(nonce).search(console)) == ("hi", 1)
    empty = "\r\nlvabc:B\r\n\r\nlvabc:E:0:\r\n"
    assert qemu.parse_command_output(qemu.command_output_pattern(nonce).search(empty)) == ("", 0)


def test_overlong_command_is_refused():
    with pytest.raises(ValueError, match="too long"):
        qemu.shell_command_line("echo " + "x" * 5000, "lv1")


def test_log_tail_is_readable(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"\x1b[2J\x1b[=3hBdsDxe: loading\r\n" + b"".join(b"line %d\r\n" % i for i in range(40))
                    + b"\x1b[0m[    1.0] Kernel panic - not syncing\r\n")
    tail = qemu.log_tail(log, lines=5)
    assert tail.splitlines() == ["line 36", "line 37", "line 38", "line 39", "[    1.0] Kernel panic - not syncing"]
    assert "\x1b" not in qemu.log_tail(log, lines=100)


def test_default_fail_patterns_cover_the_known_failures():
    import re
    for text in ["[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs",
                 "LEVITATE-INIT: ERROR: no medium labelled LEVITATEOS", "starting an emergency shell",
                 "[  OK  ] Entering emergency mode. Exit the shell to continue.",
                 "You are in emergency mode. After logging in, type \"journalctl -xb\"",
                 "UEFI Interactive Shell v2.2"]:
        assert any(re.search(p, text) for p in qemu.DEFAULT_FAIL), text
    assert not any(re.search(p, qemu.SHELL_MARKER) for p in qemu.DEFAULT_FAIL)


# --- `leviso test` parsers -----------------------------------------------------------------------

MOUNTS = """\
overlay / overlay rw,relatime,lowerdir=/run/levitate/live:/run/levitate/base,upperdir=/run/levitate/rw/upper,workdir=/run/levitate/rw/work 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=401540k,mode=755 0 0
/dev/sr0 /run/levitate/media iso9660 ro,relatime,nojoliet,check=s,map=n,blocksize=2048 0 0
/dev/loop0 /run/levitate/base erofs ro,relatime,user_xattr,acl,cache_strategy=readaround 0 0
/dev/loop1 /run/levitate/live erofs ro,relatime,user_xattr,acl,cache_strategy=readaround 0 0
[   14.2] some kernel message interleaved here
BACKING /sys/block/loop0/loop/backing_file /run/levitate/media/live/filesystem.erofs
BACKING /sys/block/loop1/loop/backing_file /run/levitate/media/live/live.erofs
"""


@cheat_aware(protects="`leviso test` proves / is the overlay over the EROFS base image",
             cheats=["pass when any overlay is on /", "pass when any erofs is mounted"],
             consequence="an ISO that boots a copied or wrong root passes its test")
def test_root_overlay_check():
    mounts = vmtest.parse_mounts(MOUNTS)
    assert len(mounts) == 6
    backing = vmtest.parse_backing_files(MOUNTS)
    assert backing["/dev/loop0"] == "/run/levitate/media/live/filesystem.erofs"
    ok = vmtest.check_root_overlay(mounts, backing)
    assert ok.passed, ok.detail
    assert "/run/levitate/base" in ok.detail

    not_lower = MOUNTS.replace("lowerdir=/run/levitate/live:/run/levitate/base", "lowerdir=/run/levitate/live")
    bad = vmtest.check_root_overlay(vmtest.parse_mounts(not_lower), backing)
    assert not bad.passed and "lower layers" in bad.detail

    other_image = MOUNTS.replace("media/live/filesystem.erofs", "media/other.erofs")
    bad = vmtest.check_root_overlay(vmtest.parse_mounts(other_image), vmtest.parse_backing_files(other_image))
    assert not bad.passed and "no mounted live/filesystem.erofs" in bad.detail

    plain = "/dev/vda2 / ext4 rw,relatime 0 0\n"
    bad = vmtest.check_root_overlay(vmtest.parse_mounts(plain), {})
    assert not bad.passed and "ext4" in bad.detail


def test_root_overlay_check_accepts_squashfs_and_file_backed_mounts():
    text = ("overlay / overlay rw,lowerdir=/run/levitate/base,upperdir=/u,workdir=/w 0 0\n"
            "/run/levitate/media/live/filesystem.squashfs /run/levitate/base squashfs ro 0 0\n")
    assert vmtest.check_root_overlay(vmtest.parse_mounts(text), {}).passed


def test_medium_check():
    mounts = vmtest.parse_mounts(MOUNTS)
    assert vmtest.check_medium(mounts, "filesystem.erofs\nlive.erofs").passed
    bad = vmtest.check_medium(mounts, "")
    assert not bad.passed
    bad = vmtest.check_medium([m for m in mounts if m.target != "/run/levitate/media"], "filesystem.erofs")
    assert not bad.passed and "nothing is mounted" in bad.detail


def test_system_state_parsing():
    assert vmtest.parse_system_state("[  OK  ] Reached target x\r\nrunning") == "running"
    assert vmtest.parse_system_state("degraded") == "degraded"
    assert vmtest.parse_system_state("bash: systemctl: command not found") == "unknown"


def test_systemd_analyze_parsing():
    text = ("Startup finished in 2.514s (firmware) + 1.100s (loader) + 1.823s (kernel) + 1min 2.5s (userspace)"
            " = 1min 7.937s\nmulti-user.target reached after 1min 2.1s in userspace.")
    assert vmtest.parse_systemd_analyze(text) == {"firmware": 2.514, "loader": 1.1, "kernel": 1.823,
                                                  "userspace": 62.5, "total": 67.937}
    assert vmtest.parse_systemd_analyze("Startup finished in 850ms (kernel) + 3s (initrd) + 120ms (userspace)"
                                        " = 3.970s") == {"kernel": 0.85, "initrd": 3.0, "userspace": 0.12,
                                                         "total": 3.97}
    assert vmtest.parse_systemd_analyze("Bootup is not yet finished") == {}


def test_meminfo_parsing():
    assert vmtest.parse_meminfo_used_kib("MemTotal:        2030000 kB\nMemFree: 1 kB\n"
                                         "MemAvailable:    1800000 kB\n") == 230000
    assert vmtest.parse_meminfo_used_kib("garbage") is None


def test_report_passes_only_with_checks_and_no_error(tmp_path):
    report = vmtest.TestReport(iso=tmp_path / "x.iso", log_path=tmp_path / "log", medium="cdrom", accel=[])
    assert not report.passed
    report.checks.append(vmtest.Check("a", True))
    assert report.passed
    report.checks.append(vmtest.Check("b", False, "why\nmore"))
    assert not report.passed
    assert report.checks[1].line() == "FAIL  b: why\n      more"
    assert '"passed": false' in report.to_json()
