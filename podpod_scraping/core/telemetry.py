"""What one run did, counted while it runs: the numbers behind its metrics and log lines.

Plain Python (no Dagster, no Prometheus client): the fetcher reports every HTTP attempt
to a ``RequestObserver`` (:class:`RunTelemetry` is one), the step adds every artist's
report, and the Dagster layer turns the :class:`RunSnapshot` into a JSON summary line and
a Pushgateway push. Every label kept here is bounded (outcomes, configured source names,
status classes, at most :data:`MAX_HOSTS` hosts): never an artist id, never a URL.
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from podpod_scraping.core.refresh import ArtistReport, ArtistStatus

#: Upper bounds (seconds) of the fetch latency histogram's buckets (+Inf is implied).
LATENCY_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Upper bounds (seconds) of the run duration histogram's buckets (+Inf is implied).
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
#: Distinct hosts counted per run; requests to any further host count as ``other``.
MAX_HOSTS = 50
OTHER_HOST = "other"
#: The status class of an attempt that got no HTTP answer (timeout, connection refused).
ERROR_CLASS = "error"
NO_SOURCE = "none"


def status_class(status: int | None) -> str:
    """``2xx`` … ``5xx``, or ``error`` for an attempt without an HTTP answer."""
    if status is None or not 100 <= status <= 599:
        return ERROR_CLASS
    return f"{status // 100}xx"


_URL_IN_TEXT = re.compile(r"""[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>]+""")


def strip_url(url: str) -> str:
    """``scheme://host[:port]/path``: no userinfo, query or fragment (signed URLs, tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


def strip_urls_in_text(text: str) -> str:
    """Every URL inside free text (an outcome's reason) passed through :func:`strip_url`."""
    return _URL_IN_TEXT.sub(lambda match: strip_url(match.group(0)), text)


@dataclass
class Histogram:
    """Observations in fixed buckets (upper bounds ``bounds``, then +Inf), a sum, a count:
    what a Prometheus histogram exposes, kept in constant memory however many requests."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    buckets: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as Prometheus exposes them (cumulative), ``+Inf`` last."""
        pairs: list[tuple[str, float]] = []
        running = 0
        for index, count in enumerate(self.buckets):
            running += count
            bound = "+Inf" if index == len(self.bounds) else repr(float(self.bounds[index]))
            pairs.append((bound, running))
        return pairs

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.buckets), self.total, self.count)


@dataclass(frozen=True)
class FailedArtist:
    """One failed artist as its log line shows it (reason with URLs stripped)."""

    artist_id: str
    outcome: str
    reason: str
    source: str


@dataclass(frozen=True)
class RunSnapshot:
    """A run's totals at its end: what the summary line and the metrics push carry."""

    entry_point: str
    run_id: str
    duration_seconds: float
    artists: int
    outcomes: dict[str, int]
    attempts: dict[tuple[str, str], int]  # (outcome, source) → artists
    requests: dict[tuple[str, str], int]  # (host, status class) → attempts
    latency: dict[str, Histogram]
    bytes_downloaded: int
    bytes_published: int
    failed: list[FailedArtist]

    def summary(self) -> dict[str, Any]:
        """The run's one JSON summary line (no ids but the run's, no URLs)."""
        return {
            "event": "podpod_run_summary",
            "entry_point": self.entry_point,
            "run_id": self.run_id,
            "artists": self.artists,
            "outcomes": dict(sorted(self.outcomes.items())),
            "failed": len(self.failed),
            "requests": sum(self.requests.values()),
            "requests_by_status_class": _by_second_label(self.requests),
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_published": self.bytes_published,
            "duration_seconds": round(self.duration_seconds, 3),
        }

    def failure_lines(self) -> list[dict[str, Any]]:
        """One JSON line per failed artist."""
        return [
            {
                "event": "podpod_artist_failed",
                "run_id": self.run_id,
                "artist_id": failed.artist_id,
                "outcome": failed.outcome,
                "reason": failed.reason,
                "source": failed.source,
            }
            for failed in self.failed
        ]


def _by_second_label(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (_, second), count in counts.items():
        totals[second] += count
    return dict(sorted(totals.items()))


class RunTelemetry:
    """Counts one run's requests and artists; thread-safe (fetches run in many threads)."""

    def __init__(self, entry_point: str, run_id: str, *, clock: Any = time.monotonic) -> None:
        self._entry_point = entry_point
        self._run_id = run_id
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._latency: dict[str, Histogram] = {}
        self._downloaded = 0
        self._published = 0
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._failed: list[FailedArtist] = []

    def observe_request(
        self, host: str, status: int | None, seconds: float, body_bytes: int
    ) -> None:
        with self._lock:
            if host not in self._latency and len(self._latency) >= MAX_HOSTS:
                host = OTHER_HOST
            self._requests[(host, status_class(status))] += 1
            self._latency.setdefault(host, Histogram()).observe(seconds)
            self._downloaded += body_bytes

    def add_report(self, report: ArtistReport) -> None:
        """Count one artist (its outcome, source, published bytes; the failure line)."""
        outcome = report.outcome.value if report.outcome is not None else report.status.value
        source = report.source_name or NO_SOURCE
        with self._lock:
            self._outcomes[outcome] += 1
            self._attempts[(outcome, source)] += 1
            if report.switched and report.current is not None:
                self._published += report.current.byte_size
            failed = report.status in (ArtistStatus.FAILED, ArtistStatus.STORAGE_FAILED) or (
                report.outcome is not None and not report.outcome.is_success
            )
            if failed:
                self._failed.append(
                    FailedArtist(
                        report.artist_id, outcome, strip_urls_in_text(report.reason), source
                    )
                )

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            return RunSnapshot(
                entry_point=self._entry_point,
                run_id=self._run_id,
                duration_seconds=self._clock() - self._started,
                artists=sum(self._outcomes.values()),
                outcomes=dict(self._outcomes),
                attempts=dict(self._attempts),
                requests=dict(self._requests),
                latency={host: hist.copy() for host, hist in self._latency.items()},
                bytes_downloaded=self._downloaded,
                bytes_published=self._published,
                failed=list(self._failed),
            )
