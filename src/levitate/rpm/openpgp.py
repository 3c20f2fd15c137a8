"""The subset of OpenPGP (RFC 4880 / RFC 9580) that checking Rocky's signatures needs.

Rocky signs its packages (a signature packet in each RPM's signature header), each repository's
repomd.xml (a detached, armored signature) and the DVD's CHECKSUM file (a clearsigned message),
all with one RSA key whose fingerprint the profile pins. This module verifies those in pure
Python so no host gpg or rpm is involved: ASCII armor (CRC24 checked), clearsigned messages,
public keys v4 (RSA; DSA and Ed25519 too, see ed25519.py), user IDs and subkeys with their
self-signatures checked, signatures v3/v4 over binary or text data. RSA is PKCS#1 v1.5 via
pow(): verification handles only public data, so constant time does not matter.

OpenPGP v6 (RFC 9580) keys and signatures are framed and named but not checked. RHEL 10.1 put a
post-quantum v6 key (ML-DSA-87+Ed448, draft-ietf-openpgp-pqc) and v6 signatures beside its v4
RSA ones, so a v6 key in a key file is skipped with a note, and a v6 signature next to a v4 one
is passed over; only input with nothing but v6 signatures is refused ("unsupported v6 signature").

What is deliberately refused: v6-only input, ECDSA, MD5/RIPEMD160, SHA1 for data signatures
unless asked for, RSA keys under 2048 bits, subkeys without a valid binding signature from their
primary, revoked keys, keys used after they expired, unknown critical subpackets.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from levitate.rpm import ed25519
from levitate.util.errors import VerificationError

log = logging.getLogger("levitate")

# -- constants -----------------------------------------------------------------------------

RSA_ALGOS = {1, 2, 3}
DSA = 17
ECDSA = 19
EDDSA_LEGACY = 22
ED25519 = 27
# Post-quantum algorithms of draft-ietf-openpgp-pqc (the ids rpm's libpgpr and Sequoia use).
PQC_NAMES = {30: "ML-DSA-65+Ed25519", 31: "ML-DSA-87+Ed448", 32: "SLH-DSA-SHAKE-128s",
             33: "SLH-DSA-SHAKE-128f", 34: "SLH-DSA-SHAKE-256s", 35: "ML-KEM-768+X25519",
             36: "ML-KEM-1024+X448"}
ALGO_NAMES = {1: "RSA", 2: "RSA", 3: "RSA", 16: "Elgamal", 17: "DSA", 18: "ECDH", 19: "ECDSA",
              22: "EdDSA", 25: "X25519", 26: "X448", 27: "Ed25519", 28: "Ed448", **PQC_NAMES}

HASH_ALGOS = {1: "md5", 2: "sha1", 3: "ripemd160", 8: "sha256", 9: "sha384", 10: "sha512",
              11: "sha224", 12: "sha3_256", 14: "sha3_512"}
HASH_DISPLAY = {1: "MD5", 2: "SHA1", 3: "RIPEMD160", 8: "SHA256", 9: "SHA384", 10: "SHA512",
                11: "SHA224", 12: "SHA3-256", 14: "SHA3-512"}
WEAK_HASHES = {1, 3}          # never accepted
SHA1 = 2                      # accepted for key self-signatures; for data only if asked

# ASN.1 DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017 section 9.2, RFC 4880 section 5.2.2).
DIGEST_INFO = {
    2: bytes.fromhex("3021300906052b0e03021a05000414"),
    8: bytes.fromhex("3031300d060960864801650304020105000420"),
    9: bytes.fromhex("3041300d060960864801650304020205000430"),
    10: bytes.fromhex("3051300d060960864801650304020305000440"),
    11: bytes.fromhex("302d300d06096086480165030402040500041c"),
    12: bytes.fromhex("3031300d060960864801650304020805000420"),
    14: bytes.fromhex("3051300d060960864801650304020a05000440"),
}

ED25519_OID = bytes.fromhex("2b06010401da470f01")   # 1.3.6.1.4.1.11591.15.1

# packet tags
TAG_SIGNATURE = 2
TAG_SECRET_KEY = 5
TAG_PUBLIC_KEY = 6
TAG_SECRET_SUBKEY = 7
TAG_COMPRESSED = 8
TAG_LITERAL = 11
TAG_TRUST = 12
TAG_USER_ID = 13
TAG_PUBLIC_SUBKEY = 14
TAG_USER_ATTRIBUTE = 17

# signature types
SIG_BINARY = 0x00
SIG_TEXT = 0x01
SIG_CERTIFICATIONS = {0x10, 0x11, 0x12, 0x13}
SIG_SUBKEY_BINDING = 0x18
SIG_DIRECT_KEY = 0x1F
SIG_KEY_REVOCATION = 0x20
SIG_SUBKEY_REVOCATION = 0x28

# subpackets
SUB_CREATION = 2
SUB_SIG_EXPIRATION = 3
SUB_KEY_EXPIRATION = 9
SUB_ISSUER = 16
SUB_PRIMARY_UID = 25
SUB_KEY_FLAGS = 27
SUB_ISSUER_FPR = 33
KNOWN_SUBPACKETS = {2, 3, 4, 5, 6, 7, 9, 11, 12, 16, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                    31, 32, 33, 34, 35, 37, 38, 39}
KEY_FLAG_SIGN = 0x02

MIN_RSA_BITS = 2048
MAX_KEY_BITS = 16384
MAX_INPUT = 64 * 1024 * 1024


# -- errors --------------------------------------------------------------------------------

class OpenPGPError(VerificationError):
    """Malformed or unsupported OpenPGP data."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, hint or "the key or signature file is damaged or in an unsupported format")


class NotSignedError(VerificationError):
    """No signature at all where one is required."""

    def __init__(self, message: str = "not signed", hint: str | None = None):
        super().__init__(message, hint or "only signed input is accepted")


class UntrustedKeyError(VerificationError):
    """Signed, but by a key that is not among the trusted ones."""

    def __init__(self, key_ids: list[str], trusted: list[str]):
        self.key_ids = key_ids
        self.trusted = trusted
        who = ", ".join(key_ids) or "an unidentified key"
        super().__init__(f"signature made by key {who} which is not the trusted key",
                         f"trusted: {', '.join(trusted) or 'none'}; check where this input comes from")

    def __reduce__(self):        # survive a ProcessPoolExecutor round trip
        return (type(self), (self.key_ids, self.trusted))


class UnsupportedSignatureError(VerificationError):
    """Signed, but only with signatures of a newer OpenPGP version (v6) that cannot be checked yet."""

    def __init__(self, version: int, details: list[str]):
        self.version = version
        self.details = details
        super().__init__(f"unsupported v{version} signature ({'; '.join(details)})",
                         "OpenPGP v6 (post-quantum) signatures cannot be checked yet; only input that "
                         "also carries a v4 signature by the trusted key is accepted")

    def __reduce__(self):        # survive a ProcessPoolExecutor round trip
        return (type(self), (self.version, self.details))


class BadSignatureError(VerificationError):
    """A trusted key's signature does not match the data, or may not be used."""

    def __init__(self, message: str, key_id: str = "", hint: str | None = None):
        self.key_id = key_id
        super().__init__(message, hint or "the data was modified after signing; do not use it")


# -- armor ---------------------------------------------------------------------------------

def crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


_BEGIN = re.compile(r"^-----BEGIN PGP ([A-Z ,0-9/]+)-----\s*$")


@dataclass(frozen=True)
class ArmorBlock:
    label: str                      # "PUBLIC KEY BLOCK", "SIGNATURE", "MESSAGE", ...
    headers: tuple[tuple[str, str], ...]
    data: bytes


def _lines(text: bytes | str) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return text.splitlines()


def _read_armor_body(lines: list[str], i: int, label: str) -> tuple[ArmorBlock, int]:
    """Parse headers, base64 and checksum of one block; lines[i] follows the BEGIN line."""
    headers = []
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        if ": " not in line:
            break                    # no blank line before the data: tolerated
        key, value = line.split(": ", 1)
        headers.append((key.strip(), value.strip()))
        i += 1
    if i < len(lines) and not lines[i].strip():
        i += 1
    body, checksum = [], None
    end = f"-----END PGP {label}-----"
    while True:
        if i >= len(lines):
            raise OpenPGPError(f"armored {label.lower()} has no END line (truncated?)")
        line = lines[i].strip()
        i += 1
        if line == end:
            break
        if line.startswith("=") and len(line) == 5:
            checksum = line[1:]
        elif line:
            body.append(line)
    try:
        data = base64.b64decode("".join(body), validate=True)
    except (ValueError, base64.binascii.Error):
        raise OpenPGPError(f"armored {label.lower()} is not valid base64") from None
    if checksum is not None:
        try:
            expected = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        except (ValueError, base64.binascii.Error):
            raise OpenPGPError(f"armored {label.lower()} has a malformed checksum line") from None
        if crc24(data) != expected:
            raise OpenPGPError(f"armored {label.lower()} fails its CRC24 checksum (damaged in transit?)")
    return ArmorBlock(label, tuple(headers), data), i


def dearmor(text: bytes | str) -> list[ArmorBlock]:
    """All armored blocks in text (clearsigned text sections are skipped over)."""
    lines = _lines(text)
    blocks, i = [], 0
    while i < len(lines):
        m = _BEGIN.match(lines[i].rstrip())
        i += 1
        if not m:
            continue
        label = m.group(1)
        if label == "SIGNED MESSAGE":
            continue                 # its text is not base64; the SIGNATURE block follows
        block, i = _read_armor_body(lines, i, label)
        blocks.append(block)
    return blocks


def armor(label: str, data: bytes) -> str:
    """Armor binary data (e.g. to write a key file)."""
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([f"-----BEGIN PGP {label}-----", "", *lines, f"={crc}",
                      f"-----END PGP {label}-----", ""])


def is_armored(data: bytes | str) -> bool:
    head = data[:4096].lstrip()
    if isinstance(head, bytes):
        return head.startswith(b"-----BEGIN PGP ")
    return head.startswith("-----BEGIN PGP ")


def to_binary(data: bytes | str, label: str | None = None) -> bytes:
    """Binary OpenPGP data from binary or armored input (blocks with `label`, or all)."""
    if len(data) > MAX_INPUT:
        raise OpenPGPError(f"OpenPGP input of {len(data)} bytes is larger than any key or signature")
    if isinstance(data, str) or is_armored(data):
        blocks = [b for b in dearmor(data) if label is None or b.label == label]
        if not blocks:
            raise OpenPGPError(f"no armored {(label or 'OpenPGP').lower()} block found")
        return b"".join(b.data for b in blocks)
    return bytes(data)


# -- packets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Packet:
    tag: int
    body: bytes


def iter_packets(data: bytes) -> Iterator[Packet]:
    """Split binary OpenPGP data into packets (old and new formats, partial lengths)."""
    pos, n = 0, len(data)
    while pos < n:
        first = data[pos]
        pos += 1
        if not first & 0x80:
            raise OpenPGPError(f"not OpenPGP data (bad packet header byte 0x{first:02x} at {pos - 1})")
        if first & 0x40:                       # new format
            tag = first & 0x3F
            body = bytearray()
            while True:
                if pos >= n:
                    raise OpenPGPError("truncated OpenPGP packet header")
                o1 = data[pos]
                if o1 < 192:
                    length, pos, partial = o1, pos + 1, False
                elif o1 < 224:
                    if pos + 1 >= n:
                        raise OpenPGPError("truncated OpenPGP packet header")
                    length, pos, partial = ((o1 - 192) << 8) + data[pos + 1] + 192, pos + 2, False
                elif o1 == 255:
                    if pos + 5 > n:
                        raise OpenPGPError("truncated OpenPGP packet header")
                    length, pos, partial = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5, False
                else:
                    length, pos, partial = 1 << (o1 & 0x1F), pos + 1, True
                if pos + length > n:
                    raise OpenPGPError(f"truncated OpenPGP packet (tag {tag}: {length} bytes announced)")
                body += data[pos:pos + length]
                pos += length
                if not partial:
                    break
            yield Packet(tag, bytes(body))
        else:                                   # old format
            tag = (first >> 2) & 0x0F
            ltype = first & 3
            if ltype == 3:
                length = n - pos
            else:
                size = (1, 2, 4)[ltype]
                if pos + size > n:
                    raise OpenPGPError("truncated OpenPGP packet header")
                length = int.from_bytes(data[pos:pos + size], "big")
                pos += size
            if pos + length > n:
                raise OpenPGPError(f"truncated OpenPGP packet (tag {tag}: {length} bytes announced)")
            yield Packet(tag, data[pos:pos + length])
            pos += length


class _Reader:
    """Bounds-checked reads from a packet body."""

    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise OpenPGPError(f"truncated {self.what}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def mpi(self) -> int:
        bits = self.uint(2)
        if bits > MAX_KEY_BITS:
            raise OpenPGPError(f"{self.what}: {bits}-bit number is beyond any supported key size")
        return int.from_bytes(self.take((bits + 7) // 8), "big")

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)


# -- keys ----------------------------------------------------------------------------------

@dataclass(eq=False)
class PublicKey:
    """A v4 public key or subkey, with what its valid self-signatures say about it (or a newer
    key, `version` > 4, which is only named: its params are empty)."""

    body: bytes
    created: int
    algorithm: int
    params: tuple
    fingerprint: str                  # 40 uppercase hex digits (v6: 64; unknown versions: "")
    is_subkey: bool = False
    version: int = 4
    user_ids: list[str] = field(default_factory=list)
    subkeys: list["PublicKey"] = field(default_factory=list)
    primary: "PublicKey | None" = None
    expires: int | None = None        # absolute time, from the newest valid self-signature
    flags: int | None = None          # key flags subpacket, None when not stated
    revoked: str | None = None        # reason, when a valid revocation exists

    @property
    def key_id(self) -> str:
        return _key_id(self.fingerprint)

    @property
    def algorithm_name(self) -> str:
        return ALGO_NAMES.get(self.algorithm, f"algorithm {self.algorithm}")

    @property
    def bits(self) -> int:
        if self.algorithm in RSA_ALGOS:
            return self.params[0].bit_length()
        if self.algorithm == DSA:
            return self.params[0].bit_length()
        if self.algorithm in (EDDSA_LEGACY, ED25519):
            return 255
        return 0

    @property
    def can_sign(self) -> bool:
        return self.flags is None or bool(self.flags & KEY_FLAG_SIGN)

    def describe(self) -> str:
        uid = (self.primary or self).user_ids
        who = f" ({uid[0]})" if uid else ""
        return f"{self.algorithm_name}{self.bits} key {self.key_id}{who}"

    def __repr__(self) -> str:
        return f"<PublicKey {self.fingerprint} {self.algorithm_name}{self.bits}{' subkey' if self.is_subkey else ''}>"

    @classmethod
    def from_bytes(cls, data: bytes | str) -> "PublicKey":
        """The first primary key (with its subkeys) in binary or armored data."""
        keys = [k for k in load_keyring(data) if not k.is_subkey]
        if not keys:
            raise OpenPGPError("no public key found")
        return keys[0]

    def hash_material(self) -> bytes:
        """The key as it enters fingerprints and key signatures: 0x99, 2-byte length, body."""
        return b"\x99" + len(self.body).to_bytes(2, "big") + self.body

    def signing_keys(self) -> list["PublicKey"]:
        """This key and its (validly bound) subkeys."""
        return [self, *self.subkeys]


def _key_id(fingerprint: str) -> str:
    """v4: the fingerprint's last 8 octets; v6 (RFC 9580 section 5.5.4.3): its first 8."""
    return fingerprint[:16] if len(fingerprint) == 64 else fingerprint[-16:]


def _parse_key(body: bytes, is_subkey: bool) -> PublicKey:
    r = _Reader(body, "public key packet")
    version = r.byte()
    if version != 4:
        # Only named, never used. v5/v6 (RFC 9580 section 5.5.2.3): creation time, algorithm,
        # 4-octet key material length; the fingerprint is SHA256 over 0x9A/0x9B, that 4-octet
        # length and the body (section 5.5.4.3).
        created, algo = r.uint(4), r.byte()
        fingerprint = ""
        if version in (5, 6):
            r.take(r.uint(4))
            prefix = b"\x9b" if version == 6 else b"\x9a"
            fingerprint = hashlib.sha256(prefix + len(body).to_bytes(4, "big") + body).hexdigest().upper()
        return PublicKey(body=body, created=created, algorithm=algo, params=(), fingerprint=fingerprint,
                         is_subkey=is_subkey, version=version)
    created = r.uint(4)
    algo = r.byte()
    if algo in RSA_ALGOS:
        params = (r.mpi(), r.mpi())                        # n, e
    elif algo == DSA:
        params = (r.mpi(), r.mpi(), r.mpi(), r.mpi())      # p, q, g, y
    elif algo == EDDSA_LEGACY:
        oid = r.take(r.byte())
        point = r.mpi()
        params = (oid, point)
    elif algo == ED25519:
        params = (ED25519_OID, r.take(32))
    else:
        # Unknown to us, but still a key whose fingerprint we can compute and report.
        r.rest()
        params = ()
    fingerprint = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    return PublicKey(body=body, created=created, algorithm=algo, params=params,
                     fingerprint=fingerprint, is_subkey=is_subkey)


def load_keyring(data: bytes | str) -> list[PublicKey]:
    """All keys in binary or armored data: each primary key followed by its valid subkeys.

    Self-signatures are verified: user IDs without a valid certification by their primary key
    are dropped, and so are subkeys without a valid binding signature. Key expiry, key flags and
    revocations are taken from valid self-signatures only. Keys of another version than 4 (the
    v6 post-quantum key RHEL ships beside its RSA one) are skipped with a note, with everything
    that belongs to them, as long as a v4 key remains.
    """
    binary = to_binary(data, "PUBLIC KEY BLOCK")
    primaries: list[tuple[PublicKey, list]] = []
    current = None
    for packet in iter_packets(binary):
        if packet.tag in (TAG_SECRET_KEY, TAG_SECRET_SUBKEY):
            raise OpenPGPError("this is a secret key; give the public key (gpg --export)")
        if packet.tag == TAG_PUBLIC_KEY:
            current = (_parse_key(packet.body, False), [])
            primaries.append(current)
            continue
        if current is None:
            if packet.tag in (TAG_SIGNATURE, TAG_TRUST, TAG_USER_ID, TAG_PUBLIC_SUBKEY):
                raise OpenPGPError("key data does not start with a primary key")
            continue
        current[1].append(packet)
    result: list[PublicKey] = []
    skipped = [primary for primary, _ in primaries if primary.version != 4]
    for primary, packets in primaries:
        if primary.version == 4:
            _apply_self_signatures(primary, packets)
            result.append(primary)
            result.extend(primary.subkeys)
    if skipped and not result:
        raise OpenPGPError(f"the key file holds only {_describe_newer(skipped[0])}, which is not supported yet",
                           "use the distribution's v4 (RSA) release key, which signs its packages too")
    if not result:
        raise OpenPGPError("no public key found")
    for key in skipped:
        log.info("skipped %s: not supported, the v4 key is used", _describe_newer(key))
    return result


def _describe_newer(key: PublicKey) -> str:
    """'an OpenPGP v6 key (ML-DSA-87+Ed448, post-quantum) F3AE...' for the notes and errors."""
    what = key.algorithm_name + (", post-quantum" if key.algorithm in PQC_NAMES else "")
    return f"an OpenPGP v{key.version} key ({what}) {key.fingerprint}".rstrip()


def _apply_self_signatures(primary: PublicKey, packets: list[Packet]) -> None:
    """Walk a key's packets, keeping what its primary key validly certified."""
    direct: list[Signature] = []
    uid_sigs: list[tuple[bytes, list[Signature]]] = []
    sub_sigs: list[tuple[PublicKey, list[Signature]]] = []
    target = None
    for packet in packets:
        if packet.tag == TAG_USER_ID:
            target = (packet.body, [])
            uid_sigs.append(target)
        elif packet.tag == TAG_USER_ATTRIBUTE:
            target = None             # photos: ignored with their signatures
        elif packet.tag == TAG_PUBLIC_SUBKEY:
            target = (_parse_key(packet.body, True), [])
            if target[0].version == 4:
                sub_sigs.append(target)      # else: not usable, its binding signatures neither
        elif packet.tag == TAG_SIGNATURE:
            try:
                sig = Signature.parse(packet.body)
            except OpenPGPError:
                continue              # third-party signatures in odd formats do not matter
            if target is None:
                direct.append(sig)
            else:
                target[1].append(sig)

    def valid(sig: Signature, *material: bytes) -> bool:
        if not sig.supported or not sig.may_be_issued_by(primary):
            return False
        try:
            h = sig.new_hash(allow_sha1=True)
            for m in material:
                h.update(m)
            _verify_with_key(sig, h, primary)
            return True
        except VerificationError:
            return False

    pm = primary.hash_material()
    newest: Signature | None = None
    for sig in direct:
        if sig.sig_type == SIG_KEY_REVOCATION and valid(sig, pm):
            primary.revoked = sig.revocation_reason or "revoked"
        elif sig.sig_type == SIG_DIRECT_KEY and valid(sig, pm):
            newest = sig if newest is None or sig.created >= newest.created else newest
    for uid, sigs in uid_sigs:
        material = b"\xb4" + len(uid).to_bytes(4, "big") + uid
        good = [s for s in sigs if s.sig_type in SIG_CERTIFICATIONS and valid(s, pm, material)]
        if good:
            primary.user_ids.append(uid.decode("utf-8", "replace"))
            best = max(good, key=lambda s: s.created)
            if newest is None or best.created >= newest.created:
                newest = best
    if newest is not None:
        if newest.key_expiration:
            primary.expires = primary.created + newest.key_expiration
        primary.flags = newest.key_flags
    for sub, sigs in sub_sigs:
        material = pm + sub.hash_material()
        bindings = [s for s in sigs if s.sig_type == SIG_SUBKEY_BINDING and valid(s, material)]
        if not bindings:
            continue                  # unbound subkey: anyone could have appended it
        best = max(bindings, key=lambda s: s.created)
        sub.primary = primary
        sub.flags = best.key_flags
        if best.key_expiration:
            sub.expires = sub.created + best.key_expiration
        for s in sigs:
            if s.sig_type == SIG_SUBKEY_REVOCATION and valid(s, material):
                sub.revoked = s.revocation_reason or "revoked"
        primary.subkeys.append(sub)


# -- signatures ----------------------------------------------------------------------------

@dataclass(eq=False)
class Signature:
    """A v3 or v4 signature packet (or a v6 one, only named: `supported` is False)."""

    version: int
    sig_type: int
    pubkey_algo: int
    hash_algo: int
    hashed: bytes                     # the bytes hashed after the data (v4: version..subpackets)
    left16: bytes
    values: tuple                     # algorithm-specific: RSA (s,), DSA/EdDSA (r, s)
    created: int = 0
    issuer_key_id: str | None = None
    issuer_fingerprint: str | None = None
    expiration: int | None = None     # seconds after creation
    key_expiration: int | None = None
    key_flags: int | None = None
    revocation_reason: str | None = None
    unknown_critical: list[int] = field(default_factory=list)
    signer: PublicKey | None = None   # set once verified

    @classmethod
    def parse(cls, body: bytes) -> "Signature":
        r = _Reader(body, "signature packet")
        version = r.byte()
        if version == 3:
            if r.byte() != 5:
                raise OpenPGPError("malformed v3 signature")
            hashed = r.take(5)
            sig_type, created = hashed[0], int.from_bytes(hashed[1:5], "big")
            issuer = r.take(8).hex().upper()
            algo, hash_algo = r.byte(), r.byte()
            left16 = r.take(2)
            sig = cls(3, sig_type, algo, hash_algo, hashed, left16, (), created, issuer_key_id=issuer)
        elif version in (4, 6):
            # v6 (RFC 9580 section 5.2.3): 4-octet subpacket area lengths, and a salt before the
            # signature material, which is not read: a v6 signature is named, never checked.
            width = 2 if version == 4 else 4
            sig_type, algo, hash_algo = r.byte(), r.byte(), r.byte()
            hashed_len = r.uint(width)
            hashed_area = r.take(hashed_len)
            unhashed_area = r.take(r.uint(width))
            left16 = r.take(2)
            sig = cls(version, sig_type, algo, hash_algo, body[:4 + width + hashed_len], left16, ())
            sig._subpackets(hashed_area, hashed=True)
            sig._subpackets(unhashed_area, hashed=False)
            if version == 6:
                r.take(r.byte())
                return sig
        else:
            raise OpenPGPError(f"unsupported OpenPGP signature version {version}")
        if algo in RSA_ALGOS:
            sig.values = (r.mpi(),)
        elif algo in (DSA, EDDSA_LEGACY, ECDSA):
            sig.values = (r.mpi(), r.mpi())
        elif algo == ED25519:
            sig.values = (r.take(64),)
        else:
            sig.values = ()
        return sig

    def _subpackets(self, area: bytes, hashed: bool) -> None:
        pos, n = 0, len(area)
        while pos < n:
            o1 = area[pos]
            if o1 < 192:
                length, pos = o1, pos + 1
            elif o1 < 255:
                if pos + 1 >= n:
                    raise OpenPGPError("truncated signature subpacket")
                length, pos = ((o1 - 192) << 8) + area[pos + 1] + 192, pos + 2
            else:
                length, pos = int.from_bytes(area[pos + 1:pos + 5], "big"), pos + 5
            if length < 1 or pos + length > n:
                raise OpenPGPError("malformed signature subpacket")
            kind, data = area[pos] & 0x7F, area[pos + 1:pos + length]
            critical = bool(area[pos] & 0x80)
            pos += length
            if kind == SUB_ISSUER and len(data) == 8:
                self.issuer_key_id = data.hex().upper()
            elif kind == SUB_ISSUER_FPR and (data[:1], len(data)) in ((b"\x04", 21), (b"\x06", 33)):
                self.issuer_fingerprint = data[1:].hex().upper()
            elif not hashed:
                continue              # anything else unhashed is unauthenticated: ignored
            elif kind == SUB_CREATION and len(data) == 4:
                self.created = int.from_bytes(data, "big")
            elif kind == SUB_SIG_EXPIRATION and len(data) == 4:
                self.expiration = int.from_bytes(data, "big") or None
            elif kind == SUB_KEY_EXPIRATION and len(data) == 4:
                self.key_expiration = int.from_bytes(data, "big") or None
            elif kind == SUB_KEY_FLAGS and data:
                self.key_flags = data[0]
            elif kind == 29 and data:
                self.revocation_reason = data[1:].decode("utf-8", "replace") or f"reason code {data[0]}"
            if hashed and critical and kind not in KNOWN_SUBPACKETS:
                self.unknown_critical.append(kind)

    @property
    def key_id(self) -> str | None:
        """The issuing key's ID (from the fingerprint subpacket when present)."""
        if self.issuer_fingerprint:
            return _key_id(self.issuer_fingerprint)
        return self.issuer_key_id

    @property
    def supported(self) -> bool:
        return self.version in (3, 4)

    def describe(self) -> str:
        """'ML-DSA-87+Ed448 by key F3AEC6DBD5039DAF', for messages about signatures not checked."""
        return f"{ALGO_NAMES.get(self.pubkey_algo, f'algorithm {self.pubkey_algo}')} by key {self.key_id or '(no issuer)'}"

    @property
    def hash_name(self) -> str:
        return HASH_DISPLAY.get(self.hash_algo, f"hash {self.hash_algo}")

    def may_be_issued_by(self, key: PublicKey) -> bool:
        if self.issuer_fingerprint:
            return self.issuer_fingerprint == key.fingerprint
        if self.issuer_key_id:
            return self.issuer_key_id == key.key_id
        return self.pubkey_algo == key.algorithm or (self.pubkey_algo in RSA_ALGOS and key.algorithm in RSA_ALGOS)

    def new_hash(self, *, allow_sha1: bool = False):
        """A hashlib object for this signature's hash algorithm, policy-checked."""
        name = HASH_ALGOS.get(self.hash_algo)
        if name is None:
            raise OpenPGPError(f"signature uses unknown hash algorithm {self.hash_algo}")
        if self.hash_algo in WEAK_HASHES or (self.hash_algo == SHA1 and not allow_sha1):
            raise BadSignatureError(f"signature uses {self.hash_name}, which is too weak to trust",
                                    self.key_id or "", "ask for a signature made with SHA256 or better")
        return hashlib.new(name)

    def trailer(self) -> bytes:
        """What is hashed after the data."""
        if self.version == 3:
            return self.hashed
        return self.hashed + b"\x04\xff" + len(self.hashed).to_bytes(4, "big")


def parse_signatures(data: bytes | str) -> list[Signature]:
    """All signature packets in binary or armored data."""
    sigs = []
    for packet in iter_packets(to_binary(data, "SIGNATURE")):
        if packet.tag == TAG_SIGNATURE:
            sigs.append(Signature.parse(packet.body))
        elif packet.tag in (TAG_COMPRESSED, TAG_LITERAL):
            raise OpenPGPError("this is a signed message, not a detached signature",
                               "give the detached signature (.asc/.sig) and the data separately")
    return sigs


# -- verification --------------------------------------------------------------------------

def _rsa_verify(key: PublicKey, sig: Signature, digest: bytes) -> bool:
    n, e = key.params
    (s,) = sig.values
    if key.bits < MIN_RSA_BITS:
        raise BadSignatureError(f"{key.describe()} is only {key.bits} bits; at least {MIN_RSA_BITS} are required",
                                key.key_id, "use a stronger key")
    if not 0 < s < n:
        return False
    prefix = DIGEST_INFO.get(sig.hash_algo)
    if prefix is None:
        raise OpenPGPError(f"no PKCS#1 encoding known for {sig.hash_name}")
    k = (n.bit_length() + 7) // 8
    t = prefix + digest
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(s, e, n).to_bytes(k, "big") == expected


def _dsa_verify(key: PublicKey, sig: Signature, digest: bytes) -> bool:
    p, q, g, y = key.params
    r, s = sig.values
    if not (0 < r < q and 0 < s < q):
        return False
    qbytes = (q.bit_length() + 7) // 8
    z = int.from_bytes(digest[:qbytes], "big")
    if len(digest) * 8 > q.bit_length():
        z >>= max(0, min(len(digest), qbytes) * 8 - q.bit_length())
    w = pow(s, -1, q)
    v = (pow(g, z * w % q, p) * pow(y, r * w % q, p)) % p % q
    return v == r


def _eddsa_verify(key: PublicKey, sig: Signature, digest: bytes) -> bool:
    oid, point = key.params
    if oid != ED25519_OID:
        raise OpenPGPError("unsupported EdDSA curve (only Ed25519 is supported)")
    if isinstance(point, int):                 # legacy: MPI with a 0x40 prefix byte
        raw = point.to_bytes(33, "big")
        if raw[0] != 0x40:
            raise OpenPGPError("malformed Ed25519 public key")
        pub = raw[1:]
    else:
        pub = point
    if sig.pubkey_algo == ED25519:
        signature = sig.values[0]
    else:
        r, s = sig.values
        if r >= 1 << 256 or s >= 1 << 256:
            return False
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return ed25519.verify(pub, digest, signature)


def _verify_with_key(sig: Signature, h, key: PublicKey) -> None:
    """Finish hash h with the signature trailer and check it against key (raises on failure)."""
    if sig.unknown_critical:
        raise BadSignatureError(f"signature carries unknown critical subpackets {sig.unknown_critical}",
                                key.key_id)
    h.update(sig.trailer())
    digest = h.digest()
    if digest[:2] != sig.left16:
        raise BadSignatureError(f"BAD signature by {key.describe()}", key.key_id)
    if key.algorithm in RSA_ALGOS and sig.pubkey_algo in RSA_ALGOS:
        ok = _rsa_verify(key, sig, digest)
    elif key.algorithm == DSA and sig.pubkey_algo == DSA:
        ok = _dsa_verify(key, sig, digest)
    elif key.algorithm in (EDDSA_LEGACY, ED25519) and sig.pubkey_algo in (EDDSA_LEGACY, ED25519):
        ok = _eddsa_verify(key, sig, digest)
    elif key.algorithm != sig.pubkey_algo:
        raise BadSignatureError(f"signature algorithm {ALGO_NAMES.get(sig.pubkey_algo, sig.pubkey_algo)} "
                                f"does not match {key.describe()}", key.key_id)
    else:
        raise OpenPGPError(f"unsupported key algorithm {key.algorithm_name} ({key.key_id})",
                           "only RSA, DSA and Ed25519 keys can be checked")
    if not ok:
        raise BadSignatureError(f"BAD signature by {key.describe()}", key.key_id)


def candidate_keys(keys: Iterable[PublicKey]) -> list[PublicKey]:
    """The trusted keys and their validly bound subkeys, each once."""
    seen, out = set(), []
    for key in keys:
        for k in key.signing_keys() if not key.is_subkey else [key]:
            if k.fingerprint not in seen:
                seen.add(k.fingerprint)
                out.append(k)
    return out


def hash_for(sig: Signature, *, allow_sha1: bool = False):
    """sig.new_hash(), or the policy error as a value (decided later, per signer)."""
    if not sig.supported:
        return UnsupportedSignatureError(sig.version, [sig.describe()])
    try:
        return sig.new_hash(allow_sha1=allow_sha1)
    except VerificationError as exc:
        return exc


def verify_hashed(sigs: list[Signature], hashes: list, keys: Iterable[PublicKey], *,
                  now: float | None = None) -> Signature:
    """Check signatures whose data was already fed into `hashes` (one per signature, from
    `hash_for(sig)`; an exception in place of a hash counts as that signature failing).
    Returns the first good signature by a trusted key; raises otherwise: BadSignatureError (or
    the policy error) when a trusted key's signature fails, UnsupportedSignatureError when there
    are only v6 signatures, else UntrustedKeyError. v6 signatures beside v4 ones are passed over."""
    if not sigs:
        raise NotSignedError()
    candidates = candidate_keys(keys)
    untrusted: list[str] = []
    newer = [sig for sig in sigs if not sig.supported]
    failure: VerificationError | None = None
    for sig, h in zip(sigs, hashes):
        if not sig.supported:
            continue
        matching = [k for k in candidates if sig.may_be_issued_by(k)]
        if not matching:
            untrusted.append(sig.key_id or "(no issuer)")
            continue
        if isinstance(h, Exception):
            failure = failure or h
            continue
        for key in matching:
            try:
                _verify_with_key(sig, h.copy(), key)
                _check_usable(sig, key, now)
            except VerificationError as exc:
                failure = failure or exc
                continue
            sig.signer = key
            return sig
    if failure is not None:
        raise failure
    if newer and not untrusted:
        raise UnsupportedSignatureError(newer[0].version, [sig.describe() for sig in newer])
    raise UntrustedKeyError(untrusted, [k.fingerprint for k in candidates if not k.is_subkey])


def _check_usable(sig: Signature, key: PublicKey, now: float | None) -> None:
    primary = key.primary or key
    if primary.revoked or key.revoked:
        raise BadSignatureError(f"{key.describe()} has been revoked ({key.revoked or primary.revoked})",
                                key.key_id, "the key's owner withdrew it; do not trust what it signed")
    if key.is_subkey and not key.can_sign:
        raise BadSignatureError(f"{key.describe()} is not a signing key", key.key_id)
    for k in {key, primary}:
        if k.expires is not None and sig.created > k.expires:
            when = time.strftime("%Y-%m-%d", time.gmtime(k.expires))
            raise BadSignatureError(f"signature by {key.describe()} was made after the key expired on {when}",
                                    key.key_id)
    if sig.expiration is not None:
        current = time.time() if now is None else now
        if current > sig.created + sig.expiration:
            raise BadSignatureError(f"signature by {key.describe()} has expired", key.key_id)


def _check_document_sigs(sigs: list[Signature]) -> None:
    for sig in sigs:
        if sig.sig_type not in (SIG_BINARY, SIG_TEXT):
            raise OpenPGPError(f"signature of type 0x{sig.sig_type:02x} is not a document signature")


def canonical_text(data: bytes) -> bytes:
    """Line endings as CRLF, as hashed for text signatures (type 0x01)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def verify_detached(data: bytes, signature: bytes | str | Signature | list[Signature],
                    keys: Iterable[PublicKey], *, allow_sha1: bool = False,
                    now: float | None = None) -> Signature:
    """Verify a detached signature (binary or armored) over data with one of keys.

    Returns the good Signature (`.signer` is the key). Raises NotSignedError, UntrustedKeyError
    (names the key that signed), BadSignatureError or OpenPGPError.
    """
    if isinstance(signature, Signature):
        sigs = [signature]
    elif isinstance(signature, list):
        sigs = list(signature)
    else:
        sigs = parse_signatures(signature)
    _check_document_sigs(sigs)
    hashes = []
    for sig in sigs:
        h = hash_for(sig, allow_sha1=allow_sha1)
        if not isinstance(h, Exception):
            h.update(canonical_text(data) if sig.sig_type == SIG_TEXT else data)
        hashes.append(h)
    return verify_hashed(sigs, hashes, keys, now=now)


# -- clearsigned messages ------------------------------------------------------------------

@dataclass(frozen=True)
class ClearsignedMessage:
    text: bytes                       # the signed text, LF line endings, trailing newline
    signed: bytes                     # the canonical bytes the signature covers
    hashes: tuple[str, ...]           # the "Hash:" header's algorithms
    signatures: list[Signature]


def parse_clearsigned(data: bytes | str) -> ClearsignedMessage:
    lines = _lines(data)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == "-----BEGIN PGP SIGNED MESSAGE-----"]
    if not starts:
        raise NotSignedError("not a clearsigned message (no BEGIN PGP SIGNED MESSAGE line)")
    if len(starts) > 1:
        raise OpenPGPError("more than one clearsigned message in one file",
                           "refusing ambiguous input; give one signed message")
    i = starts[0] + 1
    hashes: list[str] = []
    while i < len(lines) and lines[i].strip():
        key, sep, value = lines[i].partition(":")
        if key != "Hash" or not sep:
            raise OpenPGPError(f"unexpected clearsigned header line {lines[i]!r}")
        hashes += [v.strip().upper() for v in value.split(",") if v.strip()]
        i += 1
    i += 1
    body: list[str] = []
    while True:
        if i >= len(lines):
            raise NotSignedError("clearsigned message has no signature (truncated?)")
        line = lines[i]
        i += 1
        if line.rstrip() == "-----BEGIN PGP SIGNATURE-----":
            break
        if line.startswith("- "):
            line = line[2:]
        elif line.startswith("-"):
            raise OpenPGPError(f"malformed clearsigned message: line {i} starts with an unescaped dash")
        body.append(line.rstrip(" \t\r"))
    block, _ = _read_armor_body(lines, i, "SIGNATURE")
    sigs = parse_signatures(block.data)
    signed = "\r\n".join(body).encode("utf-8", "surrogateescape")
    text = ("\n".join(body) + "\n").encode("utf-8", "surrogateescape") if body else b""
    return ClearsignedMessage(text, signed, tuple(hashes), sigs)


def verify_clearsigned(data: bytes | str, keys: Iterable[PublicKey], *, allow_sha1: bool = False,
                       now: float | None = None) -> bytes:
    """Verify a clearsigned message; return the signed text (and nothing outside it)."""
    msg = parse_clearsigned(data)
    if not msg.signatures:
        raise NotSignedError()
    hashes = []
    for sig in msg.signatures:
        if sig.sig_type not in (SIG_BINARY, SIG_TEXT):
            raise OpenPGPError(f"signature of type 0x{sig.sig_type:02x} is not a document signature")
        if sig.supported and msg.hashes and sig.hash_name.replace("-", "") not in {h.replace("-", "") for h in msg.hashes}:
            raise OpenPGPError(f"clearsigned message declares Hash: {', '.join(msg.hashes)} "
                               f"but is signed with {sig.hash_name}")
        h = hash_for(sig, allow_sha1=allow_sha1)
        if not isinstance(h, Exception):
            h.update(msg.signed)
        hashes.append(h)
    verify_hashed(msg.signatures, hashes, keys, now=now)
    return msg.text


def format_fingerprint(fpr: str) -> str:
    """'FC22 6859 C086 0BF0 DDB9  5B08 5B10 6C73 6FED FC85', as gpg prints it."""
    fpr = fpr.replace(" ", "").upper()
    groups = [fpr[i:i + 4] for i in range(0, len(fpr), 4)]
    return " ".join(groups[:5]) + "  " + " ".join(groups[5:]) if len(groups) == 10 else " ".join(groups)


def normalize_fingerprint(text: str) -> str:
    """Uppercase hex without spaces (or 0x); raises OpenPGPError on anything else, and on a v6
    fingerprint (64 hex digits), which cannot be a trust anchor yet."""
    fpr = text.replace(" ", "").upper()
    fpr = fpr[2:] if fpr.startswith("0X") else fpr
    if re.fullmatch(r"[0-9A-F]{64}", fpr):
        raise OpenPGPError(f"{text!r} is an OpenPGP v6 key fingerprint (64 hex digits): "
                           "v6 (post-quantum) keys are not supported yet",
                           "pin the distribution's v4 (RSA) release key (40 hex digits), which signs its "
                           "packages too")
    if not re.fullmatch(r"[0-9A-F]{40}", fpr):
        raise OpenPGPError(f"{text!r} is not a v4 key fingerprint (40 hex digits)",
                           "copy the full fingerprint, e.g. from gpg --fingerprint")
    return fpr
