"""A tiny route-table HTTP server on 127.0.0.1: the demo site's engine and a test double.

Real sockets and real HTTP (no mocked transport), so the fetcher's whole path runs:
status codes, headers, conditional requests (ETag / Last-Modified → 304), and per-path
hit counts and request headers for assertions. Standard library only.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
NOT_FOUND_BODY = b"<!doctype html><title>Not found</title><h1>404 Not found</h1>"


Handler = Callable[[str, dict[str, list[str]]], "Route | None"]


@dataclass(frozen=True)
class Route:
    """A canned response. Header names are kept as given; lookups are case-insensitive."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as used for If-None-Match."""
    if if_none_match.strip() == "*":
        return True

    def opaque(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    return opaque(etag) in {opaque(tag) for tag in if_none_match.split(",")}


def _not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: FixtureServer, host: str, port: int) -> None:
        self.owner = owner
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (resets, closed pools, stop()) are normal, not tracebacks."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection does not hold a thread forever
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms ACK stalls

    @property
    def owner(self) -> FixtureServer:
        assert isinstance(self.server, _Server)
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.owner._track(self.connection, opened=False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo read hit counts, not access logs."""

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        route = self.owner._record(path, dict(self.headers.items()))
        if route is None:
            route = self.owner._handle(path, query)
        if route is None:
            route = Route(404, NOT_FOUND_BODY, {"Content-Type": "text/html; charset=utf-8"})
        status, body = route.status, route.body
        if status == 200 and self._not_modified(route):
            status, body = 304, b""
        self.send_response(status)
        names = {key.lower() for key in route.headers}
        if "content-type" not in names and status != 304:
            self.send_header("Content-Type", DEFAULT_CONTENT_TYPE)
        for key, value in route.headers.items():
            if status == 304 and key.lower() in ("content-type", "content-length"):
                continue
            self.send_header(key, value)
        if "content-length" not in names or status == 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _not_modified(self, route: Route) -> bool:
        etag = route.header("ETag")
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag is not None and etag_matches(if_none_match, etag)
        last_modified = route.header("Last-Modified")
        if_modified_since = self.headers.get("If-Modified-Since")
        return (
            last_modified is not None
            and if_modified_since is not None
            and _not_modified_since(if_modified_since, last_modified)
        )


class LoopbackService:
    """What every HTTP server of this project on 127.0.0.1 shares: a context manager
    around ``start``/``stop``, and its address once started (``_server`` is set)."""

    _server: ThreadingHTTPServer | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def host_port(self) -> str:
        """``127.0.0.1:<port>``, the form FetchPolicy.allowed_private_hosts expects."""
        return f"{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


class FixtureServer(LoopbackService):
    """An HTTP server on 127.0.0.1 answering from a route table, counting hits per path.

    Unknown paths answer 404. A 200 route with an ``ETag`` (or ``Last-Modified``) header
    answers 304 to a matching ``If-None-Match`` (or ``If-Modified-Since``). Paths are
    matched after percent-decoding and without the query string.
    """

    def __init__(self, port: int = 0, *, bind: str = HOST) -> None:
        self._requested_port = port
        #: The address to listen on; anything but 127.0.0.1 only inside a container.
        self._bind = bind
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._handlers: dict[str, Handler] = {}
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, list[dict[str, str]]] = {}
        #: The most TCP connections a client held open at once (politeness checks).
        self.max_open_connections = 0

    # -- lifecycle

    def start(self) -> Self:
        """Bind 127.0.0.1 (or ``bind``) on the configured port (0 = any free port) and serve
        in a thread."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = _Server(self, self._bind, self._requested_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fixture-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    # -- addresses

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- routes and counters

    def add_route(
        self,
        path: str,
        status: int = 200,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer GET/HEAD ``path`` with this response (replacing any previous one)."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        with self._lock:
            self._routes[path] = Route(status, data, dict(headers or {}))

    def set_route(self, path: str, route: Route) -> None:
        """Like :meth:`add_route`, with a ready-made :class:`Route`."""
        with self._lock:
            self._routes[path] = route

    def set_handler(self, prefix: str, handler: Handler) -> None:
        """Answer every path under ``prefix`` (no exact route) with ``handler(path, query)``:
        an API whose answer depends on the query string (``query``: parse_qs form)."""
        with self._lock:
            self._handlers[prefix] = handler

    def remove_route(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    def route(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(path)

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def reset_hits(self) -> None:
        with self._lock:
            self.hits.clear()
            self.headers.clear()

    def _record(self, path: str, headers: dict[str, str]) -> Route | None:
        with self._lock:
            self.hits[path] += 1
            self.headers.setdefault(path, []).append(headers)
            return self._routes.get(path)

    def _handle(self, path: str, query: dict[str, list[str]]) -> Route | None:
        """The answer of the handler with the longest prefix of ``path``, if any."""
        with self._lock:
            prefixes = sorted((p for p in self._handlers if path.startswith(p)), key=len)
            handler = self._handlers[prefixes[-1]] if prefixes else None
        return handler(path, query) if handler is not None else None

    def _track(self, connection: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(connection)
                self.max_open_connections = max(self.max_open_connections, len(self._connections))
            else:
                self._connections.discard(connection)
