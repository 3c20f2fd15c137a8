"""First configuration of the extracted tree, by the tree's own tools, in a chroot.

Package scriptlets are not run (Rocky's are largely Lua, which needs rpm itself). Instead this
module replays what those scriptlets would have done that matters for booting and logging in.
The list below is the one place that says which step stands in for which package's scriptlet.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from ..util.run import run
from .chroot import chroot_mounts, in_chroot, tree_has
from ..boot.cpulevel import required_flags

log = logging.getLogger("levitate")


def check_cpu_level(level: str, cpuinfo: str | None = None) -> None:
    """The tree's binaries must run on this host: fail clearly when the CPU is too old."""
    needed = required_flags(level)
    if not needed:
        return
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    missing = [f for f in needed if f not in flags]
    if missing:
        raise LevitateError(f"this CPU cannot run the tree's {level} binaries (missing: {', '.join(missing)})",
                            "configure the tree on a host with AVX2 (Intel Haswell, AMD Excavator or newer); "
                            "under QEMU use -cpu host or -cpu max")


@dataclass
class ConfigureInput:
    root: Path
    rpm_paths: list[Path] = field(default_factory=list)    # for registering in the RPM database
    postin_scripts: dict[str, str] = field(default_factory=dict)  # NEVRA -> %post text


@dataclass(frozen=True)
class Step:
    name: str
    stands_in_for: str
    action: Callable[[ConfigureInput], None]


def _warn_on_failure(what: str, proc) -> None:
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        log.warning("%s finished with exit %d: %s", what, proc.returncode, " | ".join(lines[-3:]))


def sysusers(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/systemd-sysusers"):
        in_chroot(cfg.root, ["systemd-sysusers"], what="systemd-sysusers")


def ldconfig(cfg: ConfigureInput) -> None:
    tool = tree_has(cfg.root, "/usr/sbin/ldconfig", "/sbin/ldconfig")
    if tool:
        in_chroot(cfg.root, [tool], what="ldconfig")


def kernels(root: Path) -> list[str]:
    """Kernel versions present in the tree (a modules directory with a kernel image or modules)."""
    base = root / "usr/lib/modules"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir()
                  if d.is_dir() and ((d / "vmlinuz").exists() or (d / "kernel").is_dir()))


def depmod(cfg: ConfigureInput) -> None:
    for kver in kernels(cfg.root):
        if tree_has(cfg.root, "/usr/sbin/depmod", "/sbin/depmod"):
            in_chroot(cfg.root, ["depmod", "-a", kver], what=f"depmod {kver}")
        else:
            run(["depmod", "-b", cfg.root, kver], what=f"depmod {kver}")


def hwdb(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/systemd-hwdb"):
        in_chroot(cfg.root, ["systemd-hwdb", "update"], what="systemd-hwdb update")


def tmpfiles(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/systemd-tmpfiles"):
        argv = ["systemd-tmpfiles", "--create"] + [f"--exclude-prefix={p}" for p in
                                                   ("/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp")]
        # Some entries (e.g. ones needing a booted system) fail in a chroot; the rest still apply.
        _warn_on_failure("systemd-tmpfiles --create", in_chroot(cfg.root, argv, check=False))


def presets(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/systemctl"):
        in_chroot(cfg.root, ["systemctl", "preset-all"], what="systemctl preset-all")


def user_presets(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/systemctl"):
        in_chroot(cfg.root, ["systemctl", "--global", "preset-all"], what="systemctl --global preset-all")


def journal(cfg: ConfigureInput) -> None:
    """systemd's %post makes /var/log/journal on first install (Fedora/EL10 systemd.spec), so the
    installed system's journal is persistent (journald Storage=auto); tmpfiles' `z /var/log/journal`
    line then gives it its group and mode."""
    if tree_has(cfg.root, "/usr/lib/systemd/systemd-journald"):
        _directory_in_tree(cfg.root, "var/log/journal")


def _directory_in_tree(root: Path, relative: str) -> Path | None:
    """root/relative as a real directory inside the tree (made if missing), or None when a part of
    the path is a symlink: the tree's own links must not lead a write out of it."""
    path = root
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            log.warning("not writing under /%s: /%s is a symlink", relative, path.relative_to(root))
            return None
        if not path.exists():
            path.mkdir(mode=0o755)
    return path


CRYPTO_POLICY = "DEFAULT"


def crypto_policy(cfg: ConfigureInput) -> None:
    """What crypto-policies' Lua %post does on first install (Fedora and CentOS Stream 10
    crypto-policies.spec): unless /etc/crypto-policies/config exists, write the policy's name to it
    and to state/current, and link back-ends/BACKEND.config to /usr/share/crypto-policies/POLICY/FILE
    for each FILE of the policy (BACKEND: FILE up to its first dot). The %post picks FIPS when the
    installing kernel runs in FIPS mode; an image is made for any machine, so DEFAULT
    (`fips-mode-setup --enable` switches later). state/CURRENT.pol is a %ghost the %post does not write."""
    policy_dir = cfg.root / "usr/share/crypto-policies" / CRYPTO_POLICY
    if policy_dir.is_symlink() or not policy_dir.is_dir():
        return
    etc = _directory_in_tree(cfg.root, "etc/crypto-policies")
    if etc is None or os.path.lexists(etc / "config"):
        return
    state, backends = _directory_in_tree(etc, "state"), _directory_in_tree(etc, "back-ends")
    if state is None or backends is None:
        return
    for path in (etc / "config", state / "current"):
        if path.is_symlink():
            path.unlink()
        path.write_text(CRYPTO_POLICY + "\n")
    for name in sorted(os.listdir(policy_dir)):
        link = backends / (name.split(".", 1)[0] + ".config")
        if os.path.lexists(link):
            link.unlink()
        os.symlink(f"/usr/share/crypto-policies/{CRYPTO_POLICY}/{name}", link)


_ALTERNATIVES = re.compile(r"(?:update-)?alternatives\s+(?:--\S+\s+)*?--install\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)"
                           r"((?:\s+--slave\s+\S+\s+\S+\s+\S+)*)")


def alternatives_in(script: str) -> list[list[str]]:
    """`alternatives --install LINK NAME PATH PRIO [--slave ...]` calls with literal arguments."""
    calls = []
    for match in _ALTERNATIVES.finditer(script.replace("\\\n", " ")):
        args = ["--install", *match.group(1, 2, 3, 4)] + shlex.split(match.group(5) or "")
        if not any("$" in a or "%" in a for a in args):
            calls.append(args)
    return calls


def alternatives(cfg: ConfigureInput) -> None:
    tool = tree_has(cfg.root, "/usr/sbin/alternatives", "/usr/bin/update-alternatives", "/usr/sbin/update-alternatives")
    for nevra, script in sorted(cfg.postin_scripts.items()):
        for args in alternatives_in(script):
            if not tree_has(cfg.root, args[3]):
                continue
            if tool:
                in_chroot(cfg.root, [tool, *args], what=f"alternatives for {nevra}")
            else:
                log.warning("%s registers alternative %s but the tree has no alternatives tool", nevra, args[1])


def authselect(cfg: ConfigureInput) -> None:
    if tree_has(cfg.root, "/usr/bin/authselect"):
        in_chroot(cfg.root, ["authselect", "select", "local", "--force"], what="authselect select local")


def certificates(cfg: ConfigureInput) -> None:
    tool = tree_has(cfg.root, "/usr/bin/update-ca-trust", "/usr/sbin/update-ca-certificates")
    if tool:
        in_chroot(cfg.root, [tool] + (["extract"] if tool.endswith("update-ca-trust") else []),
                  what=Path(tool).name)


def _nosysusers(help_text: str) -> list[str]:
    """rpm >= 4.19 creates users from packages' sysusers.d files itself, even with --justdb
    (Rocky 10 has rpm 4.19): the sysusers step did that already, so ask it not to."""
    return ["--nosysusers"] if "--nosysusers" in help_text else []


def rpm_database(cfg: ConfigureInput) -> None:
    """Register every package (files, no scripts) so `rpm -qa` answers on the running system.
    No plugins either: their hooks (unshare, selinux, systemd_inhibit) are for real installs."""
    if not cfg.rpm_paths:
        return
    options = ["-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", "--nosignature", "--nodigest",
               "--noplugins", "--replacepkgs", "--replacefiles", "--ignorearch", "--ignoreos"]
    if tree_has(cfg.root, "/usr/bin/rpm"):
        with chroot_mounts(cfg.root):
            help_text = in_chroot(cfg.root, ["rpm", "--help"], capture=True, what="rpm --help").stdout.decode()
        options += _nosysusers(help_text)
        dirs = sorted({p.parent for p in cfg.rpm_paths})
        inside = {d: f"/run/leviso-packages/{i}" for i, d in enumerate(dirs)}
        files = [f"{inside[p.parent]}/{p.name}" for p in cfg.rpm_paths]
        with chroot_mounts(cfg.root, binds=list(inside.items())):
            in_chroot(cfg.root, ["rpm", *options, *files], what="registering packages in the RPM database")
    elif tree_has(Path("/"), "/usr/bin/rpm"):
        options += _nosysusers(run(["rpm", "--help"], capture=True, what="rpm --help").stdout.decode())
        run(["rpm", "--root", cfg.root, "--dbpath", "/usr/lib/sysimage/rpm", *options, *cfg.rpm_paths],
            what="registering packages in the RPM database (host rpm)")
    else:
        log.warning("neither the tree nor the host has rpm: packages are not registered in an RPM database")


# Order matters: users first (later steps and owners need them), the database last.
STEPS: tuple[Step, ...] = (
    Step("users and groups", "setup, and every package's sysusers.d entry (%sysusers_create_compat)", sysusers),
    Step("shared library cache", "glibc and every library package (%post -p /sbin/ldconfig)", ldconfig),
    Step("module dependencies", "kernel-core / kernel-modules (depmod in %posttrans)", depmod),
    Step("hardware database", "systemd-udev (systemd-hwdb update in %post)", hwdb),
    Step("persistent journal", "systemd (mkdir /var/log/journal in %post)", journal),
    Step("static tmpfiles", "every package's tmpfiles.d entry (%tmpfiles_create)", tmpfiles),
    Step("unit presets", "every package's units (%systemd_post)", presets),
    Step("user unit presets", "systemd (systemctl --global preset-all in %post)", user_presets),
    Step("crypto policy", "crypto-policies (the Lua %post: config, state/current, back-ends links)",
         crypto_policy),
    Step("alternatives", "packages calling alternatives --install in %post", alternatives),
    Step("PAM profile", "authselect (authselect select in %posttrans)", authselect),
    Step("certificate bundles", "ca-certificates (update-ca-trust in %post)", certificates),
)


def configure(cfg: ConfigureInput, *, before_rest: Callable[[], None] | None = None,
              steps: Iterable[Step] = STEPS) -> None:
    """Run every step in a chroot. `before_rest` runs once users exist (owners by name need them)."""
    with chroot_mounts(cfg.root):
        for step in steps:
            log.info("    configure: %s (stands in for %s)", step.name, step.stands_in_for)
            step.action(cfg)
            if step.action is sysusers and before_rest is not None:
                before_rest()
    rpm_database(cfg)
