"""Checksums: sha256, sha512 (hashlib) and BLAKE3 (the `blake3` package, the official Python
bindings of the BLAKE3 team's Rust implementation)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...util.errors import VerificationError
from .context import Context, HelperError

ALGORITHMS = ("sha256", "sha512", "blake3")


def _hasher(algo: str):
    if algo == "blake3":
        from blake3 import blake3
        return blake3()
    return hashlib.new(algo)


def file_digest(path: Path, algo: str) -> str:
    return file_hashes(path, (algo,))[algo]


def file_hashes(path: Path, algos: tuple[str, ...] = ALGORITHMS) -> dict[str, str]:
    """The digests of a file (every supported one by default), in one read."""
    hs = {a: _hasher(a) for a in algos}
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}


def verify(ctx: Context, algo: str, args: tuple) -> None:
    """verify_ALGO(hex) checks the last download; verify_ALGO(path, hex) a given file."""
    if len(args) == 1:
        if ctx.last_download is None:
            raise HelperError(f"verify_{algo}: nothing was downloaded yet",
                              f"call download(url) first, or verify_{algo}(path, hash)")
        path, expected = ctx.last_download, args[0]
    else:
        path, expected = ctx.read_path(args[0]), args[1]
    expected = str(expected).strip().lower()
    try:
        actual = file_digest(path, algo)
    except OSError as e:
        raise HelperError(f"verify_{algo}: cannot read {path}: {e.strerror}") from None
    if actual != expected:
        raise VerificationError(f"{algo} mismatch for {path.name}: expected {expected}, got {actual}",
                                "the download is corrupt or the file changed upstream; do not "
                                "use it (update the recipe's checksum only from a trusted source)")
    ctx.log(f"  {algo} ok: {path.name}")


def register(engine, ctx: Context) -> None:
    for algo in ALGORITHMS:
        engine.register_fn(f"verify_{algo}", lambda *a, _algo=algo: verify(ctx, _algo, a), arity=1)
        engine.register_fn(f"verify_{algo}", lambda *a, _algo=algo: verify(ctx, _algo, a), arity=2)
