"""The chain of trust: one pinned fingerprint -> the release key -> signed CHECKSUM and
repomd.xml -> repodata checksums -> each RPM's digest and signature.

The key file may come from anywhere (cache, the DVD's root, the official site); it is used only
when its fingerprint equals the pin in the profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..rpm import openpgp
from ..util import download as dl
from ..util.errors import LevitateError, VerificationError
from ..util.files import write_atomic
from .context import BuildContext
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


def load_trust(ctx: BuildContext, source: Source) -> Trust:
    """Find the release key whose fingerprint is the profile's pin."""
    if not ctx.verify_signatures:
        log.warning("WARNING: --insecure-skip-signature-checks: OpenPGP signatures are NOT checked; "
                    "never use the result for anything but a local experiment")
        return Trust(None)
    settings = ctx.profile.key
    try:
        pin = openpgp.normalize_fingerprint(settings.fingerprint)
    except openpgp.OpenPGPError as exc:
        raise LevitateError(f"{ctx.profile.path / 'profile.toml'}: [key] fingerprint: {exc.message}",
                            exc.hint) from None
    cached = ctx.cache / "keys" / settings.file
    candidates = [(str(cached), lambda: cached.read_bytes() if cached.is_file() else None),
                  (f"{source.description}: {settings.file}", lambda: source.read_small(settings.file))]
    if settings.url:
        candidates.append((settings.url, lambda: _fetch_optional(settings.url)))
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
    detail = "; ".join(rejected) if rejected else f"{settings.file} was not found at {source.description}"
    raise VerificationError(f"no release key with the pinned fingerprint {_fingerprint_pretty(pin)}: {detail}",
                            "the source may not be genuine; check [key] in profile.toml")


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
