"""The throughput benchmark's web site: N artists on 127.0.0.1, slow like a real site.

Each artist costs exactly three requests, as on the sites the scraper was written for:
``/search?q=<name>`` answers 302 to ``/artists/<id>``, that page holds
``<img class="artist-image" src="/images/<id>.jpg">``, and the image is a distinct,
photo-like 600x600 JPEG. Every response waits ``latency`` seconds (what makes the
politeness bound, not our CPU, the limit). ``/robots.txt`` allows everything.

The site also *checks* the scraper's manners: more than ``connections`` requests in
flight at once are refused with 503 (and counted), and the maximum seen is recorded.
Images carry an ETag and answer 304 to a matching ``If-None-Match``, so a refresh of
unchanged artists can be measured. Hits are counted per kind of path.

Images are cheap at 10,000 artists: a few base pictures are drawn once, and each
artist's copy only gets its own coloured block (so every SHA-256 differs) before
encoding; the response time is padded to ``latency``, so encoding is hidden in the wait.
"""

from __future__ import annotations

import hashlib
import io
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

from podpod_scraping.demo.server import LoopbackService, etag_matches

HOST = "127.0.0.1"
IMAGE_SIDE = 600
#: Base pictures drawn at start; an artist's image is one of them plus its own block.
BASE_IMAGES = 8
_BLOCK = 40
_NAME_PREFIX = "Artist "
ROBOTS_TXT = b"User-agent: *\nAllow: /\n"

#: Counter keys, in the order reports show them.
KINDS = ("search", "page", "image_200", "image_304", "robots", "not_found", "refused")


@dataclass(frozen=True)
class SiteCounters:
    """Hits per kind of request (robots.txt apart) and the peak of requests in flight."""

    search: int = 0
    page: int = 0
    image_200: int = 0
    image_304: int = 0
    robots: int = 0
    not_found: int = 0
    refused: int = 0  # over the connection limit: answered 503
    max_in_flight: int = 0
    max_open_connections: int = 0  # TCP connections open at once (not limited, only seen)

    @property
    def requests(self) -> int:
        """Every request except robots.txt (what "requests per artist" counts)."""
        return (
            self.search + self.page + self.image_200 + self.image_304 + self.not_found
        ) + self.refused

    def minus(self, before: SiteCounters) -> SiteCounters:
        """The hits between two snapshots (the peak is this window's, see ``reset_peak``)."""
        return SiteCounters(
            search=self.search - before.search,
            page=self.page - before.page,
            image_200=self.image_200 - before.image_200,
            image_304=self.image_304 - before.image_304,
            robots=self.robots - before.robots,
            not_found=self.not_found - before.not_found,
            refused=self.refused - before.refused,
            max_in_flight=self.max_in_flight,
            max_open_connections=self.max_open_connections,
        )


def _base_image(seed: int) -> Image.Image:
    """A photo-like picture: two gradients and noise as channels, plus random shapes.

    Far from a flat colour in every channel, so the placeholder check never refuses it.
    """
    rng = random.Random(f"podpod-bench:{seed}")
    size = (IMAGE_SIDE, IMAGE_SIDE)
    down = Image.linear_gradient("L").resize(size)
    across = Image.linear_gradient("L").rotate(90 * (seed % 4)).resize(size)
    noise = Image.effect_noise(size, 48)
    channels = [down, across, noise]
    rng.shuffle(channels)
    image = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(IMAGE_SIDE), rng.randrange(IMAGE_SIDE)
        radius = rng.randrange(20, 120)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image


class ImageFactory:
    """Distinct JPEGs per artist id, deterministic (same id → same bytes → same ETag)."""

    def __init__(self, bases: int = BASE_IMAGES) -> None:
        self._bases = [_base_image(seed) for seed in range(bases)]

    def jpeg(self, artist_id: int) -> bytes:
        digest = hashlib.sha256(f"artist-{artist_id}".encode()).digest()
        image = self._bases[artist_id % len(self._bases)].copy()
        span = IMAGE_SIDE - _BLOCK
        x = int.from_bytes(digest[0:2], "big") % span
        y = int.from_bytes(digest[2:4], "big") % span
        # Two colours in a checker: survives JPEG quantization, so no two artists collide.
        first, second = tuple(digest[4:7]), tuple(digest[7:10])
        draw = ImageDraw.Draw(image)
        half = _BLOCK // 2
        for dx in (0, half):
            for dy in (0, half):
                colour = first if (dx == dy) else second
                draw.rectangle((x + dx, y + dy, x + dx + half - 1, y + dy + half - 1), fill=colour)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        return out.getvalue()

    @staticmethod
    def etag(artist_id: int) -> str:
        return f'"bench-{artist_id}-v1"'


@dataclass(frozen=True)
class _Answer:
    status: int
    kind: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # bursts of new connections must not be refused by the kernel

    def __init__(self, site: BenchSite) -> None:
        self.site = site
        super().__init__((HOST, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (closed pools, the end of a variant) are normal."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real sites
    timeout = 30  # an idle keep-alive connection does not hold a thread forever
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK stalls

    @property
    def site(self) -> BenchSite:
        assert isinstance(self.server, _Server)
        return self.server.site

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark reads counters, not access logs."""

    def setup(self) -> None:
        super().setup()
        self.site._connection(opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.site._connection(opened=False)

    def do_GET(self) -> None:
        started = time.monotonic()
        site = self.site
        if not site._enter():
            answer = _Answer(503, "refused", b"busy\n", (("Retry-After", "1"),))
            site._count(answer.kind)
            self._send(answer)
            return
        try:
            answer = site._answer(self.path, self.headers.get("If-None-Match"))
            delay = site.latency - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
            site._count(answer.kind)
        finally:
            # Freed *before* the answer is written: once the client has read it, it may
            # send its next request, and that must never look like one too many.
            site._leave()
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)


class BenchSite(LoopbackService):
    """The benchmark's site on 127.0.0.1 (a free port), serving in daemon threads."""

    def __init__(self, artists: int, *, latency: float, connections: int) -> None:
        self.artists = artists
        self.latency = latency
        self.connections = connections
        self._images = ImageFactory()
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._open = 0
        self._max_open = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="bench-site",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    # -- counters

    def counters(self) -> SiteCounters:
        with self._lock:
            return SiteCounters(
                **{kind: self._hits[kind] for kind in KINDS},
                max_in_flight=self._max_in_flight,
                max_open_connections=self._max_open,
            )

    def reset_peak(self) -> None:
        """Start a new window for the peaks (each variant reports its own)."""
        with self._lock:
            self._max_in_flight = self._in_flight
            self._max_open = self._open

    def _connection(self, *, opened: bool) -> None:
        with self._lock:
            self._open += 1 if opened else -1
            self._max_open = max(self._max_open, self._open)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._hits[kind] += 1

    def _enter(self) -> bool:
        with self._lock:
            if self._in_flight >= self.connections:
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- routes

    def _artist_id(self, text: str) -> int | None:
        try:
            artist_id = int(text)
        except ValueError:
            return None
        return artist_id if 1 <= artist_id <= self.artists else None

    def _answer(self, target: str, if_none_match: str | None) -> _Answer:
        parts = urlsplit(target)
        path = parts.path
        if path == "/robots.txt":
            return _Answer(200, "robots", ROBOTS_TXT, (("Content-Type", "text/plain"),))
        if path == "/search":
            name = parse_qs(parts.query).get("q", [""])[0]
            if name.startswith(_NAME_PREFIX):
                artist_id = self._artist_id(name[len(_NAME_PREFIX) :])
                if artist_id is not None:
                    return _Answer(302, "search", headers=(("Location", f"/artists/{artist_id}"),))
        elif path.startswith("/artists/"):
            artist_id = self._artist_id(path.removeprefix("/artists/"))
            if artist_id is not None:
                return _Answer(
                    200, "page", _page(artist_id), (("Content-Type", "text/html; charset=utf-8"),)
                )
        elif path.startswith("/images/") and path.endswith(".jpg"):
            artist_id = self._artist_id(path.removeprefix("/images/").removesuffix(".jpg"))
            if artist_id is not None:
                etag = self._images.etag(artist_id)
                if if_none_match is not None and etag_matches(if_none_match, etag):
                    return _Answer(304, "image_304", headers=(("ETag", etag),))
                return _Answer(
                    200,
                    "image_200",
                    self._images.jpeg(artist_id),
                    (("Content-Type", "image/jpeg"), ("ETag", etag)),
                )
        return _Answer(404, "not_found", b"not found\n", (("Content-Type", "text/plain"),))


def _page(artist_id: int) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Artist {artist_id}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/search'>Search</a></nav>"
        f"<main><h1>Artist {artist_id}</h1>"
        f"<img class='logo' src='/static/logo.png' alt='site logo'>"
        f'<img class="artist-image" src="/images/{artist_id}.jpg" alt="Artist {artist_id}">'
        "<p>Biography, discography and tour dates would be here.</p></main></body></html>"
    ).encode()
