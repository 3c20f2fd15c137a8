"""The six-phase install test (the seed's E2E install test): the session's installed system
(tests/vm/installed.py: boot the sample ISO, install it to the VM's disk with the commands of
docs/install.md over the serial console; dnf on the live system on the way), rebooted from the disk
with the ISO removed, and the installed system checked. The disk and OVMF variable store `bootctl
install` wrote are the install's; this test boots a fork of them (test_updates.py boots another).
About 4 minutes here, the install included.

Each phase records what it checked; a failure names the phase, the command and its output.
"""

from __future__ import annotations

import base64
import re

import pytest

from levitate.leviso.qemu import VM, Disk
from tests.cheat_aware import cheat_aware
from tests.vm.installed import DISK, HOSTNAME, USER, USER_PASSWORD, Installer, login

pytestmark = pytest.mark.slow

GREET_RECIPE = """\
let name = "greet";
let version = "1.0";
let installed = false;

fn acquire() {
    write_file("greet", "#!/bin/sh\\necho hello from a recipe\\n");
}

fn install() {
    install_bin("greet");
}
"""


@cheat_aware(protects="the documented install path (recstrap, recfstab, recchroot, recboot) gives a system "
                      "that boots from its disk",
             cheats=["boot the installed disk with -kernel instead of its ESP", "skip the reboot",
                     "check files instead of booting"],
             consequence="users follow the guide and end with a machine that does not boot")
def test_install_to_disk_and_boot_it(installed_system, tmp_path):
    disk, vars_path = installed_system.fork(tmp_path)
    inst = Installer(None, list(installed_system.record))

    # 6. Reboot from the disk, the ISO removed -----------------------------------------------------
    with VM(None, disks=[Disk(disk)], vars_path=vars_path, memory=2048, boot_from="disk",
            log_path=tmp_path / "installed-console.log") as vm:
        inst.vm = vm
        inst.start("6 installed system")
        vm.start()
        login(vm, USER, USER_PASSWORD)
        inst.check("PID 1 is systemd", inst.run("cat /proc/1/comm") == "systemd")
        root = inst.run("findmnt -n -o SOURCE,FSTYPE /").split()
        inst.check("/ is the ext4 partition, not an overlay", root == [f"{DISK}2", "ext4"], str(root))
        state = inst.run("systemctl is-system-running --wait", timeout=240, expect_status=None)
        failed = inst.run("systemctl --failed --no-legend --plain", expect_status=None)
        inst.check("no failed units", state.strip() == "running", f"{state}; failed: {failed}")
        inst.check("the hostname is set", inst.run("uname -n") == HOSTNAME)
        whoami = inst.run(f"echo '{USER_PASSWORD}' | sudo -S -p '' id -un")
        inst.check("sudo works for the wheel user", whoami == "root", whoami)
        route = inst.run("ip -4 route show default; ip -4 -o addr show scope global", expect_status=None)
        inst.check("the network is up (DHCP)", "default via" in route and "10.0.2." in route, route)
        inst.check("the official recipes are in recipe's system directory",
                   {"hello", "jq", "tmux", "tree"} <= set(re.findall(r"^(\S+)\s", inst.run("recipe list"), re.M)))
        inst.run(f"mkdir -p ~/r && echo {base64.b64encode(GREET_RECIPE.encode()).decode()} | base64 -d > ~/r/greet.rhai")
        inst.run("recipe --recipes ~/r --prefix ~/.local install greet", timeout=180)
        inst.check("recipe installs into the user's prefix with the image's own python3",
                   inst.run("~/.local/bin/greet") == "hello from a recipe")
        inst.check("the recipe file records the installed state",
                   inst.run("grep -l 'installed = true' ~/r/*.rhai").endswith("/r/greet.rhai"))
        inst.check("the boot entry bootctl wrote is in the firmware's variable store",
                   "Linux Boot Manager" in inst.run(f"echo '{USER_PASSWORD}' | sudo -S -p '' bootctl list "
                                                    "--no-pager 2>/dev/null; efibootmgr 2>/dev/null; "
                                                    f"echo '{USER_PASSWORD}' | sudo -S -p '' bootctl status "
                                                    "--no-pager 2>/dev/null", expect_status=None))
    print("\n".join(inst.record))

