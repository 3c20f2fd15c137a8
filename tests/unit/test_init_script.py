"""init.sh, the initramfs /init (PID 1 of every boot), checked without booting: shellcheck, and its
functions run under busybox sh (the shell that runs it) leaving the caller's variables alone.
Boots of the real thing are in tests/vm/test_initramfs_boot.py and tests/vm/test_live_iso.py."""

from __future__ import annotations

import shutil
import subprocess

from levitate.boot.initramfs import init_template_path
from tests.cheat_aware import cheat_aware


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: `./dev setup` installs it (apt install {package})"
    return path


@cheat_aware(protects="init.sh passes shellcheck (as dash, busybox sh's sibling: POSIX plus `local`)",
             cheats=["disable checks without a reason next to them", "check a copy instead of the shipped file",
                     "lower the severity so only errors count"],
             consequence="quoting and word-splitting mistakes in PID 1 reach users as an emergency shell at boot")
def test_init_sh_passes_shellcheck():
    result = subprocess.run([_tool("shellcheck", "shellcheck"), str(init_template_path())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


HARNESS = r"""
. "$1"
msg() { :; }                           # init.sh's msg writes to /dev/console
set >"$2/before"
le_hex 0123abcd >/dev/null
uptime_cs >/dev/null
fs_info "$2/fat.img" >"$2/fs_info"
iso_label "$2/fat.img" >/dev/null
CONF=$2/initramfs.conf check_cpu
NEWROOT=$2/root find_init >/dev/null
image_in "$2" fat >/dev/null
matches no-such-device
dev_size_mib no-such-device >/dev/null
block_devices >/dev/null
list_block_devices
partuuid no-such-device
MEDIA=$2/media MEDIUM_DEV=$2/no-such-device mount_medium
set >"$2/after"
"""


@cheat_aware(protects="init.sh's functions keep their variables local (le_hex and mount_medium shared `out`)",
             cheats=["call the functions in a subshell, where a leak is invisible",
                     "compare only the variables known to leak today"],
             consequence="a helper silently overwrites its caller's variable: a wrong error text, a wrong device")
def test_init_sh_functions_leave_the_callers_variables_alone(tmp_path):
    busybox = _tool("busybox", "busybox-static")
    script = init_template_path().read_text()
    main = script.index("\n# --- main")
    (tmp_path / "functions.sh").write_text(script[:main] + "\n")   # the definitions, not the boot itself
    (tmp_path / "harness.sh").write_text(HARNESS)
    subprocess.run([_tool("mkfs.fat", "dosfstools"), "-C", "-n", "LEVTEST", "-i", "1234ABCD", "-F", "32",
                    str(tmp_path / "fat.img"), "40000"], check=True, capture_output=True)
    (tmp_path / "initramfs.conf").write_text("CPU_FLAGS=fpu\n")           # every x86-64 CPU has it
    (tmp_path / "root/sbin").mkdir(parents=True)
    (tmp_path / "root/sbin/init").write_text("")
    (tmp_path / "media").mkdir()
    subprocess.run([busybox, "sh", str(tmp_path / "harness.sh"), str(tmp_path / "functions.sh"), str(tmp_path)],
                   check=True, capture_output=True, text=True, timeout=60)
    # the functions ran for real (fs_info parsed the FAT32 boot sector) ...
    assert (tmp_path / "fs_info").read_text() == 'TYPE="vfat" LABEL="LEVTEST" UUID="1234-ABCD"\n'
    # ... and left no variable behind (`_` is the shell's last argument)
    before, after = ({line for line in (tmp_path / name).read_text().splitlines() if not line.startswith("_=")}
                     for name in ("before", "after"))
    assert sorted(after ^ before) == []
