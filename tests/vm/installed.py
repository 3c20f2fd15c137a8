"""One LevitateOS installed to a VM disk with the commands of docs/install.md, shared by the VM tests
that boot an installed system (test_install.py checks the install, test_updates.py updates it).

The install (the `installed_system` fixture in conftest.py, once per session) boots the sample ISO,
checks dnf on the live system (a package installed into the tmpfs overlay, from the sample mirror
served on the host's loopback), partitions, formats, runs recstrap, recfstab, recchroot and recboot,
and powers off. Each test then boots its own fork of the result: a qcow2 overlay over the disk and a
copy of the OVMF variable store (the boot entry `bootctl install` wrote lives there), so no test sees
another's changes and none installs again.

Each phase records what it checked; a failure names the phase, the command and its output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from levitate.leviso.live import SHELL_MARKER
from levitate.leviso.qemu import SHELL_SETUP, VM, Disk, create_disk, find_ovmf

DISK = "/dev/vda"
HOSTNAME = "levitest"
USER, USER_PASSWORD, ROOT_PASSWORD = "alice", "Wonder-land-42", "R00t-pass-42"
# QEMU's user network: the guest reaches the host's loopback at this address.
HOST_FROM_GUEST = "10.0.2.2"
# In the sample mirror, not in the sample image (its manifest): what the live system installs with dnf.
LIVE_EXTRA_PACKAGE = "cpio"


class PhaseFailed(AssertionError):
    pass


class Installer:
    """Runs commands in the VM phase by phase and keeps a record of what each phase checked."""

    def __init__(self, vm: VM, record: list[str] | None = None):
        self.vm = vm
        self.phase = "?"
        self.record: list[str] = record if record is not None else []

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


def login(vm: VM, user: str, password: str) -> None:
    """Log in on the serial getty (the installed system has no autologin); the new shell gets the
    console settings (no pager, no echo) that vm.run sets up once per VM, so after a reboot too."""
    vm.wait_for(r"login: ", timeout=240)
    vm.sendline(user)
    vm.wait_for(r"[Pp]assword: ", timeout=30)
    vm.sendline(password)
    vm.wait_for(r"[$#] $|[$#] \x1b", timeout=60)
    vm.run(SHELL_SETUP, timeout=30)


def guest_url(server) -> str:
    """The URL of a loopback test server as the guest sees it (QEMU user networking)."""
    return server.base_url.replace("127.0.0.1", HOST_FROM_GUEST)


def untty(cmd: str) -> str:
    """`cmd` with its output through a file, not the serial console's terminal (dnf draws no progress
    bars then), printed afterwards; its exit status kept."""
    return f"{{ {cmd}; }} > /tmp/untty.log 2>&1; s=$?; cat /tmp/untty.log; (exit $s)"


def wait_for_network(inst: Installer, timeout: int = 120) -> None:
    """Until DHCP has given the guest a default route."""
    out = inst.run(f"for i in $(seq {timeout}); do ip -4 route show default | grep -q via && break; sleep 1; done; "
                   "ip -4 route show default", timeout=timeout + 30, expect_status=None)
    inst.check("the network is up (DHCP)", "default via" in out, out)


@dataclass
class InstalledSystem:
    """The installed disk (powered off) and its variable store; fork() before booting it."""
    disk: Path
    vars_path: Path
    root_uuid: str
    record: list[str] = field(default_factory=list)
    install_seconds: float = 0.0

    def fork(self, directory: Path) -> tuple[Path, Path]:
        """A qcow2 overlay over the installed disk and a copy of its variable store, in `directory`:
        the installed disk itself is never written after the install."""
        directory.mkdir(parents=True, exist_ok=True)
        disk, vars_path = directory / "disk.qcow2", directory / "OVMF_VARS.fd"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(self.disk), str(disk)],
                       check=True, capture_output=True)
        shutil.copyfile(self.vars_path, vars_path)
        return disk, vars_path


def install(iso: Path, server, directory: Path) -> InstalledSystem:
    """Phases 1-5 of docs/install.md in one VM booted from the ISO; the disk is left powered off."""
    started = time.monotonic()
    disk = create_disk(directory / "installed.qcow2", "6G")
    _code, template = find_ovmf()
    vars_path = directory / "OVMF_VARS.fd"
    shutil.copyfile(template, vars_path)

    # 1. Boot the ISO ---------------------------------------------------------------------------
    with VM(iso, disks=[Disk(disk)], vars_path=vars_path, memory=2048,
            log_path=directory / "install-console.log") as vm:
        vm.start()
        vm.wait_for(SHELL_MARKER, timeout=300)
        inst = Installer(vm)
        inst.start("1 boot the ISO")
        inst.check("booted in UEFI mode", inst.run("test -d /sys/firmware/efi && echo uefi") == "uefi")
        inst.check("the guide is on the medium", "recstrap /mnt" in inst.run("cat /usr/share/doc/levitate/install.md"))
        guest_now = int(inst.run("date +%s"))
        inst.check("the clock is sane", abs(guest_now - time.time()) < 86400, f"guest {guest_now}, host {time.time():.0f}")

        # dnf on the live system: a tool the user needs before installing, into the tmpfs overlay
        wait_for_network(inst)
        inst.run(f"echo {guest_url(server)} > /etc/dnf/vars/samplehost")
        inst.check(f"{LIVE_EXTRA_PACKAGE} is not in the live image",
                   inst.run(f"rpm -q {LIVE_EXTRA_PACKAGE}", expect_status=1).endswith("is not installed"))
        out = inst.run(untty(f"dnf install -y {LIVE_EXTRA_PACKAGE}"), timeout=600)
        inst.check(f"dnf installs {LIVE_EXTRA_PACKAGE} on the live system", out.endswith("Complete!"), out[-300:])
        version = inst.run(f"{LIVE_EXTRA_PACKAGE} --version | head -1")
        inst.check(f"{LIVE_EXTRA_PACKAGE} runs", "cpio" in version, version)
        upper = inst.run("findmnt -n -o OPTIONS / | tr , '\\n' | sed -n 's/^upperdir=//p'")
        found = inst.run(f"findmnt -n -o FSTYPE --target {upper}; ls {upper}/usr/bin/", expect_status=None).split()
        inst.check("it went into the overlay's tmpfs upper layer",
                   found[:1] == ["tmpfs"] and LIVE_EXTRA_PACKAGE in found, f"{upper}: {found}")

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
        inst.check("the live system's dnf install stayed in the live overlay",
                   inst.run(f"recchroot /mnt rpm -q {LIVE_EXTRA_PACKAGE}", expect_status=1).endswith("is not installed"))

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
    return InstalledSystem(disk, vars_path, root_uuid, inst.record, time.monotonic() - started)
