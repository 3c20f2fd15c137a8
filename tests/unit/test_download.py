"""download(), fetch_bytes(), download_many() against a real loopback HTTP server (tests/httpserver.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import pytest

from levitate.util import download as dl
from levitate.util.download import DownloadJob, download, download_many, fetch_bytes, part_path
from levitate.util.errors import DownloadError, VerificationError
from tests.cheat_aware import cheat_aware
from tests.httpserver import closed_port_url, http_serve, self_signed_cert  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(dl, "BACKOFF_BASE", 0.001)


def sha256(data: bytes) -> tuple[str, str]:
    return ("sha256", hashlib.sha256(data).hexdigest())


@pytest.fixture
def payload() -> bytes:
    # 300 KiB of non-repeating bytes: a wrong offset anywhere changes the digest
    return b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(300 * 1024 // 32))


@pytest.fixture
def site(tmp_path, payload, http_serve):  # noqa: F811
    root = tmp_path / "site"
    root.mkdir()
    (root / "big.iso").write_bytes(payload)
    (root / "small.txt").write_bytes(b"hello\n")
    return http_serve(root)


def test_download_verifies_and_names_the_file(site, payload, tmp_path):
    dest = tmp_path / "out" / "big.iso"
    assert download(site.url("big.iso"), dest, expected=sha256(payload), size=len(payload)) == dest
    assert dest.read_bytes() == payload
    assert not part_path(dest).exists()
    assert site.user_agents() == {"leviso/0.1"}


@cheat_aware(protects="an interrupted transfer is resumed with a Range request and verified as a whole",
             cheats=["downloading from scratch on every retry", "hashing only the resumed tail",
                     "accepting the short body as complete"],
             consequence="a flaky connection makes a 9 GB ISO download never finish, or a corrupt ISO is used")
def test_truncated_transfer_is_resumed_with_range(site, payload, tmp_path):
    site.faults.add("/big.iso", truncate_after=100_000)
    dest = tmp_path / "big.iso"
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.ranges("/big.iso") == [None, "bytes=100000-"]
    assert [r.status for r in site.log("/big.iso")] == [200, 206]
    assert dest.read_bytes() == payload


@cheat_aware(protects="a download interrupted in one run resumes in the next and the prefix is hashed",
             cheats=["deleting the .part at start", "trusting the .part's bytes without hashing them"],
             consequence="every interrupted ISO download starts over, or a damaged prefix goes unnoticed")
def test_next_run_resumes_the_part_file(site, payload, tmp_path):
    site.faults.add("/big.iso", truncate_after=123_457)
    dest = tmp_path / "big.iso"
    with pytest.raises(DownloadError, match="interrupted"):
        download(site.url("big.iso"), dest, expected=sha256(payload), retries=0)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == payload[:123_457]

    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.ranges("/big.iso") == [None, "bytes=123457-"]
    assert dest.read_bytes() == payload and not part_path(dest).exists()


def test_interrupt_leaves_only_the_part_which_the_next_run_resumes(site, payload, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "CHUNK_SIZE", 16 * 1024)
    real_write = dl._PartSink._write
    calls = []

    def write_then_ctrl_c(self, data):
        real_write(self, data)
        calls.append(len(data))
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(dl._PartSink, "_write", write_then_ctrl_c)
    dest = tmp_path / "big.iso"
    with pytest.raises(KeyboardInterrupt):
        download(site.url("big.iso"), dest, expected=sha256(payload))
    monkeypatch.setattr(dl._PartSink, "_write", real_write)
    kept = part_path(dest).stat().st_size
    assert not dest.exists() and kept == sum(calls) > 0
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.ranges("/big.iso")[-1] == f"bytes={kept}-"
    assert dest.read_bytes() == payload


@cheat_aware(protects="a server that ignores Range does not get its full body appended to the part",
             cheats=["appending whatever the server sends after a Range request"],
             consequence="the file is the prefix plus the whole file: a corrupt ISO or RPM")
def test_server_ignoring_range_restarts_cleanly(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    part_path(dest).write_bytes(payload[:50_000])
    site.faults.add("/big.iso", ignore_range=True)
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.ranges("/big.iso") == ["bytes=50000-"]
    assert [r.status for r in site.log("/big.iso")] == [200]
    assert dest.read_bytes() == payload


def test_complete_part_gets_416_and_is_used(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    part_path(dest).write_bytes(payload)
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert [r.status for r in site.log("/big.iso")] == [416]
    assert dest.read_bytes() == payload


def test_part_longer_than_the_file_starts_over(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    part_path(dest).write_bytes(payload + b"stale tail")
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert [r.status for r in site.log("/big.iso")] == [416, 200]
    assert dest.read_bytes() == payload


def test_stale_part_with_wrong_prefix_is_downloaded_again(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    part_path(dest).write_bytes(b"\0" * 1000)   # e.g. left from an older file of the same name
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.ranges("/big.iso") == ["bytes=1000-", None]
    assert dest.read_bytes() == payload


@cheat_aware(protects="a missing file fails at once with a hint, without retrying",
             cheats=["retrying 404s", "returning an empty file"],
             consequence="a wrong mirror URL hangs for minutes of backoff, or an empty file is used")
def test_404_fails_at_once(site, tmp_path):
    dest = tmp_path / "missing.rpm"
    with pytest.raises(DownloadError) as err:
        download(site.url("missing.rpm"), dest, backoff=5)   # a retry would take seconds
    assert str(err.value) == (f"HTTP 404 for {site.url('missing.rpm')} "
                              "(hint: check the mirror URL / the file may have moved)")
    assert site.count("/missing.rpm") == 1
    assert not dest.exists() and not part_path(dest).exists()


@pytest.mark.parametrize("status", [401, 403, 410])
def test_other_client_errors_are_not_retried(site, tmp_path, status):
    site.faults.add("/small.txt", status=status, times=None)
    with pytest.raises(DownloadError, match=f"HTTP {status} for"):
        download(site.url("small.txt"), tmp_path / "small.txt")
    assert site.count("/small.txt") == 1


@cheat_aware(protects="transient server errors are retried with backoff",
             cheats=["failing on the first 5xx", "counting the retry but not making the request"],
             consequence="a mirror's momentary hiccup aborts a long build")
def test_500_twice_then_success(site, tmp_path):
    site.faults.add("/small.txt", status=500, times=2)
    dest = tmp_path / "small.txt"
    download(site.url("small.txt"), dest, expected=sha256(b"hello\n"))
    assert site.count("/small.txt") == 3
    assert dest.read_bytes() == b"hello\n"


def test_500_forever_fails_after_the_retries(site, tmp_path):
    site.faults.add("/small.txt", status=503, times=None)
    dest = tmp_path / "small.txt"
    with pytest.raises(DownloadError) as err:
        download(site.url("small.txt"), dest, retries=3)
    assert site.count("/small.txt") == 4
    assert str(err.value) == (f"HTTP 503 for {site.url('small.txt')} (gave up after 4 attempts) "
                              "(hint: the server is failing; try again later or use another mirror)")
    assert not dest.exists() and not part_path(dest).exists()


def test_backoff_doubles(site, tmp_path, monkeypatch):
    site.faults.add("/small.txt", status=500, times=3)
    sleeps = []
    monkeypatch.setattr(dl._Session, "sleep", lambda self, s: sleeps.append(s))
    download(site.url("small.txt"), tmp_path / "small.txt", backoff=1.0)
    assert len(sleeps) == 3
    for slept, base in zip(sleeps, [1, 2, 4]):   # +-20 % jitter
        assert 0.8 * base <= slept <= 1.2 * base


@cheat_aware(protects="a dead server gives one clear line naming the host",
             cheats=["raising the raw ConnectionRefusedError", "hanging forever"],
             consequence="a traceback instead of 'cannot reach HOST', or a build that never ends")
def test_dead_server(tmp_path):
    base = closed_port_url()
    host = base.removeprefix("http://")
    dest = tmp_path / "x.rpm"
    with pytest.raises(DownloadError) as err:
        download(base + "/x.rpm", dest, retries=2)
    assert str(err.value) == (f"cannot reach {host}: connection refused (gave up after 3 attempts) "
                              "(hint: check the URL and your network)")
    assert not dest.exists() and not part_path(dest).exists()


@cheat_aware(protects="a file whose digest does not match never gets its final name, and the part is removed",
             cheats=["renaming before verifying", "keeping the bad .part so the next run resumes from garbage"],
             consequence="a corrupt or tampered ISO/RPM is used, or every later run fails on the same bad bytes")
def test_hash_mismatch_leaves_nothing(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    wrong = "0" * 64
    with pytest.raises(VerificationError) as err:
        download(site.url("big.iso"), dest, expected=("SHA256", wrong))
    text = str(err.value)
    assert "big.iso" in text and wrong in text and hashlib.sha256(payload).hexdigest() in text
    assert not dest.exists() and not part_path(dest).exists()
    assert err.value.exit_code == 3


def test_size_mismatch_is_a_verification_error(site, tmp_path):
    dest = tmp_path / "small.txt"
    with pytest.raises(VerificationError, match="size mismatch for small.txt: expected 7 bytes, got 6"):
        download(site.url("small.txt"), dest, size=7)
    assert not dest.exists() and not part_path(dest).exists()


@cheat_aware(protects="a file already downloaded and verified is not fetched again",
             cheats=["always downloading", "returning early without checking the digest"],
             consequence="every build re-downloads hundreds of MB, or a damaged cache file is used")
def test_complete_file_is_not_fetched_again(site, payload, tmp_path):
    dest = tmp_path / "big.iso"
    dest.write_bytes(payload)
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.count("/big.iso") == 0
    # ...but a damaged one is replaced
    dest.write_bytes(payload[:-1] + b"X")
    download(site.url("big.iso"), dest, expected=sha256(payload))
    assert site.count("/big.iso") == 1 and dest.read_bytes() == payload


def test_redirect_is_followed(site, tmp_path):
    site.faults.add("/old/small.txt", redirect="/small.txt")
    dest = download(site.url("old/small.txt"), tmp_path / "small.txt", expected=sha256(b"hello\n"))
    assert dest.read_bytes() == b"hello\n"
    assert site.count("/old/small.txt") == 1 and site.count("/small.txt") == 1


def test_dropped_connection_is_retried(site, tmp_path):
    site.faults.add("/small.txt", drop=True, times=1)
    dest = download(site.url("small.txt"), tmp_path / "small.txt", retries=1)
    assert dest.read_bytes() == b"hello\n"


def test_timeout_is_retried(site, tmp_path):
    site.faults.add("/small.txt", delay=1.0, times=1)
    start = time.monotonic()
    dest = download(site.url("small.txt"), tmp_path / "small.txt", timeout=0.2)
    assert dest.read_bytes() == b"hello\n"
    assert time.monotonic() - start < 1.0


def test_local_paths_and_file_urls(tmp_path, payload):
    src = tmp_path / "src dir" / "big.iso"
    src.parent.mkdir()
    src.write_bytes(payload)
    a = download(src.as_uri(), tmp_path / "a.iso", expected=sha256(payload))
    b = download(str(src), tmp_path / "b.iso", expected=sha256(payload))
    assert a.read_bytes() == b.read_bytes() == payload
    assert fetch_bytes(src.as_uri()) == payload
    with pytest.raises(VerificationError):
        download(str(src), tmp_path / "c.iso", expected=("sha256", "1" * 64))
    assert not (tmp_path / "c.iso").exists() and not part_path(tmp_path / "c.iso").exists()
    with pytest.raises(DownloadError, match="no such file"):
        download(str(tmp_path / "nope.iso"), tmp_path / "d.iso")


def test_fetch_bytes(site, payload):
    assert fetch_bytes(site.url("big.iso"), expected=sha256(payload)) == payload
    site.faults.add("/small.txt", truncate_after=2)
    assert fetch_bytes(site.url("small.txt")) == b"hello\n"
    assert site.ranges("/small.txt") == [None, "bytes=2-"]
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_bytes(site.url("nope"))
    with pytest.raises(VerificationError):
        fetch_bytes(site.url("small.txt"), expected=("sha256", "2" * 64))
    with pytest.raises(DownloadError, match="larger than"):
        fetch_bytes(site.url("big.iso"), max_size=1000)


@pytest.fixture
def many(tmp_path, http_serve):  # noqa: F811
    root = tmp_path / "repo"
    root.mkdir()
    files = {}
    for i in range(50):
        data = os.urandom(1000 + i * 37)
        (root / f"pkg-{i}.rpm").write_bytes(data)
        files[f"pkg-{i}.rpm"] = data
    return http_serve(root), files


@cheat_aware(protects="many files download in parallel, each verified, each fetched once",
             cheats=["downloading duplicates twice", "skipping verification in the parallel path"],
             consequence="slow builds and unverified RPMs in the cache")
def test_download_many(many, tmp_path):
    server, files = many
    cache = tmp_path / "cache"
    jobs = [DownloadJob(server.url(n), cache / n, sha256(d), len(d)) for n, d in files.items()]
    jobs.append(jobs[0])   # the same package wanted twice
    paths = download_many(jobs, parallel=8)
    assert paths == [j.dest for j in jobs]
    for name, data in files.items():
        assert (cache / name).read_bytes() == data
        assert server.count(f"/{name}") == 1
    assert not list(cache.glob("*.part"))
    assert server.connections <= 8    # keep-alive: one connection per worker, not one per file
    download_many(jobs, parallel=8)   # all cached: no request at all
    assert len(server.requests) == 50


def test_keepalive_connection_closed_by_the_server_is_replaced(tmp_path, http_serve):  # noqa: F811
    (tmp_path / "a").write_bytes(b"a" * 10)
    server = http_serve(tmp_path, idle_timeout=0.05)
    server.faults.add("/a", status=500)
    # the 500 leaves a keep-alive connection idle during the backoff; the server closes it meanwhile.
    # Reusing it fails, which must not count as a failed attempt (retries=1 allows only one).
    download(server.url("a"), tmp_path / "out", retries=1, backoff=0.3)
    assert (tmp_path / "out").read_bytes() == b"a" * 10
    assert server.count("/a") == 2 and server.connections == 2


@cheat_aware(protects="one failing file in a parallel download fails the batch quickly with its error",
             cheats=["swallowing errors of worker threads", "waiting for every other download first"],
             consequence="a build continues with a missing RPM, or a failure is reported minutes late")
def test_download_many_fails_fast(many, tmp_path):
    server, files = many
    cache = tmp_path / "cache"
    for name in files:
        server.faults.add(f"/{name}", delay=0.2)
    server.faults.clear("/pkg-0.rpm")
    server.faults.add("/pkg-0.rpm", status=404)
    jobs = [(server.url(n), cache / n, sha256(d)) for n, d in files.items()]
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"HTTP 404 for .*/pkg-0\.rpm"):
        download_many(jobs, parallel=4)
    assert time.monotonic() - start < 2.0          # 50 x 0.2 s / 4 would be 2.5 s
    assert len(server.requests) < 20                # the queue was cancelled
    assert not (cache / "pkg-0.rpm").exists()
    for name, data in files.items():                # whatever finished is complete and verified
        if (cache / name).exists():
            assert (cache / name).read_bytes() == data


def test_download_many_reports_a_bad_digest(many, tmp_path):
    server, files = many
    jobs = [(server.url(n), tmp_path / n, sha256(d)) for n, d in files.items()]
    jobs[7] = (jobs[7][0], jobs[7][1], ("sha256", "f" * 64))
    with pytest.raises(VerificationError, match="pkg-7.rpm"):
        download_many(jobs)
    assert not (tmp_path / "pkg-7.rpm").exists() and not part_path(tmp_path / "pkg-7.rpm").exists()


def test_download_many_rejects_conflicting_jobs(tmp_path):
    with pytest.raises(ValueError, match="same file"):
        download_many([("http://a/x", tmp_path / "x"), ("http://b/x", tmp_path / "x")])


def test_concurrent_downloads_of_one_file_share_the_part(site, payload, tmp_path):
    # two workers (as two processes sharing a cache would) never interleave writes to one .part
    import threading
    site.faults.add("/big.iso", delay=0.3)
    dest = tmp_path / "big.iso"
    errors = []

    def run():
        try:
            download(site.url("big.iso"), dest, expected=sha256(payload))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert dest.read_bytes() == payload
    assert site.count("/big.iso") == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make a certificate")
def test_https_verifies_the_certificate(tmp_path, payload, http_serve, monkeypatch):  # noqa: F811
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "big.iso").write_bytes(payload)
    cert, key = self_signed_cert(tmp_path)
    server = http_serve(tmp_path / "site", tls=(cert, key))
    assert server.base_url.startswith("https://")
    with pytest.raises(DownloadError, match=r"the TLS certificate of 127\.0\.0\.1:\d+ cannot be verified"):
        download(server.url("big.iso"), tmp_path / "a.iso", backoff=5)   # not retried: no wait
    assert not (tmp_path / "a.iso").exists()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))   # now the client trusts it
    server.faults.add("/big.iso", truncate_after=70_000)
    download(server.url("big.iso"), tmp_path / "a.iso", expected=sha256(payload))
    assert (tmp_path / "a.iso").read_bytes() == payload
    assert server.ranges("/big.iso") == [None, "bytes=70000-"]


def test_ctrl_c_stops_download_many_promptly(many, tmp_path):
    import signal
    import threading
    server, files = many
    for name in files:
        server.faults.add(f"/{name}", delay=2.0)   # every worker is waiting for an answer
    jobs = [(server.url(n), tmp_path / n, sha256(d)) for n, d in files.items()]
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()   # as Ctrl-C does
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        download_many(jobs, parallel=4)
    assert time.monotonic() - start < 1.5       # not after the 2 s answers, nor after all 50
    assert server.count("/pkg-10.rpm") == 0      # the queue did not run on
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("pkg-")]   # nothing half-written
