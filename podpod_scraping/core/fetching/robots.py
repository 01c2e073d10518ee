"""robots.txt, fetched once per origin and kept for the Fetcher's life (with a TTL).

Policy (RFC 9309, as Google applies it):
- 2xx: parsed with Protego and obeyed for our User-Agent token; Crawl-delay raises the
  host's minimum interval.
- 4xx other than 429 (no robots.txt, or forbidden): everything is allowed.
- 429, 5xx, timeouts, network errors: the site is treated as fully disallowed *for this
  attempt*: the fetch fails with the same transient outcome (so the scheduler retries
  later), nothing is cached and the page itself is never requested.
- robots.txt that redirects somewhere we may not go: treated as absent (allow all).
- Only the first 500 KiB are read, as Google does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego

from podpod_scraping.core.fetching.errors import FetchError
from podpod_scraping.core.fetching.throttle import Deadline
from podpod_scraping.core.outcomes import Outcome

ROBOTS_MAX_BYTES = 500 * 1024

RobotsFetch = Callable[[str, Deadline], tuple[int, bytes]]
"""Fetches a robots.txt URL through the safe path; returns (status, body) or raises."""


@dataclass(frozen=True)
class _Rules:
    parser: Protego | None  # None: everything allowed
    fetched_at: float
    cacheable: bool = True


class RobotsCache:
    """Answers "may we fetch this URL?" per origin, thread-safely."""

    def __init__(
        self,
        user_agent_token: str,
        ttl: float,
        fetch: RobotsFetch,
        on_crawl_delay: Callable[[str, float], None],
    ) -> None:
        self._token = user_agent_token
        self._ttl = ttl
        self._fetch = fetch
        self._on_crawl_delay = on_crawl_delay
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}
        self._rules: dict[str, _Rules] = {}

    def can_fetch(self, origin: str, host_key: str, url: str, deadline: Deadline) -> bool:
        """True if ``url`` (on ``origin``, e.g. ``https://host:443``) may be fetched."""
        rules = self._rules_for(origin, host_key, deadline)
        return rules.parser is None or rules.parser.can_fetch(url, self._token)

    def _fresh(self, origin: str) -> _Rules | None:
        rules = self._rules.get(origin)
        if rules is not None and time.monotonic() - rules.fetched_at < self._ttl:
            return rules
        return None

    def _rules_for(self, origin: str, host_key: str, deadline: Deadline) -> _Rules:
        with self._lock:
            rules = self._fresh(origin)
            if rules is not None:
                return rules
            origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        # One thread fetches an origin's robots.txt; the others wait for its answer.
        if not origin_lock.acquire(timeout=max(deadline.remaining(), 0.0)):
            raise FetchError(Outcome.TIMEOUT, f"timed out waiting for {origin}/robots.txt")
        try:
            with self._lock:
                rules = self._fresh(origin)
            if rules is None:
                rules = self._load(origin, host_key, deadline)
                if rules.cacheable:
                    with self._lock:
                        self._rules[origin] = rules
            return rules
        finally:
            origin_lock.release()

    def _load(self, origin: str, host_key: str, deadline: Deadline) -> _Rules:
        url = f"{origin}/robots.txt"
        try:
            status, body = self._fetch(url, deadline)
        except FetchError as exc:
            if exc.outcome is Outcome.UNSAFE_URL:
                # Not cached: if the host itself is unsafe, the page fetch is refused
                # anyway, and a later safe answer must not inherit "allow all".
                return _Rules(None, time.monotonic(), cacheable=False)
            raise FetchError(
                exc.outcome,
                f"robots.txt of {origin} unavailable ({exc.reason}); not fetching from it "
                "until it answers",
                status=exc.status,
            ) from exc
        if 200 <= status < 300:
            parser = Protego.parse(body.decode("utf-8", errors="replace"))
            delay = parser.crawl_delay(self._token)
            if delay:
                self._on_crawl_delay(host_key, float(delay))
            return _Rules(parser, time.monotonic())
        if status == 429 or status >= 500:
            outcome = Outcome.RATE_LIMITED if status == 429 else Outcome.FETCH_ERROR
            raise FetchError(
                outcome,
                f"robots.txt of {origin} answered {status}; not fetching from it until it answers",
                status=status,
            )
        return _Rules(None, time.monotonic())
