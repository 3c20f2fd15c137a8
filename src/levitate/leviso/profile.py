"""The build profile: data that says what to build (archiso-style), read once into frozen objects.

A profile directory holds `profile.toml` (sources, trust anchor, resolution settings),
`packages.txt` (one package name per line, `#` comments) and overlay trees used by later stages.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError


@dataclass(frozen=True)
class SourceSettings:
    """Where packages come from by default; `--source` picks one and may override its location."""

    default: str = "mirror"               # mirror | iso | dir
    mirror_url: str = ""                  # repositories live at URL/REPO/ARCH/os/
    iso_url: str = ""                     # directory (URL or path) holding CHECKSUM and the ISOs
    iso_pattern: str = "Rocky-10.*-x86_64-dvd1.iso"
    iso_file: str = ""                    # pins one ISO file name instead of the newest match
    repos: tuple[str, ...] = ("BaseOS", "AppStream")
    arch: str = "x86_64"


@dataclass(frozen=True)
class KeySettings:
    """The trust anchor: the release key, used only when its fingerprint matches the pin."""

    file: str = "RPM-GPG-KEY-Rocky-10"    # looked up at the source's root (DVD root, mirror root)
    url: str = ""                         # fallback: the official download location
    fingerprint: str = ""                 # full fingerprint, spaces allowed

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.replace(" ", "").upper()


@dataclass(frozen=True)
class ResolveSettings:
    weak_deps: bool = False               # follow Recommends/Supplements
    pins: dict[str, str] = field(default_factory=dict)  # requirement -> package name
    exclude: tuple[str, ...] = ()         # package names never chosen


@dataclass(frozen=True)
class RootfsSettings:
    cpu_level: str = ""                   # e.g. "x86-64-v3": the host CPU must run the tree's tools


@dataclass(frozen=True)
class SystemSettings:
    """Base settings of the installable system (applied after presets)."""

    hostname: str = "levitateos"
    default_target: str = "multi-user.target"
    network: str = "NetworkManager"       # NetworkManager | systemd-networkd: DHCP on wired links
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    timezone: str = "UTC"                 # written only when the tree has no /etc/localtime,
    locale: str = "C.UTF-8"               # /etc/locale.conf (LANG=)
    keymap: str = "us"                    # or /etc/vconsole.conf (KEYMAP=): firstboot asks for missing ones


@dataclass(frozen=True)
class OsReleaseSettings:
    name: str = "LevitateOS"
    id: str = "levitateos"
    id_like: str = "rocky rhel centos fedora"
    version_id: str = "0.1"
    pretty_name: str = "LevitateOS 0.1"
    home_url: str = "https://levitateos.org/"


@dataclass(frozen=True)
class ImageSettings:
    label: str = "LEVITATEOS"             # ISO volume label; the initramfs finds the medium by it
    compression: str = "lz4hc"            # mkfs.erofs -z (erofs-utils 1.5: lz4, lz4hc)
    allow_squashfs: bool = True           # fall back to squashfs when the kernel cannot mount EROFS
    required_binaries: tuple[str, ...] = ("/usr/bin/bash", "/usr/lib/systemd/systemd")


@dataclass(frozen=True)
class BusyboxSettings:
    """A static busybox for the initramfs: a pinned download, or a file of a package in the set."""

    url: str = "https://busybox.net/downloads/binaries/1.35.0-x86_64-linux-musl/busybox"
    sha256: str = "6e123e7f3202a8c1e9b1f94d8941580a25135382b99e8d3e34fb858bba311348"
    package: str = ""                     # e.g. "busybox-static": take `path` from the extracted tree
    path: str = "/usr/bin/busybox"


@dataclass(frozen=True)
class InitramfsSettings:
    modules: tuple[str, ...] = (
        "ahci", "sr_mod", "sd_mod", "nvme", "virtio_pci", "virtio_blk", "virtio_scsi", "xhci_pci",
        "usb_storage", "uas", "isofs", "loop", "erofs", "squashfs", "overlay", "efivarfs")
    required_modules: tuple[str, ...] = ("isofs", "loop", "overlay")
    compression: str = "auto"


@dataclass(frozen=True)
class BootSettings:
    cmdline: str = "console=tty0 console=ttyS0,115200"
    timeout: int = 3                      # systemd-boot menu timeout, seconds


@dataclass(frozen=True)
class ProfileSettings:
    name: str = ""                        # empty: the profile directory's name


@dataclass(frozen=True)
class Profile:
    path: Path
    name: str
    source: SourceSettings
    key: KeySettings
    resolve: ResolveSettings
    rootfs: RootfsSettings
    system: SystemSettings
    os_release: OsReleaseSettings
    image: ImageSettings
    busybox: BusyboxSettings
    initramfs: InitramfsSettings
    boot: BootSettings
    packages: tuple[str, ...]

    @property
    def lock_path(self) -> Path:
        return self.path / "leviso.lock"

    @property
    def rootfs_overlay(self) -> Path:
        """Files copied over the base image (`rootfs/`), as archiso's airootfs."""
        return self.path / "rootfs"

    @property
    def live_overlay(self) -> Path:
        """Files copied into the live layer only (`live/`)."""
        return self.path / "live"


def read_package_list(path: Path) -> tuple[str, ...]:
    """packages.txt: one name per line; `#` starts a comment; blank lines ignored."""
    names: list[str] = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _section(cls, data: dict, where: str):
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise LevitateError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}",
                            f"known settings: {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def load_profile(directory: str | Path) -> Profile:
    directory = Path(directory).resolve()
    toml_path = directory / "profile.toml"
    if not toml_path.is_file():
        raise LevitateError(f"no profile at {directory} (missing profile.toml)",
                            "pass --profile DIR pointing at a directory with profile.toml and packages.txt")
    try:
        data = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LevitateError(f"{toml_path}: {exc}", "fix the TOML syntax") from None
    packages_path = directory / "packages.txt"
    if not packages_path.is_file():
        raise LevitateError(f"{packages_path} is missing", "list the packages to install, one per line")
    packages = read_package_list(packages_path)
    if not packages:
        raise LevitateError(f"{packages_path} lists no packages", "list the packages to install, one per line")
    sections = ("profile", "source", "key", "resolve", "rootfs", "system", "os_release", "image", "busybox",
                "initramfs", "boot")
    unknown = set(data) - set(sections)
    if unknown:
        raise LevitateError(f"{toml_path}: unknown section(s) {', '.join(sorted(unknown))}",
                            f"known sections: {', '.join(sections)}")
    resolve = dict(data.get("resolve", {}))
    meta = _section(ProfileSettings, data.get("profile", {}), f"{toml_path} [profile]")
    return Profile(
        path=directory,
        name=meta.name or directory.name,
        source=_section(SourceSettings, data.get("source", {}), f"{toml_path} [source]"),
        key=_section(KeySettings, data.get("key", {}), f"{toml_path} [key]"),
        resolve=_section(ResolveSettings, resolve, f"{toml_path} [resolve]"),
        rootfs=_section(RootfsSettings, data.get("rootfs", {}), f"{toml_path} [rootfs]"),
        system=_section(SystemSettings, data.get("system", {}), f"{toml_path} [system]"),
        os_release=_section(OsReleaseSettings, data.get("os_release", {}), f"{toml_path} [os_release]"),
        image=_section(ImageSettings, data.get("image", {}), f"{toml_path} [image]"),
        busybox=_section(BusyboxSettings, data.get("busybox", {}), f"{toml_path} [busybox]"),
        initramfs=_section(InitramfsSettings, data.get("initramfs", {}), f"{toml_path} [initramfs]"),
        boot=_section(BootSettings, data.get("boot", {}), f"{toml_path} [boot]"),
        packages=packages,
    )
