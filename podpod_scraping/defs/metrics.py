"""A run's signals for operators: Prometheus metrics on a Pushgateway and JSON log lines.

Every scraping run (both entry points, through ``defs.execution.refresh_step``) and every
coverage report ends by pushing its numbers to the Pushgateway named by
``PROMETHEUS_PUSHGATEWAY_URL`` (nothing is pushed when it is unset) and, for runs, by
writing one JSON summary line and one JSON line per failed artist to the Dagster log (the
UI) and to stdout (Cloud Logging parses JSON lines). Monitoring never fails a run and never
delays it by more than :attr:`MetricsResource.timeout_seconds`: a push that fails or hangs
is one warning in the run's log.

Why not ``dagster-prometheus``'s ``PrometheusResource``: its ``gateway`` is required (so
metrics could not be off when the variable is unset), it keeps one registry for its whole
lifetime where each push here carries exactly one run's numbers, and it is a beta class
that warns on every construction.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from pydantic import Field

from podpod_scraping.core.telemetry import (
    DURATION_BUCKETS,
    Histogram,
    RunSnapshot,
    strip_url,
    strip_urls_in_text,
)
from podpod_scraping.storage.catalog.repository import (
    CATEGORY_CURRENT,
    CATEGORY_NEVER_ATTEMPTED,
    CATEGORY_NEVER_FOUND,
    CATEGORY_OBJECT_MISSING,
    CATEGORY_STALE,
    CATEGORY_VARIANTS_MISSING,
    FAILED_PREFIX,
)

PUSHGATEWAY_URL_ENV = "PROMETHEUS_PUSHGATEWAY_URL"
#: The coverage report's fixed categories → their metric label / metadata names.
COVERAGE_CATEGORIES = {
    CATEGORY_CURRENT: "current",
    CATEGORY_OBJECT_MISSING: "object_missing",
    CATEGORY_VARIANTS_MISSING: "variants_missing",
    CATEGORY_STALE: "stale",
    CATEGORY_NEVER_ATTEMPTED: "never_attempted",
    CATEGORY_NEVER_FOUND: "never_found",
}
JOB = "podpod_scraping"
#: JSON lines (failed artists) written to one Dagster log event.
LINES_PER_LOG_EVENT = 50
ENTRY_ASSETS = "assets"  # runs of the partitioned assets: UI backfills, the CLI, the sensor
ENTRY_BATCH = "batch"  # runs of the batch refresh job: the schedule, "retry the failed ones"


class MetricsResource(dg.ConfigurableResource):
    """Where runs push their metrics; ``pushgateway_url`` unset means no push at all."""

    pushgateway_url: str | None = Field(
        default=None,
        description=(
            "Base URL of a Prometheus Pushgateway, e.g. http://pushgateway:9091 "
            f"(from {PUSHGATEWAY_URL_ENV}); unset: metrics are not pushed."
        ),
    )
    timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="The longest a push may delay a run; a slower push is abandoned.",
    )

    def push(self, registry: CollectorRegistry, grouping_key: Mapping[str, str], log: Any) -> bool:
        """Push ``registry`` (replacing the group's metrics); False, with one warning on
        ``log``, when the Pushgateway fails or does not answer within the timeout."""
        url = self.pushgateway_url
        if not url:
            return False
        failure: list[BaseException] = []

        def send() -> None:
            try:
                push_to_gateway(
                    url,
                    job=JOB,
                    registry=registry,
                    grouping_key=dict(grouping_key),
                    timeout=self.timeout_seconds,
                )
            except Exception as error:  # any failure of the push is a warning, never the run's
                failure.append(error)

        worker = threading.Thread(target=send, name="pushgateway-push", daemon=True)
        worker.start()
        worker.join(self.timeout_seconds)
        shown = strip_url(url)
        if worker.is_alive():
            log.warning(
                f"metrics not pushed: the Pushgateway {shown} did not answer within "
                f"{self.timeout_seconds:g} s"
            )
            return False
        if failure:
            error = failure[0]
            log.warning(
                f"metrics not pushed to the Pushgateway {shown}: {type(error).__name__}: "
                f"{strip_urls_in_text(str(error))}"
            )
            return False
        return True


def entry_point(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    """``assets`` for a run of the partitioned assets, ``batch`` for the batch job."""
    return ENTRY_ASSETS if isinstance(context, dg.AssetExecutionContext) else ENTRY_BATCH


class _Families(Collector):
    """A fixed set of metric families: one push's whole content, collected once."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _registry(families: list[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry


def _histogram(name: str, documentation: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, documentation, labels=labels)


def _add_histogram(family: HistogramMetricFamily, values: list[str], hist: Histogram) -> None:
    family.add_metric(values, buckets=hist.cumulative(), sum_value=hist.total)


def run_registry(snapshot: RunSnapshot) -> CollectorRegistry:
    """One run's metrics (the grouping key adds ``entry_point``)."""
    attempted = CounterMetricFamily(
        "podpod_artists_attempted",
        "Artists this run attempted, by outcome and by the source that decided it.",
        labels=["outcome", "source"],
    )
    for (outcome, source), count in sorted(snapshot.attempts.items()):
        attempted.add_metric([outcome, source], count)
    requests = CounterMetricFamily(
        "podpod_http_requests",
        "HTTP attempts this run made (retries and robots.txt included), by host and status "
        "class (2xx..5xx, or error: no answer).",
        labels=["host", "status_class"],
    )
    for (host, status_class), count in sorted(snapshot.requests.items()):
        requests.add_metric([host, status_class], count)
    latency = _histogram(
        "podpod_fetch_duration_seconds", "Time of one HTTP attempt, by host.", ["host"]
    )
    for host, hist in sorted(snapshot.latency.items()):
        _add_histogram(latency, [host], hist)
    duration = _histogram("podpod_run_duration_seconds", "Wall time of the refresh step.", [])
    run_duration = Histogram(DURATION_BUCKETS)
    run_duration.observe(snapshot.duration_seconds)
    _add_histogram(duration, [], run_duration)
    downloaded = CounterMetricFamily(
        "podpod_downloaded_bytes", "Response body bytes this run downloaded."
    )
    downloaded.add_metric([], snapshot.bytes_downloaded)
    published = CounterMetricFamily(
        "podpod_published_bytes", "Bytes of the new current images this run published."
    )
    published.add_metric([], snapshot.bytes_published)
    artists = GaugeMetricFamily("podpod_run_artists", "Artists in this run.")
    artists.add_metric([], snapshot.artists)
    return _registry([attempted, requests, latency, duration, downloaded, published, artists])


def coverage_registry(categories: Mapping[str, int], current_share: float) -> CollectorRegistry:
    """The coverage report's gauges: artists per category and the share with a current image."""
    per_category = GaugeMetricFamily(
        "podpod_coverage_artists",
        "Catalog artists per coverage category at the last coverage report.",
        labels=["category"],
    )
    for category, count in sorted(categories.items()):
        per_category.add_metric([category], count)
    share = GaugeMetricFamily(
        "podpod_coverage_current_ratio",
        "Share (0..1) of catalog artists with a current (not stale) image.",
    )
    share.add_metric([], current_share)
    return _registry([per_category, share])


def write_json_lines(log: Any, lines: list[dict[str, Any]]) -> None:
    """Each line on stdout (Cloud Logging parses one JSON object per line) and on the
    Dagster log (the UI): the first line alone, the others up to
    :data:`LINES_PER_LOG_EVENT` to an event (every Dagster event is a database write, and a
    run may fail hundreds of artists)."""
    texts = [json.dumps({"severity": "INFO", **line}) for line in lines]
    sys.stdout.write("".join(text + "\n" for text in texts))
    sys.stdout.flush()
    if texts:
        log.info(texts[0])
    for start in range(1, len(texts), LINES_PER_LOG_EVENT):
        log.info("\n".join(texts[start : start + LINES_PER_LOG_EVENT]))


def finish_run(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    snapshot: RunSnapshot,
    metrics: MetricsResource | None,
) -> None:
    """The run's end for operators: the JSON summary and failure lines, then the push."""
    write_json_lines(context.log, [snapshot.summary(), *snapshot.failure_lines()])
    if metrics is not None:
        metrics.push(run_registry(snapshot), {"entry_point": snapshot.entry_point}, context.log)


def coverage_counts(rows: Mapping[str, int]) -> dict[str, int]:
    """The coverage report's categories as bounded metric names: every ``failed: <outcome>``
    row summed into ``failed`` (outcomes per failure stay in the report's table)."""
    counts = {name: 0 for name in COVERAGE_CATEGORIES.values()} | {"failed": 0}
    for category, count in rows.items():
        if category.startswith(FAILED_PREFIX):
            counts["failed"] += int(count)
        else:
            name = COVERAGE_CATEGORIES.get(category, category.replace(" ", "_"))
            counts[name] = counts.get(name, 0) + int(count)
    return counts


def coverage_share(counts: Mapping[str, int]) -> float:
    """Share (0..1) of catalog artists with a current image; 0.0 for an empty catalog.

    An image still waiting for its variant set is served (the published image): it counts.
    """
    total = sum(counts.values())
    served = counts.get("current", 0) + counts.get("variants_missing", 0)
    return served / total if total else 0.0


def coverage_metadata(counts: Mapping[str, int]) -> dict[str, Any]:
    """Numbers Dagster plots across reports (the asset's Overview → Metadata → Plots): a
    float share and an int per category."""
    metadata: dict[str, Any] = {"current_share": dg.MetadataValue.float(coverage_share(counts))}
    for name, count in counts.items():
        metadata[f"artists_{name}"] = dg.MetadataValue.int(count)
    return metadata


def push_coverage(metrics: MetricsResource, counts: Mapping[str, int], log: Any) -> bool:
    """The coverage gauges, in their own Pushgateway group (runs never overwrite them)."""
    return metrics.push(
        coverage_registry(counts, coverage_share(counts)), {"report": "coverage"}, log
    )
