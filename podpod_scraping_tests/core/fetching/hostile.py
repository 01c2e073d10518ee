"""Hostile fixture servers and helpers for the fetching tests, all on loopback.

- ``secret``: stands in for what an SSRF would reach (the metadata server, an internal
  admin page). It counts every TCP connection; tests assert it saw none.
- ``site``: a hostile web site with one route per attack or failure mode. It records
  hits and request headers per path so tests can prove what did (not) reach it.

Servers bind ephemeral ports on 127.0.0.1 (plus 127.0.0.2 and ::1 where the machine
allows) and are shut down at teardown. Every slow or endless route is bounded in bytes
and time and stops when the client goes away.
"""

from __future__ import annotations

import functools
import gzip
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from podpod_scraping.core.fetching import FetchPolicy, default_resolver

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"fake-image-bytes" * 8
IMAGE_ETAG = '"v1"'
IMAGE_LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
DEFAULT_ROBOTS = (
    "User-agent: *\n"
    "Disallow: /private/\n"
    "\n"
    "User-agent: podpod-scraping\n"
    "Disallow: /private/\n"
    "Disallow: /not-for-podpod\n"
)


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> None:
        self.address_family = family
        self.connections = 0
        self._count_lock = threading.Lock()
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self._count_lock:
            self.connections += 1
        return True


def _start(server: _CountingServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return thread


def _stop(server: _CountingServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _SecretHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"metadata-token: top-secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class SecretServers:
    """Loopback listeners that no fetch may ever reach."""

    port: int  # on 127.0.0.1
    alt_v4_port: int | None  # on 127.0.0.2, if it could be bound
    v6_port: int | None  # on ::1, if IPv6 loopback exists
    servers: list[_CountingServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def hits(self) -> int:
        return sum(server.connections for server in self.servers)


def _try_bind(host: str, family: socket.AddressFamily) -> _CountingServer | None:
    try:
        return _CountingServer((host, 0), _SecretHandler, family=family)
    except OSError:
        return None


def start_secret_servers() -> SecretServers:
    """Start the secret listeners; stop them with :func:`stop_secret_servers`."""
    main = _CountingServer(("127.0.0.1", 0), _SecretHandler)
    alt = _try_bind("127.0.0.2", socket.AF_INET)
    v6 = _try_bind("::1", socket.AF_INET6)
    servers = [s for s in (main, alt, v6) if s is not None]
    threads = [_start(s) for s in servers]
    return SecretServers(
        port=main.server_address[1],
        alt_v4_port=alt.server_address[1] if alt else None,
        v6_port=v6.server_address[1] if v6 else None,
        servers=servers,
        threads=threads,
    )


def stop_secret_servers(secret: SecretServers) -> None:
    for server, thread in zip(secret.servers, secret.threads, strict=True):
        _stop(server, thread)


class _SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = cast(_SiteServer, self.server).site
        path = urlsplit(self.path).path
        hit = site.record(path, dict(self.headers.items()))
        route = _ROUTES.get(path)
        try:
            if route is None:
                self._send(404, b"not here")
            else:
                route(self, site, hit)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        finally:
            site.leave(path)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, b"", {"Location": location})


Route = Callable[[_SiteHandler, "HostileSite", int], None]


def _page(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(200, b"<html><body><img class='artist-image' src='/image.png'></body></html>")


def _robots(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    if site.robots_status != 200:
        h._send(site.robots_status, b"no robots here", content_type="text/plain")
    else:
        h._send(200, site.robots.encode(), content_type="text/plain")


def _image(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    validators = {"ETag": IMAGE_ETAG, "Last-Modified": IMAGE_LAST_MODIFIED}
    if h.headers.get("If-None-Match") == IMAGE_ETAG:
        h.send_response(304)
        for name, value in validators.items():
            h.send_header(name, value)
        h.end_headers()
        return
    h._send(200, PNG_BYTES, validators, content_type="image/png")


def _redirect_to_secret(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect(f"http://127.0.0.1:{site.secret_port}/computeMetadata/v1/")


def _redirect_to_metadata(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect("http://169.254.169.254/computeMetadata/v1/instance/service-accounts/")


def _redirect_to_evil_name(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect(f"http://evil.test:{site.secret_port}/")


def _redirect_to_file(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect("file:///etc/passwd")


def _redirect_with_credentials(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect(
        f"http://admin:hunter2@127.0.0.1:{site.secret_port}/x?X-Goog-Signature=SIGSECRET&a=1"
    )


def _loop_a(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect("/loop-b")


def _loop_b(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect("/loop-a")


def _redirect_to_page(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._redirect("/page", status=301)


def _trickle(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    """1 byte every 0.5 s: never trips a read timeout, only the total deadline."""
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "60")
    h.end_headers()
    for _ in range(60):  # bounded: 30 s at most, ends early when the client leaves
        h.wfile.write(b"x")
        h.wfile.flush()
        time.sleep(0.5)


def _endless(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    chunk = b"a" * 65536
    for _ in range(2000):  # bounded at ~128 MiB; the client cuts far earlier
        h.wfile.write(chunk)


def _lying_length(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    """Claims 100 bytes, then sends 1 MiB more than that."""
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100")
    h.end_headers()
    h.close_connection = True
    h.wfile.write(b"b" * 100 + b"c" * (1024 * 1024))


def _huge_length(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", str(10**12))
    h.end_headers()
    h.close_connection = True
    h.wfile.write(b"d" * 1024)


def _gzip_bomb(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(200, site.gzip_bomb, {"Content-Encoding": "gzip"})


def _gzip_page(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    body = gzip.compress(b"<html>compressed artist page</html>")
    h._send(200, body, {"Content-Encoding": "gzip"})


def _rate_limited_once(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    if hit == 1:
        h._send(429, b"slow down", {"Retry-After": "2"})
    else:
        _page(h, site, hit)


def _retry_after_huge(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    if hit == 1:
        h._send(429, b"slow down", {"Retry-After": "1000"})
    else:
        _page(h, site, hit)


def _always_429(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(429, b"slow down", {"Retry-After": "1"})


def _unavailable_once(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    if hit == 1:
        h._send(503, b"busy")
    else:
        _page(h, site, hit)


def _always_503(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(503, b"busy")


def _missing(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(404, b"no such artist")


def _gone(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(410, b"gone")


def _forbidden(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    h._send(403, b"forbidden")


def _slow(h: _SiteHandler, site: HostileSite, hit: int) -> None:
    time.sleep(0.2)
    _page(h, site, hit)


_ROUTES: dict[str, Route] = {
    "/page": _page,
    "/robots.txt": _robots,
    "/image.png": _image,
    "/private/secret": _page,
    "/not-for-podpod": _page,
    "/redirect-to-secret": _redirect_to_secret,
    "/redirect-to-metadata": _redirect_to_metadata,
    "/redirect-to-evil-name": _redirect_to_evil_name,
    "/redirect-to-file": _redirect_to_file,
    "/redirect-with-credentials": _redirect_with_credentials,
    "/redirect-to-page": _redirect_to_page,
    "/loop-a": _loop_a,
    "/loop-b": _loop_b,
    "/trickle": _trickle,
    "/endless": _endless,
    "/lying-length": _lying_length,
    "/huge-length": _huge_length,
    "/gzip-bomb": _gzip_bomb,
    "/gzip-page": _gzip_page,
    "/rate-limited-once": _rate_limited_once,
    "/retry-after-huge": _retry_after_huge,
    "/always-429": _always_429,
    "/unavailable-once": _unavailable_once,
    "/always-503": _always_503,
    "/missing": _missing,
    "/missing-image.png": _missing,
    "/gone": _gone,
    "/forbidden": _forbidden,
    "/slow": _slow,
}


class _SiteServer(_CountingServer):
    site: HostileSite


@dataclass
class HostileSite:
    """A running hostile site; ``hits``/``headers`` are per path."""

    secret_port: int
    robots: str = DEFAULT_ROBOTS
    robots_status: int = 200
    port: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    inflight: int = 0
    max_inflight: int = 0
    gzip_bomb: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, path: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.hits[path] += 1
            self.headers.setdefault(path, []).append(headers)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            return self.hits[path]

    def leave(self, path: str) -> None:
        with self._lock:
            self.inflight -= 1

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())


@functools.cache
def _gzip_bomb_bytes() -> bytes:
    """~20 KiB that inflate to 20 MiB; built once per test session."""
    return gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)


class SiteRunner:
    """Starts hostile sites (robots.txt text/status configurable) and stops them all."""

    def __init__(self, secret: SecretServers) -> None:
        self._secret = secret
        self._running: list[tuple[_SiteServer, threading.Thread]] = []
        self._bomb = _gzip_bomb_bytes()

    def start(self, *, robots: str = DEFAULT_ROBOTS, robots_status: int = 200) -> HostileSite:
        site = HostileSite(
            secret_port=self._secret.port,
            robots=robots,
            robots_status=robots_status,
            gzip_bomb=self._bomb,
        )
        server = _SiteServer(("127.0.0.1", 0), _SiteHandler)
        server.site = site
        site.port = server.server_address[1]
        self._running.append((server, _start(server)))
        return site

    def stop_all(self) -> None:
        for server, thread in self._running:
            _stop(server, thread)
        self._running.clear()


class RecordingSleep:
    """A fake ``sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)


def policy_for(site: HostileSite, **overrides: Any) -> FetchPolicy:
    """A test policy: only ``site`` allow-listed, no politeness waits, fast backoff."""
    settings: dict[str, Any] = {
        "allowed_private_hosts": frozenset({site.host_port}),
        "per_host_min_interval": 0.0,
        "backoff_base": 0.01,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "total_timeout": 10.0,
    }
    settings.update(overrides)
    return FetchPolicy(**settings)


def no_dns(host: str, port: int) -> list[str]:
    """A resolver for tests that must never look anything up."""
    raise AssertionError(f"unexpected look-up of {host}:{port}")


def evil_resolver(host: str, port: int) -> list[str]:
    """Maps made-up names to loopback, as a rebinding attacker's DNS would."""
    if host == "evil.test":
        return ["127.0.0.1"]
    if host == "mixed.test":
        return ["93.184.216.34", "10.0.0.7"]  # classified only, never connected
    if host == "localhost":
        return default_resolver(host, port)  # the system's own answer (loopback)
    raise AssertionError(f"unexpected look-up of {host}:{port}")
