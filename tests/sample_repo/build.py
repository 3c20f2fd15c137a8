"""Building the sample repository end to end, cached by its inputs.

Inputs: the resolved closure (name, version, SHA256 of each .deb, from apt) and this builder's
own source. The kernel is the older of Debian's two newest kernel ABIs; the newer one, with a
rebuilt `less`, makes the update repository (OUTDIR/updates, and a copy signed by the other key
in OUTDIR/updates-other). A run whose inputs match OUTDIR/.sample-repo.json returns at once; when even apt's
lists and configuration are unchanged it does not ask apt at all. Everything is built under
OUTDIR/.tmp-build and moved into place at the end, the stamp last, so an interrupted build is
never taken for a finished one. The .deb cache (OUTDIR/debs) and apt's private state
(OUTDIR/apt) survive rebuilds; the signing keys are reused when OUTDIR already has them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import cmp_to_key
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from levitate.util.errors import LevitateError

from .apt import Apt, DebRef
from .el10 import (RELEASE_NAME, add_sysusers_deps, dnf_stack, drop_debian_only_files, firmware_packages,
                   make_crypto_policies, make_dracut, make_release, split_kernel, update_build)
from .mapping import debvercmp
from .packageset import make_packages
from .repack import Unpacked, unpack
from .repo import (ISO_NAME, REPODATA_COMPRESSION, REPOS, createrepo, make_iso, package_dir, repo_dir,
                   write_checksum)
from .profile import write_profile
from .rpmspec import RpmPackage, rpmbuild
from .setup_pkg import ShippedPaths, login_shells, make_filesystem, make_setup, read_master
from .sign import OTHER_UID, UID, GpgHome, gpg_home, spaced

log = logging.getLogger("levitate.sample_repo")

# The set DESIGN.md names, in Debian 13 (trixie) names: kernel 6.12 (modules already .ko.xz,
# CONFIG_MODULE_COMPRESS_XZ as RHEL's), systemd 257 with systemd-boot and its EFI stub
# (systemd-firstboot is in `systemd`, enabled statically as upstream and EL10 have it),
# Python 3.13 (not the build host's 3.11).
WANTED = [
    "systemd", "systemd-sysv", "udev", "dbus", "bash", "coreutils",
    "util-linux", "mount", "kmod", "iproute2", "e2fsprogs", "dosfstools", "fdisk", "systemd-boot",
    "systemd-boot-efi", "python3", "busybox-static", "sudo", "login", "passwd", "less", "procps",
    "rpm", "tzdata", "locales", "ca-certificates",
    "grep", "sed",       # Essential in Debian (so nothing depends on them), listed in Rocky's profile too
    "libnss-myhostname", # the host name resolves without /etc/hosts (Rocky's systemd-libs has it)
    "udhcpc",            # the DHCP client: busybox's, 7 kB (isc-dhcp-client pulls in far more)
    "dnf", "dnf-plugins-core",   # dnf 4, as RHEL 10 ships it (not dnf5); renamed in el10.dnf_stack
    "python3-systemd",   # EL10's python3-dnf-plugins-core requires it (Debian's does not)
]
# Debian packages that become EL10-named ones (see el10.py): firmware and microcode; and the
# kernels (linux-image-ABI-amd64, split), chosen by Apt.newest_kernels.
RENAMED = ["firmware-linux-free", "amd64-microcode", "intel-microcode"]
# Asked of apt besides WANTED: base-passwd is where the account files come from (nothing
# depends on it: it is Essential in Debian); usr-is-merged satisfies init-system-helpers'
# "usrmerge | usr-is-merged" (the tree IS merged), else apt picks usrmerge and a perl stack.
EXTRA = ["base-passwd", "usr-is-merged"]
# The update repository's ordinary package (a newer build of it): small, and not needed to boot.
UPDATED = "less"


def request(kernels: list[str]) -> list[str]:
    """What apt is asked for: the set, and the two kernel images (base, update)."""
    return WANTED + RENAMED + kernels + EXTRA
# What the profile lists besides WANTED: EL10 names, and what only weak or no dependencies
# reach (vendor firmware, as issue 5 of #11 says a profile must list them).
EL10_NAMES = ["kernel", "kernel-modules", "linux-firmware", "microcode_ctl", "amd-ucode-firmware",
              "iwlwifi-mvm-firmware"]
SYNTHETIC = ["setup", "filesystem", RELEASE_NAME, "crypto-policies", "dracut"]
PROFILE_PACKAGES = WANTED + EL10_NAMES + SYNTHETIC

KEY_FILE = "RPM-GPG-KEY-sample"
STAMP = ".sample-repo.json"
FORMAT = 3
UPDATES = "updates"               # OUTDIR/updates/x86_64/os: signed by the sample key
UPDATES_OTHER = "updates-other"   # the same packages and metadata signed by the other key


@dataclass(frozen=True)
class SampleRepo:
    """Where everything is. `fingerprint` is the signing key's, 40 hex digits, no spaces."""

    root: Path
    mirror: Path                 # mirror/BaseOS/x86_64/os/..., mirror/AppStream/x86_64/os/...
    isos: Path                   # the ISO, CHECKSUM, CHECKSUM.asc
    iso: Path
    key: Path                    # OUTDIR/RPM-GPG-KEY-sample (also at mirror/ and the ISO's root)
    gnupg: Path                  # gpg home with the signing key (secret part included)
    gnupg_other: Path            # gpg home with an unrelated key, for "signed by another key"
    profile: Path                # profile.toml + packages.txt
    fingerprint: str
    other_fingerprint: str
    kernel_version: str
    packages: dict[str, str]     # RPM name -> path of its file relative to `mirror`
    update_kernel_version: str   # the update repository's kernel (a newer ABI)
    update_packages: dict[str, str]  # RPM name -> path relative to `updates` (and `updates_other`)

    @property
    def updates(self) -> Path:
        """The update repository (Packages/, repodata/ with repomd.xml.asc by the sample key)."""
        return repo_dir(self.root, UPDATES)

    @property
    def updates_other(self) -> Path:
        """The same update repository, RPMs and repomd.xml.asc signed by the other key."""
        return repo_dir(self.root, UPDATES_OTHER)

    @property
    def fingerprint_spaced(self) -> str:
        return spaced(self.fingerprint)

    def repo(self, name: str) -> Path:
        """A repository's root in the mirror layout (holding Packages/ and repodata/)."""
        return repo_dir(self.mirror, name)

    def rpm(self, name: str) -> Path:
        """The .rpm file of package `name` in the mirror."""
        return self.mirror / self.packages[name]

    def gpg_env(self, other: bool = False) -> dict[str, str]:
        """Environment for running gpg/rpmsign with the sample key (or the other one)."""
        return {**os.environ, "GNUPGHOME": str(self.gnupg_other if other else self.gnupg)}

    @classmethod
    def from_stamp(cls, root: Path, stamp: dict) -> "SampleRepo":
        return cls(root=root, mirror=root / "mirror", isos=root / "isos", iso=root / "isos" / ISO_NAME,
                   key=root / KEY_FILE, gnupg=root / "gnupg", gnupg_other=root / "gnupg-other",
                   profile=root / "profile", fingerprint=stamp["fingerprint"],
                   other_fingerprint=stamp["other_fingerprint"], kernel_version=stamp["kernel_version"],
                   packages=stamp["packages"], update_kernel_version=stamp["update_kernel_version"],
                   update_packages=stamp["update_packages"])


# ---------------------------------------------------------------------------------------------
# Cache keys

def builder_hash() -> str:
    """This builder's own version: its source files. Editing it rebuilds the repository."""
    h = hashlib.sha256(f"format {FORMAT}".encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def inputs_hash(builder: str, refs: list[DebRef], requested: list[str]) -> str:
    data = {"builder": builder, "request": requested,
            "debs": [(r.name, r.version, r.sha256) for r in sorted(refs, key=lambda r: r.name)]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _read_stamp(outdir: Path) -> dict | None:
    try:
        stamp = json.loads((outdir / STAMP).read_text())
    except (OSError, ValueError):
        return None
    repo = SampleRepo.from_stamp(outdir, stamp) if stamp.get("format") == FORMAT else None
    complete = repo is not None and all(p.exists() for p in (
        repo.iso, repo.isos / "CHECKSUM.asc", repo.key, repo.gnupg, repo.gnupg_other,
        repo.profile / "profile.toml", *(repo.repo(r) / "repodata" / "repomd.xml.asc" for r in REPOS),
        *(d / "repodata" / "repomd.xml.asc" for d in (repo.updates, repo.updates_other))))
    return stamp if complete else None


def _write_stamp(outdir: Path, stamp: dict) -> None:
    tmp = outdir / (STAMP + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, outdir / STAMP)


@contextmanager
def _locked(outdir: Path):
    """One builder per OUTDIR at a time (parallel test sessions share it)."""
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@contextmanager
def _stage(what: str):
    started = time.monotonic()
    yield
    log.info("sample-repo: %s: %.1f s", what, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Building

# Host tools the build runs, and the Debian packages they come from.
TOOLS = {"apt-get": "apt", "apt-cache": "apt", "xz": "xz-utils", "rpmbuild": "rpm", "rpmsign": "rpm",
         "createrepo_c": "createrepo-c", "gpg": "gnupg", "gpgconf": "gnupg", "xorriso": "xorriso"}


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise LevitateError("the sample repository needs tools that are not installed: "
                            + ", ".join(t for t, p in TOOLS.items() if p in missing),
                            f"apt-get install {' '.join(missing)}")


def build_sample_repo(outdir: Path, *, debs: Path | None = None, force: bool = False,
                      jobs: int | None = None) -> SampleRepo:
    """Build (or find up to date) the sample repository in `outdir`."""
    outdir = Path(outdir).resolve()
    with _locked(outdir):
        started = time.monotonic()
        builder = builder_hash()
        stamp = None if force else _read_stamp(outdir)
        apt = Apt(outdir / "apt")
        signature = apt.lists_signature()
        if stamp and stamp["builder"] == builder and stamp["apt_lists"] == signature:
            log.info("sample-repo: %s is up to date", outdir)
            return SampleRepo.from_stamp(outdir, stamp)
        check_tools()
        with _stage("resolve the closure with apt"):
            apt.ensure_lists()
            signature = apt.lists_signature()
            requested = request(apt.newest_kernels(2))
            refs = apt.resolve(requested)
        inputs = inputs_hash(builder, refs, requested)
        if stamp and stamp["inputs"] == inputs:
            stamp["apt_lists"] = signature
            _write_stamp(outdir, stamp)
            log.info("sample-repo: %s is up to date (%.1f s)", outdir, time.monotonic() - started)
            return SampleRepo.from_stamp(outdir, stamp)
        (outdir / STAMP).unlink(missing_ok=True)
        stamp = _build(outdir, apt, refs, requested, debs or outdir / "debs", jobs or os.cpu_count() or 2)
        stamp.update(format=FORMAT, builder=builder, inputs=inputs, apt_lists=signature)
        _write_stamp(outdir, stamp)
        log.info("sample-repo: built %s in %.1f s", outdir, time.monotonic() - started)
        return SampleRepo.from_stamp(outdir, stamp)


def _unpack_job(args: tuple[Path, Path]) -> Unpacked:
    return unpack(*args)


def _build(outdir: Path, apt: Apt, refs: list[DebRef], requested: list[str], debs: Path, jobs: int) -> dict:
    """Everything below OUTDIR/.tmp-build, then moved into place; returns the stamp's facts."""
    tmp = outdir / ".tmp-build"
    shutil.rmtree(tmp, ignore_errors=True)
    out = tmp / "out"                       # becomes OUTDIR's mirror/, isos/, profile/, updates/, ...
    mirror = out / "mirror"
    out.mkdir(parents=True)

    with _stage(f"download {len(refs)} debs ({sum(r.size for r in refs) / 1e6:.0f} MB)"):
        paths = apt.download(refs, debs)
    with _stage("unpack the debs (merged /usr)"):
        unpacked = _unpack_all(paths, tmp / "trees", jobs)
    kernels = [u for u in unpacked if u.kernel_version]
    if len(kernels) != 2:
        raise LevitateError(f"expected two kernels in the closure, found {[u.kernel_version for u in kernels]}")
    kernels.sort(key=cmp_to_key(lambda a, b: debvercmp(a.control.version, b.control.version)))
    kver, update_kver = (u.kernel_version for u in kernels)
    with gpg_home(outdir / "gnupg") as home, gpg_home(outdir / "gnupg-other") as other:
        with _stage("signing keys"):
            fpr = home.fingerprint() or home.generate(UID)
            other_fpr = other.fingerprint() or other.generate(OTHER_UID)
            key = home.export(fpr)
            (out / KEY_FILE).write_bytes(key)
            (mirror / KEY_FILE).parent.mkdir(parents=True, exist_ok=True)
            (mirror / KEY_FILE).write_bytes(key)
        with _stage("map metadata, EL10 traits, synthetic packages"):
            packages, updates, users, groups = _describe(unpacked, tmp / "synthetic", kver, update_kver, key,
                                                         requested)
        dests = {id(p): package_dir(mirror, p.repo, p.filename) for p in packages}
        dests |= {id(p): package_dir(out, UPDATES, p.filename) for p in updates}
        with _stage(f"rpmbuild {len(packages)} packages + {len(updates)} updates"):
            built = _rpmbuild_all(packages + updates, dests, tmp / "specs", users, groups, jobs)
        rpms = {p.name: built[id(p)] for p in packages}
        update_rpms = {p.name: built[id(p)] for p in updates}
        _sign_and_publish(home, fpr, out, mirror, list(rpms.values()), tmp, jobs)
        _publish_updates(home, fpr, other, other_fpr, out, list(update_rpms.values()))
        for h in (home, other):
            h.stop_agent()
        home.copy_to(out / "gnupg")
        other.copy_to(out / "gnupg-other")
    write_profile(out / "profile", fingerprint=spaced(fpr), key_file=KEY_FILE, packages=PROFILE_PACKAGES)
    with _stage("move into place"):
        _move_into_place(out, outdir)
        shutil.rmtree(tmp)

    total = sum((outdir / "mirror" / p.relative_to(mirror)).stat().st_size for p in rpms.values())
    updates_dir = repo_dir(out, UPDATES)
    update_total = sum((outdir / p.relative_to(out)).stat().st_size for p in update_rpms.values())
    log.info("sample-repo: %d RPMs, %.0f MB, kernel %s; updates: %d RPMs, %.0f MB, kernel %s; key %s",
             len(rpms), total / 1e6, kver, len(update_rpms), update_total / 1e6, update_kver, spaced(fpr))
    return {"fingerprint": fpr, "other_fingerprint": other_fpr, "kernel_version": kver,
            "packages": {name: str(p.relative_to(mirror)) for name, p in sorted(rpms.items())},
            "update_kernel_version": update_kver,
            "update_packages": {name: str(p.relative_to(updates_dir)) for name, p in sorted(update_rpms.items())},
            "rpm_bytes": total, "update_rpm_bytes": update_total,
            "debs": [(r.name, r.version, r.sha256) for r in refs]}


def _unpack_all(paths: dict[str, Path], trees: Path, jobs: int) -> list[Unpacked]:
    """All debs at once, the biggest (the kernel) first, in worker processes (tar parsing is
    Python, so threads would share one core)."""
    order = sorted(paths.items(), key=lambda kv: -kv[1].stat().st_size)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        unpacked = list(pool.map(_unpack_job, [(deb, trees / name) for name, deb in order]))
    for u in unpacked:
        for note in u.notes:
            log.info("sample-repo: %s: %s", u.control.name, note)
    return unpacked


def _describe(unpacked: list[Unpacked], synthetic: Path, kver: str, update_kver: str, key: bytes,
              requested: list[str]) -> tuple[list[RpmPackage], list[RpmPackage], set[str], set[str]]:
    """RPM descriptions of the whole set, with EL10's names and traits and the synthetic
    packages; the update repository's packages; the user and group names %attr may use
    (base-passwd's)."""
    packages, issues = make_packages(unpacked, requested)
    packages, updates = el10_traits(packages, synthetic, kver, update_kver, key)
    for what, items in (("path collisions after merging /usr", issues.collisions),
                        ("Conflicts dropped (satisfied inside the set)", issues.dropped_conflicts),
                        ("Depends not satisfied inside the set", issues.unsatisfied)):
        if items:
            level = logging.WARNING if what.startswith("Depends") else logging.INFO
            log.log(level, "sample-repo: %d %s: %s", len(items), what, "; ".join(items))
    trees = {u.control.name: u.tree for u in unpacked}
    shipped = ShippedPaths({e.path: e.kind for p in packages for e in p.entries})
    masters = trees["base-passwd"] / "usr/share/base-passwd"
    shells_d = [f for t in trees.values() for f in (t / "usr/share/debianutils/shells.d").glob("*")]
    shells = login_shells(trees["debianutils"] / "usr/share/debianutils/shells"
                          if "debianutils" in trees else None, shells_d)
    pam_profiles = sorted((f for t in trees.values() for f in (t / "usr/share/pam-configs").glob("*")),
                          key=lambda f: f.name)
    setup, notes = make_setup(synthetic, shipped, masters / "passwd.master", masters / "group.master", shells,
                              [f.read_text() for f in pam_profiles],
                              trees["base-files"] / "usr/share/base-files" if "base-files" in trees else None,
                              nsswitch(trees))
    filesystem, more = make_filesystem(synthetic, shipped)
    for note in notes + more:
        log.info("sample-repo: %s", note)
    users = {u[0] for u in read_master(masters / "passwd.master")}
    groups = {g[0] for g in read_master(masters / "group.master")}
    return packages + [setup, filesystem], updates, users, groups


def el10_traits(packages: list[RpmPackage], work: Path, kver: str, update_kver: str,
                key: bytes) -> tuple[list[RpmPackage], list[RpmPackage]]:
    """The repacked set under EL10's names, plus dracut, crypto-policies and the release package;
    user()/group() provides for every package shipping sysusers.d files. And the update
    repository: the newer kernel, split the same way, and a newer build of UPDATED."""
    by_name = {p.name: p for p in packages}
    images = {f"linux-image-{kver}", f"linux-image-{update_kver}"}
    kept = dnf_stack([p for p in packages if p.name not in {*RENAMED, *images}])
    kept += split_kernel(by_name[f"linux-image-{kver}"], kver, work / "kernel")
    kept += firmware_packages(by_name, work)
    kept += [make_dracut(work), make_crypto_policies(work), make_release(work, key)]
    for p in kept:
        if p.name.startswith("libssl"):          # EL10's openssl-libs requires crypto-policies
            p.requires.append("crypto-policies")
    add_sysusers_deps(kept)
    drop_debian_only_files(kept)
    updates = split_kernel(by_name[f"linux-image-{update_kver}"], update_kver, work / "kernel-update")
    updates.append(update_build(by_name[UPDATED], work))
    return kept, updates


def nsswitch(trees: dict[str, Path]) -> str | None:
    """/etc/nsswitch.conf as libc-bin's postinst installs it, with `myhostname` added to `hosts`
    after `files` as libnss-myhostname's postinst does."""
    default = trees.get("libc-bin", Path("/nonexistent")) / "usr/share/libc-bin/nsswitch.conf"
    if not default.is_file():
        return None
    text = default.read_text()
    if "libnss-myhostname" in trees:
        text = re.sub(r"^(hosts:\s+files)\b", r"\1 myhostname", text, count=1, flags=re.M)
    return text


def _rpmbuild_all(packages: list[RpmPackage], dests: dict[int, Path], specs: Path, users: set[str],
                  groups: set[str], jobs: int) -> dict[int, Path]:
    """Each package into dests[id(package)]; returns the .rpm of each, by id(package) (a base
    package and its update share a name). rpmbuild runs as a subprocess: threads suffice. Each
    tree goes as soon as every package built from it is packed (the kernel's subpackages share one)."""
    users_of_tree = Counter(p.tree for p in packages)
    lock = threading.Lock()

    def build_one(pkg: RpmPackage) -> Path:
        rpm = rpmbuild(pkg, specs / f"{pkg.name}-{pkg.evr}", dests[id(pkg)], users, groups)
        with lock:
            users_of_tree[pkg.tree] -= 1
            done = users_of_tree[pkg.tree] == 0
        if done:
            shutil.rmtree(pkg.tree, ignore_errors=True)
        return rpm

    biggest_first = sorted(packages, key=lambda p: -len(p.entries))
    with ThreadPoolExecutor(jobs) as pool:
        return dict(zip((id(p) for p in biggest_first), pool.map(build_one, biggest_first)))


def _sign_and_publish(home: GpgHome, fpr: str, out: Path, mirror: Path, rpms: list[Path], tmp: Path,
                      jobs: int) -> None:
    """Signed RPMs, repodata + repomd.xml.asc (the mirror's), the ISO (whose repodata has no
    repomd.xml.asc, as install DVDs of this family) and its clearsigned CHECKSUM."""
    with _stage(f"rpmsign {len(rpms)} RPMs"):
        home.rpmsign(fpr, rpms, jobs)
    with _stage("createrepo_c + repomd.xml.asc"):
        with ThreadPoolExecutor(len(REPOS)) as pool:
            repomds = list(pool.map(
                lambda r: createrepo(repo_dir(mirror, r), REPODATA_COMPRESSION[r]), REPOS))
        for repomd in repomds:
            home.detach_sign(fpr, repomd)
    with _stage("DVD ISO + CHECKSUM.asc"):
        iso = make_iso(mirror, out / "isos" / ISO_NAME, out / KEY_FILE, tmp / "iso-extra")
        home.clearsign(fpr, write_checksum(iso))


def _publish_updates(home: GpgHome, fpr: str, other: GpgHome, other_fpr: str, out: Path,
                     rpms: list[Path]) -> None:
    """OUTDIR/updates signed by the sample key; OUTDIR/updates-other, the same unsigned RPMs
    copied before signing and signed, with their repomd.xml, by the other key."""
    with _stage(f"update repositories ({len(rpms)} RPMs, signed by each key)"):
        copies = []
        for rpm in rpms:
            copy = repo_dir(out, UPDATES_OTHER) / rpm.relative_to(repo_dir(out, UPDATES))
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rpm, copy)
            copies.append(copy)
        for gpg, key, files, name in ((home, fpr, rpms, UPDATES), (other, other_fpr, copies, UPDATES_OTHER)):
            gpg.rpmsign(key, files)
            gpg.detach_sign(key, createrepo(repo_dir(out, name), None))


def _move_into_place(out: Path, outdir: Path) -> None:
    """Replace OUTDIR's products one by one (the stamp is gone until all are in place)."""
    for item in sorted(out.iterdir()):
        dest = outdir / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        os.rename(item, dest)
