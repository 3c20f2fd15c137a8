"""The six-phase install test (the seed's E2E install test): boot the sample ISO, install it to the
VM's disk with the commands of docs/install.md over the serial console, reboot from the disk with
the ISO removed, and check the installed system. One VM, one disk, one OVMF variable store kept
across the reboot (the boot entry `bootctl install` writes lives there). About 3 minutes here.

Each phase records what it checked; a failure names the phase, the command and its output.
"""

from __future__ import annotations

import base64
import re
import shutil
import time

import pytest

from levitate.leviso.live import SHELL_MARKER
from levitate.leviso.qemu import VM, Disk, create_disk, find_ovmf
from tests.cheat_aware import cheat_aware

pytestmark = pytest.mark.slow
if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason="needs qemu-system-x86_64 and qemu-img")]

DISK = "/dev/vda"
HOSTNAME = "levitest"
USER, USER_PASSWORD, ROOT_PASSWORD = "alice", "Wonder-land-42", "R00t-pass-42"
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


class PhaseFailed(AssertionError):
    pass


class Installer:
    """Runs commands in the VM phase by phase and keeps a record of what each phase checked."""

    def __init__(self, vm: VM):
        self.vm = vm
        self.phase = "?"
        self.record: list[str] = []

    def start(self, phase: str) -> None:
        self.phase = phase
        self.record.append(f"phase {phase}")

    def run(self, cmd: str, timeout: float = 120, expect_status: int | None = 0) -> str:
        out, status = self.vm.run(cmd, timeout=timeout)
        if expect_status is not None and status != expect_status:
            raise PhaseFailed(f"phase {self.phase}: `{cmd}` exited {status} (wanted {expect_status}); output:\n{out}"
                              f"\nconsole log: {self.vm.log_path}")
        return out

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.record.append(f"  {'ok ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
        if not ok:
            raise PhaseFailed(f"phase {self.phase}: {what} failed: {detail}\n" + "\n".join(self.record)
                              + f"\nconsole log: {self.vm.log_path}")


def _login(vm: VM, user: str, password: str) -> None:
    """Log in on the serial getty (the installed system has no autologin)."""
    vm.wait_for(r"login: ", timeout=240)
    vm.sendline(user)
    vm.wait_for(r"[Pp]assword: ", timeout=30)
    vm.sendline(password)
    vm.wait_for(r"[$#] $|[$#] \x1b", timeout=60)


@cheat_aware(protects="the documented install path (recstrap, recfstab, recchroot, recboot) gives a system "
                      "that boots from its disk",
             cheats=["boot the installed disk with -kernel instead of its ESP", "skip the reboot",
                     "check files instead of booting"],
             consequence="users follow the guide and end with a machine that does not boot")
def test_install_to_disk_and_boot_it(sample_iso, tmp_path):
    disk = create_disk(tmp_path / "disk.qcow2", "6G")
    _code, template = find_ovmf()
    vars_path = tmp_path / "OVMF_VARS.fd"
    shutil.copyfile(template, vars_path)

    # 1. Boot the ISO ---------------------------------------------------------------------------
    with VM(sample_iso, disks=[Disk(disk)], vars_path=vars_path, memory=2048,
            log_path=tmp_path / "install-console.log") as vm:
        vm.start()
        vm.wait_for(SHELL_MARKER, timeout=300)
        inst = Installer(vm)
        inst.start("1 boot the ISO")
        inst.check("booted in UEFI mode", inst.run("test -d /sys/firmware/efi && echo uefi") == "uefi")
        inst.check("the guide is on the medium", "recstrap /mnt" in inst.run("cat /usr/share/doc/levitate/install.md"))
        guest_now = int(inst.run("date +%s"))
        inst.check("the clock is sane", abs(guest_now - time.time()) < 86400, f"guest {guest_now}, host {time.time():.0f}")

        # 2. Partition, format, mount -----------------------------------------------------------
        inst.start("2 disk")
        inst.run(f"printf 'label: gpt\\nsize=512MiB, type=uefi\\ntype=linux\\n' | sfdisk --quiet {DISK}")
        inst.run(f"mkfs.fat -F 32 -n ESP {DISK}1 >/dev/null && mkfs.ext4 -q -F -L root {DISK}2", timeout=180)
        inst.run(f"mount {DISK}2 /mnt && mount --mkdir {DISK}1 /mnt/boot")
        fstypes = inst.run("findmnt -n -o FSTYPE /mnt; findmnt -n -o FSTYPE /mnt/boot").split()
        inst.check("root ext4 at /mnt, ESP vfat at /mnt/boot", fstypes == ["ext4", "vfat"], str(fstypes))
        esp_mib = int(inst.run(f"lsblk -bno SIZE {DISK}1")) // 2**20
        inst.check("the ESP has at least 512 MiB", esp_mib >= 512, f"{esp_mib} MiB")

        # 3. Base system: recstrap, recfstab, recchroot ------------------------------------------
        inst.start("3 base")
        out = inst.run("recstrap /mnt", timeout=900)
        inst.check("recstrap says what is left to do", "recfstab" in out and "recchroot" in out, out[-400:])
        inst.run("recfstab -U /mnt >> /mnt/etc/fstab")
        fstab = inst.run("grep -v '^#' /mnt/etc/fstab")
        root_uuid = inst.run(f"blkid -s UUID -o value {DISK}2")
        esp_uuid = inst.run(f"blkid -s UUID -o value {DISK}1")
        inst.check("fstab mounts / by the root's UUID", re.search(rf"^UUID={root_uuid}\s+/\s+ext4\s", fstab, re.M)
                   is not None, fstab)
        inst.check("fstab mounts /boot by the ESP's UUID", re.search(rf"^UUID={esp_uuid}\s+/boot\s+vfat\s", fstab, re.M)
                   is not None, fstab)
        os_release = inst.run("recchroot /mnt cat /etc/os-release")
        inst.check("recchroot runs a command in the new system", "ID=\"levitateos\"" in os_release
                   or "ID=levitateos" in os_release, os_release)
        shadow_root = inst.run("recchroot /mnt sh -c 'grep ^root: /etc/shadow | cut -d: -f2'")
        inst.check("root is locked on the installed system (no live empty password)",
                   shadow_root.startswith(("!", "*")), repr(shadow_root))
        inst.check("no live autologin on the installed system",
                   inst.run("ls /mnt/etc/systemd/system/serial-getty@.service.d/ 2>/dev/null; true") == "")

        # 4. Configure ---------------------------------------------------------------------------
        inst.start("4 configure")
        inst.run("recchroot /mnt ln -sf /usr/share/zoneinfo/Europe/Berlin /etc/localtime")
        inst.run("recchroot /mnt sh -c 'echo LANG=C.UTF-8 > /etc/locale.conf'")
        inst.run(f"recchroot /mnt sh -c 'echo {HOSTNAME} > /etc/hostname'")
        inst.run(f"recchroot /mnt sh -c 'echo root:{ROOT_PASSWORD} | chpasswd'")
        inst.run("recchroot /mnt sh -c 'getent group wheel >/dev/null || groupadd -r wheel'")
        inst.run(f"recchroot /mnt useradd -m -G wheel -s /bin/bash {USER}")
        inst.run(f"recchroot /mnt sh -c 'echo {USER}:{USER_PASSWORD} | chpasswd'")
        inst.run("recchroot /mnt sh -c \"grep -qs '^%wheel' /etc/sudoers /etc/sudoers.d/* || "
                 "echo '%wheel ALL=(ALL:ALL) ALL' > /etc/sudoers.d/10-wheel\"")
        inst.check("the user is in wheel", "wheel" in inst.run(f"recchroot /mnt id -nG {USER}"))

        # 5. Boot loader --------------------------------------------------------------------------
        inst.start("5 boot loader")
        out = inst.run("recchroot /mnt recboot", timeout=300)
        entries = inst.run("cat /mnt/boot/loader/entries/levitateos-*.conf")
        inst.check("the loader entry names the root by UUID", f"root=UUID={root_uuid}" in entries, entries)
        inst.check("systemd-boot is on the ESP",
                   inst.run("test -f /mnt/boot/EFI/systemd/systemd-bootx64.efi && echo yes") == "yes", out)
        inst.check("bootctl added the firmware boot entry", 'firmware boot entry "Linux Boot Manager"' in out, out)
        inst.check("kernel and initramfs are on the ESP",
                   inst.run("ls /mnt/boot/levitateos/*/").split() == ["initramfs.img", "linux"])
        inst.run("sync; umount -R /mnt")
        vm.sendline("poweroff")
        vm.process.wait(120)

    # 6. Reboot from the disk, the ISO removed -----------------------------------------------------
    with VM(None, disks=[Disk(disk)], vars_path=vars_path, memory=2048, boot_from="disk",
            log_path=tmp_path / "installed-console.log") as vm:
        inst.vm = vm
        inst.start("6 installed system")
        vm.start()
        _login(vm, USER, USER_PASSWORD)
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

