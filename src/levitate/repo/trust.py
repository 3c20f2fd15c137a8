"""The chain of trust: one pinned fingerprint -> the release key -> signed CHECKSUM and
repomd.xml -> repodata checksums -> each RPM's digest and signature.

The key file may come from anywhere (cache, the source's root, the official site); it is used
only when its fingerprint equals the pin. leviso and recipe's `rpm_install` both load it here, so
both look in the same places in the same order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..rpm import openpgp
from ..util import download as dl
from ..util.errors import LevitateError, VerificationError
from ..util.files import write_atomic
from .sources import Source

log = logging.getLogger("levitate")


@dataclass(frozen=True)
class Trust:
    """The trusted keys, or none at all when the user skipped signature checks."""

    keys: tuple | None
    fingerprint: str = ""

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    def check_detached(self, what: str, data: bytes, signature: bytes | None,
                       unsigned_hint: str = "the source is incomplete or not an official one") -> None:
        if not self.enabled:
            return
        if signature is None:
            raise VerificationError(f"{what} is not signed (no signature file found)", unsigned_hint)
        try:
            openpgp.verify_detached(data, signature, self.keys)
        except VerificationError as exc:
            raise VerificationError(f"{what}: {exc.message}", exc.hint or "do not use this source") from None

    def check_clearsigned(self, what: str, text: bytes) -> bytes:
        """Verify a clearsigned document and return the content the signature covers."""
        try:
            return openpgp.verify_clearsigned(text, self.keys)
        except VerificationError as exc:
            raise VerificationError(f"{what}: {exc.message}", exc.hint or "do not use this source") from None


def _fingerprint_pretty(hexfpr: str) -> str:
    return " ".join(hexfpr[i:i + 4] for i in range(0, len(hexfpr), 4))


def load_trust(fingerprint: str, source: Source, *, key_file: str, key_url: str, cache: Path,
               setting: str, hint: str) -> Trust:
    """Find the release key whose fingerprint is the pin: first CACHE/KEY_FILE, then KEY_FILE at
    the source's root, then `key_url` (a URL or a path; "" for none). A key found elsewhere than
    the cache is cached. `setting` names where the pin is configured and `hint` what to check,
    for the error messages."""
    try:
        pin = openpgp.normalize_fingerprint(fingerprint)
    except openpgp.OpenPGPError as exc:
        raise LevitateError(f"{setting}: {exc.message}", exc.hint) from None
    cached = cache / key_file
    candidates = [(str(cached), lambda: cached.read_bytes() if cached.is_file() else None),
                  (f"{source.description}: {key_file}", lambda: source.read_small(key_file))]
    if key_url:
        candidates.append((key_url, lambda: _fetch_optional(key_url)))
    rejected = []
    for where, read in candidates:
        data = read()
        if data is None:
            continue
        try:
            keys = openpgp.load_keyring(data)
        except LevitateError as exc:
            rejected.append(f"{where}: {exc.message}")
            continue
        pinned = tuple(k for k in keys if (k.primary or k).fingerprint == pin)
        if not pinned:
            found = ", ".join(_fingerprint_pretty(k.fingerprint) for k in keys if not k.is_subkey)
            rejected.append(f"{where} has fingerprint {found}")
            continue
        if where != str(cached):
            write_atomic(cached, data)
        log.info("trusted key %s (%s)", _fingerprint_pretty(pin), where)
        return Trust(pinned, pin)
    detail = "; ".join(rejected) or (f"{key_file} was not found at {source.description}"
                                     + (f" nor at {key_url}" if key_url else ""))
    raise VerificationError(f"no release key with the pinned fingerprint {_fingerprint_pretty(pin)}: {detail}",
                            hint)


def _fetch_optional(url: str) -> bytes | None:
    try:
        return dl.fetch_bytes(url)
    except dl.NotFound:
        return None
    except LevitateError as exc:
        log.warning("could not fetch the release key from %s: %s", url, exc.message)
        return None


def verify_iso_checksum(source, trust: Trust) -> None:
    """The DVD's CHECKSUM is only as good as its signature: verify it now that the key is known.

    Once it verifies and the ISO matched it, the ISO's content is covered as a whole: the DVD's
    repodata, which Rocky does not sign on the DVD (only the mirrors' repomd.xml has a .asc), is
    then trusted through release key -> CHECKSUM.asc -> the ISO's SHA-256.
    """
    if not trust.enabled or source.checksum_text is None:
        return
    if source.checksum_sig is None:
        raise VerificationError("the ISO's CHECKSUM is not signed (no CHECKSUM.asc or CHECKSUM.sig beside it)",
                                "use the official isos/ directory, or --insecure-skip-signature-checks to experiment")
    name, signature = source.checksum_sig
    if b"BEGIN PGP SIGNED MESSAGE" in signature:
        signed = trust.check_clearsigned(name, signature)
        if signed.strip() != source.checksum_text.strip():
            raise VerificationError(f"{name} signs a different CHECKSUM than the one published beside it",
                                    "the mirror may be mid-sync; retry later")
    else:
        trust.check_detached("CHECKSUM", source.checksum_text, signature)
    log.info("CHECKSUM signature OK (%s)", name)
    if source.iso_hash_checked:
        source.covered_by = f"{name} (the release key signs the ISO's SHA-256)"
