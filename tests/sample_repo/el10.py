"""EL10 packaging traits given to the repacked Debian 13 set, so the sample fails where Rocky
Linux 10 would: the kernel split as kernel.spec splits it, firmware and microcode under EL10's
names (xz-compressed as linux-firmware's `make install-xz`), vendor firmware reachable only
weakly or not at all, user()/group() provides from sysusers.d (rpm >= 4.19), and the synthetic
`dracut`, `crypto-policies` and release packages.

Sources relied on: Fedora/CentOS Stream kernel.spec (%kernel_reqprovconf, kernel_prereq,
initrd_prereq), linux-firmware.spec (Recommends, install-xz, amd-ucode-firmware's %files),
crypto-policies.spec (Fedora 41: %install, %post -p <lua>, %files), rpm's fileattrs/sysusers.attr
and %add_sysuser, rocky-release.spec (/etc/dnf/vars), Fedora's "Relocate RPM database to /usr"
change (https://fedoraproject.org/wiki/Changes/RelocateRPMToUsr, Fedora 36, inherited by EL10).
"""

from __future__ import annotations

import base64
import dataclasses
import lzma
import os
import posixpath
import re
import shutil
from pathlib import Path

from .mapping import RpmEVR
from .repack import Entry
from .rpmspec import RpmPackage
from .setup_pkg import PackageTree

# ---------------------------------------------------------------------------------------------
# The kernel: kernel (meta) -> kernel-core (vmlinuz, config, modules.* metadata) ->
# kernel-modules-core (what a machine needs to boot) and kernel-modules (the rest).

# Module directories that go to kernel-modules (kernel.spec's filter-modules.sh moves drivers
# of these kinds out of kernel-modules-core); everything else is kernel-modules-core.
MODULES_EXTRA = (
    "sound/", "net/bluetooth/", "net/mac80211/", "net/wireless/", "net/nfc/", "net/can/",
    "drivers/media/", "drivers/gpu/", "drivers/net/wireless/", "drivers/bluetooth/",
    "drivers/infiniband/", "drivers/staging/", "drivers/iio/", "drivers/hwmon/", "drivers/isdn/",
    "drivers/mtd/", "drivers/mmc/", "drivers/platform/", "drivers/input/joystick/",
    "drivers/input/touchscreen/", "drivers/firewire/", "drivers/atm/", "drivers/nfc/", "drivers/w1/",
    "drivers/leds/", "drivers/power/", "drivers/fpga/", "drivers/ntb/", "drivers/pcmcia/",
    "drivers/uio/", "drivers/memstick/", "drivers/soundwire/",
)
# kernel.spec: kernel_prereq, initrd_prereq and the linux-firmware lines of %kernel_reqprovconf.
KERNEL_CORE_REQUIRES_PRE = (
    "coreutils", "systemd >= 203-2", "/usr/bin/kernel-install", "dracut >= 027",
    "((linux-firmware >= 20150904-56.git6ebf5d57) if linux-firmware)",
)


def kernel_scripts(kver: str) -> dict[str, dict[str, str]]:
    """kernel.spec's scriptlets, per subpackage: kernel-core's %posttrans runs `kernel-install add`
    (kernel_variant_posttrans; the weak-modules lines are left out, the sample has none) and its
    %preun `kernel-install remove` (kernel_variant_preun); the module packages run depmod in %post
    and %postun (kernel_modules_post, kernel_modules_core_post). leviso runs none of them (it
    replays depmod itself); `dnf upgrade` and installonly_limit's removals do."""
    depmod = f"/sbin/depmod -a {kver}"
    return {"kernel-core": {"posttrans": f"/bin/kernel-install add {kver} /lib/modules/{kver}/vmlinuz || exit $?",
                            "preun": f"/bin/kernel-install remove {kver} || exit $?"},
            "kernel-modules-core": {"post": depmod, "postun": depmod},
            "kernel-modules": {"post": depmod, "postun": depmod}}


def module_package(path: str, kver: str) -> str:
    """Which kernel subpackage a path of the Debian kernel package goes to."""
    top = f"/usr/lib/modules/{kver}/kernel/"
    if path.startswith(top) or path == top.rstrip("/"):
        rel = path[len(top):]
        return "kernel-modules" if rel.startswith(MODULES_EXTRA) else "kernel-modules-core"
    return "kernel-core"


def split_kernel(image: RpmPackage, kver: str, meta_tree: Path) -> list[RpmPackage]:
    """linux-image-KVER -> kernel-core, kernel-modules-core, kernel-modules (one shared build
    root, each %files its own part) and an empty `kernel` meta package."""
    parts: dict[str, list[Entry]] = {"kernel-core": [], "kernel-modules-core": [], "kernel-modules": []}
    for e in image.entries:
        name = module_package(e.path, kver)
        if e.kind == "dir" and name == "kernel-modules":
            name = "kernel-modules-core"          # directories stay with the core set
        parts[name].append(e)
    uname = f"= {kver}"
    scripts = kernel_scripts(kver)
    common = dict(evr=image.evr, arch="x86_64", tree=image.tree, url=image.url, license=image.license,
                  description=image.description)
    core = RpmPackage(
        name="kernel-core", summary="The Linux kernel (vmlinuz, config, module metadata)",
        entries=parts["kernel-core"], **common,
        provides=[f"kernel = {image.evr}", f"kernel-uname-r {uname}", f"kernel-core-uname-r {uname}",
                  "installonlypkg(kernel)"],
        requires=["filesystem", f"kernel-modules-core-uname-r {uname}"],
        requires_pre=list(KERNEL_CORE_REQUIRES_PRE), recommends=["linux-firmware"], scripts=scripts["kernel-core"])
    modules_core = RpmPackage(
        name="kernel-modules-core", summary="Core kernel modules to match the core kernel",
        entries=parts["kernel-modules-core"], **common,
        provides=[f"kernel-modules-core-uname-r {uname}", "installonlypkg(kernel-module)"],
        requires=[f"kernel-uname-r {uname}"], scripts=scripts["kernel-modules-core"])
    modules = RpmPackage(
        name="kernel-modules", summary="Kernel modules to match the core kernel",
        entries=parts["kernel-modules"], **common,
        provides=[f"kernel-modules-uname-r {uname}", "installonlypkg(kernel-module)"],
        requires=[f"kernel-uname-r {uname}", f"kernel-modules-core-uname-r {uname}"],
        requires_pre=["((linux-firmware >= 20150904-56.git6ebf5d57) if linux-firmware)"],
        recommends=["linux-firmware"], scripts=scripts["kernel-modules"])
    meta_tree.mkdir(parents=True, exist_ok=True)
    meta = RpmPackage(
        name="kernel", evr=image.evr, arch="x86_64", tree=meta_tree, entries=[],
        summary="The Linux kernel (meta package)", description="The kernel meta package.",
        license=image.license,
        requires=[f"kernel-core-uname-r {uname}", f"kernel-modules-uname-r {uname}",
                  f"kernel-modules-core-uname-r {uname}"])
    return [core, modules_core, modules, meta]


# ---------------------------------------------------------------------------------------------
# Firmware and microcode under EL10's names

FIRMWARE = "/usr/lib/firmware/"
# linux-firmware.spec's Recommends; only amd-ucode-firmware is in the sample set. No iwlwifi
# package is in that list, not even weakly (CentOS Stream 10 images shipped without Wi-Fi).
LINUX_FIRMWARE_RECOMMENDS = ("amd-ucode-firmware",)


def xz_firmware(pkg: RpmPackage) -> None:
    """Compress every firmware file in place as `make install-xz` does (xz with CRC32, the only
    check the kernel's firmware loader accepts), and point firmware links at the .xz names."""
    for e in pkg.entries:
        if not e.path.startswith(FIRMWARE) or e.kind == "dir":
            continue
        src = pkg.tree / e.path[1:]
        if e.kind == "file":
            data = src.read_bytes()
            (pkg.tree / (e.path[1:] + ".xz")).write_bytes(lzma.compress(data, check=lzma.CHECK_CRC32))
            src.unlink()
        else:
            target = os.readlink(src)
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(e.path), target))
            if (pkg.tree / resolved[1:]).is_dir():
                continue
            src.unlink()
            os.symlink(target + ".xz", pkg.tree / (e.path[1:] + ".xz"))
        e.path += ".xz"


def rename(pkg: RpmPackage, name: str, summary: str, keep: tuple[str, ...], **changes) -> RpmPackage:
    """`pkg` under its EL10 name, with only the paths below `keep` (what EL10's package ships;
    Debian's initramfs-tools hooks, /etc/default and modprobe blacklists are not)."""
    entries = [e for e in pkg.entries if e.path.startswith(keep) or any(k.startswith(e.path + "/") for k in keep)]
    fields = dict(name=name, summary=summary, entries=entries, config=pkg.config & {e.path for e in entries},
                  provides=[], conflicts=[], recommends=[])
    return dataclasses.replace(pkg, **(fields | changes))


def firmware_packages(by_name: dict[str, RpmPackage], work: Path) -> list[RpmPackage]:
    """linux-firmware (from firmware-linux-free), amd-ucode-firmware (amd64-microcode),
    microcode_ctl (intel-microcode) and the synthetic linux-firmware-whence and
    iwlwifi-mvm-firmware. Intel microcode stays uncompressed at /usr/lib/firmware/intel-ucode/
    (microcode_ctl ships it so); AMD's is .bin.xz as linux-firmware's install-xz leaves it."""
    whence = PackageTree(work / "linux-firmware-whence")
    whence.file("/usr/share/licenses/linux-firmware/WHENCE",
                "Sample set: the firmware comes from Debian's firmware-linux-free and amd64-microcode.\n")
    fw_evr = RpmEVR(None, "20250410", "1.el10_sample")
    needs_whence = [f"linux-firmware-whence = {fw_evr}"]
    linux_firmware = rename(by_name["firmware-linux-free"], "linux-firmware",
                            "Firmware files used by the Linux kernel", (FIRMWARE,), evr=fw_evr, arch="noarch",
                            requires=needs_whence, recommends=list(LINUX_FIRMWARE_RECOMMENDS))
    amd = rename(by_name["amd64-microcode"], "amd-ucode-firmware", "Microcode updates for AMD CPUs",
                 (FIRMWARE + "amd/", FIRMWARE + "amd-ucode/", FIRMWARE + "amdtee/"), evr=fw_evr, arch="noarch",
                 requires=needs_whence)
    for p in (linux_firmware, amd):
        xz_firmware(p)
    intel = rename(by_name["intel-microcode"], "microcode_ctl", "CPU microcode updates for Intel x86 processors",
                   (FIRMWARE + "intel-ucode/",), arch="noarch", requires=[])
    iwl = PackageTree(work / "iwlwifi-mvm-firmware")
    iwl.file(FIRMWARE + "iwlwifi-sample-mvm-1.ucode.xz",
             lzma.compress(b"LevitateOS sample: stands in for Intel MVM Wi-Fi firmware\n", check=lzma.CHECK_CRC32))
    return [
        linux_firmware, amd, intel,
        _synthetic("linux-firmware-whence", fw_evr, whence, "WHENCE license file"),
        _synthetic("iwlwifi-mvm-firmware", fw_evr, iwl, "MVM Firmware for Intel(R) Wireless WiFi adapters",
                   requires=needs_whence),
    ]


# ---------------------------------------------------------------------------------------------
# dnf 4 and rpm under EL10's names (RHEL 10 ships dnf 4, not dnf5)

# Debian name -> EL10 name. The EL10 package Provides its Debian name at its version, so the
# Debian relations between them (`libdnf2t64 (>= 0.73)`) resolve as they are.
EL10_NAMES = {"libdnf2t64": "libdnf", "librepo0": "librepo", "libsolv1": "libsolv",
              "libmodulemd2": "libmodulemd", "libcomps0": "libcomps", "librpm10": "rpm-libs",
              "librpmbuild10": "rpm-build-libs", "librpmsign10": "rpm-sign-libs",
              "librpm-sequoia-1": "rpm-sequoia"}
# Debian packages whose files EL10 ships in another package: rpm's macros and plugins are in
# `rpm`, librpmio beside librpm in `rpm-libs`, libsolvext in `libsolv`, libdnf's data in `libdnf`.
EL10_MERGED = {"rpm-common": "rpm", "librpmio10": "rpm-libs", "libsolvext1": "libsolv",
               "libdnf2-common": "libdnf"}
# dnf-plugins-core.spec: the plugins themselves are python3-dnf-plugins-core, which requires
# python3-systemd (since system-upgrade moved into it; Debian's package does not depend on it, and
# dnf then says "Failed loading plugin system_upgrade" on every run).
PLUGINS_PYTHON = "/usr/lib/python3/"
PLUGINS_REQUIRE = "python3-systemd"
# Plugins Fedora/EL ship as their own python3-dnf-plugin-* subpackages, not installed by default
# (Debian ships them all in one): left out. `local` would add a `_dnf_local` repository to
# every transaction, without a key.
SEPARATE_PLUGINS = ("local", "leaves", "show_leaves", "versionlock", "post-transaction-actions",
                    "pre-transaction-actions", "modulesync")


def _separate_plugin(path: str) -> bool:
    name = posixpath.basename(path).removesuffix(".py").removesuffix(".conf").removesuffix(".list")
    return path.startswith((PLUGINS_PYTHON, "/etc/dnf/plugins/")) and name in SEPARATE_PLUGINS
# RHEL's /etc/dnf/dnf.conf (dnf-data): upstream's file with the distribution overrides dnf.conf(5)
# allows, best=True and skip_if_unavailable=False (Debian keeps upstream's False/True).
DNF_CONF = """\
[main]
gpgcheck=1
installonly_limit=3
clean_requirements_on_remove=True
best=True
skip_if_unavailable=False
"""
RPMDB = "/usr/lib/sysimage/rpm"
OLD_RPMDB = "/var/lib/rpm"
_DBPATH = re.compile(r"^%_dbpath\s+%\{_var\}/lib/rpm$", re.M)


def _provides_old_name(pkg: RpmPackage, old: str) -> None:
    pkg.provides.append(f"{old} = {pkg.evr}")


def _merge_into(main: RpmPackage, other: RpmPackage) -> None:
    """`other`'s files moved into `main`'s build root and %files; its relations added."""
    have = {e.path for e in main.entries}
    for e in other.entries:
        if e.kind == "dir":
            (main.tree / e.path[1:]).mkdir(parents=True, exist_ok=True)
        else:
            dest = main.tree / e.path[1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(other.tree / e.path[1:], dest)
        if e.path not in have:
            main.entries.append(e)
    main.entries.sort(key=lambda e: e.path)
    main.config |= other.config
    for mine, theirs in ((main.requires, other.requires), (main.recommends, other.recommends),
                         (main.provides, other.provides)):
        mine += [r for r in theirs if r not in mine]
    _provides_old_name(main, other.name)


def _replace_file(pkg: RpmPackage, path: str, text: str) -> None:
    dest = pkg.tree / path[1:]
    if not any(e.path == path and e.kind == "file" for e in pkg.entries):
        raise ValueError(f"{pkg.name} ships no file {path}")
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, dest.stat().st_mode)
    os.replace(tmp, dest)


def rpmdb_in_usr(rpm: RpmPackage) -> None:
    """rpm as Fedora 36+ (so EL10) ships it: %_dbpath is /usr/lib/sysimage/rpm, and /var/lib/rpm
    a link to it (Debian's rpm keeps the database in /var/lib/rpm, a directory)."""
    macros = rpm.tree / "usr/lib/rpm/macros"
    text, n = _DBPATH.subn("%_dbpath\t\t%{_usr}/lib/sysimage/rpm", macros.read_text())
    if n != 1:
        raise ValueError("rpm's macros: no `%_dbpath %{_var}/lib/rpm` line to move to /usr/lib/sysimage/rpm")
    _replace_file(rpm, "/usr/lib/rpm/macros", text)
    (rpm.tree / OLD_RPMDB[1:]).rmdir()
    os.symlink("../../usr/lib/sysimage/rpm", rpm.tree / OLD_RPMDB[1:])
    (rpm.tree / RPMDB[1:]).mkdir(parents=True)
    entries = [e for e in rpm.entries if e.path != OLD_RPMDB]
    entries += [Entry(OLD_RPMDB, "link", 0o777, "root", "root", OLD_RPMDB),
                Entry(posixpath.dirname(RPMDB), "dir", 0o755, "root", "root", posixpath.dirname(RPMDB)),
                Entry(RPMDB, "dir", 0o755, "root", "root", RPMDB)]
    rpm.entries = sorted(entries, key=lambda e: e.path)


# Debian's own kernel-install plugin: it copies /boot/initrd.img-KVER, a Debian convention. Fedora's
# and EL10's systemd ship 50-depmod, 90-loaderentry and 90-uki-copy only (systemd's
# src/kernel-install/meson.build; Debian adds 55-initrd from debian/extra/kernel-install.d).
DEBIAN_ONLY_FILES = ("/usr/lib/kernel/install.d/55-initrd.install",)


def drop_debian_only_files(packages: list[RpmPackage]) -> None:
    """Remove files only Debian's packaging adds, which a Rocky system does not have."""
    for pkg in packages:
        dropped = [e for e in pkg.entries if e.path in DEBIAN_ONLY_FILES]
        for e in dropped:
            (pkg.tree / e.path[1:]).unlink()
        if dropped:
            pkg.entries = [e for e in pkg.entries if e.path not in DEBIAN_ONLY_FILES]
            pkg.config -= set(DEBIAN_ONLY_FILES)


def dnf_stack(packages: list[RpmPackage]) -> list[RpmPackage]:
    """The rpm and dnf packages under their EL10 names and with EL10's configuration."""
    by_name = {p.name: p for p in packages}
    for old, new in EL10_NAMES.items():
        pkg = by_name[old]
        pkg.name = new
        _provides_old_name(pkg, old)
    by_name = {p.name: p for p in packages}
    merged = set(EL10_MERGED)
    for old, into in EL10_MERGED.items():
        _merge_into(by_name[into], by_name[old])
    kept = [p for p in packages if p.name not in merged]
    by_name = {p.name: p for p in kept}
    rpmdb_in_usr(by_name["rpm"])
    _replace_file(by_name["dnf-data"], "/etc/dnf/dnf.conf", DNF_CONF)
    plugins = by_name["dnf-plugins-core"]
    plugins.entries = [e for e in plugins.entries if not _separate_plugin(e.path)]
    plugins.config = {c for c in plugins.config if not _separate_plugin(c)}
    python = dataclasses.replace(
        plugins, name="python3-dnf-plugins-core", summary="Core Plugins for DNF (Python 3 modules)",
        entries=[e for e in plugins.entries if e.path.startswith(PLUGINS_PYTHON)],
        config={c for c in plugins.config if c.startswith(PLUGINS_PYTHON)}, provides=[], recommends=[],
        requires=[*plugins.requires, PLUGINS_REQUIRE])
    plugins.entries = [e for e in plugins.entries if not e.path.startswith(PLUGINS_PYTHON)]
    plugins.requires = ["filesystem", f"python3-dnf-plugins-core = {plugins.evr}"]
    return kept + [python]


# ---------------------------------------------------------------------------------------------
# user()/group() provides, as rpm >= 4.19 generates them from sysusers.d files

SYSUSERS_DIR = "/usr/lib/sysusers.d/"


def sysusers_deps(text: str) -> tuple[list[str], list[str]]:
    """(provides, requires) of one sysusers.d file, as rpm's fileattrs/sysusers.attr makes them:
    each line split on whitespace and handed to %add_sysuser -b, whose entry is the fields
    joined by one space, NUL-padded to a multiple of 3 bytes (an EVR cannot hold base64's '='),
    base64-encoded as the provide's version. A `u` line
    whose ID has no ':' also creates (and provides, unversioned) the group of the same name;
    an `m` line provides groupmember(USER/GROUP) and requires user(USER) and group(GROUP)."""
    provides, requires = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, name = fields[0], fields[1]
        entry = " ".join(fields).encode()
        encoded = base64.b64encode(entry + b"\0" * (-len(entry) % 3)).decode()
        if kind in ("u", "u!"):
            provides.append(f"user({name}) = {encoded}")
            if len(fields) < 3 or ":" not in fields[2]:
                provides.append(f"group({name})")
        elif kind == "g":
            provides.append(f"group({name}) = {encoded}")
        elif kind == "m" and len(fields) >= 3:
            provides.append(f"groupmember({name}/{fields[2]}) = {encoded}")
            requires += [f"user({name})", f"group({fields[2]})"]
    return provides, requires


def add_sysusers_deps(packages: list[RpmPackage]) -> None:
    for pkg in packages:
        for e in pkg.entries:
            if e.kind == "file" and e.path.startswith(SYSUSERS_DIR) and e.path.endswith(".conf"):
                provides, requires = sysusers_deps((pkg.tree / e.path[1:]).read_text())
                pkg.provides += [p for p in provides if p not in pkg.provides]
                pkg.requires += [r for r in requires if r not in pkg.requires]


# ---------------------------------------------------------------------------------------------
# Synthetic packages

def _synthetic(name: str, evr: RpmEVR, tree: PackageTree, summary: str, **kw) -> RpmPackage:
    return RpmPackage(name=name, evr=evr, arch="noarch", summary=summary,
                      description=f"{summary}.\nBuilt for LevitateOS tests only.", tree=tree.root,
                      entries=tree.entries, license="Public Domain", **kw)


DRACUT_INSTALL = "/usr/lib/kernel/install.d/50-dracut.install"
BOGUS_INITRD = b"BOGUS INITRD: the sample dracut ran; LevitateOS must never run it\n"
_DRACUT_PLUGIN = """\
#!/bin/sh
# LevitateOS sample: stands in for dracut's kernel-install plugin. LevitateOS builds its own
# initramfs, so this must NEVER run. If it does, it leaves a bogus initrd where dracut's would go
# (the staging area, and /boot/initramfs-KVER.img), so tests see it ran.
[ "$1" = add ] || exit 0
for dest in "${KERNEL_INSTALL_STAGING_AREA:+$KERNEL_INSTALL_STAGING_AREA/initrd}" "/boot/initramfs-$2.img"; do
    [ -n "$dest" ] && echo 'BOGUS_TEXT' > "$dest"
done
exit 0
"""
_DRACUT = """\
#!/bin/sh
# LevitateOS sample: stands in for dracut. It must never run (see 50-dracut.install).
echo "dracut (LevitateOS sample): must not run" >&2
exit 1
"""


def make_dracut(work: Path) -> RpmPackage:
    """`dracut`, which kernel-core requires (initrd_prereq) and whose plugin must not run."""
    tree = PackageTree(work / "dracut")
    tree.file(DRACUT_INSTALL, _DRACUT_PLUGIN.replace("BOGUS_TEXT", BOGUS_INITRD.decode().rstrip("\n")), 0o755)
    tree.file("/usr/bin/dracut", _DRACUT, 0o755)
    return _synthetic("dracut", RpmEVR(None, "105", "1.el10_sample"), tree,
                      "Initramfs generator (sample stand-in that must not run)",
                      requires=["filesystem", "/bin/sh"])


RELEASE_NAME = "levitate-sample-release"
RELEASE_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-levitate-sample"
# EL10's release package (redhat-release / rocky-release): 90-default.preset enables the
# distribution's services, 99-default-disable.preset disables everything else. Only lines for
# units of this set's kind matter here; systemd-firstboot.service has no [Install] section
# (upstream systemd enables it statically in sysinit.target.wants, Debian's 257 too), so no
# preset line can turn it on or off.
PRESET_DEFAULT = """\
# Also see: https://fedoraproject.org/wiki/Starting_services_by_default
enable remote-fs.target
enable getty@.service
enable sshd.service
enable chronyd.service
enable NetworkManager.service
enable NetworkManager-wait-online.service
enable dbus-broker.service
enable systemd-boot-update.service
"""
PRESET_DISABLE = "disable *\n"


# Where the sample's repositories are: a dnf variable, as rocky-release ships
# /etc/dnf/vars/contentdir for rocky.repo's URLs. Its default names no real host (.invalid): the
# sample mirror is served from a test's loopback server, so whoever points a system at it sets
# it (`echo URL > /etc/dnf/vars/samplehost` or DNF_VAR_samplehost=URL), URL being the sample
# output's root, which holds mirror/ and updates/.
SAMPLE_HOST_VAR = "samplehost"
SAMPLE_HOST_DEFAULT = "http://sample-mirror.levitateos.invalid"
UPDATES_REPO_ID = "updates"


def repo_file(key_path: str) -> str:
    """/etc/yum.repos.d/levitate-sample.repo, shaped as rocky.repo, with the baseurl in use (the
    sample has no mirrorlist service) and repo_gpgcheck on: the sample signs every repomd.xml.
    [updates] is the sample's update repository (Rocky publishes updates into BaseOS and
    AppStream themselves; the sample keeps them apart so the base set stays the base set)."""
    out = []
    sections = [(r.lower(), r, f"mirror/{r}/$basearch/os/") for r in ("BaseOS", "AppStream")]
    sections.append((UPDATES_REPO_ID, "Updates", "updates/$basearch/os/"))
    for repo_id, name, path in sections:
        out.append(f"[{repo_id}]\nname=LevitateSample $releasever - {name}\n"
                   f"baseurl=${SAMPLE_HOST_VAR}/{path}\n"
                   f"gpgcheck=1\nrepo_gpgcheck=1\nenabled=1\nmetadata_expire=6h\ngpgkey=file://{key_path}\n")
    return "\n".join(out)


def make_release(work: Path, key: bytes) -> RpmPackage:
    tree = PackageTree(work / RELEASE_NAME)
    tree.file("/etc/levitate-sample-release", "LevitateSample Linux release 10.0 (Sample)\n")
    tree.link("/etc/system-release", "levitate-sample-release")
    tree.link("/etc/redhat-release", "levitate-sample-release")
    tree.file("/etc/system-release-cpe", "cpe:/o:levitate:sample:10::baseos\n")
    tree.file("/usr/lib/systemd/system-preset/90-default.preset", PRESET_DEFAULT)
    tree.file("/usr/lib/systemd/system-preset/99-default-disable.preset", PRESET_DISABLE)
    tree.file("/etc/yum.repos.d/levitate-sample.repo", repo_file(RELEASE_KEY))
    tree.file(f"/etc/dnf/vars/{SAMPLE_HOST_VAR}", SAMPLE_HOST_DEFAULT + "\n")
    tree.file(RELEASE_KEY, key)
    pkg = _synthetic(RELEASE_NAME, RpmEVR(None, "10.0", "1.el10_sample"), tree,
                     "LevitateSample release files (as rocky-release, rocky-repos, rocky-gpg-keys)",
                     provides=["system-release", "system-release = 10.0", "system-release(releasever) = 10"])
    pkg.config = {"/etc/yum.repos.d/levitate-sample.repo", f"/etc/dnf/vars/{SAMPLE_HOST_VAR}"}
    return pkg


CRYPTO_BACKENDS = ("bind", "gnutls", "java", "krb5", "libreswan", "libssh", "nss", "openssh",
                   "opensshserver", "openssl", "opensslcnf", "openssl_fips", "rpm-sequoia", "sequoia")
CRYPTO_ETC = "/etc/crypto-policies"
CRYPTO_SHARE = "/usr/share/crypto-policies"
# Fedora 41 crypto-policies.spec, %post -p <lua>, the first-install branch (%{_sysconfdir} and
# %{_datarootdir} expanded; the `else` branch, FIPS overlay re-mounting on upgrade, left out).
CRYPTO_POST_LUA = """\
if not posix.access("/etc/crypto-policies/config") then
    local policy = "DEFAULT"
    local cf = io.open("/proc/sys/crypto/fips_enabled", "r")
    if cf then
        if cf:read() == "1" then
            policy = "FIPS"
        end
        cf:close()
    end
    cf = io.open("/etc/crypto-policies/config", "w")
    if cf then
        cf:write(policy.."\\n")
        cf:close()
    end
    cf = io.open("/etc/crypto-policies/state/current", "w")
    if cf then
        cf:write(policy.."\\n")
        cf:close()
    end
    local policypath = "/usr/share/crypto-policies/"..policy
    for fn in posix.files(policypath) do
        if fn ~= "." and fn ~= ".." then
            local backend = fn:gsub(".*/", ""):gsub("%..*", "")
            local cfgfn = "/etc/crypto-policies/back-ends/"..backend..".config"
            posix.unlink(cfgfn)
            posix.symlink(policypath.."/"..fn, cfgfn)
        end
    end
end
"""


def make_crypto_policies(work: Path) -> RpmPackage:
    """crypto-policies as Fedora/EL10 ship it: /etc/crypto-policies/config, state/ and the
    back-end links are %ghost, so they exist only after the Lua %post has run."""
    tree = PackageTree(work / "crypto-policies")
    ghost = {}
    for d in ("", "/back-ends", "/state", "/local.d", "/policies", "/policies/modules"):
        tree.dir(CRYPTO_ETC + d)
    tree.dir(CRYPTO_SHARE)
    tree.dir(CRYPTO_SHARE + "/DEFAULT")
    for policy in ("DEFAULT", "LEGACY", "FUTURE", "FIPS"):
        if policy != "DEFAULT":
            tree.dir(f"{CRYPTO_SHARE}/{policy}")
        for b in CRYPTO_BACKENDS:
            tree.file(f"{CRYPTO_SHARE}/{policy}/{b}.txt", f"# {policy} policy for {b} (LevitateOS sample)\n")
    tree.file(CRYPTO_SHARE + "/default-config", "DEFAULT\n")
    # What %install leaves in the build root for the %ghost lines (install -m 644 default-config,
    # touch state/*, ln -sf .../DEFAULT/X.txt back-ends/X.config): not in the payload.
    tree.file(CRYPTO_ETC + "/config", "DEFAULT\n")
    ghost[CRYPTO_ETC + "/config"] = "%config(missingok,noreplace)"
    for b in CRYPTO_BACKENDS:
        path = f"{CRYPTO_ETC}/back-ends/{b}.config"
        tree.link(path, f"{CRYPTO_SHARE}/DEFAULT/{b}.txt")
        ghost[path] = "%config(missingok,noreplace) %verify(not mode)"
    for s in ("current", "CURRENT.pol"):
        tree.file(f"{CRYPTO_ETC}/state/{s}", "")
        ghost[f"{CRYPTO_ETC}/state/{s}"] = ""
    return _synthetic("crypto-policies", RpmEVR(None, "20250714", "1.git1a2b3c4.el10_sample"), tree,
                      "System-wide crypto policies", ghost=ghost, scripts={"post -p <lua>": CRYPTO_POST_LUA})


def post_lua_result(policy: str = "DEFAULT") -> dict[str, str]:
    """What CRYPTO_POST_LUA leaves on a fresh install: path -> file text, or '-> target' for a
    link. The expectation replays of the %post are checked against."""
    out = {f"{CRYPTO_ETC}/config": policy + "\n", f"{CRYPTO_ETC}/state/current": policy + "\n"}
    for b in CRYPTO_BACKENDS:
        out[f"{CRYPTO_ETC}/back-ends/{b}.config"] = "-> " + posixpath.join(CRYPTO_SHARE, policy, f"{b}.txt")
    return out


# ---------------------------------------------------------------------------------------------
# The update repository's ordinary package

UPDATE_NOTE = "/usr/share/doc/{name}/LEVITATE-SAMPLE-UPDATE"
UPDATE_SCRIPTLET_LOG = "/var/lib/levitate-sample/update-scriptlets"


def update_build(pkg: RpmPackage, work: Path) -> RpmPackage:
    """A newer build of `pkg`, as a distribution's update is: Release bumped (1 -> 1.1), one
    file added that says so (the upgrade is visible on disk), and a %post that appends to
    UPDATE_SCRIPTLET_LOG (dnf runs scriptlets; the base set's packages have none)."""
    tree = work / f"{pkg.name}-update"
    shutil.copytree(pkg.tree, tree, symlinks=True)
    evr = RpmEVR(pkg.evr.epoch, pkg.evr.version, pkg.evr.release + ".1")
    note = UPDATE_NOTE.format(name=pkg.name)
    (tree / note[1:]).parent.mkdir(parents=True, exist_ok=True)
    (tree / note[1:]).write_text(f"{pkg.name} {evr}: the LevitateOS sample update repository's build\n")
    post = (f"mkdir -p {posixpath.dirname(UPDATE_SCRIPTLET_LOG)}\n"
            f'echo "{pkg.name} {evr} post $1" >> {UPDATE_SCRIPTLET_LOG}\n')
    entries = sorted([*pkg.entries, Entry(note, "file", 0o644, "root", "root", note)], key=lambda e: e.path)
    requires = list(pkg.requires) + ([] if "/bin/sh" in pkg.requires else ["/bin/sh"])
    return dataclasses.replace(pkg, tree=tree, evr=evr, entries=entries, requires=requires,
                               scripts={**pkg.scripts, "post": post})
