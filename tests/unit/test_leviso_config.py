"""Profile loading, --source parsing, preflight and the configuration helpers (no root needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from levitate.leviso import preflight
from levitate.leviso.configure import alternatives_in, check_cpu_level
from levitate.leviso.context import SourceSpec
from levitate.leviso.profile import load_profile
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

REPO = Path(__file__).resolve().parents[2]


def test_the_rocky_profile_pins_rocky_10s_release_key():
    profile = load_profile(REPO / "profiles/levitate")
    assert profile.key.fingerprint_hex == "FC226859C0860BF0DDB95B085B106C736FEDFC85"
    assert profile.source.repos == ("BaseOS", "AppStream")
    assert "kernel" in profile.packages and "NetworkManager" in profile.packages


# Names a Rocky Linux 10 repository does not have, and why: each stops the build at resolution.
NOT_IN_EL10 = {
    "passwd": "gone since Fedora 40: /usr/bin/passwd ships in shadow-utils",
    "gdisk": "retired in RHEL 10 (RHELMISC-6651); AlmaLinux has it only in its devel repo",
    "busybox": "not shipped in RHEL 10 (the initramfs takes the pinned busybox.net build)",
}
# EL10's linux-firmware pulls vendor firmware only as weak dependencies, and iwlwifi not even
# that; with weak_deps = false a laptop gets none of it unless the profile names it
# (AlmaLinux 10.0 package names).
EL10_VENDOR_FIRMWARE = (
    "iwlwifi-mvm-firmware", "iwlwifi-dvm-firmware", "iwlegacy-firmware", "qcom-firmware", "atheros-firmware",
    "brcmfmac-firmware", "mt7xxx-firmware", "realtek-firmware", "nxpwireless-firmware", "tiwilink-firmware",
    "libertas-firmware", "intel-gpu-firmware", "amd-gpu-firmware", "nvidia-gpu-firmware",
    "intel-audio-firmware", "cirrus-audio-firmware", "alsa-sof-firmware", "amd-ucode-firmware",
)


@cheat_aware(protects="the Rocky profile names only packages Rocky Linux 10 has, and the firmware a "
                      "laptop needs although EL10 pulls it only weakly",
             cheats=["keep a name because the Debian sample set has it"],
             consequence="`./dev build` stops at resolution on the real mirror, or the installed laptop "
                         "has no Wi-Fi")
def test_the_rocky_profile_names_el10_packages():
    packages = load_profile(REPO / "profiles/levitate").packages
    wrong = {name: why for name, why in NOT_IN_EL10.items() if name in packages}
    assert not wrong, wrong
    assert "shadow-utils" in packages
    assert [f for f in EL10_VENDOR_FIRMWARE if f not in packages] == []


def test_package_list_comments_and_blanks(tmp_path):
    shutil.copy(REPO / "profiles/levitate/profile.toml", tmp_path)
    (tmp_path / "packages.txt").write_text("# base\nbash   # the shell\n\n  coreutils\nbash\n")
    assert load_profile(tmp_path).packages == ("bash", "coreutils")


@pytest.mark.parametrize("toml,message", [
    ("[source]\nmirorr_url = 'x'\n", "unknown setting(s) mirorr_url"),
    ("[sytem]\nhostname = 'x'\n", "unknown section(s) sytem"),
    ("[profile]\nnmae = 'x'\n", "unknown setting(s) nmae"),
    ("[source\n", "profile.toml"),
])
def test_bad_profile_is_one_clear_error(tmp_path, toml, message):
    (tmp_path / "profile.toml").write_text(toml)
    (tmp_path / "packages.txt").write_text("bash\n")
    with pytest.raises(LevitateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_profile(tmp_path)


def test_missing_profile(tmp_path):
    with pytest.raises(LevitateError, match="missing profile.toml"):
        load_profile(tmp_path)


def test_source_spec_defaults_come_from_the_profile():
    profile = load_profile(REPO / "profiles/levitate")
    assert SourceSpec.parse(None, profile) == SourceSpec("mirror", "https://dl.rockylinux.org/pub/rocky/10")
    assert SourceSpec.parse("iso", profile).location.endswith("/isos/x86_64/")
    assert SourceSpec.parse("mirror:http://h/x", profile) == SourceSpec("mirror", "http://h/x")
    with pytest.raises(LevitateError, match="needs a location"):
        SourceSpec.parse("dir", profile)
    with pytest.raises(LevitateError, match="unknown source"):
        SourceSpec.parse("ftp:x", profile)


@cheat_aware(protects="a host CPU too old for x86-64-v3 binaries fails before the chroot, with a reason",
             cheats=["skip the check", "only look for 'avx'"],
             consequence="an obscure 'Illegal instruction' deep inside configuration")
def test_cpu_level_check():
    v3 = "flags\t: fpu sse4_1 sse4_2 ssse3 cx16 lahf_lm popcnt avx avx2 bmi1 bmi2 f16c fma abm movbe xsave\n"
    check_cpu_level("x86-64-v3", v3)
    check_cpu_level("", "flags\t: fpu\n")
    with pytest.raises(LevitateError, match="missing: avx2"):
        check_cpu_level("x86-64-v3", v3.replace(" avx2", ""))


def test_alternatives_calls_are_read_from_scriptlets():
    script = ("if [ $1 -eq 1 ]; then\n/usr/sbin/alternatives --install /usr/bin/ld ld /usr/bin/ld.bfd 50 \\\n"
              "  --slave /usr/share/man/man1/ld.1.gz ld.1 /usr/share/man/man1/ld.bfd.1.gz\nfi\n"
              "alternatives --install /usr/bin/x x $TARGET 10\n")
    assert alternatives_in(script) == [["--install", "/usr/bin/ld", "ld", "/usr/bin/ld.bfd", "50", "--slave",
                                        "/usr/share/man/man1/ld.1.gz", "ld.1", "/usr/share/man/man1/ld.bfd.1.gz"]]


def test_preflight_names_install_commands_for_three_distros(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    text, ok = preflight.report(["sample-repo"])
    assert not ok
    assert "apt-get install -y" in text and "dnf install -y" in text and "pacman -S" in text
    with pytest.raises(LevitateError, match="missing host tools: .*rpmbuild"):
        preflight.require(["sample-repo"])


def test_preflight_covers_the_image_iso_and_vm_tools(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LevitateError, match=r"missing host tools: xorriso, mkfs.fat, mcopy \(hint") as err:
        preflight.require(["iso"])
    assert "apt-get install -y dosfstools mtools xorriso" in err.value.hint
    with pytest.raises(LevitateError, match=r"tools: mkfs.erofs \(hint"):
        preflight.require(["image"])             # mksquashfs is optional: only EROFS is required
    with pytest.raises(LevitateError, match="depmod"):
        preflight.require(["initramfs"])


def test_preflight_finds_ovmf_where_qemu_would(monkeypatch, tmp_path):
    monkeypatch.setenv("OVMF_CODE", str(tmp_path / "missing_CODE.fd"))
    text, ok = preflight.report(["vm"])
    assert not ok and any(line.split()[:2] == ["OVMF", "MISSING"] for line in text.splitlines())
    (tmp_path / "OVMF_CODE.fd").write_bytes(b"\0")
    (tmp_path / "OVMF_VARS.fd").write_bytes(b"\0")
    monkeypatch.setenv("OVMF_CODE", str(tmp_path / "OVMF_CODE.fd"))
    text, _ = preflight.report(["vm"])
    assert any(line.split()[:2] == ["OVMF", "ok"] for line in text.splitlines())
