"""Extraction into a root tree, compared with `rpm2cpio | cpio -idm`, and its safety rules."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from levitate.rpm import fcaps
from levitate.rpm.extract import ExtractError, apply_ownership, extract_rpm
from levitate.rpm.header import read_rpm
from levitate.rpm.openpgp import load_keyring
from levitate.util.errors import LevitateError, VerificationError
from tests.cheat_aware import cheat_aware
from tests.unit.test_rpm_support import (RPM_NAME, FakeFile, RawEntry, built_rpms, copy_rpm,
                                         keys, run, write_rpm)

ESCAPE = dict(protects="no package entry can write outside the target tree",
              cheats=["checking only for a leading '/'", "resolving symlinks with os.path.realpath "
                      "against the host", "following the final path component"],
              consequence="a malicious or broken package could overwrite files on the build host")


@pytest.fixture(scope="session")
def rpms():
    return built_rpms()


@pytest.fixture(scope="session")
def trusted():
    return load_keyring(keys().trusted.public())


def cpio_tree(rpm_path: Path, dest: Path) -> Path:
    dest.mkdir()
    data = run("rpm2cpio", str(rpm_path))
    subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=dest, check=True)
    return dest


def walk(root: Path) -> dict[str, os.stat_result]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out["/" + str(p.relative_to(root))] = p.lstat()
    return out


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2", "none"])
def test_tree_matches_rpm2cpio_and_header(rpms, tmp_path, kind):
    ours = tmp_path / "ours"
    ours.mkdir()
    result = extract_rpm(rpms[kind], ours)
    theirs = cpio_tree(rpms[kind], tmp_path / "theirs")
    a, b = walk(ours), walk(theirs)
    assert sorted(a) == sorted(b)
    header = {f.path: f for f in read_rpm(rpms[kind]).files}
    for path, st in a.items():
        other = b[path]
        assert stat.S_IFMT(st.st_mode) == stat.S_IFMT(other.st_mode), path
        if stat.S_ISREG(st.st_mode):
            assert (ours / path[1:]).read_bytes() == (theirs / path[1:]).read_bytes(), path
        if stat.S_ISLNK(st.st_mode):
            assert os.readlink(ours / path[1:]) == os.readlink(theirs / path[1:])
        info = header.get(path)
        if info is not None:
            assert st.st_mode == info.mode, path                # setuid/setgid included
            assert int(st.st_mtime) == info.mtime, path          # directories too
    assert result.nevra == "fixture-1.0-1.x86_64"
    assert result.files == len(a) - 4         # /usr, /usr/bin, /usr/share, /etc are implicit parents
    assert result.bytes_written == sum(f.size for f in header.values() if stat.S_ISREG(f.mode)
                                       and f.path not in ("/usr/share/fixture/hl1", "/usr/share/fixture/empty/hl3"))


def test_special_files(rpms, tmp_path):
    extract_rpm(rpms["zstd"], tmp_path)
    fixture = tmp_path / "usr/share/fixture"
    assert not (tmp_path / "var/lib/fixture.state").exists()            # %ghost
    assert (tmp_path / "usr/bin/fixture-suid").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(fixture / "abs-link") == "/usr/share/fixture/regular.txt"
    inodes = {(fixture / n).stat().st_ino for n in ("hl1", "hl2", "empty/hl3")}
    assert len(inodes) == 1 and (fixture / "hl2").stat().st_nlink == 3
    assert (fixture / "hl1").read_text() == "linked\n"
    assert (fixture / "empty-file").stat().st_size == 0
    assert (fixture / "naïve file.txt").read_text() == "utf8\n"
    assert (fixture / "private").stat().st_mode & 0o7777 == 0o750


@cheat_aware(protects="file capabilities become the same security.capability xattr setcap writes",
             cheats=["skipping capabilities", "writing the text form instead of the kernel's format"],
             consequence="ping and other capability-using tools fail for users (EPERM)")
def test_capabilities_equal_setcap(rpms, tmp_path):
    (tmp_path / "root").mkdir()
    result = extract_rpm(rpms["zstd"], tmp_path / "root")
    ping = tmp_path / "root/usr/bin/fixture-ping"
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    for path, text in ((ping, "cap_net_raw=ep"),
                       (tmp_path / "root/usr/bin/fixture-ping-group", "cap_net_admin,cap_net_raw=ep")):
        run("setcap", text, str(reference))
        assert os.getxattr(path, "security.capability") == os.getxattr(reference, "security.capability")
        assert run("getcap", str(path)).decode().split()[-1] == text
    assert {c.path: c.text for c in result.capabilities} == {
        "/usr/bin/fixture-ping": "cap_net_raw=ep",
        "/usr/bin/fixture-ping-group": "cap_net_admin,cap_net_raw=ep"}
    assert not os.listxattr(tmp_path / "root/usr/bin/fixture-exe")


@pytest.mark.parametrize("text", ["cap_net_raw=ep", "cap_net_admin,cap_net_raw+ep", "cap_sys_admin,cap_bpf=p",
                                  "cap_setuid=eip", "cap_chown+i", "=ep cap_sys_module-ep",
                                  "cap_dac_override,cap_sys_ptrace+ep cap_chown=p"])
def test_caps_encoding_matches_setcap(tmp_path, text):
    f = tmp_path / "f"
    f.write_bytes(b"")
    proc = subprocess.run(["setcap", text, str(f)], capture_output=True)
    if proc.returncode:
        with pytest.raises(fcaps.CapsError):
            fcaps.caps_to_xattr(text)
        return
    assert fcaps.caps_to_xattr(text) == os.getxattr(f, "security.capability")


def test_bad_caps_text_is_an_error():
    with pytest.raises(fcaps.CapsError, match="unknown capability"):
        fcaps.caps_to_xattr("cap_fly=ep")


@cheat_aware(protects="owners are applied by NAME from the tree's own passwd/group, keeping setgid "
                      "bits and capabilities",
             cheats=["chowning to the payload's numeric ids (the build host's)",
                     "resolving names with the host's passwd"],
             consequence="files belong to the wrong users on the installed system; setgid tools and "
                         "capabilities silently vanish after chown")
def test_owners_by_name_applied_later(rpms, tmp_path):
    result = extract_rpm(rpms["zstd"], tmp_path)
    owners = {o.path: (o.user, o.group, o.mode) for o in result.owners}
    assert owners == {
        "/usr/bin/fixture-suid-group": ("root", "nogroup", 0o2750),
        "/usr/bin/fixture-ping-group": ("root", "nogroup", 0o750),
        "/usr/share/fixture/private": ("nobody", "nogroup", 0o750),
        "/usr/share/fixture/private/secret": ("nobody", "nogroup", 0o640),
        "/usr/share/fixture/owned": ("nobody", "nogroup", 0o644),
    }
    for o in result.owners:                      # not chowned yet: still root's
        assert (tmp_path / o.path[1:]).lstat().st_uid == 0
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nnobody:x:4242:4242::/:/sbin/nologin\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nnogroup:x:4343:\n")
    apply_ownership(tmp_path, result.owners, result.capabilities)
    st = (tmp_path / "usr/share/fixture/owned").stat()
    assert (st.st_uid, st.st_gid) == (4242, 4343)
    sg = (tmp_path / "usr/bin/fixture-suid-group").stat()
    assert (sg.st_uid, sg.st_gid, sg.st_mode & 0o7777) == (0, 4343, 0o2750)
    ping = tmp_path / "usr/bin/fixture-ping-group"
    assert ping.stat().st_gid == 4343
    assert fcaps.caps_to_text(os.getxattr(ping, "security.capability")) == "cap_net_admin,cap_net_raw=ep"


def test_unknown_owner_is_a_clear_error(rpms, tmp_path):
    result = extract_rpm(rpms["zstd"], tmp_path)
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\n")
    with pytest.raises(LevitateError, match="'nogroup' does not exist in the tree's /etc/group"):
        apply_ownership(tmp_path, result.owners)


def test_extracting_twice_replaces(rpms, tmp_path):
    extract_rpm(rpms["zstd"], tmp_path)
    (tmp_path / "usr/share/fixture/regular.txt").write_text("changed")
    extract_rpm(rpms["xz"], tmp_path)
    assert (tmp_path / "usr/share/fixture/regular.txt").read_text() == "hello\n"


def test_progress_counts_compressed_bytes(rpms, tmp_path):
    seen = []
    extract_rpm(rpms["xz"], tmp_path, on_bytes=seen.append)
    assert sum(seen) == rpms["xz"].stat().st_size - read_rpm(rpms["xz"]).payload_offset


# -- verification during extraction ----------------------------------------------------------

@cheat_aware(protects="extraction with trusted keys refuses unsigned, foreign-signed and tampered packages",
             cheats=["extracting first and verifying never", "skipping the check when keys are given"],
             consequence="a tampered package would end up in the image users boot")
def test_extraction_checks_signatures(rpms, trusted, tmp_path):
    (tmp_path / "a").mkdir()
    ok = extract_rpm(rpms["zstd-signed"], tmp_path / "a", trusted_keys=trusted)
    assert ok.signer.fingerprint == keys().trusted.fingerprint
    for kind, message in (("zstd", "not signed"), ("zstd-other", "which is not trusted")):
        root = tmp_path / kind
        root.mkdir()
        with pytest.raises(VerificationError, match=f"{RPM_NAME}: .*{message}"):
            extract_rpm(rpms[kind], root, trusted_keys=trusted)
        assert not any(root.iterdir()), "nothing may be written before the header is verified"


@pytest.mark.parametrize("offset", [1000, 150000, 300000])
def test_tampered_payload_stops_extraction(rpms, trusted, tmp_path, offset):
    bad = copy_rpm(rpms["gzip-signed"], tmp_path / "bad")
    data = bytearray(bad.read_bytes())
    data[-offset] ^= 0x10
    bad.write_bytes(bytes(data))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(VerificationError, match=r"payload digest mismatch \(tampered\?\)"):
        extract_rpm(bad, root, trusted_keys=trusted)


def test_file_digests_checked_without_payload_digest(tmp_path):
    files = [FakeFile("/etc/a", data=b"right"), FakeFile("/etc/b", data=b"wrong", digest="00" * 32)]
    path = write_rpm(tmp_path / "nodigest.rpm", files, payload_digest=False)
    with pytest.raises(ExtractError, match="/etc/b: file digest mismatch"):
        extract_rpm(path, tmp_path)


def test_stripped_payload(tmp_path):
    files = [FakeFile("/usr/share/big/dir", mode=0o40755),
             FakeFile("/usr/share/big/dir/a", data=b"alpha" * 1000, mode=0o100600, mtime=1_600_000_000),
             FakeFile("/usr/share/big/dir/b", data=b"alpha" * 1000, inode=77),
             FakeFile("/usr/share/big/dir/c", data=b"alpha" * 1000, inode=77),
             FakeFile("/usr/share/big/link", mode=0o120777, linkto="dir/a")]
    path = write_rpm(tmp_path / "stripped.rpm", files, stripped=True, compressor="zstd")
    root = tmp_path / "root"
    root.mkdir()
    extract_rpm(path, root)
    a = root / "usr/share/big/dir/a"
    assert a.read_bytes() == b"alpha" * 1000 and a.stat().st_mode & 0o777 == 0o600
    assert int(a.stat().st_mtime) == 1_600_000_000
    assert (root / "usr/share/big/dir/b").stat().st_ino == (root / "usr/share/big/dir/c").stat().st_ino
    assert (root / "usr/share/big/link").read_bytes() == b"alpha" * 1000


# -- escapes -------------------------------------------------------------------------------------

def crafted(tmp_path, files, raw=()) -> Path:
    return write_rpm(tmp_path / "evil-1.0-1.x86_64.rpm", files, name="evil", raw_entries=list(raw))


@pytest.fixture
def jail(tmp_path):
    root = tmp_path / "jail" / "root"
    root.mkdir(parents=True)
    return root


@cheat_aware(**ESCAPE)
@pytest.mark.parametrize("member", ["./../evil", "../evil", "./usr/../../evil", "/evil-abs"])
def test_payload_member_escaping_is_refused(tmp_path, jail, member):
    path = crafted(tmp_path, [FakeFile("/usr/ok", data=b"ok"), FakeFile("/evil", data=b"x", cpio_name=member)])
    with pytest.raises(ExtractError, match=r"evil-1.0-1.x86_64.rpm: refusing entry .*evil"):
        extract_rpm(path, jail)
    assert not (jail.parent / "evil").exists() and not (jail.parent.parent / "evil").exists()
    assert not Path("/evil-abs").exists()


@cheat_aware(**ESCAPE)
def test_header_path_escaping_is_refused(tmp_path, jail):
    path = crafted(tmp_path, [FakeFile("/usr/../../evil", data=b"x")])
    with pytest.raises(ExtractError, match="refusing .*'..' in its path"):
        extract_rpm(path, jail)
    assert not (jail.parent / "evil").exists()


@cheat_aware(**ESCAPE)
def test_symlinked_parent_leading_out_is_refused(tmp_path, jail):
    outside = tmp_path / "outside"
    outside.mkdir()
    climb = "../" * (len(jail.parts) + 2) + str(outside).lstrip("/")
    path = crafted(tmp_path, [FakeFile("/d", mode=0o120777, linkto=climb),
                              FakeFile("/d/x", data=b"pwned")])
    with pytest.raises(ExtractError, match=r"evil-1.0-1.x86_64.rpm: refusing /d/x: a symlink on its way leads outside"):
        extract_rpm(path, jail)
    assert list(outside.iterdir()) == []


@cheat_aware(**ESCAPE)
def test_absolute_symlink_parent_stays_in_the_tree(tmp_path, jail):
    """/d -> /tmp/... is followed as a chroot would: inside the root, never on the host."""
    outside = tmp_path / "outside-abs"
    outside.mkdir()
    path = crafted(tmp_path, [FakeFile("/d", mode=0o120777, linkto=str(outside)),
                              FakeFile("/d/x", data=b"contained")])
    extract_rpm(path, jail)
    assert list(outside.iterdir()) == []
    assert (jail / str(outside).lstrip("/") / "x").read_bytes() == b"contained"


@cheat_aware(**ESCAPE)
def test_existing_symlink_in_the_tree_is_replaced_not_followed(tmp_path, jail):
    host_file = tmp_path / "host-passwd"
    host_file.write_text("host\n")
    (jail / "etc").mkdir()
    (jail / "etc/passwd").symlink_to(host_file)
    (jail / "etc/shadow").symlink_to("/etc/passwd")
    path = crafted(tmp_path, [FakeFile("/etc/passwd", data=b"tree\n"), FakeFile("/etc/shadow", data=b"s\n")])
    extract_rpm(path, jail)
    assert host_file.read_text() == "host\n"
    assert not (jail / "etc/passwd").is_symlink() and (jail / "etc/passwd").read_text() == "tree\n"


def test_merged_usr_symlinks_are_followed_inside_the_tree(tmp_path, jail):
    (jail / "usr/lib").mkdir(parents=True)
    (jail / "usr/lib64").mkdir(parents=True)
    (jail / "lib").symlink_to("usr/lib")
    (jail / "lib64").symlink_to("/usr/lib64")          # absolute: relative to the tree's root
    (jail / "var").mkdir()
    (jail / "var/run").symlink_to("../run")            # created on the way, as in a chroot
    path = crafted(tmp_path, [FakeFile("/var/run/pid", data=b"1"),
                              FakeFile("/lib", mode=0o40755), FakeFile("/lib/libfoo.so.1", data=b"elf"),
                              FakeFile("/lib64/ld.so", data=b"ld"), FakeFile("/lib/modules", mode=0o40755),
                              FakeFile("/lib/modules/6.1/vmlinuz", data=b"kernel")])
    extract_rpm(path, jail)
    assert (jail / "lib").is_symlink() and (jail / "lib64").is_symlink()
    assert (jail / "usr/lib/libfoo.so.1").read_bytes() == b"elf"
    assert (jail / "usr/lib64/ld.so").read_bytes() == b"ld"
    assert (jail / "usr/lib/modules/6.1/vmlinuz").read_bytes() == b"kernel"
    assert (jail / "run/pid").read_bytes() == b"1" and (jail / "var/run").is_symlink()


def test_payload_entry_not_in_header_is_refused(tmp_path, jail):
    path = crafted(tmp_path, [FakeFile("/etc/ok", data=b"ok")], raw=[RawEntry("./etc/cron.d/backdoor", data=b"x")])
    with pytest.raises(ExtractError, match="not in the package's file list"):
        extract_rpm(path, jail)
    assert not (jail / "etc/cron.d/backdoor").exists()


@cheat_aware(protects="modes come from the signed header, not from the payload's cpio headers",
             cheats=["using the cpio entry's mode because it is at hand"],
             consequence="a payload could smuggle setuid bits past the signed header")
def test_payload_cannot_change_modes(tmp_path, jail):
    path = write_rpm(tmp_path / "m.rpm", [FakeFile("/usr/bin/tool", mode=0o100755, data=b"#!",
                                                   cpio_mode=0o104777)], payload_digest=False)
    extract_rpm(path, jail)
    assert (jail / "usr/bin/tool").stat().st_mode & 0o7777 == 0o755
    path = write_rpm(tmp_path / "t.rpm", [FakeFile("/usr/bin/tool", mode=0o100755, data=b"#!",
                                                   cpio_mode=0o120777)], payload_digest=False)
    with pytest.raises(ExtractError, match="disagree on the file type"):
        extract_rpm(path, jail)


def test_directory_in_the_way(tmp_path, jail):
    (jail / "etc/thing").mkdir(parents=True)
    (jail / "etc/thing/keep").write_text("x")
    path = crafted(tmp_path, [FakeFile("/etc/thing", data=b"file")])
    with pytest.raises(ExtractError, match="/etc/thing: a directory is in the way"):
        extract_rpm(path, jail)


def test_disk_full_is_a_clear_error(rpms, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)], check=True)
    try:
        with pytest.raises(ExtractError, match="free some disk space"):
            extract_rpm(rpms["zstd"], mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_works_across_process_pools(rpms, trusted, tmp_path):
    """Results and errors cross a ProcessPoolExecutor intact (extraction runs in parallel)."""
    from concurrent.futures import ProcessPoolExecutor
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    with ProcessPoolExecutor(max_workers=2) as pool:
        ok = pool.submit(extract_rpm, rpms["zstd-signed"], tmp_path / "ok", trusted_keys=trusted)
        bad = pool.submit(extract_rpm, rpms["zstd-other"], tmp_path / "bad", trusted_keys=trusted)
        result = ok.result()
        with pytest.raises(VerificationError) as info:
            bad.result()
    assert result.signer.fingerprint == keys().trusted.fingerprint and result.capabilities
    assert info.value.kind == "untrusted" and info.value.key_id == keys().other.key_id
    assert info.value.hint and str(info.value).startswith(f"{RPM_NAME}: signed with key")


ROOT_SPEC = """Name: filesystem
Version: 3.18
Release: 1
Summary: owns the root, as Fedora's filesystem.spec does
License: Public Domain
BuildArch: noarch
%description
x
%install
mkdir -p %{buildroot}/usr/bin
ln -s usr/bin %{buildroot}/bin
%files
%dir %attr(555,root,root) /
%dir /usr
%dir /usr/bin
/bin
"""


def test_the_root_entry_gets_the_headers_mode(tmp_path):
    (tmp_path / "fs.spec").write_text(ROOT_SPEC)
    run("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {tmp_path / 'top'}", str(tmp_path / "fs.spec"))
    [rpm] = (tmp_path / "top/RPMS/noarch").glob("*.rpm")
    ours = tmp_path / "ours"
    ours.mkdir()
    result = extract_rpm(rpm, ours)
    theirs = cpio_tree(rpm, tmp_path / "theirs")
    # rpm applies `/`'s mode to the root (GNU cpio leaves "." alone, so compare with the header)
    [root] = [f for f in read_rpm(rpm).files if f.path == "/"]
    assert ours.stat().st_mode == root.mode == stat.S_IFDIR | 0o555
    assert sorted(walk(ours)) == sorted(walk(theirs))
    assert result.files == 4


def test_a_root_entry_that_is_not_a_directory_is_refused(tmp_path, jail):
    rpm = crafted(tmp_path, [FakeFile("/", mode=0o100644, data=b"x", cpio_name=".")])
    with pytest.raises(ExtractError, match="root is not a directory"):
        extract_rpm(rpm, jail)
