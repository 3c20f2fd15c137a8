"""The sample set's EL10 packaging traits (tests/sample_repo/el10.py): the pure rules, and the
built RPMs read back with rpm itself (the crypto-policies %post run by rpm's own Lua)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.cheat_aware import cheat_aware
from tests.sample_repo import build_sample_repo
from tests.sample_repo.el10 import BOGUS_INITRD, module_package, post_lua_result, sysusers_deps

REPO_ROOT = Path(__file__).resolve().parents[2]
K = "6.12.1+deb13-amd64"


def test_sysusers_provides_are_rpm_4_19s():
    net, svc = 'u! systemd-network 192 "Net" - -', 'u svc 200:disk "Svc" - -'
    provides, requires = sysusers_deps(f"# comment\n\ng  disk 6 -\n{net}\n{svc}\nm svc disk\n")
    entry = lambda line: base64.b64encode(line.encode() + b"\0" * (-len(line) % 3)).decode()
    assert provides == ["group(disk) = " + entry("g disk 6 -"),
                        "user(systemd-network) = " + entry(net), "group(systemd-network)",
                        "user(svc) = " + entry(svc), "groupmember(svc/disk) = " + entry("m svc disk")]
    assert requires == ["user(svc)", "group(disk)"]
    assert not any("=" in p.split(" = ", 1)[-1] for p in provides if " = " in p)   # '=' is illegal in an EVR


def test_kernel_split_by_path():
    assert module_package(f"/usr/lib/modules/{K}/vmlinuz", K) == "kernel-core"
    assert module_package(f"/usr/lib/modules/{K}/modules.order", K) == "kernel-core"
    assert module_package(f"/usr/lib/modules/{K}/kernel/fs/erofs/erofs.ko.xz", K) == "kernel-modules-core"
    assert module_package(f"/usr/lib/modules/{K}/kernel/drivers/block/loop.ko.xz", K) == "kernel-modules-core"
    assert module_package(f"/usr/lib/modules/{K}/kernel/sound/core/snd.ko.xz", K) == "kernel-modules"
    assert module_package(f"/usr/lib/modules/{K}/kernel/drivers/net/wireless/x.ko.xz", K) == "kernel-modules"


@pytest.fixture(scope="session")
def built_sample():
    outdir = Path(os.environ.get("LEVITATE_SAMPLE_DIR", REPO_ROOT / ".cache" / "sample-repo"))
    return build_sample_repo(outdir)


def _rpmq(rpm: Path, *args: str) -> list[str]:
    out = subprocess.run(["rpm", "-qp", "--nosignature", *args, rpm], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@pytest.mark.slow
def test_kernel_is_split_and_requires_dracut(built_sample):
    kver = built_sample.kernel_version
    core = built_sample.rpm("kernel-core")
    assert "dracut >= 027" in _rpmq(core, "--requires")
    assert f"kernel-modules-core-uname-r = {kver}" in _rpmq(core, "--requires")
    assert not [f for f in _rpmq(core, "-l") if f.endswith(".ko.xz")]
    modules = _rpmq(built_sample.rpm("kernel-modules-core"), "-l")
    assert any(f.endswith("/erofs.ko.xz") for f in modules)
    assert not [f for f in modules if f.endswith(".ko")]          # xz-compressed, as RHEL's


@pytest.mark.slow
@pytest.mark.slow
@cheat_aware(protects="the sample's systemd has the kernel-install plugins EL10's has, not Debian's 55-initrd",
             cheats=["keeping Debian's plugin because it only prints a warning"],
             consequence="kernel-install in the sample runs a plugin Rocky does not have, so a test of "
                         "LevitateOS's plugin passes or fails beside a neighbour no user will ever see")
def test_systemd_ships_el10s_kernel_install_plugins(built_sample):
    plugins = sorted(f.rsplit("/", 1)[1] for f in _rpmq(built_sample.rpm("systemd"), "-l")
                     if f.startswith("/usr/lib/kernel/install.d/"))
    assert plugins == ["50-depmod.install", "90-loaderentry.install", "90-uki-copy.install"]


@cheat_aware(protects="the sample's dracut plugin leaves a visible bogus initrd if anything runs it",
             cheats=["ship an empty plugin", "make the plugin exit 0 without writing"],
             consequence="a build that lets kernel-install run dracut would pass unnoticed")
def test_dracut_plugin_writes_a_bogus_initrd_when_run(built_sample, tmp_path):
    subprocess.run(f"rpm2cpio {built_sample.rpm('dracut')} | cpio -idm --quiet", shell=True, cwd=tmp_path, check=True)
    stage = tmp_path / "stage"
    stage.mkdir()
    plugin = tmp_path / "usr/lib/kernel/install.d/50-dracut.install"
    subprocess.run([plugin, "add", "6.12.0", str(tmp_path / "entry")], check=True,
                   env={**os.environ, "KERNEL_INSTALL_STAGING_AREA": str(stage)})
    assert (stage / "initrd").read_bytes() == BOGUS_INITRD


@pytest.mark.slow
def test_filesystem_owns_the_root_and_release_package_is_required(built_sample):
    lines = _rpmq(built_sample.rpm("filesystem"), "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]")
    assert "dr-xr-xr-x /" in lines
    assert "system-release" in _rpmq(built_sample.rpm("setup"), "--requires")
    assert "system-release(releasever) = 10" in _rpmq(built_sample.rpm("levitate-sample-release"), "--provides")


@pytest.mark.slow
def test_dvd_repodata_is_unsigned_and_mirror_signed(built_sample):
    listing = subprocess.run(["xorriso", "-indev", built_sample.iso, "-find", "/", "-name", "repomd.xml*"],
                             capture_output=True, text=True, check=True).stdout
    assert "repomd.xml'" in listing and "repomd.xml.asc" not in listing
    assert (built_sample.repo("BaseOS") / "repodata" / "repomd.xml.asc").is_file()


@pytest.mark.slow
@cheat_aware(protects="crypto-policies' configuration exists only after its Lua %post, as on EL10",
             cheats=["ship /etc/crypto-policies/config in the payload", "drop the %post"],
             consequence="an image builder that skips the %post would look configured")
def test_crypto_policies_config_comes_from_the_lua_post(built_sample, tmp_path):
    rpm = built_sample.rpm("crypto-policies")
    payload = _rpmq(rpm, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    assert "cmng /etc/crypto-policies/config" in payload or any(
        l.endswith(" /etc/crypto-policies/config") and "g" in l.split()[0] for l in payload)
    root = tmp_path / "root"
    subprocess.run(["rpm", "--root", root, "--initdb"], check=True)
    subprocess.run(["rpm", "--root", root, "--nosignature", "--nodeps", "-i", rpm], check=True, capture_output=True)
    for path, want in post_lua_result().items():
        p = root / path[1:]
        got = "-> " + os.readlink(p) if p.is_symlink() else p.read_text()
        assert got == want, path
