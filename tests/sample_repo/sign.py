"""The test OpenPGP keys and everything signed with them: RPMs (rpmsign), repomd.xml (detached,
armored) and CHECKSUM (clearsigned), as Rocky signs its own.

gpg runs with a short temporary home under /tmp: gpg-agent's socket lives in the home directory,
and a socket path longer than ~107 bytes fails, which a deep test directory easily reaches. The
finished keyring is copied to OUTDIR/gnupg (without sockets) for tests to sign more things.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from levitate.util.run import run

UID = "LevitateOS Sample Release (test only) <sample@levitateos.invalid>"
OTHER_UID = "Somebody Else (test only, NOT the sample key) <other@levitateos.invalid>"


class GpgHome:
    """A gpg home directory holding one signing key."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.path), "LC_ALL": "C"}

    def gpg(self, *args: str | Path, what: str = "gpg", capture: bool = True, input: bytes | None = None):
        return run(["gpg", "--batch", "--no-tty", *args], env=self.env, capture=capture, input=input,
                   what=what)

    def fingerprint(self) -> str | None:
        """The secret key's fingerprint (40 hex digits), None when there is none."""
        proc = self.gpg("--with-colons", "--list-secret-keys", what="gpg --list-secret-keys")
        lines = proc.stdout.decode().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("sec:"):
                for follow in lines[i + 1:]:
                    if follow.startswith("fpr:"):
                        return follow.split(":")[9]
        return None

    def generate(self, uid: str) -> str:
        self.gpg("--passphrase", "", "--quick-gen-key", uid, "rsa4096", "sign", "never",
                 what="gpg --quick-gen-key")
        fpr = self.fingerprint()
        if not fpr:
            raise RuntimeError("gpg generated no key")
        return fpr

    def export(self, fpr: str) -> bytes:
        return self.gpg("--armor", "--export", fpr, what="gpg --export").stdout

    def detach_sign(self, fpr: str, file: Path) -> Path:
        """FILE.asc: an ASCII-armored detached signature (repomd.xml.asc)."""
        out = file.with_name(file.name + ".asc")
        self.gpg("--yes", "--armor", "--local-user", fpr, "--output", out, "--detach-sign", file,
                 what=f"gpg --detach-sign {file.name}", capture=False)
        return out

    def clearsign(self, fpr: str, file: Path) -> Path:
        """FILE.asc: a clearsigned copy (CHECKSUM.asc, as Rocky publishes it)."""
        out = file.with_name(file.name + ".asc")
        self.gpg("--yes", "--local-user", fpr, "--output", out, "--clearsign", file,
                 what=f"gpg --clearsign {file.name}", capture=False)
        return out

    def rpmsign(self, fpr: str, rpms: Sequence[Path], jobs: int = 2) -> None:
        """Add an RPM v4 signature to every file (rpmsign runs gpg once per file: batch them)."""
        rpms = list(rpms)
        chunks = [rpms[i::jobs] for i in range(jobs) if rpms[i::jobs]]

        def sign(chunk):
            run(["rpmsign", "--define", "__gpg /usr/bin/gpg", "--define", f"_gpg_name {fpr}",
                 "--addsign", *chunk], env=self.env, what="rpmsign --addsign")

        with ThreadPoolExecutor(len(chunks) or 1) as pool:
            list(pool.map(sign, chunks))

    def stop_agent(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def copy_to(self, dest: Path) -> None:
        """Copy the keyring, leaving out agent sockets and lock files."""
        shutil.copytree(self.path, dest, symlinks=True, ignore=_sockets_and_locks)
        os.chmod(dest, 0o700)


def _sockets_and_locks(_dir, names):
    """An agent started on a copied home leaves sockets there; they cannot be copied."""
    return [n for n in names if n.startswith("S.") or n.endswith(".lock")]


@contextmanager
def gpg_home(existing: Path | None = None) -> Iterator[GpgHome]:
    """A short-pathed temporary home, seeded from `existing` when that holds a keyring."""
    path = Path(tempfile.mkdtemp(prefix="lvs-gpg-"))
    try:
        if existing is not None and existing.is_dir():
            shutil.rmtree(path)
            shutil.copytree(existing, path, symlinks=True, ignore=_sockets_and_locks)
        os.chmod(path, 0o700)
        home = GpgHome(path)
        yield home
        home.stop_agent()
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(path)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(path, ignore_errors=True)


def spaced(fpr: str) -> str:
    """'FC226859...' -> 'FC22 6859 C086 0BF0 DDB9  5B08 5B10 6C73 6FED FC85', as gpg prints it
    (and as the project's profiles pin Rocky's key)."""
    groups = [fpr[i:i + 4] for i in range(0, len(fpr), 4)]
    return " ".join(groups[:5]) + "  " + " ".join(groups[5:])
