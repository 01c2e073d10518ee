"""A run's counts: bounded labels, stripped URLs, histograms as Prometheus exposes them."""

from __future__ import annotations

from datetime import UTC, datetime

from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.core.refresh import ArtistReport, ArtistStatus, CurrentImage
from podpod_scraping.core.telemetry import (
    MAX_HOSTS,
    OTHER_HOST,
    Histogram,
    RunTelemetry,
    status_class,
    strip_url,
    strip_urls_in_text,
)


def _current(byte_size: int) -> CurrentImage:
    return CurrentImage(
        sha256="ab" * 32,
        object_uri="gs://bucket/artists/1/x.jpg",
        public_url="https://cdn.example/artists/1/x.jpg",
        width=400,
        height=300,
        byte_size=byte_size,
        content_type="image/jpeg",
        source_name="site",
        source_image_url="https://site.example/x.jpg",
        license=None,
        scraped_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _report(
    artist_id: str,
    outcome: Outcome | None,
    status: ArtistStatus,
    *,
    reason: str = "",
    switched: bool = False,
    current: CurrentImage | None = None,
) -> ArtistReport:
    return ArtistReport(
        artist_id=artist_id,
        status=status,
        artist_name="n",
        outcome=outcome,
        reason=reason,
        source_name="site" if outcome is not None else None,
        current=current,
        switched=switched,
    )


def test_strip_url_drops_userinfo_query_and_fragment() -> None:
    assert strip_url("https://user:pw@img.example:8443/a/b.jpg?X-Goog-Signature=s#f") == (
        "https://img.example:8443/a/b.jpg"
    )


def test_urls_inside_a_reason_are_stripped() -> None:
    reason = "site: image URL answered 404: http://u:p@h.example/x.jpg?token=t (1 attempt)"
    assert (
        strip_urls_in_text(reason)
        == "site: image URL answered 404: http://h.example/x.jpg (1 attempt)"
    )


def test_status_classes_are_bounded() -> None:
    assert [status_class(s) for s in (200, 304, 404, 503, None, 999)] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "error",
        "error",
    ]


def test_hosts_beyond_the_cap_are_counted_as_other() -> None:
    telemetry = RunTelemetry("assets", "run")
    for index in range(MAX_HOSTS + 5):
        telemetry.observe_request(f"host{index}:443", 200, 0.1, 10)
    snapshot = telemetry.snapshot()
    assert len(snapshot.latency) == MAX_HOSTS + 1
    assert snapshot.requests[(OTHER_HOST, "2xx")] == 5
    assert sum(snapshot.requests.values()) == MAX_HOSTS + 5
    assert snapshot.bytes_downloaded == 10 * (MAX_HOSTS + 5)


def test_histogram_exposes_cumulative_buckets_ending_with_inf() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 5.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert histogram.count == 4
    assert histogram.total == 5.65


def test_reports_count_outcomes_published_bytes_and_failures() -> None:
    telemetry = RunTelemetry("batch", "run-1")
    telemetry.add_report(
        _report("1", Outcome.FOUND, ArtistStatus.SUCCEEDED, switched=True, current=_current(900))
    )
    telemetry.add_report(
        _report("2", Outcome.UNCHANGED, ArtistStatus.SUCCEEDED, current=_current(700))
    )
    telemetry.add_report(
        _report("3", Outcome.PAGE_NOT_FOUND, ArtistStatus.FAILED, reason="404: http://a@h/p?s=1")
    )
    telemetry.add_report(_report("4", None, ArtistStatus.NOT_IN_CATALOG))
    snapshot = telemetry.snapshot()
    assert snapshot.outcomes == {
        "found": 1,
        "unchanged": 1,
        "page_not_found": 1,
        "not_in_catalog": 1,
    }
    assert snapshot.attempts[("not_in_catalog", "none")] == 1
    assert snapshot.bytes_published == 900  # only a new current image is published
    assert [line["artist_id"] for line in snapshot.failure_lines()] == ["3"]
    assert snapshot.failure_lines()[0]["reason"] == "404: http://h/p"
    assert snapshot.summary()["failed"] == 1
