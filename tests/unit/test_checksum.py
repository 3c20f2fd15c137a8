"""Checksum files as Rocky writes them, the GNU format, clearsigned text, ISO choice, index pages."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from levitate.repo.checksum import (clearsigned_body, newest_matching, parse_checksum, parse_checksums,
                                      parse_index_html)
from levitate.util.download import fetch_bytes
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware
from tests.httpserver import http_serve  # noqa: F401 - fixture

H1 = hashlib.sha256(b"dvd").hexdigest()
H2 = hashlib.sha256(b"boot").hexdigest()
H3 = hashlib.sha256(b"minimal").hexdigest()

# The shape of Rocky 10's isos/x86_64/CHECKSUM (sizes as comments, BSD tags, no trailing blank).
ROCKY_CHECKSUM = f"""\
# Rocky-10.0-x86_64-boot.iso: 1010827264 bytes
SHA256 (Rocky-10.0-x86_64-boot.iso) = {H2}
# Rocky-10.0-x86_64-dvd1.iso: 8231663616 bytes
SHA256 (Rocky-10.0-x86_64-dvd1.iso) = {H1}
# Rocky-10.0-x86_64-minimal.iso: 1830813696 bytes
SHA256 (Rocky-10.0-x86_64-minimal.iso) = {H3}
"""


@cheat_aware(protects="Rocky's CHECKSUM format is read exactly: every file with its own digest",
             cheats=["returning the first digest for every file", "matching file names loosely"],
             consequence="the DVD ISO is checked against another file's digest and rejected or, worse, trusted")
def test_rocky_checksum_format():
    sums = parse_checksums(ROCKY_CHECKSUM)
    assert sums.digests == {
        "Rocky-10.0-x86_64-boot.iso": ("sha256", H2),
        "Rocky-10.0-x86_64-dvd1.iso": ("sha256", H1),
        "Rocky-10.0-x86_64-minimal.iso": ("sha256", H3),
    }
    assert sums.sizes["Rocky-10.0-x86_64-dvd1.iso"] == 8231663616
    assert parse_checksum(ROCKY_CHECKSUM) == sums.digests


def test_gnu_format_and_mixed_case():
    text = f"{H1.upper()}  Rocky-10.0-x86_64-dvd1.iso\n{H2} *./boot.iso\n\n{hashlib.md5(b'x').hexdigest()}  old.iso\n"
    assert parse_checksum(text) == {
        "Rocky-10.0-x86_64-dvd1.iso": ("sha256", H1),
        "boot.iso": ("sha256", H2),
        "old.iso": ("md5", hashlib.md5(b"x").hexdigest()),
    }


def test_real_coreutils_output_parses(tmp_path):
    if not shutil.which("sha256sum"):
        pytest.skip("no sha256sum")
    (tmp_path / "a file.iso").write_bytes(b"dvd")
    for tag in ([], ["--tag"]):
        out = subprocess.run(["sha256sum", *tag, "a file.iso"], cwd=tmp_path, capture_output=True,
                             text=True, check=True).stdout
        assert parse_checksum(out) == {"a file.iso": ("sha256", H1)}


def test_strongest_algorithm_wins_and_conflicts_are_errors():
    text = f"MD5 (a.iso) = {hashlib.md5(b'dvd').hexdigest()}\nSHA256 (a.iso) = {H1}\n"
    assert parse_checksum(text) == {"a.iso": ("sha256", H1)}
    with pytest.raises(LevitateError, match="two different sha256 digests for a.iso"):
        parse_checksum(f"SHA256 (a.iso) = {H1}\nSHA256 (a.iso) = {H2}\n")


def test_malformed_digest_is_an_error():
    with pytest.raises(LevitateError, match="line 2: a sha256 digest has 64 hex digits, not 63"):
        parse_checksum(f"# x\nSHA256 (a.iso) = {H1[:-1]}\n")


@cheat_aware(protects="only the signed part of CHECKSUM.asc is trusted",
             cheats=["parsing the whole file, including text before or after the signed block"],
             consequence="an attacker prepends an unsigned line and a tampered ISO passes the check")
def test_clearsigned_body_only():
    forged = hashlib.sha256(b"evil").hexdigest()
    text = (f"SHA256 (Rocky-10.0-x86_64-dvd1.iso) = {forged}\n"
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
            + ROCKY_CHECKSUM.replace("# Rocky-10.0-x86_64-boot", "- # Rocky-10.0-x86_64-boot")
            + "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
            f"SHA256 (extra.iso) = {forged}\n")
    sums = parse_checksum(text)
    assert sums["Rocky-10.0-x86_64-dvd1.iso"] == ("sha256", H1)
    assert "extra.iso" not in sums
    assert clearsigned_body(text) == ROCKY_CHECKSUM
    with pytest.raises(LevitateError, match="no signature block"):
        clearsigned_body("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + ROCKY_CHECKSUM)


def test_real_gpg_clearsigned_checksum(tmp_path):
    if not shutil.which("gpg"):
        pytest.skip("no gpg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--passphrase", "", "--pinentry-mode", "loopback"]
    subprocess.run(gpg + ["--quick-gen-key", "test@example.org", "ed25519", "sign", "never"], check=True,
                   capture_output=True)
    (tmp_path / "CHECKSUM").write_text(ROCKY_CHECKSUM + "- dash line\n")
    subprocess.run(gpg + ["--clearsign", "-o", str(tmp_path / "CHECKSUM.asc"), str(tmp_path / "CHECKSUM")],
                   check=True, capture_output=True)
    signed = (tmp_path / "CHECKSUM.asc").read_text()
    assert "\n- - dash line\n" in signed   # gpg dash-escaped it
    assert clearsigned_body(signed) == ROCKY_CHECKSUM + "- dash line\n"
    assert parse_checksum(signed) == parse_checksum(ROCKY_CHECKSUM)


@cheat_aware(protects="the newest ISO is picked by version, not by string order",
             cheats=["sorting names as strings (10.9 > 10.10)", "taking the first match"],
             consequence="builds silently use an old, unpatched Rocky release")
def test_newest_matching():
    names = ["Rocky-10.0-x86_64-dvd1.iso", "Rocky-10.9-x86_64-dvd1.iso", "Rocky-10.10-x86_64-dvd1.iso",
             "Rocky-10.1-x86_64-dvd1.iso", "Rocky-10-latest-x86_64-dvd.iso", "Rocky-x86_64-dvd.iso",
             "Rocky-10.10-x86_64-boot.iso", "Rocky-10.11-aarch64-dvd1.iso", "CHECKSUM"]
    pattern = "Rocky-10.*-x86_64-dvd1.iso"
    assert newest_matching(names, pattern) == "Rocky-10.10-x86_64-dvd1.iso"
    assert newest_matching(names[:2], pattern) == "Rocky-10.9-x86_64-dvd1.iso"
    assert newest_matching(["Rocky-10.1-x86_64-dvd1.iso", "Rocky-10.0-x86_64-dvd1.iso"], pattern) \
        == "Rocky-10.1-x86_64-dvd1.iso"
    assert newest_matching(names, "Rocky-11.*-x86_64-dvd1.iso") is None
    assert newest_matching(parse_checksum(ROCKY_CHECKSUM), pattern) == "Rocky-10.0-x86_64-dvd1.iso"


APACHE_INDEX = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /pub/rocky/10/isos/x86_64</title></head><body>
<h1>Index of /pub/rocky/10/isos/x86_64</h1><table>
<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/pub/rocky/10/isos/">Parent Directory</a></td></tr>
<tr><td><a href="CHECKSUM">CHECKSUM</a></td></tr>
<tr><td><a href="CHECKSUM.asc">CHECKSUM.asc</a></td></tr>
<tr><td><a href="Rocky-10.0-x86_64-dvd1.iso">Rocky-10.0-x86_64-dvd1.iso</a></td></tr>
<tr><td><a href="Rocky-10.1-x86_64-dvd1.iso">Rocky-10.1-x86_64-dvd1.iso</a></td></tr>
<tr><td><a href="https://elsewhere.example/x.iso">mirror</a></td></tr>
<tr><td><a href="sub%20dir/">sub dir/</a></td></tr>
</table></body></html>"""

NGINX_INDEX = """<html><head><title>Index of /isos/</title></head><body><h1>Index of /isos/</h1><hr><pre>
<a href="../">../</a>
<a href="Rocky-10.0-x86_64-dvd1.iso">Rocky-10.0-x86_64-dvd1.iso</a>  09-Jun-2025 12:00  8231663616
<a href="Rocky%2010.1.iso">Rocky 10.1.iso</a>  09-Jun-2025 12:00  1
</pre><hr></body></html>"""


def test_parse_index_html():
    assert parse_index_html(APACHE_INDEX) == ["CHECKSUM", "CHECKSUM.asc", "Rocky-10.0-x86_64-dvd1.iso",
                                              "Rocky-10.1-x86_64-dvd1.iso"]
    assert parse_index_html(NGINX_INDEX) == ["Rocky-10.0-x86_64-dvd1.iso", "Rocky 10.1.iso"]
    assert newest_matching(parse_index_html(APACHE_INDEX), "Rocky-10.*-x86_64-dvd1.iso") \
        == "Rocky-10.1-x86_64-dvd1.iso"


def test_index_served_by_the_test_server(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "isos").mkdir()
    for name in ("CHECKSUM", "Rocky-10.0-x86_64-dvd1.iso", "Rocky-10.2-x86_64-dvd1.iso"):
        (tmp_path / "isos" / name).write_bytes(b"x")
    server = http_serve(tmp_path)
    page = fetch_bytes(server.url("isos")).decode()   # redirected to isos/
    assert newest_matching(parse_index_html(page), "Rocky-10.*-x86_64-dvd1.iso") == "Rocky-10.2-x86_64-dvd1.iso"
