"""Per-host politeness: a concurrency cap and a minimum interval between requests.

One Fetcher is shared by a thread pool, so several artists on the same site must not
add up to a burst. Slots are reserved under a lock and waited for outside it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from podpod_scraping.core.fetching.errors import FetchError
from podpod_scraping.core.outcomes import Outcome


class Deadline:
    """The total time budget of one fetch, across redirects, retries and waits."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


class HostThrottle:
    """Limits concurrent requests and spaces request starts, per ``host:port``."""

    def __init__(
        self,
        concurrency: int,
        min_interval: float,
        sleep: Callable[[float], None],
        max_interval: float,
    ) -> None:
        if concurrency < 1:
            raise ValueError("per-host concurrency must be at least 1")
        self._concurrency = concurrency
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._sleep = sleep
        self._lock = threading.Lock()
        self._free_slots: dict[str, queue.LifoQueue[int]] = {}
        self._next_start: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._host_concurrency: dict[str, int] = {}
        self._host_min_interval: dict[str, float] = {}

    def set_host_limits(self, host: str, *, concurrency: int, min_interval: float) -> None:
        """Give one host its own manners (an API's documented rate), before its first request.

        A later robots.txt Crawl-delay can still raise the interval, never lower it. The
        concurrency applies from the host's first request on (its slots are made then).
        """
        if concurrency < 1:
            raise ValueError("per-host concurrency must be at least 1")
        with self._lock:
            self._host_concurrency[host] = concurrency
            self._host_min_interval[host] = min_interval
            self._intervals[host] = max(self._intervals.get(host, 0.0), min_interval)

    def set_crawl_delay(self, host: str, seconds: float) -> None:
        """Raise a host's interval to its robots.txt Crawl-delay (capped, never lowered)."""
        with self._lock:
            floor = self._host_min_interval.get(host, self._min_interval)
            self._intervals[host] = min(max(seconds, floor), max(self._max_interval, floor))

    def interval(self, host: str) -> float:
        with self._lock:
            return self._intervals.get(host, self._min_interval)

    @contextmanager
    def slot(self, host: str, deadline: Deadline) -> Iterator[int]:
        """Hold one of the host's concurrency slots, started no sooner than its interval.

        Yields the slot's number (0 .. concurrency-1): the caller keeps one connection per
        slot, so the connections open to a host never outnumber its slots either. The most
        recently freed slot is handed out first, so its connection is still warm.
        """
        with self._lock:
            free = self._free_slots.get(host)
            if free is None:
                free = queue.LifoQueue()
                slots = self._host_concurrency.get(host, self._concurrency)
                for number in reversed(range(slots)):
                    free.put(number)
                self._free_slots[host] = free
        try:
            number = free.get(timeout=max(deadline.remaining(), 0.0))
        except queue.Empty:
            raise FetchError(
                Outcome.TIMEOUT,
                f"no free connection slot for {host} within {deadline.seconds:g} s",
            ) from None
        try:
            with self._lock:
                interval = self._intervals.get(host, self._min_interval)
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                wait = start - now
                if wait > 0 and wait >= deadline.remaining():
                    raise FetchError(
                        Outcome.RATE_LIMITED,
                        f"{host} allows one request every {interval:g} s; the next slot "
                        f"is {wait:.1f} s away, beyond this fetch's deadline",
                    )
                self._next_start[host] = start + interval
            if wait > 0:
                self._sleep(wait)
            yield number
        finally:
            free.put(number)
