"""OpenPGP verification against the real gpg: keys, detached, armored, clearsigned, text mode."""

from __future__ import annotations

import random

import pytest

from levitate.rpm import openpgp
from levitate.rpm.openpgp import (BadSignatureError, NotSignedError, OpenPGPError, PublicKey,
                                  UntrustedKeyError, load_keyring, verify_clearsigned,
                                  verify_detached)
from levitate.util.errors import VerificationError
from tests.cheat_aware import cheat_aware
from tests.unit.test_rpm_support import keys as _keys
from tests.unit.test_rpm_support import V6Key, make_key, pgp_armor, run, workdir

DATA = b"SHA256 (Rocky-10.0-x86_64-dvd1.iso) = 0123456789abcdef\n" * 3


@pytest.fixture(scope="session")
def keys():
    return _keys()


@pytest.fixture(scope="session")
def trusted(keys):
    return load_keyring(keys.trusted.public())


def flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


# -- keys ------------------------------------------------------------------------------------

@cheat_aware(protects="the trust anchor: a key is used only if its fingerprint equals the pinned one",
             cheats=["comparing key IDs or user IDs instead of full fingerprints",
                     "hard-coding the test key's fingerprint"],
             consequence="an attacker's key with a look-alike name would be trusted for every package")
def test_fingerprint_and_key_id_match_gpg(keys):
    for k in (keys.trusted, keys.other):
        key = PublicKey.from_bytes(k.public())
        assert key.fingerprint == k.fingerprint
        assert key.key_id == k.fingerprint[-16:]
        binary = PublicKey.from_bytes(k.public(armor=False))
        assert binary.fingerprint == k.fingerprint
    assert PublicKey.from_bytes(keys.trusted.public()).fingerprint != PublicKey.from_bytes(keys.other.public()).fingerprint


def test_key_properties_match_gpg(keys):
    key = PublicKey.from_bytes(keys.trusted.public())
    pub = next(line.split(":") for line in keys.trusted.colons().splitlines() if line.startswith("pub:"))
    assert key.algorithm_name == "RSA"
    assert key.bits == int(pub[2]) == 3072
    assert key.created == int(pub[5])
    assert key.user_ids == [keys.trusted.uid]
    assert key.can_sign and key.expires is None and key.revoked is None
    assert openpgp.format_fingerprint(key.fingerprint).replace(" ", "") == key.fingerprint
    assert openpgp.normalize_fingerprint(openpgp.format_fingerprint(key.fingerprint)) == key.fingerprint


def test_keyring_with_several_keys(keys):
    ring = load_keyring(keys.trusted.public() + keys.other.public())
    assert [k.fingerprint for k in ring] == [keys.trusted.fingerprint, keys.other.fingerprint]


def test_armor_checksum_is_checked(keys):
    armored = keys.trusted.public().decode()
    lines = armored.splitlines()
    crc_index = next(i for i, line in enumerate(lines) if line.startswith("=") and len(line) == 5)
    # Change one base64 character of the body but keep it valid base64.
    body_index = crc_index - 2
    line = lines[body_index]
    lines[body_index] = ("B" if line[0] != "B" else "C") + line[1:]
    with pytest.raises(OpenPGPError, match="CRC24"):
        load_keyring("\n".join(lines))


@pytest.mark.parametrize("cut", [1, 10, 100, 300, 500, -5])
def test_truncated_key_is_a_clear_error(keys, cut):
    binary = keys.trusted.public(armor=False)
    with pytest.raises(VerificationError):
        load_keyring(binary[:cut])


def test_garbage_never_crashes(keys):
    rng = random.Random(7)
    key = keys.trusted.public(armor=False)
    sig = keys.trusted.sign(DATA, "--detach-sign")
    for _ in range(200):
        blob = bytearray(rng.choice([key, sig]))
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        try:
            ring = load_keyring(bytes(blob))
            verify_detached(DATA, sig, ring)
        except VerificationError:
            pass


def test_secret_key_is_refused_with_hint(keys):
    secret = keys.trusted.gpg("--export-secret-keys", keys.trusted.fingerprint)
    with pytest.raises(OpenPGPError, match="secret key"):
        load_keyring(secret)


# -- OpenPGP v6 beside v4 (RHEL 10.1) ---------------------------------------------------------

@cheat_aware(protects="a release key file that also holds a v6 (post-quantum) key stays usable through its v4 key",
             cheats=["dropping every key after the first", "ignoring the v6 key without telling anyone"],
             consequence="once the distribution adds its post-quantum key to the key file, no build can start")
@pytest.mark.parametrize("layout", ["two armored blocks", "v6 first in one block", "v4 first in one block"])
def test_key_file_with_a_v6_key_uses_the_v4_key(keys, layout, caplog):
    v6 = V6Key()
    if layout == "two armored blocks":         # `cat RPM-GPG-KEY-redhat-release RPM-GPG-KEY-PQC-...`
        data = keys.trusted.public() + v6.public()
    elif layout == "v6 first in one block":
        data = pgp_armor("PUBLIC KEY BLOCK", v6.public(armor=False) + keys.trusted.public(armor=False))
    else:
        data = pgp_armor("PUBLIC KEY BLOCK", keys.trusted.public(armor=False) + v6.public(armor=False))
    with caplog.at_level("INFO", logger="levitate"):
        ring = load_keyring(data)
    assert [k.fingerprint for k in ring] == [keys.trusted.fingerprint]
    assert ring[0].user_ids == [keys.trusted.uid]
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"skipped an OpenPGP v6 key (ML-DSA-87+Ed448, post-quantum) {v6.fingerprint}: "
                     "not supported, the v4 key is used"]
    # and the v4 key still verifies what it signed
    assert verify_detached(DATA, keys.trusted.sign(DATA, "--detach-sign"), ring).signer is ring[0]


def test_key_file_with_only_a_v6_key_is_a_clear_error():
    v6 = V6Key()
    with pytest.raises(OpenPGPError, match=r"holds only an OpenPGP v6 key \(ML-DSA-87\+Ed448, post-quantum\) "
                                           + v6.fingerprint + ", which is not supported yet"):
        load_keyring(v6.public())


def test_v6_fingerprint_pin_is_not_supported_yet():
    with pytest.raises(OpenPGPError, match="v6 key fingerprint .* not supported yet") as info:
        openpgp.normalize_fingerprint(V6Key().fingerprint)
    assert "40 hex digits" in info.value.hint


def test_v6_signature_is_named(keys):
    v6 = V6Key()
    [sig] = openpgp.parse_signatures(v6.signature())
    assert (sig.version, sig.supported, sig.key_id, sig.hash_name) == (6, False, v6.key_id, "SHA512")
    assert sig.describe() == f"ML-DSA-87+Ed448 by key {v6.key_id}"


@cheat_aware(protects="a detached signature file with a v4 and a v6 signature verifies by the v4 one",
             cheats=["accepting the v6 signature unchecked", "refusing the file for its v6 signature"],
             consequence="a forged v6-only signature would pass, or RHEL-style dual-signed metadata would not")
def test_detached_v4_and_v6_signatures(keys, trusted):
    v4 = keys.trusted.sign(DATA, "--detach-sign")
    v6 = V6Key()
    for both in (v4 + v6.signature(), v6.signature() + v4):
        assert verify_detached(DATA, both, trusted).signer.fingerprint == keys.trusted.fingerprint
        with pytest.raises(BadSignatureError):
            verify_detached(flip(DATA, 3), both, trusted)
    with pytest.raises(openpgp.UnsupportedSignatureError) as info:
        verify_detached(DATA, pgp_armor("SIGNATURE", v6.signature()), trusted)
    assert str(info.value).startswith(f"unsupported v6 signature (ML-DSA-87+Ed448 by key {v6.key_id})")
    # a v4 signature by another key still names that key, v6 beside it or not
    with pytest.raises(UntrustedKeyError, match=keys.other.key_id):
        verify_detached(DATA, keys.other.sign(DATA, "--detach-sign") + v6.signature(), trusted)


# -- detached signatures ---------------------------------------------------------------------

@cheat_aware(protects="repomd.xml.asc and detached signatures made by the real gpg verify",
             cheats=["returning success without doing the RSA operation",
                     "checking only the 16-bit quick-check"],
             consequence="repository metadata from an attacker would be accepted")
@pytest.mark.parametrize("options", [("--detach-sign",), ("--detach-sign", "--armor"),
                                     ("--detach-sign", "--digest-algo", "SHA256"),
                                     ("--detach-sign", "--digest-algo", "SHA384"),
                                     ("--detach-sign", "--digest-algo", "SHA224")])
def test_gpg_detached_signatures_verify(keys, trusted, options):
    sig = keys.trusted.sign(DATA, *options)
    result = verify_detached(DATA, sig, trusted)
    assert result.signer.fingerprint == keys.trusted.fingerprint
    assert result.key_id == keys.trusted.key_id


@cheat_aware(protects="a single changed byte of signed data is detected",
             cheats=["verifying only the quick-check bytes", "catching errors and returning success"],
             consequence="a tampered repomd.xml or CHECKSUM file would pass")
def test_flipped_data_byte_fails(keys, trusted):
    sig = keys.trusted.sign(DATA, "--detach-sign")
    for index in (0, len(DATA) // 2, len(DATA) - 1):
        with pytest.raises(BadSignatureError, match="BAD signature"):
            verify_detached(flip(DATA, index), sig, trusted)
    with pytest.raises(BadSignatureError):
        verify_detached(DATA + b"\n", sig, trusted)


@cheat_aware(protects="a damaged signature never verifies",
             cheats=["ignoring the signature's hashed subpackets", "skipping PKCS#1 padding checks"],
             consequence="forged signatures could pass")
def test_flipped_signature_byte_fails(keys, trusted):
    sig = keys.trusted.sign(DATA, "--detach-sign")
    assert sig[0] == 0x89                          # old-format header, 2-byte length
    hashed_len = int.from_bytes(sig[7:9], "big")   # after version, type, algorithms
    positions = [4, 6, 10, 9 + hashed_len - 1, len(sig) - 1, len(sig) - 100]
    for index in positions:
        with pytest.raises(VerificationError):
            verify_detached(DATA, flip(sig, index), trusted)


@cheat_aware(protects="a signature by any other key is refused and the error names that key",
             cheats=["accepting any valid signature regardless of who made it"],
             consequence="anyone with a key could sign packages and metadata")
def test_other_key_is_refused_and_named(keys, trusted):
    sig = keys.other.sign(DATA, "--detach-sign")
    with pytest.raises(UntrustedKeyError) as info:
        verify_detached(DATA, sig, trusted)
    assert keys.other.key_id in str(info.value)
    assert "not the trusted key" in str(info.value)
    assert keys.trusted.fingerprint in str(info.value)
    # ...and the other key's signature is fine with the other key.
    assert verify_detached(DATA, sig, load_keyring(keys.other.public())).signer.fingerprint == keys.other.fingerprint


def test_no_signature_is_not_signed(trusted):
    with pytest.raises(NotSignedError):
        verify_detached(DATA, b"", trusted)


@cheat_aware(protects="SHA1 and MD5 signatures over data are refused by default",
             cheats=["accepting every hash algorithm gpg can produce"],
             consequence="collision attacks on SHA1 could forge metadata signatures")
def test_sha1_refused_unless_allowed(keys, trusted):
    sig = keys.trusted.sign(DATA, "--detach-sign", "--digest-algo", "SHA1")
    with pytest.raises(BadSignatureError, match="SHA1"):
        verify_detached(DATA, sig, trusted)
    assert verify_detached(DATA, sig, trusted, allow_sha1=True).hash_name == "SHA1"


def test_text_mode_signature(keys, trusted):
    text = b"line one\nline two  \nlast"
    sig = keys.trusted.sign(text, "--detach-sign", "--textmode")
    assert verify_detached(text, sig, trusted).sig_type == 0x01
    assert verify_detached(text.replace(b"\n", b"\r\n"), sig, trusted)
    with pytest.raises(BadSignatureError):
        verify_detached(text.replace(b"two", b"tw0"), sig, trusted)


def test_signed_message_is_not_a_detached_signature(keys, trusted):
    signed = keys.trusted.sign(DATA, "--sign")
    with pytest.raises(OpenPGPError, match="not a detached signature"):
        verify_detached(DATA, signed, trusted)


# -- clearsigned -----------------------------------------------------------------------------

CHECKSUM = (b"# Rocky-10.0-x86_64-dvd1.iso: 12345 bytes\n"
            b"SHA256 (Rocky-10.0-x86_64-dvd1.iso) = 00ff\n"
            b"- a line starting with a dash\n"
            b"-----BEGIN not a real armor line\n"
            b"trailing spaces   \t\n"
            b"\n"
            b"last line\n")


@cheat_aware(protects="CHECKSUM.asc (clearsigned) verifies and only the signed text is returned",
             cheats=["returning the whole file including text outside the signed part",
                     "ignoring dash-escaping"],
             consequence="an attacker could append checksum lines outside the signature")
def test_clearsigned_verifies_and_returns_signed_text(keys, trusted):
    signed = keys.trusted.sign(CHECKSUM, "--clearsign")
    assert b"\n- - a line" in signed and b"\n- -----BEGIN not" in signed
    text = verify_clearsigned(signed, trusted)
    expected = b"\n".join(line.rstrip(b" \t") for line in CHECKSUM.split(b"\n"))
    assert text == expected
    # gpg itself outputs the same content (it keeps trailing whitespace, which is not signed)
    by_gpg = run("gpg", "--batch", "--decrypt", input=signed, env=keys.trusted.env)
    assert b"\n".join(line.rstrip(b" \t") for line in by_gpg.split(b"\n")) == text
    hostile = b"SHA256 (evil.iso) = 00\n" + signed + b"SHA256 (evil2.iso) = 00\n"
    assert verify_clearsigned(hostile, trusted) == text


def test_clearsigned_tampering_fails(keys, trusted):
    signed = keys.trusted.sign(CHECKSUM, "--clearsign")
    with pytest.raises(BadSignatureError):
        verify_clearsigned(signed.replace(b"= 00ff", b"= 00fe"), trusted)
    with pytest.raises(BadSignatureError):
        verify_clearsigned(signed.replace(b"last line", b"last line\nextra line"), trusted)
    with pytest.raises(UntrustedKeyError):
        verify_clearsigned(keys.other.sign(CHECKSUM, "--clearsign"), trusted)
    with pytest.raises(NotSignedError):
        verify_clearsigned(CHECKSUM, trusted)
    with pytest.raises(OpenPGPError, match="more than one"):
        verify_clearsigned(signed + signed, trusted)


def test_clearsigned_hash_header_must_match(keys, trusted):
    signed = keys.trusted.sign(CHECKSUM, "--clearsign", "--digest-algo", "SHA256")
    assert b"Hash: SHA256" in signed
    with pytest.raises(OpenPGPError, match="declares"):
        verify_clearsigned(signed.replace(b"Hash: SHA256", b"Hash: SHA512"), trusted)


# -- subkeys, revocation, expiry, other algorithms --------------------------------------------

@pytest.fixture(scope="session")
def subkeyed():
    key = make_key("subkeyed")
    key.gpg("--quick-add-key", key.fingerprint, "rsa3072", "sign", "never")
    return key


def test_signing_subkey_verifies_through_its_primary(subkeyed):
    ring = load_keyring(subkeyed.public())
    primary = ring[0]
    assert len(primary.subkeys) == 1 and ring[1] is primary.subkeys[0]
    sig = subkeyed.gpg("--detach-sign", "-o", "-", input=DATA)   # gpg picks the newest subkey
    result = verify_detached(DATA, sig, [primary])
    assert result.signer is primary.subkeys[0]
    assert result.signer.primary is primary


@cheat_aware(protects="a subkey is trusted only with a valid binding signature from the pinned key",
             cheats=["trusting every subkey packet found after the primary key"],
             consequence="an attacker could append their own subkey to the genuine key file and "
                         "sign packages with it while the fingerprint pin still matches")
def test_unbound_subkey_is_ignored(keys, subkeyed):
    # Graft subkeyed's subkey (packet + its binding by ANOTHER primary) onto the trusted key.
    sub_packets = _subkey_packets(subkeyed.public(armor=False))
    forged = keys.trusted.public(armor=False) + sub_packets
    ring = load_keyring(forged)
    assert [k.fingerprint for k in ring] == [keys.trusted.fingerprint]
    sig = subkeyed.gpg("--detach-sign", "-o", "-", input=DATA)
    with pytest.raises(UntrustedKeyError):
        verify_detached(DATA, sig, ring)


def _subkey_packets(binary: bytes) -> bytes:
    out, seen_sub = bytearray(), False
    for packet in openpgp.iter_packets(binary):
        if packet.tag == openpgp.TAG_PUBLIC_SUBKEY:
            seen_sub = True
        if seen_sub:
            body = packet.body
            out += bytes([0xC0 | packet.tag, 0xFF]) + len(body).to_bytes(4, "big") + body
    assert seen_sub
    return bytes(out)


@cheat_aware(protects="a revoked key's signatures are refused",
             cheats=["ignoring key revocation signatures"],
             consequence="a compromised, withdrawn key would still be trusted")
def test_revoked_key_is_refused():
    key = make_key("revoked")
    sig = key.sign(DATA, "--detach-sign")
    assert verify_detached(DATA, sig, load_keyring(key.public()))
    rev = (key.home / "openpgp-revocs.d" / f"{key.fingerprint}.rev").read_text()
    key.gpg("--import", input=rev.replace(":-----BEGIN", "-----BEGIN").encode())
    ring = load_keyring(key.public())
    assert ring[0].revoked
    with pytest.raises(BadSignatureError, match="revoked"):
        verify_detached(DATA, sig, ring)


def test_signature_after_key_expiry_is_refused():
    home = workdir() / "gnupg-expiring"
    key = make_key("expiring", home=home, extra=("--faked-system-time", "20200101T000000"))
    sig = key.gpg("--faked-system-time", "20210101T000000", "-u", key.fingerprint,
                  "--detach-sign", "-o", "-", input=DATA)
    assert verify_detached(DATA, sig, load_keyring(key.public()))
    # A newer self-signature (dated 2020-01-02) sets the key to expire on 2020-01-03.
    key.gpg("--faked-system-time", "20200102T000000", "--quick-set-expire", key.fingerprint, "1d")
    ring = load_keyring(key.public())
    assert ring[0].expires is not None
    with pytest.raises(BadSignatureError, match="expired"):
        verify_detached(DATA, sig, ring)
    early = key.gpg("--faked-system-time", "20200102T120000", "-u", key.fingerprint,
                    "--detach-sign", "-o", "-", input=DATA)
    assert verify_detached(DATA, early, ring)


@pytest.mark.parametrize("algo", ["ed25519", "dsa2048"])
def test_other_algorithms_verify(algo):
    key = make_key(f"alg-{algo}", algo)
    ring = load_keyring(key.public())
    assert ring[0].fingerprint == key.fingerprint
    sig = key.sign(DATA, "--detach-sign")
    assert verify_detached(DATA, sig, ring).signer is ring[0]
    with pytest.raises(BadSignatureError):
        verify_detached(flip(DATA, 3), sig, ring)
    clear = key.sign(CHECKSUM, "--clearsign")
    assert verify_clearsigned(clear, ring).startswith(b"# Rocky")


def test_unsupported_algorithm_is_a_clear_error():
    key = make_key("ecdsa", "nistp256")
    ring = load_keyring(key.public())
    assert ring[0].fingerprint == key.fingerprint
    with pytest.raises(OpenPGPError, match="unsupported key algorithm ECDSA"):
        verify_detached(DATA, key.sign(DATA, "--detach-sign"), ring)


def test_ed25519_rfc8032_vectors():
    from levitate.rpm import ed25519
    pk = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
                        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert ed25519.verify(pk, b"", sig)
    assert not ed25519.verify(pk, b"\0", sig)
    assert not ed25519.verify(pk, b"", flip(sig, 40))
    pk2 = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    sig2 = bytes.fromhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
                         "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
    assert ed25519.verify(pk2, b"\x72", sig2)
