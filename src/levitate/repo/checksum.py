"""Checksum lists (Rocky's CHECKSUM, coreutils' sha256sum output) and choosing the newest ISO.

Rocky publishes, beside its ISOs, a CHECKSUM file in the BSD tag format, with the sizes as comments:

    # Rocky-10.0-x86_64-dvd1.iso: 8231663616 bytes
    SHA256 (Rocky-10.0-x86_64-dvd1.iso) = 9a3b...

and CHECKSUM.asc, the same text clearsigned. This module only parses text: the signature is checked
elsewhere, which then hands over the clearsigned text; only its signed body is read here (text
outside the signed part is ignored, never trusted). The GNU format (`HEX  NAME`, `HEX *NAME`) is
accepted too.
"""

from __future__ import annotations

import fnmatch
import functools
import html.parser
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from levitate.rpm.vercmp import rpmvercmp
from levitate.util.errors import LevitateError

# hex digest length -> algorithm, for the GNU format (which does not name it)
_ALGO_BY_HEXLEN = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
_HEXLEN_BY_ALGO = {algo: n for n, algo in _ALGO_BY_HEXLEN.items()}
# preference when a file is listed with several algorithms
_STRENGTH = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]

_BSD_LINE = re.compile(r"^(?P<algo>[A-Za-z0-9-]+) ?\((?P<name>.+)\) ?= ?(?P<hex>[0-9A-Fa-f]+)$")
_GNU_LINE = re.compile(r"^\\?(?P<hex>[0-9A-Fa-f]{32,128}) [ *](?P<name>.+)$")
_SIZE_COMMENT = re.compile(r"^#\s*(?P<name>.+?):\s*(?P<size>\d+)\s*bytes\s*$")

_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"


@dataclass(frozen=True)
class ChecksumList:
    """What a checksum file says: {name: (algo, hex)} and, where it gives them, {name: size}."""

    digests: dict[str, tuple[str, str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.digests)


def clearsigned_body(text: str) -> str:
    """The signed text of an OpenPGP clearsigned message (dash-escaping undone); other text as is."""
    lines = text.splitlines()
    try:
        begin = next(i for i, line in enumerate(lines) if line.strip() == _SIGNED_BEGIN)
    except StopIteration:
        return text
    i = begin + 1
    while i < len(lines) and lines[i].strip():   # armor headers ("Hash: SHA256") end at a blank line
        i += 1
    body = []
    for line in lines[i + 1:]:
        if line.strip() == _SIGNATURE_BEGIN:
            break
        body.append(line[2:] if line.startswith("- ") else line)
    else:
        raise LevitateError("the clearsigned checksum file has no signature block",
                            "the file is truncated; download it again")
    return "\n".join(body) + "\n"


def parse_checksums(text: str, *, source: str = "CHECKSUM") -> ChecksumList:
    """Parse a checksum file (BSD tag or GNU format, or either clearsigned).

    Blank lines, comments and lines of neither format are skipped; a line that has the format but
    a digest of the wrong length for its algorithm, or two different digests for one file, is an
    error (the file is damaged or not what it claims). `source` names the file in messages.
    """
    digests: dict[str, tuple[str, str]] = {}
    sizes: dict[str, int] = {}
    for lineno, raw in enumerate(clearsigned_body(text).splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if m := _SIZE_COMMENT.match(line):
                sizes[m["name"].strip()] = int(m["size"])
            continue
        if m := _BSD_LINE.match(line):
            algo = m["algo"].lower().replace("-", "")
            name, hexdigest = m["name"], m["hex"].lower()
            if algo in _HEXLEN_BY_ALGO and len(hexdigest) != _HEXLEN_BY_ALGO[algo]:
                raise LevitateError(f"{source} line {lineno}: a {algo} digest has {_HEXLEN_BY_ALGO[algo]} "
                                    f"hex digits, not {len(hexdigest)}", "the file is damaged; download it again")
        elif (m := _GNU_LINE.match(line)) and len(m["hex"]) in _ALGO_BY_HEXLEN:
            hexdigest = m["hex"].lower()
            algo, name = _ALGO_BY_HEXLEN[len(hexdigest)], m["name"]
            if line.startswith("\\"):   # coreutils escapes names holding a backslash or newline
                name = name.replace("\\n", "\n").replace("\\\\", "\\")
        else:
            continue
        name = name.removeprefix("./")
        _add(digests, name, algo, hexdigest, source)
    return ChecksumList(digests, sizes)


def parse_checksum(text: str, *, source: str = "CHECKSUM") -> dict[str, tuple[str, str]]:
    """{file name: (algo, hex)} from a checksum file; see parse_checksums()."""
    return parse_checksums(text, source=source).digests


def _add(digests: dict[str, tuple[str, str]], name: str, algo: str, hexdigest: str, source: str) -> None:
    old = digests.get(name)
    if old is None:
        digests[name] = (algo, hexdigest)
    elif old[0] == algo:
        if old[1] != hexdigest:
            raise LevitateError(f"{source} lists two different {algo} digests for {name}",
                                "the file is damaged or tampered with; download it again")
    elif _rank(algo) > _rank(old[0]):
        digests[name] = (algo, hexdigest)


def _rank(algo: str) -> int:
    return _STRENGTH.index(algo) if algo in _STRENGTH else -1


def newest_matching(names: Iterable[str], pattern: str) -> str | None:
    """The newest name matching the glob `pattern` (fnmatch, case-sensitive), or None.

    Names are ordered by rpmvercmp over the whole name, so Rocky-10.10 > Rocky-10.9 > Rocky-10.1 >
    Rocky-10.0; equal versions fall back to plain string order, so the choice is deterministic.
    """
    matches = sorted({n for n in names if fnmatch.fnmatchcase(n, pattern)})
    if not matches:
        return None
    return max(matches, key=functools.cmp_to_key(rpmvercmp))


class _HrefCollector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for key, value in attrs:
                if key == "href" and value:
                    self.hrefs.append(value)


def parse_index_html(text: str) -> list[str]:
    """File names linked from an HTTP directory index (Apache/nginx autoindex), in page order.

    Sub-directories, the parent link, sort links (`?C=N;O=D`) and links to other hosts are left out;
    names are URL-decoded.
    """
    parser = _HrefCollector()
    parser.feed(text)
    parser.close()
    names: list[str] = []
    for href in parser.hrefs:
        parts = urllib.parse.urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path or parts.path.endswith("/"):
            continue
        name = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        if name and name not in (".", "..") and name not in names:
            names.append(name)
    return names
