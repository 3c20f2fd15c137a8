"""Shared material for the RPM and OpenPGP tests (this module holds no tests itself).

- `keys()`: test OpenPGP keys made with the real gpg in a private GNUPGHOME, once per session.
- `built_rpms()`: real packages made with rpmbuild (zstd, xz, gzip, bzip2 and uncompressed
  payloads), signed with rpmsign by the trusted test key or another key, once per session.
- `write_rpm()`: a minimal RPM writer for packages rpmbuild refuses to make (paths escaping the
  root, payloads that disagree with their header, stripped cpio, legacy signatures, rpm 6's
  OPENPGP signature tag). Its output is checked against rpm itself in test_rpm_verify.py, so the
  crafted packages are real RPMs.
- `V6Key`: OpenPGP v6 post-quantum keys and signatures, framed by hand (gpg 2.2 cannot make them).

Everything is cached per process (the functions are called from fixtures in several modules).
"""

from __future__ import annotations

import atexit
import base64
import collections
import functools
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SPEC = r"""
Name: fixture
Version: 1.0
Release: 1
Summary: LevitateOS RPM test fixture
License: MIT
BuildArch: x86_64
Requires: bash >= 4.0
Requires: coreutils
Provides: fixture-cap = 1.0
Conflicts: oldfixture < 2
Obsoletes: fixture-old <= 0.9
%description
Test fixture for the RPM reader and extractor.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/share/fixture/empty %{buildroot}/var/lib
mkdir -p %{buildroot}/usr/share/fixture/private
echo hello > %{buildroot}/usr/share/fixture/regular.txt
printf '#!/bin/sh\necho hi\n' > %{buildroot}/usr/bin/fixture-exe
chmod 755 %{buildroot}/usr/bin/fixture-exe
cp %{buildroot}/usr/bin/fixture-exe %{buildroot}/usr/bin/fixture-suid
cp %{buildroot}/usr/bin/fixture-exe %{buildroot}/usr/bin/fixture-suid-group
ln -s fixture-exe %{buildroot}/usr/bin/fixture-link
ln -s /usr/share/fixture/regular.txt %{buildroot}/usr/share/fixture/abs-link
echo linked > %{buildroot}/usr/share/fixture/hl1
ln %{buildroot}/usr/share/fixture/hl1 %{buildroot}/usr/share/fixture/hl2
ln %{buildroot}/usr/share/fixture/hl1 %{buildroot}/usr/share/fixture/empty/hl3
cp %{buildroot}/usr/bin/fixture-exe %{buildroot}/usr/bin/fixture-ping
cp %{buildroot}/usr/bin/fixture-exe %{buildroot}/usr/bin/fixture-ping-group
echo conf=1 > %{buildroot}/etc/fixture.conf
echo owned > %{buildroot}/usr/share/fixture/owned
echo secret > %{buildroot}/usr/share/fixture/private/secret
: > %{buildroot}/usr/share/fixture/empty-file
printf 'x%.0s' $(seq 1 5001) > %{buildroot}/usr/share/fixture/odd-size
head -c 300000 /dev/urandom > %{buildroot}/usr/share/fixture/random.bin
echo utf8 > "%{buildroot}/usr/share/fixture/naïve file.txt"
%files
%attr(4755,root,root) /usr/bin/fixture-suid
%attr(2750,root,nogroup) /usr/bin/fixture-suid-group
/usr/bin/fixture-exe
/usr/bin/fixture-link
%caps(cap_net_raw=ep) /usr/bin/fixture-ping
%attr(0750,root,nogroup) %caps(cap_net_admin,cap_net_raw=ep) /usr/bin/fixture-ping-group
%dir /usr/share/fixture
%dir /usr/share/fixture/empty
%dir %attr(0750,nobody,nogroup) /usr/share/fixture/private
%attr(0640,nobody,nogroup) /usr/share/fixture/private/secret
/usr/share/fixture/regular.txt
/usr/share/fixture/abs-link
/usr/share/fixture/hl1
/usr/share/fixture/hl2
/usr/share/fixture/empty/hl3
/usr/share/fixture/empty-file
/usr/share/fixture/odd-size
/usr/share/fixture/random.bin
"/usr/share/fixture/naïve file.txt"
%attr(0644,nobody,nogroup) /usr/share/fixture/owned
%config(noreplace) /etc/fixture.conf
%ghost /var/lib/fixture.state
"""

PAYLOADS = {"zstd": "w3.zstdio", "xz": "w2.xzdio", "gzip": "w9.gzdio", "bzip2": "w9.bzdio",
            "none": "w0.ufdio"}
NEVRA = "fixture-1.0-1.x86_64"
RPM_NAME = f"{NEVRA}.rpm"


def run(*args, env=None, input=None, cwd=None) -> bytes:
    proc = subprocess.run(args, env=env, input=input, cwd=cwd, capture_output=True)
    if proc.returncode:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc.stdout


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="levitate-rpm-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# -- gpg ---------------------------------------------------------------------------------------

@dataclass
class GpgKey:
    home: Path
    fingerprint: str
    uid: str

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]

    @property
    def env(self) -> dict:
        return {**os.environ, "GNUPGHOME": str(self.home)}

    def gpg(self, *args, input=None) -> bytes:
        return run("gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback",
                   "--passphrase", "", *args, env=self.env, input=input)

    def public(self, armor: bool = True) -> bytes:
        return self.gpg(*(["--armor"] if armor else []), "--export", self.fingerprint)

    def sign(self, data: bytes, *options: str) -> bytes:
        """gpg -u KEY OPTIONS over data (e.g. --detach-sign, --armor, --clearsign)."""
        return self.gpg("-u", f"{self.fingerprint}!", *options, "-o", "-", input=data)

    def colons(self) -> str:
        return self.gpg("--with-colons", "--fingerprint", "--fingerprint", self.fingerprint).decode()


def make_key(name: str, algo: str = "rsa3072", *, home: Path | None = None, extra: tuple = ()) -> GpgKey:
    home = home or workdir() / f"gnupg-{name}"
    home.mkdir(mode=0o700, exist_ok=True)
    uid = f"{name} <{name}@example.invalid>"
    env = {**os.environ, "GNUPGHOME": str(home)}
    run("gpg", "--batch", "--passphrase", "", *extra, "--quick-gen-key", uid, algo, "sign", "never", env=env)
    out = run("gpg", "--batch", "--with-colons", "--fingerprint", uid, env=env).decode()
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    return GpgKey(home, fpr, uid)


@dataclass
class Keys:
    trusted: GpgKey
    other: GpgKey


@functools.cache
def keys() -> Keys:
    """Two RSA keys (generated once per session: RSA key generation takes a few seconds)."""
    return Keys(make_key("trusted"), make_key("other"))


# -- OpenPGP v6 -------------------------------------------------------------------------------
# What RHEL 10.1 ships beside its RSA key and signatures: a v6 key and v6 signatures with the
# composite ML-DSA-87+Ed448 algorithm. Nothing here can make real ones, so the packets are framed
# by RFC 9580 (sections 4.2, 5.2.3, 5.5.2.3, 5.5.4.3) with the ids and sizes of
# draft-ietf-openpgp-pqc, random octets standing in for the key and signature material. The
# layout is that of rpm's own test key (rpm-software-management/libpgpr test/mldsa/mldsa87ed448.*).

MLDSA87_ED448 = 31
MLDSA87_ED448_KEY = 57 + 2592          # Ed448 public key, ML-DSA-87 public key
MLDSA87_ED448_SIG = 114 + 4627         # Ed448 signature, ML-DSA-87 signature
SHA512 = 10


def _length(n: int) -> bytes:
    """RFC 9580 section 4.2.1 (packets) and 5.2.3.7 (subpackets): 1, 2 or 5 octets."""
    if n < 192:
        return bytes([n])
    if n < 8384:
        return bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    return b"\xff" + n.to_bytes(4, "big")


def pgp_packet(tag: int, body: bytes) -> bytes:
    return bytes([0xC0 | tag]) + _length(len(body)) + body


def pgp_armor(label: str, data: bytes) -> bytes:
    """ASCII armor with its CRC24 (RFC 9580 section 6.1), independent of the code under test."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc = (crc << 1) ^ (0x1864CFB if crc & 0x800000 else 0)
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    checksum = base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode()
    return "\n".join([f"-----BEGIN PGP {label}-----", "", *lines, f"={checksum}",
                      f"-----END PGP {label}-----", ""]).encode()


@dataclass
class V6Key:
    """A v6 ML-DSA-87+Ed448 public key (fake material, real framing)."""

    created: int = 1_760_000_000
    uid: str = "Red Hat, Inc. (PQC release key 2025) <security@redhat.com>"
    material: bytes = field(default_factory=lambda: os.urandom(MLDSA87_ED448_KEY))

    @property
    def body(self) -> bytes:
        return (bytes([6]) + self.created.to_bytes(4, "big") + bytes([MLDSA87_ED448])
                + len(self.material).to_bytes(4, "big") + self.material)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(b"\x9b" + len(self.body).to_bytes(4, "big") + self.body).hexdigest().upper()

    @property
    def key_id(self) -> str:
        return self.fingerprint[:16]          # v6: the fingerprint's first 8 octets

    def signature(self, sig_type: int = 0x00) -> bytes:
        """A v6 signature packet by this key (a binary document signature by default)."""
        hashed = (_length(5) + b"\x82" + self.created.to_bytes(4, "big")             # creation, critical
                  + _length(34) + b"\x21\x06" + bytes.fromhex(self.fingerprint))      # issuer fingerprint
        body = (bytes([6, sig_type, MLDSA87_ED448, SHA512]) + len(hashed).to_bytes(4, "big") + hashed
                + (0).to_bytes(4, "big") + os.urandom(2) + bytes([32]) + os.urandom(32)
                + os.urandom(MLDSA87_ED448_SIG))
        return pgp_packet(2, body)

    def public(self, armor: bool = True) -> bytes:
        """The transferable key as sq exports it: key, direct-key signature, user ID, certification."""
        data = (pgp_packet(6, self.body) + self.signature(0x1F)
                + pgp_packet(13, self.uid.encode()) + self.signature(0x13))
        return pgp_armor("PUBLIC KEY BLOCK", data) if armor else data


# -- rpmbuild ----------------------------------------------------------------------------------

def rpmsign(path: Path, key: GpgKey) -> None:
    run("rpmsign", "--define", "__gpg /usr/bin/gpg", "--define", f"_gpg_name {key.fingerprint}",
        "--addsign", str(path), env=key.env)


@functools.cache
def built_rpms() -> dict[str, Path]:
    """{"zstd": unsigned, ..., "zstd-signed", "xz-signed", "zstd-other"}: real rpmbuild output."""
    base = workdir() / "rpmbuild"
    spec = base / "fixture.spec"
    base.mkdir()
    spec.write_text(SPEC)
    result: dict[str, Path] = {}
    for kind, io_macro in PAYLOADS.items():
        top = base / kind
        run("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
            "--define", f"_binary_payload {io_macro}", str(spec))
        built = top / "RPMS" / "x86_64" / RPM_NAME
        dest = base / kind / RPM_NAME
        shutil.move(built, dest)
        result[kind] = dest
    k = keys()
    for name, src, key in (("zstd-signed", "zstd", k.trusted), ("xz-signed", "xz", k.trusted),
                           ("gzip-signed", "gzip", k.trusted), ("zstd-other", "zstd", k.other)):
        d = base / name
        d.mkdir()
        shutil.copy(result[src], d / RPM_NAME)
        rpmsign(d / RPM_NAME, key)
        result[name] = d / RPM_NAME
    return result


def copy_rpm(src: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    shutil.copy(src, dest)
    return dest


# -- a minimal RPM writer ------------------------------------------------------------------------

BIN, INT16, INT32, INT64, STRING, STRING_ARRAY = 7, 3, 4, 5, 6, 8


@dataclass
class FakeFile:
    """One file of a crafted package. cpio_name overrides the payload's member name."""

    path: str
    mode: int = 0o100644
    data: bytes = b""
    linkto: str = ""
    user: str = "root"
    group: str = "root"
    flags: int = 0
    caps: str = ""
    mtime: int = 1_700_000_000
    inode: int | None = None
    cpio_name: str | None = None
    in_payload: bool = True
    in_header: bool = True
    digest: str | None = None          # header digest override (default: sha256 of data)
    cpio_mode: int | None = None       # payload mode override (default: mode)


@dataclass
class RawEntry:
    """A payload entry without header counterpart (for hostile payloads)."""

    name: str
    mode: int = 0o100644
    data: bytes = b""


def _header(entries: list[tuple[int, int, object]], region_tag: int) -> bytes:
    """Serialise a header with an immutable region covering all entries (as rpm writes)."""
    entries = sorted(entries, key=lambda e: e[0])
    store = bytearray()
    index = []
    for tag, typ, value in entries:
        align = {INT16: 2, INT32: 4, INT64: 8}.get(typ, 1)
        store += b"\0" * (-len(store) % align)
        offset = len(store)
        if typ == STRING:
            store += value.encode("utf-8", "surrogateescape") + b"\0"
            count = 1
        elif typ == STRING_ARRAY:
            for s in value:
                store += s.encode("utf-8", "surrogateescape") + b"\0"
            count = len(value)
        elif typ == BIN:
            store += value
            count = len(value)
        else:
            code = {INT16: "H", INT32: "I", INT64: "Q"}[typ]
            store += struct.pack(f">{len(value)}{code}", *value)
            count = len(value)
        index.append((tag, typ, offset, count))
    # Region trailer: an index entry whose offset is minus the size of the region's index.
    il = len(index) + 1
    trailer_offset = len(store)
    store += struct.pack(">IIiI", region_tag, BIN, -il * 16, 16)
    index.insert(0, (region_tag, BIN, trailer_offset, 16))
    intro = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", il, len(store))
    return intro + b"".join(struct.pack(">IIiI", *e) for e in index) + bytes(store)


def _cpio_newc(name: str, mode: int, data: bytes, *, ino: int, nlink: int = 1, mtime: int = 0,
               magic: bytes = b"070701") -> bytes:
    raw_name = name.encode("utf-8", "surrogateescape") + b"\0"
    fields = [ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, 0, 0, len(raw_name), 0]
    head = magic + b"".join(b"%08X" % f for f in fields) + raw_name
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def write_rpm(path: Path, files: list[FakeFile], *, name: str = "crafted", version: str = "1.0",
              release: str = "1", compressor: str = "gzip", signer: GpgKey | None = None,
              stripped: bool = False, payload_digest: bool = True, legacy_signer: GpgKey | None = None,
              raw_entries: list[RawEntry] = (), header_sha256: bool = True,
              openpgp: list[GpgKey | bytes] = ()) -> Path:
    """Write an RPM by hand: lead, signature header, header (with an immutable region), payload.

    `openpgp` fills rpm 6's OPENPGP signature tag (278, base64 strings): a GpgKey stands for its
    v4 signature over the header (the same bytes as in tag 268 when it is also the signer, as
    rpmsign writes them), bytes for a ready signature packet (the v6 ones)."""
    header_files = [f for f in files if f.in_header]
    dirnames: dict[str, int] = {}
    dirindexes, basenames = [], []
    for f in header_files:
        d, _, b = f.path.rpartition("/")
        dirindexes.append(dirnames.setdefault(d + "/", len(dirnames)))
        basenames.append(b)
    for i, f in enumerate(header_files):
        if f.inode is None:
            f.inode = i + 1
    # Hardlink sets (same inode): data only with the last member, as rpm does.
    last_of_set: dict[int, FakeFile] = {}
    for f in header_files:
        last_of_set[f.inode] = f
    nlinks = collections.Counter(f.inode for f in header_files)

    cpio = bytearray()
    for i, f in enumerate(header_files):
        if not f.in_payload or f.flags & (1 << 6):
            continue
        if (f.mode & 0o170000) == 0o120000:
            data = f.linkto.encode("utf-8", "surrogateescape")
        elif nlinks[f.inode] > 1 and last_of_set[f.inode] is not f:
            data = b""
        else:
            data = f.data if (f.mode & 0o170000) == 0o100000 else b""
        if stripped:
            head = b"07070X" + b"%08X" % i
            head += b"\0" * (-len(cpio + head) % 4)
            cpio += head + data + b"\0" * (-len(data) % 4)
        else:
            cpio += _cpio_newc(f.cpio_name or "." + f.path, f.cpio_mode or f.mode, data, ino=f.inode,
                               nlink=nlinks[f.inode], mtime=f.mtime)
    for raw in raw_entries:
        cpio += _cpio_newc(raw.name, raw.mode, raw.data, ino=9999)
    cpio += _cpio_newc("TRAILER!!!", 0, b"", ino=0)
    if compressor == "gzip":
        payload = gzip.compress(bytes(cpio), mtime=0)
    elif compressor == "zstd":
        import zstandard
        payload = zstandard.ZstdCompressor().compress(bytes(cpio))
    elif compressor == "identity":
        payload = bytes(cpio)
    else:
        raise ValueError(compressor)

    def reg_digest(f: FakeFile) -> str:
        if f.digest is not None:
            return f.digest
        return hashlib.sha256(f.data).hexdigest() if (f.mode & 0o170000) == 0o100000 else ""

    n = len(header_files)
    tags: list[tuple[int, int, object]] = [
        (100, STRING_ARRAY, ["C"]),
        (1000, STRING, name), (1001, STRING, version), (1002, STRING, release),
        (1004, STRING, "crafted test package"), (1021, STRING, "linux"), (1022, STRING, "x86_64"),
        (1044, STRING, f"{name}-{version}-{release}.src.rpm"),
        (1124, STRING, "cpio"), (1125, STRING, compressor), (1126, STRING, "9"),
        (1047, STRING_ARRAY, [name]), (1112, INT32, [8]), (1113, STRING_ARRAY, [f"{version}-{release}"]),
    ]
    if n:
        sizes = [len(f.linkto.encode()) if (f.mode & 0o170000) == 0o120000 else
                 len(f.data) if (f.mode & 0o170000) == 0o100000 else 0 for f in header_files]
        tags += [
            (1116, INT32, dirindexes), (1117, STRING_ARRAY, basenames), (1118, STRING_ARRAY, list(dirnames)),
            (1030, INT16, [f.mode for f in header_files]),
            (1033, INT16, [0] * n),
            (1034, INT32, [f.mtime for f in header_files]),
            (1035, STRING_ARRAY, [reg_digest(f) for f in header_files]),
            (1036, STRING_ARRAY, [f.linkto for f in header_files]),
            (1037, INT32, [f.flags for f in header_files]),
            (1039, STRING_ARRAY, [f.user for f in header_files]),
            (1040, STRING_ARRAY, [f.group for f in header_files]),
            (1095, INT32, [1] * n),
            (1096, INT32, [f.inode for f in header_files]),
            (1097, STRING_ARRAY, [""] * n),
            (5011, INT32, [8]),
        ]
        if stripped:
            tags.append((5008, INT64, sizes))
        else:
            tags.append((1028, INT32, sizes))
        if any(f.caps for f in header_files):
            tags.append((5010, STRING_ARRAY, [f.caps for f in header_files]))
    if payload_digest:
        tags += [(5092, STRING_ARRAY, [hashlib.sha256(payload).hexdigest()]), (5093, INT32, [8])]
    header = _header(tags, 63)

    sig_tags: list[tuple[int, int, object]] = [(1000, INT32, [len(header) + len(payload)])]
    made: dict[str, bytes] = {}

    def header_sig(key: GpgKey) -> bytes:        # one signature per key, reused in 268 and 278
        if key.fingerprint not in made:
            made[key.fingerprint] = key.sign(header, "--detach-sign", "--digest-algo", "SHA256")
        return made[key.fingerprint]

    if header_sha256:
        sig_tags.append((273, STRING, hashlib.sha256(header).hexdigest()))
    if signer is not None:
        sig_tags.append((268, BIN, header_sig(signer)))
    if openpgp:
        packets = [s if isinstance(s, bytes) else header_sig(s) for s in openpgp]
        sig_tags.append((278, STRING_ARRAY, [base64.b64encode(p).decode() for p in packets]))
    if legacy_signer is not None:
        sig_tags.append((1004, BIN, hashlib.md5(header + payload).digest()))   # rpm wants one digest
        sig_tags.append((1002, BIN, legacy_signer.sign(header + payload, "--detach-sign",
                                                       "--digest-algo", "SHA256")))
    sig = _header(sig_tags, 62)
    sig += b"\0" * (-len(sig) % 8)
    lead = (b"\xed\xab\xee\xdb\x03\x00" + struct.pack(">HH", 0, 1)
            + f"{name}-{version}-{release}".encode()[:65].ljust(66, b"\0")
            + struct.pack(">HH", 1, 5) + b"\0" * 16)
    assert len(lead) == 96
    path.write_bytes(lead + sig + header + payload)
    return path


@dataclass
class Tree:
    """Helpers to inspect an extracted tree."""

    root: Path
    entries: dict[str, os.stat_result] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> "Tree":
        tree = cls(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                tree.entries["/" + str(p.relative_to(root))] = p.lstat()
        return tree
