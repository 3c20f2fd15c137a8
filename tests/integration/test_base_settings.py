"""The base image's settings that let an EL10 system boot unattended and keep its choices, checked
by running the image's own tools on it: systemd-firstboot, systemctl preset-all, kernel-install.

One build of the sample set (its crypto-policies and dracut are shaped like EL10's), with a profile
that enables a unit the presets disable and disables one they enable. The tools run in a chroot of an overlay over the built images, so whatever they
write lands in the overlay's upper directory and shows."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from levitate.leviso.chroot import chroot_mounts
from tests.cheat_aware import cheat_aware
from tests.sample_repo.el10 import BOGUS_INITRD
from tests.support import Build, copy_profile, run_leviso

from . import minirepo
from .test_bad_input import assert_clean_failure, dirs

pytestmark = pytest.mark.slow

EXTRA_ENABLE = "systemd-networkd-wait-online.service"     # systemd's 90-systemd.preset disables it
EXTRA_DISABLE = "systemd-pstore.service"                  # ... and enables this one
FIRSTBOOT = ["systemd-firstboot", "--prompt-locale", "--prompt-keymap", "--prompt-timezone",
             "--prompt-root-password"]                     # systemd-firstboot.service's ExecStart
TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "SYSTEMD_OFFLINE": "1"}


@pytest.fixture(scope="module")
def traits(sample_repo, tmp_path_factory) -> Build:
    """The sample set (its crypto-policies and dracut are shaped like EL10's) with a profile that
    fights the presets once each way."""
    base = tmp_path_factory.mktemp("traits")
    profile = copy_profile(sample_repo, base / "profile")
    toml = profile / "profile.toml"
    text, count = re.subn(r"^enable = \[(.*)\]$", rf'enable = [\1, "{EXTRA_ENABLE}"]\ndisable = ["{EXTRA_DISABLE}"]',
                          toml.read_text(), flags=re.M)
    assert count == 1
    toml.write_text(text)
    build = Build(profile, base / "downloads", base / "work", base / "output", None, 0)
    for command in ("extract", "image"):
        proc = run_leviso(command, *build.args("--source", f"dir:{sample_repo.mirror}"))
        assert proc.returncode == 0, proc.stderr
    return build


@contextlib.contextmanager
def overlay(build: Build, tmp_path: Path, live: bool = False):
    """The base image (under the live layer when `live`) as a writable tree: (root, upper)."""
    layers = [build.workdir / "live.erofs"] * live + [build.workdir / "filesystem.erofs"]
    mounted: list[Path] = []
    try:
        lowers = []
        for i, image in enumerate(layers):
            at = tmp_path / f"lower{i}"
            at.mkdir()
            subprocess.run(["mount", "-o", "ro,loop", image, at], check=True)
            mounted.append(at)
            lowers.append(str(at))
        root, upper, work = tmp_path / "root", tmp_path / "upper", tmp_path / "work"
        for d in (root, upper, work):
            d.mkdir()
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}", root], check=True)
        mounted.append(root)
        yield root, upper
    finally:
        for at in reversed(mounted):
            subprocess.run(["umount", at], capture_output=True)


def written(upper: Path) -> list[str]:
    return sorted(str(Path(d, n).relative_to(upper)) for d, ds, fs in os.walk(upper) for n in ds + fs)


def chroot(root: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """argv in the tree with /dev, /proc, /sys, /run, /tmp mounted, as on the booted system (without
    /dev, a mask link to /dev/null would dangle and not count as a mask)."""
    with chroot_mounts(root):
        return subprocess.run(["chroot", root, *argv], env=TOOL_ENV, capture_output=True, text=True, timeout=300)


def enablement(root: Path) -> dict[str, str]:
    """Every enablement link (system and user units): path -> target."""
    links = {}
    for top in ("etc/systemd/system", "etc/systemd/user"):
        for dirpath, _dirs, files in os.walk(root / top):
            for name in files:
                path = Path(dirpath, name)
                if path.is_symlink():
                    links[str(path.relative_to(root))] = os.readlink(path)
    return links


@cheat_aware(protects="systemd-firstboot (enabled on EL10, run on a first boot) finds nothing to ask, on "
                      "the live system and on the installed one",
             cheats=["disable systemd-firstboot.service instead", "check only that the files exist",
                     "test firstboot with stdin closed, where a prompt reads end-of-file and moves on"],
             consequence="the live ISO stops at a console prompt and never reaches its shell; an installed "
                         "system's first boot hangs the same way")
@pytest.mark.parametrize("live", [False, True], ids=["installed", "live"])
def test_firstboot_asks_nothing(traits, tmp_path, live):
    with overlay(traits, tmp_path, live) as (root, upper):
        zone = os.readlink(root / "etc/localtime")                       # ours, or one the tree had
        assert zone.startswith("../usr/share/zoneinfo/") and (root / "etc" / zone).is_file()
        assert (root / "etc/locale.conf").read_text() == "LANG=C.UTF-8\n"
        assert (root / "etc/vconsole.conf").read_text() == "KEYMAP=us\n"
        assert (root / "etc/machine-id").read_text() == ""               # so ConditionFirstBoot holds
        # stdin: a pipe that stays open and never delivers, as a console nobody types on; no
        # controlling terminal, so a password prompt cannot open /dev/tty either.
        never, keep = os.pipe()
        log = tmp_path / "firstboot.log"
        try:
            with open(log, "w") as out, chroot_mounts(root):
                proc = subprocess.Popen(["chroot", root, *FIRSTBOOT], stdin=never, stdout=out, stderr=out,
                                        env=TOOL_ENV, start_new_session=True)
                try:
                    code = proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    pytest.fail(f"systemd-firstboot waited for an answer: {log.read_text()[-500:]}")
        finally:
            os.close(never)
            os.close(keep)
        assert code == 0, log.read_text()
        assert written(upper) == [], log.read_text()


@cheat_aware(protects="a first boot's preset-all (Rocky: first-boot full presets) keeps the profile's "
                      "enable/disable choices and the user units' state",
             cheats=["enable the units only with systemctl enable", "compare only the units the profile names"],
             consequence="the installed system's first boot silently re-enables what the profile disabled "
                         "and disables what it enabled")
def test_preset_all_again_keeps_every_choice(traits, tmp_path):
    with overlay(traits, tmp_path) as (root, _upper):
        before = enablement(root)
        targets = {Path(link).name for link in before}
        assert EXTRA_ENABLE in targets and EXTRA_DISABLE not in targets
        for argv in (["systemctl", "preset-all"], ["systemctl", "--global", "preset-all"]):
            proc = chroot(root, argv)
            assert proc.returncode == 0, proc.stderr
        assert enablement(root) == before


@contextlib.contextmanager
def as_installed(root: Path):
    """What LevitateOS's kernel-install plugin needs to write an entry, as on an installed system:
    a root named in /etc/fstab and a filesystem of its own (the ESP) at /boot."""
    (root / "etc/fstab").write_text("UUID=0c4a5e7e-5d1b-4d3e-9a54-0123456789ab / ext4 defaults 0 1\n")
    subprocess.run(["mount", "-t", "tmpfs", "esp", root / "boot"], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", root / "boot"], capture_output=True)


@cheat_aware(protects="dracut stays installed but its kernel-install plugin never runs",
             cheats=["delete the plugin file (rpm -V fails, an update brings it back)",
                     "check the mask link without running kernel-install"],
             consequence="installing a kernel builds a dracut initramfs behind LevitateOS's back")
def test_dracut_plugin_is_masked(traits, tmp_path):
    kver = sorted(os.listdir(traits.rootfs / "usr/lib/modules"))[-1]
    mark = f"boot/initramfs-{kver}.img"             # where the sample's dracut plugin leaves its bogus initrd
    add = ["kernel-install", "add", kver, f"/usr/lib/modules/{kver}/vmlinuz"]
    with overlay(traits, tmp_path) as (root, _upper), as_installed(root):
        mask = root / "etc/kernel/install.d/50-dracut.install"
        assert os.readlink(mask) == "/dev/null"
        proc = chroot(root, add)
        assert proc.returncode == 0, proc.stderr
        assert not (root / mark).exists()
        mask.unlink()                       # the same run without the mask does reach the plugin
        proc = chroot(root, add)
        assert proc.returncode == 0, proc.stderr
        assert (root / mark).read_bytes() == BOGUS_INITRD


def _tree(top: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, files in os.walk(top):
        for name in dirnames + files:
            path = Path(dirpath, name)
            kind = f"-> {os.readlink(path)}" if path.is_symlink() else "dir" if path.is_dir() else path.read_text()
            out[str(path.relative_to(top))] = kind
    return out


@cheat_aware(protects="/etc/crypto-policies is what crypto-policies' Lua %post makes (openssh and openssl "
                      "read the back-ends links)",
             cheats=["write config only", "copy the links from a list instead of the policy directory"],
             consequence="sshd and TLS clients start without the system crypto policy, or not at all")
def test_crypto_policy_matches_the_real_scriptlet(traits, sample_repo, tmp_path):
    # The truth: rpm itself running the package's Lua %post into an empty root.
    rpm = sample_repo.rpm("crypto-policies")
    truth = tmp_path / "truth"
    subprocess.run(["rpm", "-i", "--root", truth, "--nodeps", "--nosignature", "--nodigest", rpm],
                   check=True, capture_output=True)
    expected = _tree(truth / "etc/crypto-policies")
    assert expected["config"] == "DEFAULT\n" and expected["back-ends/opensshserver.config"].startswith("-> /usr")
    with overlay(traits, tmp_path) as (root, _upper):
        assert _tree(root / "etc/crypto-policies") == expected


def test_journal_is_persistent_on_the_installed_system(traits, tmp_path):
    with overlay(traits, tmp_path) as (root, _upper):
        journal = root / "var/log/journal"
        assert journal.is_dir() and not journal.is_symlink()
        assert journal.stat().st_mode & 0o7777 == 0o2755        # from tmpfiles' `z /var/log/journal`


@cheat_aware(protects="the images boot with SELinux off, and the manifest says so",
             cheats=["write SELINUX=disabled to /etc/selinux/config (ignored since RHEL 9)",
                     "state it in the manifest only"],
             consequence="a kernel with SELinux on meets unlabelled files: denials or an unbootable system")
def test_selinux_off_on_every_command_line(sample_iso, sample_build):
    import json
    manifest = json.loads((sample_build.output / "manifest.json").read_text())
    assert manifest["selinux"]["state"] == "disabled"
    assert all("selinux=0" in line.split() for line in manifest["boot"]["cmdlines"].values())
    for uki in (sample_build.workdir / "uki").glob("*.efi"):
        assert b"selinux=0" in uki.read_bytes()


@cheat_aware(protects="a package set with an SELinux policy is refused in one line, naming what pulled it in",
             cheats=["warn and build anyway", "check only the names in packages.txt"],
             consequence="an unlabelled image ships a policy that never applies, or one that denies everything")
def test_selinux_policy_is_refused(sample_repo, tmp_path):
    policy = minirepo.build_rpm(tmp_path, "selinux-policy-targeted")
    user = minirepo.build_rpm(tmp_path, "container-selinux", requires="selinux-policy-targeted")
    for rpm in (policy, user):
        minirepo.rpmsign(sample_repo, rpm)
    mirror = minirepo.make_mirror(sample_repo, tmp_path / "m", [policy, user])
    profile = minirepo.make_profile(sample_repo, tmp_path / "p", ["container-selinux"])
    proc = run_leviso("download", *dirs(tmp_path, profile), "--source", f"dir:{mirror}")
    assert_clean_failure(proc, "SELinux policy", "selinux-policy-targeted", "container-selinux", "hint:")
    assert not (profile / "leviso.lock").exists()
