"""Small signed repositories made from sample packages, for the failure cases: a tampered,
re-signed or unsigned package, corrupt repodata, a conflict. Each is real repodata from
createrepo_c, signed with the sample key, so only the one defect under test differs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.sample_repo.el10 import RELEASE_NAME

from levitate.rpm.header import RpmFile
from tests.unit.test_rpm_support import STRING_ARRAY, _header

REPO = "BaseOS"
# A sample package that requires nothing, for one-package repositories (EL10's `setup` requires
# the release package, which requires nothing).
LONE = RELEASE_NAME


@contextlib.contextmanager
def gpg_home(sample_repo, other: bool = False) -> Iterator[dict[str, str]]:
    """A private copy of a sample gpg home at a short path (gpg-agent's socket path is limited)."""
    source = sample_repo.gnupg_other if other else sample_repo.gnupg
    home = Path(tempfile.mkdtemp(prefix="lvg-", dir="/tmp"))
    try:
        shutil.copytree(source, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*", "*.lock"))
        os.chmod(home, 0o700)
        yield {**os.environ, "GNUPGHOME": str(home)}
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)})
    finally:
        shutil.rmtree(home, ignore_errors=True)


def sign_detached(sample_repo, path: Path) -> None:
    with gpg_home(sample_repo) as env:
        subprocess.run(["gpg", "--batch", "--yes", "--armor", "--detach-sign", "-o", f"{path}.asc", path],
                       env=env, check=True, capture_output=True)


def rpmsign(sample_repo, rpm: Path, *, other: bool = False, delete: bool = False) -> None:
    fpr = sample_repo.other_fingerprint if other else sample_repo.fingerprint
    with gpg_home(sample_repo, other=other) as env:
        argv = ["rpmsign", "--delsign", rpm] if delete else \
            ["rpmsign", "--define", "__gpg /usr/bin/gpg", "--define", f"_gpg_name {fpr}", "--resign", rpm]
        subprocess.run(argv, env=env, check=True, capture_output=True)


def rpm6_signatures(rpm: Path, v6: list[bytes], *, keep_v4: bool = True) -> None:
    """Re-sign rpm as rpm 6's rpmsign signs a v6 package (sign/rpmgensig.cc): every OpenPGP
    signature base64-encoded in the OPENPGP tag (278) and no tag 268. The packets are its v4 RSA
    signature (unless keep_v4 is False), then the v6 ones; the header and payload stay as built."""
    data = rpm.read_bytes()
    count, size = struct.unpack(">II", data[96 + 8:96 + 16])
    end = 96 + 16 + count * 16 + size
    with RpmFile.open(rpm) as r:
        sig = r.signature
        entries = [(t, int(sig.type_of(t)), sig[t]) for t in sig.tags() if t not in (62, 267, 268)]
        packets = [sig.get_bytes(268)] * keep_v4 + v6
    entries.append((278, STRING_ARRAY, [base64.b64encode(p).decode() for p in packets]))
    signature = _header(entries, 62)
    rpm.write_bytes(data[:96] + signature + b"\0" * (-len(signature) % 8) + data[end + (-end % 8):])


def make_mirror(sample_repo, dest: Path, rpms: list[Path]) -> Path:
    """dest/BaseOS/x86_64/os with these RPMs, createrepo_c repodata, signed repomd.xml, the key."""
    repo = dest / REPO / "x86_64" / "os"
    (repo / "Packages").mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, repo / "Packages" / rpm.name)
    subprocess.run(["createrepo_c", "-q", repo], check=True, capture_output=True)
    sign_detached(sample_repo, repo / "repodata" / "repomd.xml")
    shutil.copy(sample_repo.key, dest / sample_repo.key.name)
    return dest


def repodata_file(mirror: Path, kind: str) -> Path:
    [path] = (mirror / REPO / "x86_64" / "os" / "repodata").glob(f"*-{kind}.xml*")
    return path


def rewrite_repodata(sample_repo, mirror: Path, kind: str, data: bytes) -> None:
    """Replace a repodata file's content, update its checksum and size in repomd.xml, re-sign."""
    path = repodata_file(mirror, kind)
    old_sum = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(data)
    repomd = path.parent / "repomd.xml"
    text = repomd.read_text().replace(old_sum, hashlib.sha256(data).hexdigest())
    text = re.sub(rf'(<data type="{kind}">.*?<size>)\d+(</size>)', rf"\g<1>{len(data)}\g<2>", text, flags=re.S)
    repomd.write_text(text)
    sign_detached(sample_repo, repomd)


def make_profile(sample_repo, dest: Path, packages: list[str], repos: tuple[str, ...] = (REPO,)) -> Path:
    shutil.copytree(sample_repo.profile, dest)
    (dest / "leviso.lock").unlink(missing_ok=True)
    toml = dest / "profile.toml"
    listed = ", ".join(f'"{r}"' for r in repos)
    text = re.sub(r"^repos = .*$", f"repos = [{listed}]", toml.read_text(), flags=re.M)
    toml.write_text(re.sub(r'^"/bin/sh" = .*$', "", text, flags=re.M))   # the pinned package may be absent
    (dest / "packages.txt").write_text("\n".join(packages) + "\n")
    return dest


def build_spec(dest: Path, name: str, spec_text: str) -> Path:
    """An RPM from a whole spec file (rpmbuild, noarch)."""
    top = dest / f"rpmbuild-{name}"
    spec = top / f"{name}.spec"
    spec.parent.mkdir(parents=True)
    spec.write_text(spec_text)
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_binary_payload w3.zstdio",
                    spec], check=True, capture_output=True)
    [rpm] = (top / "RPMS" / "noarch").glob("*.rpm")
    return rpm


def build_rpm(dest: Path, name: str, *, conflicts: str = "", requires: str = "", owns_root: bool = False) -> Path:
    """A tiny noarch RPM made with rpmbuild (about a second). owns_root: it lists `/` itself, as
    Fedora/RHEL's `filesystem` does (`%dir %attr(555,root,root) /`)."""
    lines = [f"Name: {name}", "Version: 1.0", "Release: 1", "Summary: test package", "License: MIT",
             "BuildArch: noarch"]
    lines += [f"Conflicts: {conflicts}"] * bool(conflicts) + [f"Requires: {requires}"] * bool(requires)
    lines += ["%description", "test", "%install", f"mkdir -p %{{buildroot}}/usr/share/{name}",
              f"echo {name} > %{{buildroot}}/usr/share/{name}/README", "%files", f"/usr/share/{name}"]
    lines += ["%dir %attr(555,root,root) /"] * owns_root
    return build_spec(dest, name, "\n".join(lines) + "\n")


def make_dvd(sample_repo, dest: Path, rpms: list[Path], *, checksum: bool = True) -> Path:
    """dest/isos/NAME.iso in the DVD layout (BaseOS/ at the root) with UNSIGNED repodata, as Rocky's
    DVD carries it, and beside it CHECKSUM and a clearsigned CHECKSUM.asc (unless checksum=False)."""
    from tests.sample_repo.repo import ISO_NAME, write_checksum
    tree = dest / "tree"
    (tree / REPO / "Packages").mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, tree / REPO / "Packages" / rpm.name)
    subprocess.run(["createrepo_c", "-q", tree / REPO], check=True, capture_output=True)
    shutil.copy(sample_repo.key, tree / sample_repo.key.name)
    iso = dest / "isos" / ISO_NAME
    iso.parent.mkdir(parents=True)
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-R", "-J", "-V", "MINI-DVD", tree],
                   check=True, capture_output=True)
    if checksum:
        with gpg_home(sample_repo) as env:
            subprocess.run(["gpg", "--batch", "--yes", "--clearsign", write_checksum(iso)], env=env, check=True,
                           capture_output=True)
    return iso
