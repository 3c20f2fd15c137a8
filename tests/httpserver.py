"""A loopback HTTP server for tests: serves a directory, with Range requests and injected faults.

    with serve(directory) as server:
        server.base_url                      # http://127.0.0.1:PORT  (no trailing slash)
        server.url("isos/CHECKSUM")          # base_url + "/isos/CHECKSUM"
        server.faults.add("/isos/x.iso", truncate_after=1000)       # next request: cut after 1000 B
        server.faults.add("/a.rpm", status=500, times=2)             # next 2 requests: HTTP 500
        server.faults.add("/a.rpm", status=503, times=None)          # every request from now on
        server.faults.add("/a.rpm", ignore_range=True)                # answer Range with a full 200
        server.faults.add("/a.rpm", delay=0.5)                        # wait before answering
        server.faults.add("/a.rpm", drop=True)                        # close without any answer
        server.faults.add("/old", redirect="/new", times=None)        # 302 to another place
        server.faults.add("/a.rpm", trickle=0.5)                      # one byte every 0.5 s
        server.count("/a.rpm"); server.ranges("/a.rpm"); server.requests   # what clients asked
        server.connections                   # TCP connections accepted (shows keep-alive reuse)

    serve(directory, idle_timeout=0.1)       # close idle keep-alive connections, as servers do
    serve(directory, tls=self_signed_cert(tmp))   # HTTPS; clients trust it with SSL_CERT_FILE=cert

The `http_serve` fixture is a factory (`server = http_serve(directory, **serve_kwargs)`) closed
after the test; import it into a test module (`from tests.httpserver import http_serve`) or list
the module in a conftest's `pytest_plugins`. `closed_port_url()` gives a URL where nothing listens
(connection refused).

Semantics a client can rely on: HTTP/1.1 with keep-alive and Content-Length on every response;
one byte range (`bytes=A-B`, `bytes=A-`, `bytes=-N`) answered with 206 and Content-Range, an
unsatisfiable one with 416 and `Content-Range: bytes */SIZE`; several ranges are answered with the
whole file (200), as RFC 9110 allows; directories get an Apache-style autoindex page.
"""

from __future__ import annotations

import contextlib
import html
import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Fault:
    """What to do wrong for the next `times` requests of one path (`times=None`: forever)."""

    status: int | None = None          # answer with this status and a short body
    truncate_after: int | None = None  # promise the whole body, send this many bytes, close
    ignore_range: bool = False         # answer a Range request with 200 and the whole file
    delay: float = 0.0                 # seconds to wait before answering
    drop: bool = False                 # close the connection without answering
    redirect: str | None = None        # answer 302 with this Location
    times: int | None = 1
    trickle: float = 0.0               # send the body one byte at a time, this many seconds apart


class Faults:
    """Faults queued per URL path ("/dir/file"); the first one still active applies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, list[Fault]] = {}

    def add(self, path: str, *, status: int | None = None, truncate_after: int | None = None,
            ignore_range: bool = False, delay: float = 0.0, drop: bool = False,
            redirect: str | None = None, times: int | None = 1, trickle: float = 0.0) -> Fault:
        fault = Fault(status, truncate_after, ignore_range, delay, drop, redirect, times, trickle)
        with self._lock:
            self._by_path.setdefault(_norm(path), []).append(fault)
        return fault

    def clear(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._by_path.clear()
            else:
                self._by_path.pop(_norm(path), None)

    def take(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._by_path.get(path, [])
            while queue:
                fault = queue[0]
                if fault.times is None:
                    return fault
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        queue.pop(0)
                    return fault
                queue.pop(0)
            return None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class LoopbackServer:
    base_url: str
    directory: Path
    faults: Faults
    requests: list[Request] = field(default_factory=list)
    connections: int = 0               # TCP connections accepted (keep-alive reuse shows here)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, relpath: str = "") -> str:
        return f"{self.base_url}/{urllib.parse.quote(relpath.lstrip('/'))}"

    def log(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == _norm(path)]

    def count(self, path: str) -> int:
        """How many requests asked for this path."""
        return len(self.log(path))

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of every request for this path (None where there was none)."""
        return [r.headers.get("range") for r in self.log(path)]

    def user_agents(self) -> set[str | None]:
        return {r.headers.get("user-agent") for r in self.log()}

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _norm(path: str) -> str:
    return "/" + urllib.parse.unquote(path.split("?", 1)[0]).lstrip("/")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "levitate-test/1"
    state: LoopbackServer  # set on a subclass per server

    def log_message(self, format, *args):  # noqa: A002 - quiet tests
        pass

    def setup(self):
        super().setup()
        self.state._connected()

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = _norm(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = self.state.faults.take(path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            self.state._record(Request(self.command, path, headers, 0))
            self.close_connection = True
            return
        if fault and fault.redirect:
            self.state._record(Request(self.command, path, headers, 302))
            self.send_response(302)
            self.send_header("Location", fault.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault and fault.status:
            self._send_simple(path, headers, fault.status, f"injected HTTP {fault.status}\n", head)
            return
        target = self._resolve(path)
        if target is None:
            self._send_simple(path, headers, 404, "not found\n", head)
            return
        if target.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                self.state._record(Request(self.command, path, headers, 301))
                self.send_response(301)
                self.send_header("Location", self.path.split("?", 1)[0] + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = _autoindex(target, path).encode()
            self.state._record(Request(self.command, path, headers, 200))
            self._send_body(200, body, "text/html; charset=utf-8", head)
            return
        size = target.stat().st_size
        rng = None if (fault and fault.ignore_range) else _parse_range(headers.get("range"), size)
        if rng == "unsatisfiable":
            self.state._record(Request(self.command, path, headers, 416))
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        status = 206 if rng else 200
        length = end - start + 1 if size else 0
        self.state._record(Request(self.command, path, headers, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        limit = length if not (fault and fault.truncate_after is not None) else min(length, fault.truncate_after)
        with open(target, "rb") as f:
            f.seek(start)
            remaining = limit
            try:
                step = 1 if fault and fault.trickle else 64 * 1024
                while remaining > 0:
                    chunk = f.read(min(remaining, step))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
                    if step == 1:
                        self.wfile.flush()
                        time.sleep(fault.trickle)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
        if limit < length:   # an interrupted transfer: the client sees the connection end early
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _resolve(self, path: str) -> Path | None:
        root = self.state.directory.resolve()
        candidate = (root / path.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None
        return candidate if candidate.exists() else None

    def _send_simple(self, path, headers, status, text, head) -> None:
        self.state._record(Request(self.command, path, headers, status))
        self._send_body(status, text.encode(), "text/plain", head)

    def _send_body(self, status: int, body: bytes, ctype: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients that give up mid-transfer (cancelled, timed out) reset their connection: expected
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


def _parse_range(value: str | None, size: int):
    """(start, end) for one satisfiable range, "unsatisfiable", or None (serve everything)."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n == 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _autoindex(directory: Path, urlpath: str) -> str:
    rows = ['<tr><td><a href="../">Parent Directory</a></td></tr>']
    for entry in sorted(directory.iterdir()):
        name = entry.name + ("/" if entry.is_dir() else "")
        rows.append(f'<tr><td><a href="{urllib.parse.quote(name)}">{html.escape(name)}</a></td>'
                    f'<td align="right">{entry.stat().st_size if entry.is_file() else "-"}</td></tr>')
    title = html.escape(f"Index of {urllib.parse.unquote(urlpath)}")
    return (f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>{title}</title>"
            f"</head><body><h1>{title}</h1><table>\n" + "\n".join(rows) + "\n</table></body></html>\n")


@contextlib.contextmanager
def serve(directory: str | os.PathLike, *, idle_timeout: float | None = None,
          tls: tuple[Path, Path] | None = None) -> Iterator[LoopbackServer]:
    """Serve `directory` on 127.0.0.1 (a free port) until the block ends.

    `idle_timeout`: close a keep-alive connection that stays idle this long (as real servers do).
    `tls`: (certificate, key) PEM files: serve HTTPS instead (see self_signed_cert()).
    """
    state = LoopbackServer("", Path(directory), Faults())
    handler = type("Handler", (_Handler,), {"state": state, "timeout": idle_timeout})
    httpd = _Server(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        # the handshake happens in the handler's thread, at its first read
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    state.base_url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (made with the openssl tool), for serve(tls=...).

    Clients trust it when SSL_CERT_FILE names the certificate.
    """
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def http_serve():
    """Factory fixture: `server = http_serve(directory)`; every server stops after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda directory, **kwargs: stack.enter_context(serve(directory, **kwargs))
