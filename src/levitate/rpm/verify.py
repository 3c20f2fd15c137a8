"""Check that an RPM is signed by a trusted key and has not been altered since.

What rpm itself checks, in pure Python, in one pass over the file:
1. up front (cheap, before any byte of the payload is used): the OpenPGP header signature
   (signature-header tag 268, or 267 for DSA, or one of rpm 6's tag 278) over the main header
   exactly as stored, from its magic to the end of its data store, made by a trusted key; then
   the header's SHA256 digest (tag 273, or SHA1 269 on old packages). RHEL 10.1 adds a v6
   post-quantum signature in tag 278 beside its v4 RSA one: the v4 one decides; a package with
   only v6 signatures is refused as "unsupported v6 signature";
2. while the payload streams: PAYLOADDIGEST (in the signed header) over the compressed payload,
   checked at its end (payload.py). Very old packages (rpm < 4.14) have no payload digest but a
   signature over header + payload (tags 1002/1005); it is checked at the end instead.

Errors name the package file: "foo-1.0-1.x86_64.rpm: not signed", "...: signed with key
0123ABCD... which is not trusted", "...: BAD header signature (tampered?)", "...: payload digest
mismatch (tampered?)".
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from levitate.rpm import openpgp
from levitate.rpm.header import RpmFile
from levitate.rpm.openpgp import PublicKey, Signature
from levitate.rpm.payload import PayloadReader, check_payload_format
from levitate.util.errors import VerificationError


class PackageVerificationError(VerificationError):
    """A package failed verification. `kind` is one of: unsigned, untrusted, bad-signature,
    bad-digest, unsupported. (A payload mismatch raises payload.PayloadError, also naming the
    package.)"""

    def __init__(self, package: str, kind: str, message: str, hint: str | None = None,
                 key_id: str | None = None):
        self.package = package
        self.kind = kind
        self.key_id = key_id
        self._args = (package, kind, message, hint, key_id)
        super().__init__(f"{package}: {message}", hint)

    def __reduce__(self):        # survive a ProcessPoolExecutor round trip
        return (type(self), self._args)


_HINT_TAMPERED = "do not use this package; download it again from the official mirror"


@dataclass
class HeaderCheck:
    """The outcome of `verify_header`: who signed, and what is left to check on the payload."""

    package: str
    signature: Signature | None = None          # None when signature checks were skipped
    legacy: list[tuple[Signature, object]] = field(default_factory=list)  # (sig, hash) pending
    keys: list[PublicKey] = field(default_factory=list)
    payload_covered: bool = True               # a payload digest or legacy signature exists

    @property
    def signer(self) -> PublicKey | None:
        return self.signature.signer if self.signature else None


def _signature_error(package: str, exc: VerificationError, what: str) -> PackageVerificationError:
    if isinstance(exc, openpgp.NotSignedError):
        return PackageVerificationError(package, "unsigned", "not signed",
                                        "only signed packages are accepted; check the package source")
    if isinstance(exc, openpgp.UnsupportedSignatureError):
        return PackageVerificationError(package, "unsupported", exc.message, exc.hint)
    if isinstance(exc, openpgp.UntrustedKeyError):
        who = ", ".join(exc.key_ids) or "an unidentified key"
        return PackageVerificationError(
            package, "untrusted", f"signed with key {who} which is not trusted",
            f"trusted keys: {', '.join(exc.trusted) or 'none'}; the package comes from another "
            "distribution or was re-signed", key_id=exc.key_ids[0] if exc.key_ids else None)
    if isinstance(exc, openpgp.BadSignatureError):
        detail = exc.message
        if detail.startswith("BAD signature"):
            return PackageVerificationError(package, "bad-signature", f"BAD {what} (tampered?)",
                                            _HINT_TAMPERED, key_id=exc.key_id)
        return PackageVerificationError(package, "bad-signature", f"{what} not acceptable: {detail}",
                                        exc.hint, key_id=exc.key_id)
    return PackageVerificationError(package, "unsupported", f"{what} cannot be checked: {exc.message}",
                                    exc.hint)


def _parse(package: str, blobs: list[tuple[int, bytes]]) -> list[Signature]:
    sigs = []
    for tag, blob in blobs:
        try:
            sigs += openpgp.parse_signatures(blob)
        except openpgp.OpenPGPError as exc:
            raise PackageVerificationError(package, "unsupported",
                                           f"signature (tag {int(tag)}) cannot be read: {exc.message}",
                                           exc.hint) from None
    return sigs


def check_header_digests(rpm: RpmFile) -> None:
    """Compare the signature header's SHA256 (or SHA1) digest of the main header."""
    for expected, name in ((rpm.header_sha256, "sha256"), (rpm.header_sha1, "sha1")):
        if expected:
            actual = hashlib.new(name, rpm.header.raw).hexdigest()
            if actual != expected:
                raise PackageVerificationError(rpm.name_hint, "bad-digest",
                                               f"header {name.upper()} digest mismatch (tampered?)",
                                               _HINT_TAMPERED)
            return


def verify_header(rpm: RpmFile, keys: Iterable[PublicKey] | None, *, allow_sha1: bool = False,
                  now: float | None = None) -> HeaderCheck:
    """Check the header signature (when keys is not None) and digests. Raises
    PackageVerificationError; returns what the payload pass must still check."""
    package = rpm.name_hint
    check = HeaderCheck(package, payload_covered=bool(rpm.payload_digest or rpm.payload_digest_alt))
    if keys is not None:
        keys = list(keys)
        check.keys = keys
        header_sigs = _parse(package, rpm.header_signatures)
        if header_sigs:
            try:
                hashes = []
                for sig in header_sigs:
                    h = openpgp.hash_for(sig, allow_sha1=allow_sha1)
                    if not isinstance(h, Exception):
                        h.update(rpm.header.raw)
                    hashes.append(h)
                check.signature = openpgp.verify_hashed(header_sigs, hashes, keys, now=now)
            except VerificationError as exc:
                raise _signature_error(package, exc, "header signature") from None
        else:
            legacy = _parse(package, rpm.legacy_signatures)
            if not legacy:
                raise _signature_error(package, openpgp.NotSignedError(), "signature")
            # Only a signature over header + payload: hash the header now, the payload as it
            # streams, and decide at its end. Fail early if no trusted key could have made it.
            candidates = openpgp.candidate_keys(keys)
            if not any(sig.may_be_issued_by(k) for sig in legacy for k in candidates):
                raise _signature_error(package, openpgp.UntrustedKeyError(
                    [s.key_id or "(no issuer)" for s in legacy],
                    [k.fingerprint for k in candidates if not k.is_subkey]), "signature")
            for sig in legacy:
                h = openpgp.hash_for(sig, allow_sha1=allow_sha1)
                if not isinstance(h, Exception):
                    h.update(rpm.header.raw)
                check.legacy.append((sig, h))
            check.payload_covered = True
    check_header_digests(rpm)
    return check


class VerifyingPayload(PayloadReader):
    """A PayloadReader that also settles legacy header+payload signatures in `finish()`."""

    check: HeaderCheck

    def finish(self) -> None:
        already = self._finished
        super().finish()
        if already or not self.check.legacy:
            return
        sigs = [s for s, _ in self.check.legacy]
        hashes = [h for _, h in self.check.legacy]
        try:
            self.check.signature = openpgp.verify_hashed(sigs, hashes, self.check.keys)
        except VerificationError as exc:
            raise _signature_error(self.check.package, exc, "signature") from None


def open_verified_payload(rpm: RpmFile, check: HeaderCheck, *,
                          on_bytes: Callable[[int], None] | None = None) -> VerifyingPayload:
    """The decompressed payload of rpm (whose file sits at the payload start). Its `finish()`
    raises PackageVerificationError/PayloadError unless the digest (and any legacy signature)
    match; nothing read from it may be trusted before that."""
    check_payload_format(rpm)
    pd, pa = rpm.payload_digest, rpm.payload_digest_alt
    reader = VerifyingPayload(rpm.fileobj, rpm.payload_compressor, what=rpm.name_hint,
                              digest=(pd.hash_name, pd.hexdigest) if pd else None,
                              alt_digest=(pa.hash_name, pa.hexdigest) if pa else None,
                              hashers=[h for _, h in check.legacy if not isinstance(h, Exception)],
                              on_bytes=on_bytes)
    reader.check = check
    return reader


def verify_rpm(path: str | os.PathLike, keys: Iterable[PublicKey] | None, *,
               allow_sha1: bool = False) -> HeaderCheck:
    """Fully verify one package file (header signature, digests, whole payload)."""
    with RpmFile.open(path) as rpm:
        check = verify_header(rpm, keys, allow_sha1=allow_sha1)
        open_verified_payload(rpm, check).finish()
        return check
