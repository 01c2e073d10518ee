"""The Fetcher: safe, bounded, polite GET requests for pages and images.

Every request and every redirect hop goes through the same steps: check the URL
(scheme, host, numeric forms, metadata names), ask robots.txt, wait for the host's
slot, connect only to a checked address (see ``transport``), read the body within the
size limit and the total deadline. Transient failures are retried with backoff
(honouring Retry-After); permanent ones are not.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, NoReturn, Self

import httpx
from pydantic import StrictBool, field_validator, model_validator

from podpod_scraping.core.fetching.addresses import (
    AddressGuard,
    Resolver,
    default_resolver,
    host_port_key,
    parse_host_port,
    redact_url,
)
from podpod_scraping.core.fetching.errors import FetchError
from podpod_scraping.core.fetching.observer import RequestObserver
from podpod_scraping.core.fetching.robots import ROBOTS_MAX_BYTES, RobotsCache
from podpod_scraping.core.fetching.throttle import Deadline, HostThrottle
from podpod_scraping.core.fetching.transport import GuardedTransport
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.core.schema import (
    FrozenModel,
    NonEmptyStr,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8"
_API_ACCEPT = "application/json"


class FetchPolicy(FrozenModel):
    """Limits and manners of the Fetcher (the ``fetch`` config section). Defaults are
    conservative for real sites; ranges refuse values that would break fetching silently
    (a negative total timeout once put every artist into backoff as ``rate_limited``).

    ``allowed_private_hosts`` lists exact ``host:port`` pairs (e.g. the bundled demo
    site ``127.0.0.1:8765``) that may be fetched although they are private/loopback.
    """

    user_agent: NonEmptyStr = "podpod-scraping/0.1 (+https://github.com/podpod/podpod_scraping)"
    allowed_private_hosts: frozenset[NonEmptyStr] = frozenset()
    connect_timeout: PositiveFloat = 5.0
    read_timeout: PositiveFloat = 10.0
    total_timeout: PositiveFloat = 30.0
    max_page_bytes: PositiveInt = 2_000_000
    max_image_bytes: PositiveInt = 15_000_000
    max_redirects: NonNegativeInt = 5
    max_attempts: PositiveInt = 3
    backoff_base: NonNegativeFloat = 0.5
    backoff_max: NonNegativeFloat = 30.0
    max_retry_after: NonNegativeFloat = 120.0
    per_host_concurrency: PositiveInt = 2
    per_host_min_interval: NonNegativeFloat = 1.0
    obey_robots: StrictBool = True
    robots_ttl: NonNegativeFloat = 3600.0

    @field_validator("allowed_private_hosts")
    @classmethod
    def _host_port_pairs(cls, entries: frozenset[str]) -> frozenset[str]:
        for entry in entries:
            parse_host_port(entry)  # ValueError names the entry
        return entries

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # The total deadline bounds every wait: a longer per-step timeout could never apply.
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) > self.total_timeout:
                raise ValueError(
                    f"total_timeout ({self.total_timeout}) must be at least {name} "
                    f"({getattr(self, name)}): raise total_timeout or lower {name}"
                )
        if self.backoff_max < self.backoff_base:
            raise ValueError(
                f"backoff_max ({self.backoff_max}) must be at least backoff_base "
                f"({self.backoff_base})"
            )
        return self

    @property
    def user_agent_token(self) -> str:
        """The product token robots.txt groups are matched against (``podpod-scraping``)."""
        return self.user_agent.split("/", 1)[0].strip() or self.user_agent


@dataclass(frozen=True)
class FetchResponse:
    """A successful (2xx, or 304 for a conditional image request) response."""

    url: str
    status: int
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host_key: str  # canonical host:port: per-host limits
    origin: str  # canonical scheme://host:port: robots.txt cache key
    robots_url: str  # same origin, as the URL spelled it (Host/SNI stay right)


@dataclass(frozen=True)
class _Raw:
    url: str
    status: int
    headers: httpx.Headers
    content: bytes


class _Transient(Exception):
    """A failure worth another attempt (connection trouble, read timeout)."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class _Decoder:
    """Undoes gzip/deflate in bounded steps, so a small bomb cannot expand in memory."""

    def __init__(self, encoding: str | None) -> None:
        name = (encoding or "identity").strip().lower()
        if name in ("", "identity"):
            self._zlib: Any = None
        elif name in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        else:
            raise FetchError(Outcome.FETCH_ERROR, f"unsupported Content-Encoding {name!r}")

    def decode(self, data: bytes, max_length: int) -> bytes:
        if self._zlib is None:
            return data
        try:
            return self._zlib.decompress(data, max(max_length, 1))
        except zlib.error as exc:
            raise FetchError(Outcome.FETCH_ERROR, f"body is not valid gzip/deflate: {exc}") from exc

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise FetchError(Outcome.FETCH_ERROR, f"body is not valid gzip/deflate: {exc}") from exc


_URL_IN_TEXT = re.compile(r"""[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>]+""")
# httpx logs request URLs at INFO; httpcore logs response headers (Location!) at DEBUG.
_HTTP_LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _RedactUrlsInLogs(logging.Filter):
    """Rewrites every URL in an HTTP library's log line through :func:`redact_url`.

    Signed query strings and ``user:password@`` must never reach logs, whatever level
    an operator turns on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_log_redaction() -> None:
    for name in _HTTP_LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrlsInLogs) for f in library_logger.filters):
            library_logger.addFilter(_RedactUrlsInLogs())


class Fetcher:
    """Fetches pages and images safely and politely. Thread-safe; share one per run."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observer: RequestObserver | None = None,
    ) -> None:
        if policy.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._policy = policy
        self._sleep = sleep
        self._observer = observer
        self._random = random.Random()
        self._guard = AddressGuard(resolver or default_resolver, policy.allowed_private_hosts)
        self._throttle = HostThrottle(
            policy.per_host_concurrency,
            policy.per_host_min_interval,
            sleep,
            max_interval=policy.max_retry_after,
        )
        self._robots = RobotsCache(
            policy.user_agent_token,
            policy.robots_ttl,
            self._fetch_robots,
            self._throttle.set_crawl_delay,
        )
        _install_log_redaction()
        # One client (one keep-alive connection) per host slot: a request holds its host's
        # slot and that slot's client, so no two threads share a connection pool (a shared
        # pool serialised every request on its lock: a GIL convoy that held slots idle,
        # measured with py-spy), and the connections open to a host never outnumber its
        # slots (fetch.per_host_concurrency).
        self._clients: dict[tuple[str, int], httpx.Client] = {}
        self._clients_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------

    def fetch_page(self, url: str, *, user_agent: str | None = None) -> FetchResponse:
        """GET an HTML page (at most ``max_page_bytes``). 404/410 → PAGE_NOT_FOUND."""
        return self._fetch_document(url, _PAGE_ACCEPT, "page", user_agent, check_robots=True)

    def fetch_api(
        self, url: str, *, user_agent: str | None = None, check_robots: bool = False
    ) -> FetchResponse:
        """GET a JSON API answer (at most ``max_page_bytes``). 404/410 → PAGE_NOT_FOUND.

        API hosts are not crawled: their operators publish an API policy (rate, User-Agent),
        not robots.txt rules for it (Wikimedia's robots.txt even disallows ``/w/``, the
        API's path, for crawlers). So robots.txt is skipped unless a source asks for it;
        the images an API names are still fetched under robots.txt.
        """
        return self._fetch_document(url, _API_ACCEPT, "API answer", user_agent, check_robots)

    def configure_host(self, url: str, *, concurrency: int, min_interval: float) -> None:
        """Give the host of ``url`` its own limits (an API's documented rate)."""
        host_key = self._target(url).host_key
        self._throttle.set_host_limits(host_key, concurrency=concurrency, min_interval=min_interval)

    def _fetch_document(
        self, url: str, accept: str, kind: str, user_agent: str | None, check_robots: bool
    ) -> FetchResponse:
        headers = {"Accept": accept}
        if user_agent:
            headers["User-Agent"] = user_agent
        raw = self._fetch(
            url,
            limit=self._policy.max_page_bytes,
            kind=kind,
            headers=headers,
            check_robots=check_robots,
        )
        if raw.status in (404, 410):
            raise FetchError(
                Outcome.PAGE_NOT_FOUND,
                f"{kind} answered {raw.status}: {redact_url(raw.url)}",
                status=raw.status,
            )
        self._expect_success(raw, kind)
        return self._response(raw)

    def fetch_image(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        user_agent: str | None = None,
    ) -> FetchResponse:
        """GET an image (at most ``max_image_bytes``), conditionally when validators are given.

        A 304 answer returns ``not_modified=True`` and no content. 404/410 → NO_IMAGE.
        """
        headers = {"Accept": _IMAGE_ACCEPT}
        if user_agent:
            headers["User-Agent"] = user_agent
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        raw = self._fetch(url, limit=self._policy.max_image_bytes, kind="image", headers=headers)
        if raw.status == 304 and (etag or last_modified):
            return FetchResponse(
                url=raw.url,
                status=304,
                content=b"",
                content_type=raw.headers.get("content-type"),
                etag=raw.headers.get("etag") or etag,
                last_modified=raw.headers.get("last-modified") or last_modified,
                not_modified=True,
            )
        if raw.status in (404, 410):
            # The page points at an image that does not exist: a broken page, not a network
            # problem of ours. Recorded as "no image on page", never retried within the run.
            raise FetchError(
                Outcome.NO_IMAGE,
                f"image URL answered {raw.status}: {redact_url(raw.url)}",
                status=raw.status,
            )
        self._expect_success(raw, "image URL")
        return self._response(raw)

    def fetch_robots(self, url: str) -> tuple[str, int, bytes]:
        """GET the robots.txt of ``url``'s origin exactly as a scrape would (SSRF guard,
        allow-list, limits, retries), for ``config check``: ``(robots URL, status, body)``.

        Raises FetchError when it cannot be read (unsafe host, timeout, network error).
        """
        robots_url = f"{self._target(url).robots_url}/robots.txt"
        status, body = self._fetch_robots(robots_url, Deadline(self._policy.total_timeout))
        return robots_url, status, body

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _client(self, host_key: str, slot: int) -> httpx.Client:
        """The client of one host slot: the guarded transport, one keep-alive connection,
        no cookies, no environment proxies. Only the slot's holder uses it."""
        key = (host_key, slot)
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = httpx.Client(
                    transport=GuardedTransport(
                        self._guard, max_connections=1, max_keepalive_connections=1
                    ),
                    follow_redirects=False,  # every hop is checked by _fetch
                    trust_env=False,  # no proxies or netrc from the environment: they bypass it
                    cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # none
                    headers={
                        "User-Agent": self._policy.user_agent,
                        "Accept-Encoding": "gzip, deflate",
                    },
                )
                self._clients[key] = client
        return client

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the request path -------------------------------------------------------------

    @staticmethod
    def _expect_success(raw: _Raw, kind: str) -> None:
        if not 200 <= raw.status < 300:
            raise FetchError(
                Outcome.FETCH_ERROR,
                f"{kind} answered {raw.status}: {redact_url(raw.url)}",
                status=raw.status,
            )

    @staticmethod
    def _response(raw: _Raw) -> FetchResponse:
        return FetchResponse(
            url=raw.url,
            status=raw.status,
            content=raw.content,
            content_type=raw.headers.get("content-type"),
            etag=raw.headers.get("etag"),
            last_modified=raw.headers.get("last-modified"),
        )

    def _fetch_robots(self, url: str, deadline: Deadline) -> tuple[int, bytes]:
        raw = self._fetch(
            url,
            limit=ROBOTS_MAX_BYTES,
            kind="robots.txt",
            headers={"Accept": "text/plain,*/*;q=0.5"},
            truncate=True,
            check_robots=False,
            deadline=deadline,
        )
        return raw.status, raw.content

    def _target(self, url: str) -> _Target:
        """Parse and check a URL without any I/O (scheme, host, literal addresses)."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise FetchError(
                Outcome.UNSAFE_URL, f"invalid URL {redact_url(str(url))}: {exc}"
            ) from exc
        if parsed.scheme not in _DEFAULT_PORTS:
            scheme = parsed.scheme or str(url).split(":", 1)[0]
            raise FetchError(
                Outcome.UNSAFE_URL,
                f"only http and https URLs are fetched, not {scheme!r}: "
                f"{redact_url(str(url))[:200]}",
            )
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        host = self._guard.precheck(parsed.raw_host.decode("ascii"), port)
        host_key = host_port_key(host, port)
        return _Target(
            url=parsed,
            host_key=host_key,
            origin=f"{parsed.scheme}://{host_key}",
            robots_url=f"{parsed.scheme}://{parsed.netloc.decode('ascii')}",
        )

    def _fetch(
        self,
        url: str,
        *,
        limit: int,
        kind: str,
        headers: Mapping[str, str],
        truncate: bool = False,
        check_robots: bool = True,
        deadline: Deadline | None = None,
    ) -> _Raw:
        """Follow up to ``max_redirects`` redirects, checking every hop like the first."""
        deadline = deadline or Deadline(self._policy.total_timeout)
        current = url
        previous: str | None = None
        for _hop in range(self._policy.max_redirects + 1):
            try:
                target = self._target(current)
                if check_robots and self._policy.obey_robots:
                    self._check_robots(target, deadline)
                raw = self._with_retries(target, limit, kind, headers, truncate, deadline)
            except FetchError as exc:
                if previous is None:
                    raise
                raise FetchError(
                    exc.outcome,
                    f"redirect from {redact_url(previous)} to {redact_url(current)}: {exc.reason}",
                    status=exc.status,
                ) from exc
            location = raw.headers.get("location")
            if raw.status not in REDIRECT_STATUSES or not location:
                return raw
            previous = current
            try:
                current = str(target.url.join(location))
            except (httpx.InvalidURL, ValueError) as exc:
                raise FetchError(
                    Outcome.UNSAFE_URL, f"invalid redirect from {redact_url(previous)}: {exc}"
                ) from exc
        raise FetchError(
            Outcome.FETCH_ERROR,
            f"too many redirects (more than {self._policy.max_redirects}) from {redact_url(url)}",
        )

    def _check_robots(self, target: _Target, deadline: Deadline) -> None:
        if not self._robots.can_fetch(target.origin, target.host_key, str(target.url), deadline):
            raise FetchError(
                Outcome.BLOCKED_BY_ROBOTS,
                f"robots.txt of {target.robots_url} disallows {redact_url(str(target.url))} "
                f"for {self._policy.user_agent_token}",
            )

    def _with_retries(
        self,
        target: _Target,
        limit: int,
        kind: str,
        headers: Mapping[str, str],
        truncate: bool,
        deadline: Deadline,
    ) -> _Raw:
        attempt = 0
        while True:
            attempt += 1
            try:
                raw = self._once(target, limit, kind, headers, truncate, deadline)
            except _Transient as exc:
                self._pause_or_give_up(attempt, None, exc.outcome, exc.reason, None, deadline)
                continue
            if raw.status == 429 or raw.status >= 500:
                outcome = Outcome.RATE_LIMITED if raw.status == 429 else Outcome.FETCH_ERROR
                retry_after = None
                if raw.status in (429, 503):
                    retry_after = parse_retry_after(raw.headers.get("retry-after"))
                reason = f"{redact_url(raw.url)} answered {raw.status}"
                self._pause_or_give_up(attempt, retry_after, outcome, reason, raw.status, deadline)
                continue
            return raw

    def _pause_or_give_up(
        self,
        attempt: int,
        retry_after: float | None,
        outcome: Outcome,
        reason: str,
        status: int | None,
        deadline: Deadline,
    ) -> None:
        """Sleep before the next attempt, or raise if there is none (count or deadline)."""
        policy = self._policy
        if attempt >= policy.max_attempts:
            self._give_up(outcome, f"{reason} ({attempt} attempts)", status)
        if retry_after is not None:
            wait = min(retry_after, policy.max_retry_after)
        else:  # exponential backoff with full jitter
            ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
            wait = self._random.uniform(0, ceiling)
        if wait >= deadline.remaining():
            self._give_up(
                outcome,
                f"{reason}; waiting {wait:.1f} s more would pass the "
                f"{policy.total_timeout:g} s deadline",
                status,
            )
        logger.info("retrying in %.2f s (attempt %d): %s", wait, attempt + 1, reason)
        self._sleep(wait)

    @staticmethod
    def _give_up(outcome: Outcome, reason: str, status: int | None) -> NoReturn:
        raise FetchError(outcome, reason, status=status)

    def _once(
        self,
        target: _Target,
        limit: int,
        kind: str,
        headers: Mapping[str, str],
        truncate: bool,
        deadline: Deadline,
    ) -> _Raw:
        shown = redact_url(str(target.url))
        with self._throttle.slot(target.host_key, deadline) as slot:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise FetchError(
                    Outcome.TIMEOUT, f"gave up on {shown} after {self._policy.total_timeout:g} s"
                )
            timeout = httpx.Timeout(
                connect=min(self._policy.connect_timeout, remaining),
                read=min(self._policy.read_timeout, remaining),
                write=min(self._policy.read_timeout, remaining),
                pool=remaining,
            )
            started, status, content = time.monotonic(), None, b""
            try:
                client = self._client(target.host_key, slot)
                request = client.build_request(
                    "GET", target.url, headers=dict(headers), timeout=timeout
                )
                response = client.send(request, stream=True)
                status = response.status_code
                try:
                    if 200 <= response.status_code < 300:
                        content = self._read_body(response, limit, kind, truncate, deadline, shown)
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                raise _Transient(
                    Outcome.TIMEOUT, f"{shown} timed out ({type(exc).__name__})"
                ) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise _Transient(Outcome.NETWORK_ERROR, f"{shown}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise FetchError(Outcome.FETCH_ERROR, f"{shown}: {exc}") from exc
            finally:
                if self._observer is not None:
                    elapsed = time.monotonic() - started
                    self._observer.observe_request(target.host_key, status, elapsed, len(content))
        return _Raw(str(target.url), response.status_code, response.headers, content)

    def _read_body(
        self,
        response: httpx.Response,
        limit: int,
        kind: str,
        truncate: bool,
        deadline: Deadline,
        shown: str,
    ) -> bytes:
        """Read at most ``limit`` decoded bytes, whatever Content-Length claims."""
        declared = response.headers.get("content-length")
        if declared is not None and not truncate:
            try:
                declared_size = int(declared)
            except ValueError:
                declared_size = None
            if declared_size is not None and declared_size > limit:
                raise FetchError(
                    Outcome.TOO_LARGE,
                    f"{kind} is larger than {limit} bytes (Content-Length {declared_size}): "
                    f"{shown}",
                )
        decoder = _Decoder(response.headers.get("content-encoding"))
        chunks: list[bytes] = []
        size = 0
        received = 0
        for chunk in response.iter_raw():
            if deadline.expired():
                raise FetchError(
                    Outcome.TIMEOUT,
                    f"{shown} was still sending after {self._policy.total_timeout:g} s",
                )
            received += len(chunk)
            piece = decoder.decode(chunk, limit - size + 1)
            chunks.append(piece)
            size += len(piece)
            if size > limit or received > limit:
                if truncate:
                    return b"".join(chunks)[:limit]
                raise FetchError(Outcome.TOO_LARGE, f"{kind} is larger than {limit} bytes: {shown}")
        tail = decoder.flush()
        if size + len(tail) > limit:
            if truncate:
                return (b"".join(chunks) + tail)[:limit]
            raise FetchError(Outcome.TOO_LARGE, f"{kind} is larger than {limit} bytes: {shown}")
        chunks.append(tail)
        return b"".join(chunks)
