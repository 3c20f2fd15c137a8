"""Downloads: resumable, retried, verified, atomic. Standard library only (http.client).

    download(url, dest, expected=("sha256", HEX))    one file, with a progress bar on a terminal
    fetch_bytes(url)                                  a small file into memory (repomd.xml, CHECKSUM)
    download_many(jobs, parallel=4)                   many files at once, one aggregate bar

The rules every function keeps:

- Bytes land in `DEST.part`; only a complete file whose size and digest match gets the name DEST
  (fsync, then rename). A digest mismatch deletes the `.part`, so the next run starts clean.
- An existing `.part` is resumed with an HTTP Range request (206). A server that ignores Range (200)
  makes the download start over; 416 with the part's size as total means the part is complete.
  Interrupting (Ctrl-C, a dropped connection) leaves only the `.part`, which the next run resumes.
- Transient failures are retried with exponential backoff: connection refused/reset, timeouts, DNS
  failures, HTTP 5xx/408/429 and bodies shorter than their Content-Length. 401/403/404/410 and
  other client errors fail at once. An attempt that grows the `.part` does not use up the budget.
- `file://` URLs and plain paths go through the same functions (a verified copy), so a local
  directory can stand in for a mirror.
- Connections are kept alive and reused (hundreds of RPMs from one mirror over HTTPS cost one TLS
  handshake per worker, not one per file); http(s)_proxy / no_proxy are honoured.
- Two processes sharing a cache never write the same `.part`: it is locked (flock) while written.
- A transfer slower than `speed_limit` bytes/s averaged over `speed_time` seconds (default 1 KiB/s
  over 30 s, curl's --speed-limit/--speed-time) is given up at once, not retried: a server that
  trickles a byte now and then never trips the socket timeout. Its `.part` is kept for the next run.
- A full disk (ENOSPC, EDQUOT) ends the download with "no space left on MOUNT" and deletes the
  `.part`: keeping it would keep the disk full, and it cannot complete until space is freed.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import http.client
import io
import logging
import os
import random
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .errors import DownloadError, LevitateError, VerificationError
from .log import Progress

log = logging.getLogger("levitate")

USER_AGENT = "leviso/0.1"
BACKOFF_BASE = 0.5       # seconds before the first retry; doubles with every failed attempt
BACKOFF_MAX = 30.0       # ceiling for one wait (also for a server's Retry-After)
CHUNK_SIZE = 256 * 1024
MAX_REDIRECTS = 10
FETCH_MAX_BYTES = 256 * 1024 * 1024   # fetch_bytes() is for small files
SPEED_LIMIT = 1024       # bytes/s: slower than this over SPEED_TIME seconds, a transfer is given up
SPEED_TIME = 30.0

Digest = tuple[str, str]  # (algorithm as hashlib names it, lower-case hex digest)

_RETRY_STATUSES = {408, 429}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_STATUS_HINTS = {
    401: "the server wants credentials; check the mirror URL",
    403: "the server refused access; check the mirror URL",
    404: "check the mirror URL / the file may have moved",
    410: "check the mirror URL / the file may have moved",
}


class NotFound(DownloadError):
    """The server (or the directory) has no such file: retrying will not help."""


class NoSpace(DownloadError):
    """The file system holding the download is full: retrying will not help."""


@dataclass(frozen=True)
class DownloadJob:
    """One file for download_many(). `expected` and `size` as for download()."""

    url: str
    dest: Path
    expected: Digest | None = None
    size: int | None = None


def part_path(dest: Path) -> Path:
    """Where a download of `dest` collects its bytes until it is verified."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def normalize_algo(algo: str) -> str:
    """'SHA256', 'sha-256' -> 'sha256'; repodata's 'sha' means SHA-1."""
    name = algo.strip().lower().replace("-", "").replace("_", "")
    name = {"sha": "sha1"}.get(name, name)
    try:
        hashlib.new(name)
    except ValueError:
        raise LevitateError(f"unknown checksum algorithm {algo!r}",
                            "use one hashlib knows, e.g. sha256 or sha512") from None
    return name


def file_digest(path: Path, algo: str) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(normalize_algo(algo))
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def download(url: str | Path, dest: Path, *, expected: Digest | None = None, size: int | None = None,
             progress_label: str | None = None, retries: int = 4, timeout: float = 30,
             backoff: float | None = None, speed_limit: int = SPEED_LIMIT,
             speed_time: float = SPEED_TIME) -> Path:
    """Download `url` (http, https, file:// or a local path) to `dest` and return `dest`.

    `expected` = (algo, hex) is checked over the whole file (a resumed prefix included) and `size`
    (bytes) likewise, before the file gets its final name. When `dest` already exists and matches
    `expected` (or `size`, when that is all there is), nothing is fetched. `retries` extra attempts
    follow transient failures, waiting `backoff` (default BACKOFF_BASE) seconds, doubling.
    Slower than `speed_limit` bytes/s over `speed_time` seconds, the transfer is given up.
    A progress bar labelled `progress_label` (default: the file name) shows on a terminal.
    """
    job = DownloadJob(str(url), Path(dest), _normalize_expected(expected), size)
    policy = _Policy(retries, timeout, BACKOFF_BASE if backoff is None else backoff, speed_limit, speed_time)
    bar = _LazyBar(progress_label or job.dest.name, size)
    with _Session(policy) as session:
        try:
            _download_one(session, job, bar.advance)
        finally:
            bar.close()
    return job.dest


def fetch_bytes(url: str | Path, *, expected: Digest | None = None, retries: int = 4, timeout: float = 30,
                backoff: float | None = None, max_size: int = FETCH_MAX_BYTES, speed_limit: int = SPEED_LIMIT,
                speed_time: float = SPEED_TIME) -> bytes:
    """Fetch a small file into memory, with the same retries and resumption as download()."""
    expected = _normalize_expected(expected)
    policy = _Policy(retries, timeout, BACKOFF_BASE if backoff is None else backoff, speed_limit, speed_time)
    sink = _BufferSink(expected[0] if expected else None, max_size, str(url))
    with _Session(policy) as session:
        _fetch_into(session, str(url), sink)
    if expected:
        _check_digest(sink, expected, _display_name(str(url)))
    return sink.getvalue()


def download_many(jobs: Iterable[DownloadJob | Sequence], *, parallel: int = 4,
                  progress_label: str = "Downloading", retries: int = 4, timeout: float = 30,
                  backoff: float | None = None, speed_limit: int = SPEED_LIMIT,
                  speed_time: float = SPEED_TIME) -> list[Path]:
    """Download many files concurrently; return their destinations in the order given.

    `jobs` are DownloadJob or (url, dest[, expected[, size]]) tuples. One progress bar counts the
    bytes of all of them. The first failure cancels the rest (running transfers stop and keep
    their `.part` for the next run) and is raised. Jobs with the same destination run once.
    """
    jobs = [j if isinstance(j, DownloadJob) else DownloadJob(*j) for j in jobs]
    jobs = [DownloadJob(str(j.url), Path(j.dest), _normalize_expected(j.expected), j.size) for j in jobs]
    unique: dict[Path, DownloadJob] = {}
    for job in jobs:
        key = Path(os.path.abspath(job.dest))
        other = unique.setdefault(key, job)
        if other is not job and (other.url, other.expected, other.size) != (job.url, job.expected, job.size):
            raise ValueError(f"two different downloads want the same file {job.dest}: {other.url} and {job.url}")
    if not unique:
        return []
    sizes = [j.size for j in unique.values()]
    total = sum(sizes) if None not in sizes else None
    policy = _Policy(retries, timeout, BACKOFF_BASE if backoff is None else backoff, speed_limit, speed_time)
    with _Session(policy) as session, Progress(progress_label, total, unit_bytes=True) as bar:
        executor = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="download")
        advance = lambda amount, total=None: bar.advance(amount)  # noqa: E731
        futures = [executor.submit(_download_one, session, job, advance) for job in unique.values()]
        try:
            pending = set(futures)
            while pending:   # short waits: Ctrl-C is seen at once however it arrives
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    break
            failed = [f.exception() for f in futures if f.done() and f.exception() is not None]
            if failed:   # the first failure in the order given (never a job cancelled because of it)
                raise next((e for e in failed if not isinstance(e, _Cancelled)), failed[0])
        except BaseException:
            session.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    return [j.dest for j in jobs]


# --- internals ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Policy:
    retries: int
    timeout: float
    backoff: float
    speed_limit: int = SPEED_LIMIT
    speed_time: float = SPEED_TIME


class _Cancelled(Exception):
    """download_many() gave up on this job because another one failed."""


class _Retry(Exception):
    """A transient failure: try again. `error` is what the user sees when retries run out."""

    def __init__(self, error: DownloadError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _Restart(Exception):
    """The partial file was discarded: start over at once, without counting a failure."""


def _normalize_expected(expected: Digest | None) -> Digest | None:
    if expected is None:
        return None
    algo, hexdigest = expected
    return normalize_algo(algo), hexdigest.strip().lower()


def _display_name(url: str) -> str:
    return urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1]) or url


def _host_of(url: str) -> str:
    netloc = urllib.parse.urlsplit(url).netloc
    return netloc.rpartition("@")[2] or url


def _local_path(url: str) -> Path | None:
    """The path a file:// URL or a plain path names; None for http(s)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"cannot read {url}: file URLs on another host are not supported",
                                "copy the file locally or serve it over HTTP")
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme and len(parts.scheme) > 1:
        raise DownloadError(f"unsupported URL scheme {parts.scheme!r} in {url}",
                            "use http://, https://, file:// or a local path")
    return Path(url)


class _LazyBar:
    """A single file's progress bar, opened when the first bytes arrive (the total is known then)."""

    def __init__(self, label: str, total: int | None):
        self.label, self.total = label, total
        self._bar: Progress | None = None

    def advance(self, amount: int, total: int | None = None) -> None:
        if self._bar is None:
            self._bar = Progress(self.label, self.total or total, unit_bytes=True).__enter__()
        self._bar.advance(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


class _Sink:
    """Where downloaded bytes go, with the running digest of everything held so far."""

    def __init__(self, algo: str | None):
        self.algo = algo
        self.hasher = hashlib.new(algo) if algo else None
        self.size = 0
        self.total: int | None = None   # the full size, once a server has said it
        self._reported = 0
        self.on_progress: Callable[..., None] | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._write(data)
        if self.hasher:
            self.hasher.update(data)
        self.size += len(data)
        self._report()

    def reset(self) -> None:
        """Throw away what was received and start again from byte 0."""
        self._truncate()
        self.hasher = hashlib.new(self.algo) if self.algo else None
        self.size = 0

    def hexdigest(self) -> str | None:
        return self.hasher.hexdigest() if self.hasher else None

    def _report(self) -> None:
        """Advance the progress bar by new high-water bytes only (a restart does not count twice)."""
        if self.on_progress and self.size > self._reported:
            self.on_progress(self.size - self._reported, self.total)
            self._reported = self.size

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _truncate(self) -> None:
        raise NotImplementedError


class _BufferSink(_Sink):
    def __init__(self, algo: str | None, max_size: int, url: str):
        super().__init__(algo)
        self._buf = io.BytesIO()
        self._max, self._url = max_size, url

    def _write(self, data: bytes) -> None:
        if self.size + len(data) > self._max:
            raise DownloadError(f"{self._url} is larger than {self._max} bytes",
                                "this is not the small file it should be; check the URL")
        self._buf.write(data)

    def _truncate(self) -> None:
        self._buf = io.BytesIO()

    def getvalue(self) -> bytes:
        return self._buf.getvalue()


class _PartSink(_Sink):
    """An open (unbuffered), locked `.part` file; resuming hashes the bytes already there first."""

    def __init__(self, fileobj, algo: str | None, path: Path):
        super().__init__(algo)
        self.file, self.path = fileobj, path
        self.file.seek(0)
        while chunk := self.file.read(1024 * 1024):
            if self.hasher:
                self.hasher.update(chunk)
            self.size += len(chunk)
        self.file.seek(0, os.SEEK_END)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self.file.write(view):]
        except OSError as e:
            raise _write_error(self.path, e) from None

    def _truncate(self) -> None:
        self.file.seek(0)
        self.file.truncate()


class _Session:
    """Settings, a connection pool and a cancel flag shared by the downloads of one call."""

    def __init__(self, policy: _Policy):
        self.policy = policy
        self.pool = _Pool(policy.timeout)
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()
        self.pool.abort()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise _Cancelled()

    def sleep(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise _Cancelled()

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.close()


# --- one file ----------------------------------------------------------------------------------

def _download_one(session: _Session, job: DownloadJob, on_progress: Callable[..., None]) -> Path:
    dest, expected = job.dest, job.expected
    if _is_complete(dest, expected, job.size):
        log.debug("%s: already downloaded and verified", dest)
        on_progress(dest.stat().st_size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked_part(session, dest) as part:
        if _is_complete(dest, expected, job.size):   # another process finished it while we waited
            on_progress(dest.stat().st_size)
            return dest
        for fresh_start in (False, True):
            sink = _PartSink(part.file, expected[0] if expected else None, part.path)
            sink.total = job.size
            sink.on_progress = on_progress
            resumed = sink.size > 0
            if job.size is not None and sink.size > job.size:
                sink.reset()   # longer than the file can be: not a prefix of it
            try:
                _fetch_into(session, job.url, sink)
            except NoSpace:
                part.remove()   # the rule: a full disk is not kept full by a part that cannot complete
                raise
            try:
                if job.size is not None and sink.size != job.size:
                    raise VerificationError(f"size mismatch for {dest.name}: expected {job.size} bytes, "
                                            f"got {sink.size} (from {job.url})",
                                            "the mirror may be out of date or the file corrupt; try again "
                                            "or use another mirror")
                if expected:
                    _check_digest(sink, expected, dest.name, job.url)
            except VerificationError:
                sink.reset()
                if resumed and not fresh_start:
                    # The bytes kept from an earlier run may be what is wrong (a stale .part):
                    # one more try from scratch before blaming the server.
                    log.warning("%s: resumed download did not verify; downloading it again from the start",
                                dest.name)
                    continue
                part.remove()
                raise
            try:
                os.fsync(part.file.fileno())
            except OSError as e:
                part.remove()
                raise _write_error(part.path, e) from None
            # Not files.atomic_write: the .part keeps a fixed name so an interrupted download resumes.
            os.replace(part.path, dest)
            part.renamed = True
            return dest
    raise AssertionError("unreachable")


def _is_complete(dest: Path, expected: Digest | None, size: int | None) -> bool:
    try:
        st = dest.stat()
    except FileNotFoundError:
        return False
    if size is not None and st.st_size != size:
        return False
    if expected:
        ok = file_digest(dest, expected[0]) == expected[1]
        if not ok:
            log.info("%s exists but does not match its %s checksum: downloading it again", dest, expected[0])
        return ok
    return size is not None


def _check_digest(sink: _Sink, expected: Digest, name: str, url: str | None = None) -> None:
    actual = sink.hexdigest()
    if actual != expected[1]:
        where = f" from {url}" if url else ""
        raise VerificationError(
            f"checksum mismatch for {name}{where}: expected {expected[0]} {expected[1]}, got {actual}",
            "the download is corrupt or the mirror is out of date; run again to download it afresh, "
            "or use another mirror")


class _locked_part:
    """Open DEST.part for appending under an exclusive flock (other processes wait)."""

    def __init__(self, session: _Session, dest: Path):
        self.session, self.dest, self.path = session, dest, part_path(dest)
        self.file = None
        self.renamed = False

    def __enter__(self) -> "_locked_part":
        waited = False
        while True:
            f = open(self.path, "a+b", buffering=0)   # a full disk shows at the write, not later
            while True:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        log.info("waiting for another download of %s to finish", self.dest.name)
                        waited = True
                    try:
                        self.session.sleep(0.2)
                    except BaseException:
                        f.close()
                        raise
            try:   # the holder may have renamed it to DEST meanwhile: then lock the new .part
                same = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.file = f
                return self
            f.close()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __exit__(self, *exc) -> None:
        # unbuffered: an interrupted download's bytes are all in the file, for the next run to resume
        if not self.renamed and os.fstat(self.file.fileno()).st_size == 0:
            self.remove()   # nothing received (e.g. HTTP 404): leave no empty .part behind
        self.file.close()


# --- one transfer with retries -----------------------------------------------------------------

def _fetch_into(session: _Session, url: str, sink: _Sink) -> None:
    """Fill `sink` with the content of `url`, resuming from sink.size; retries per the policy."""
    local = _local_path(url)
    if local is not None:
        _copy_local(session, local, sink)
        return
    policy = session.policy
    failures = 0
    high_water = sink.size
    while True:
        session.check()
        try:
            _attempt(session, url, sink)
            return
        except _Restart:
            continue
        except _Retry as retry:
            if sink.size > high_water:   # progress was made: the budget starts afresh
                high_water, failures = sink.size, 0
            failures += 1
            if failures > policy.retries:
                error = retry.error
                if policy.retries:
                    error.message += f" (gave up after {failures} attempts)"
                raise error from None
            delay = min(BACKOFF_MAX, policy.backoff * 2 ** (failures - 1))
            delay *= random.uniform(0.8, 1.2)
            if retry.retry_after is not None:
                delay = max(delay, min(retry.retry_after, BACKOFF_MAX))
            log.info("%s; retrying in %.1f s", retry.error.message, delay)
            session.sleep(delay)


def _copy_local(session: _Session, path: Path, sink: _Sink) -> None:
    try:
        src = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}", "check the path or the source directory") from None
    except IsADirectoryError:
        raise DownloadError(f"{path} is a directory, not a file", "check the path") from None
    except PermissionError:
        raise DownloadError(f"cannot read {path}: permission denied", "check the file's permissions") from None
    with src:
        sink.total = os.fstat(src.fileno()).st_size
        if sink.size:
            if sink.size <= sink.total:
                src.seek(sink.size)   # resume a local copy too; the digest covers the whole file
            else:
                sink.reset()
        while chunk := src.read(CHUNK_SIZE):
            session.check()
            sink.write(chunk)


def _attempt(session: _Session, url: str, sink: _Sink) -> None:
    """One HTTP GET. Raises _Retry (transient), _Restart or DownloadError (final)."""
    offset = sink.size
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    resp, conn, final_url = session.pool.request(url, headers)
    status = resp.status
    try:
        if status == 206:
            start, _, total = _content_range(resp.getheader("Content-Range"))
            if start != offset:
                log.info("%s: server sent a range starting at %s instead of %d; starting over", url, start, offset)
                sink.reset()
                if offset:
                    raise _Restart()
                raise _Retry(DownloadError(f"the server sent a wrong byte range for {final_url}",
                                           "the server misbehaves; try another mirror"))
            sink.total = total if total is not None else sink.total
        elif status == 200:
            if offset:
                log.info("%s: server does not resume downloads; starting over", _display_name(url))
                sink.reset()
            sink.total = resp.length if resp.length is not None else sink.total
        elif status == 416:
            _, _, total = _content_range(resp.getheader("Content-Range"))
            _drain(resp)
            if offset and total == offset:
                return   # the .part already holds the whole file
            if offset:
                log.info("%s: the partial download does not fit the file on the server; starting over",
                         _display_name(url))
                sink.reset()
                raise _Restart()
            raise DownloadError(f"HTTP 416 for {final_url}", "the server misbehaves; try another mirror")
        elif status in _RETRY_STATUSES or 500 <= status < 600:
            _drain(resp)
            raise _Retry(DownloadError(f"HTTP {status} for {final_url}",
                                       "the server is failing; try again later or use another mirror"),
                         _retry_after(resp.getheader("Retry-After")))
        else:
            _drain(resp)
            hint = _STATUS_HINTS.get(status, "check the URL")
            error = NotFound if status in (404, 410) else DownloadError
            raise error(f"HTTP {status} for {final_url}", hint)

        declared = resp.length   # body bytes promised (None: chunked or until close)
        received = 0
        speed = _SpeedCheck(session.policy, url)
        while True:
            session.check()
            try:   # read1: whatever has arrived, so a trickle is measured rather than waited for;
                # at the end, read() marks the response closed, which lets its connection be reused
                chunk = resp.read1(CHUNK_SIZE) or resp.read()
            except http.client.IncompleteRead as e:
                sink.write(e.partial)
                raise _interrupted(url, sink) from None
            except (OSError, http.client.HTTPException):
                raise _interrupted(url, sink) from None
            if not chunk:
                break
            sink.write(chunk)
            received += len(chunk)
            speed.add(len(chunk), sink)
        if declared is not None and received < declared:
            raise _interrupted(url, sink)
        if sink.total is not None and sink.size < sink.total and status == 206:
            raise _interrupted(url, sink)
    finally:   # a connection is reused only when its response was read to the end
        session.pool.release(conn, reuse=resp.isclosed() and not resp.will_close)


class _SpeedCheck:
    """Give a transfer up when it averages less than policy.speed_limit bytes/s over a window of
    policy.speed_time seconds (the socket timeout alone is reset by every byte)."""

    def __init__(self, policy: _Policy, url: str):
        self.policy, self.url = policy, url
        self.start, self.bytes = time.monotonic(), 0

    def add(self, amount: int, sink: _Sink) -> None:
        self.bytes += amount
        elapsed = time.monotonic() - self.start
        if elapsed < self.policy.speed_time:
            return
        if self.bytes < self.policy.speed_limit * elapsed:
            raise DownloadError(
                f"download of {self.url} is too slow: {self.bytes} bytes in {elapsed:.0f} s, below "
                f"{self.policy.speed_limit} bytes/s ({sink.size} bytes kept)",
                "the server or the network stalls; run the same command again to resume, or use "
                "another mirror")
        self.start, self.bytes = time.monotonic(), 0


def _write_error(path: Path, exc: OSError) -> DownloadError:
    """A failed write of a download: a full disk names its file system."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        mount = os.path.realpath(path.parent)
        while not os.path.ismount(mount):
            mount = os.path.dirname(mount)
        what = "no space left" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return NoSpace(f"{what} on {mount} while downloading {path.name}",
                       f"free some space on {mount} and run again (the partial download was deleted)")
    return DownloadError(f"cannot write {path}: {exc.strerror}", "check the directory and its file system")


def _interrupted(url: str, sink: _Sink) -> _Retry:
    of = f" of {sink.total}" if sink.total is not None else ""
    return _Retry(DownloadError(f"download of {url} was interrupted ({sink.size}{of} bytes received)",
                                "check your network; run the same command again to resume"))


def _drain(resp: http.client.HTTPResponse, limit: int = 64 * 1024) -> None:
    try:
        resp.read(limit)
    except (OSError, http.client.HTTPException):
        pass


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """'bytes 100-199/200' -> (100, 199, 200); 'bytes */200' -> (None, None, 200)."""
    if not value:
        return None, None, None
    try:
        unit, _, spec = value.strip().partition(" ")
        rng, _, total = spec.partition("/")
        total_n = None if total.strip() in ("", "*") else int(total)
        if rng.strip() == "*":
            return None, None, total_n
        first, _, last = rng.partition("-")
        return int(first), int(last), total_n
    except ValueError:
        return None, None, None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


# --- connections -------------------------------------------------------------------------------

class _Pool:
    """Keep-alive connections per (scheme, host, port), shared by a session's threads."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._busy: dict[http.client.HTTPConnection, tuple] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def request(self, url: str, headers: dict[str, str]):
        """GET `url`, following redirects: (response, its connection, final URL). Raises _Retry."""
        for _ in range(MAX_REDIRECTS + 1):
            resp, conn = self._get(url, headers)
            location = resp.getheader("Location")
            if resp.status not in _REDIRECT_STATUSES or not location:
                return resp, conn, url
            _drain(resp)
            self.release(conn, reuse=resp.isclosed() and not resp.will_close)
            new_url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(new_url).scheme not in ("http", "https"):
                raise DownloadError(f"{url} redirects to {new_url}, which is not HTTP(S)", "check the URL")
            log.debug("%s redirects to %s", url, new_url)
            url = new_url
        raise DownloadError(f"too many redirects for {url}", "check the URL")

    def _get(self, url: str, headers: dict[str, str]):
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        proxy = _proxy_for(parts.scheme, parts.hostname or "")
        headers = dict(headers)
        if proxy and parts.scheme == "http":
            target = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
            if proxy.username:
                headers["Proxy-Authorization"] = _basic_auth(proxy)
        for fresh in (False, True):
            conn, reused = self._checkout(parts, proxy, fresh)
            try:
                conn.request("GET", target, headers=headers)
                return conn.getresponse(), conn
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.release(conn, reuse=False)
                if reused and not fresh:
                    continue   # the server closed an idle keep-alive connection: not a failure
                raise _network_error(url, e) from None
            except (OSError, http.client.HTTPException) as e:
                self.release(conn, reuse=False)
                raise _network_error(url, e) from None
        raise AssertionError("unreachable")

    def _checkout(self, parts, proxy, fresh: bool):
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port, proxy.geturl() if proxy else None)
        with self._lock:
            if self._closed:
                raise _Cancelled()
            idle = self._idle.get(key)
            if idle and not fresh:
                conn = idle.pop()
                self._busy[conn] = key
                return conn, True
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            if proxy:
                conn = http.client.HTTPSConnection(proxy.hostname, proxy.port or 8080,
                                                   timeout=self.timeout, context=self._ssl)
                tunnel_headers = {"Proxy-Authorization": _basic_auth(proxy)} if proxy.username else None
                conn.set_tunnel(host, port, headers=tunnel_headers)
            else:
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        elif proxy:
            conn = http.client.HTTPConnection(proxy.hostname, proxy.port or 8080, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        with self._lock:
            self._busy[conn] = key
        return conn, False

    def release(self, conn: http.client.HTTPConnection, *, reuse: bool) -> None:
        with self._lock:
            key = self._busy.pop(conn, None)
            if reuse and key is not None and not self._closed and conn.sock is not None:
                self._idle.setdefault(key, []).append(conn)
                return
        conn.close()

    def abort(self) -> None:
        """Stop transfers running in other threads: shut their sockets down."""
        with self._lock:
            self._closed = True
            busy = list(self._busy)
        for conn in busy:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for conn in conns:
            conn.close()


def _proxy_for(scheme: str, host: str) -> urllib.parse.SplitResult | None:
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if not proxy or urllib.request.proxy_bypass(host) or host in ("127.0.0.1", "localhost", "::1"):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return urllib.parse.urlsplit(proxy)


def _basic_auth(proxy: urllib.parse.SplitResult) -> str:
    user = urllib.parse.unquote(proxy.username or "")
    password = urllib.parse.unquote(proxy.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _network_error(url: str, exc: BaseException) -> _Retry | DownloadError:
    """Turn a connection-level failure into a retry (or, for bad certificates, a final error)."""
    host = _host_of(url)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DownloadError(f"the TLS certificate of {host} cannot be verified: {exc.verify_message}",
                             "check the URL; behind an HTTPS-intercepting proxy, add its CA to the "
                             "system trust store")
    hint = "check the URL and your network"
    if isinstance(exc, socket.gaierror):
        msg = f"cannot resolve host {host}"
        hint = "check the host name in the URL and your DNS/network"
    elif isinstance(exc, ConnectionRefusedError):
        msg = f"cannot reach {host}: connection refused"
    elif isinstance(exc, TimeoutError):
        msg = f"cannot reach {host}: no answer within the timeout"
    elif isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        msg = f"cannot reach {host}: the connection was closed by the server"
    elif isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        msg = f"cannot reach {host}: {os.strerror(exc.errno).lower()}"
    else:
        msg = f"cannot reach {host}: {exc}"
    return _Retry(DownloadError(msg, hint))


__all__ = [
    "BACKOFF_BASE", "SPEED_LIMIT", "SPEED_TIME", "USER_AGENT", "Digest", "DownloadJob", "NoSpace", "download",
    "download_many", "fetch_bytes", "file_digest", "normalize_algo", "part_path",
]
