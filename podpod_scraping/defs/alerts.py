"""Alerts to a Slack-compatible webhook: failed runs, and coverage that drops.

Both are sensors, so nothing here runs inside a pipeline step: a receiver that is down or
slow costs a sensor tick a few seconds and a warning, never a run. Both are on by default
and do nothing until ``PODPOD_ALERT_WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from podpod_scraping.core.alerts import (
    CoverageSnapshot,
    coverage_problems,
    first_line,
    post_webhook,
    redact_urls,
)
from podpod_scraping.defs.resources import CatalogResource, ScraperResource
from podpod_scraping.storage.catalog.repository import (
    CATEGORY_CURRENT,
    CATEGORY_STALE,
    CATEGORY_VARIANTS_MISSING,
    FAILED_PREFIX,
)

COVERAGE_ASSET = dg.AssetKey("artist_image_coverage")


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go and what counts as worth one."""

    webhook_url: str = Field(
        default="",
        description="Slack-compatible incoming webhook URL (a secret); empty: alerts off.",
    )
    ui_base_url: str = Field(
        default="http://127.0.0.1:3000",
        description="Base URL of the Dagster UI, for links to runs and assets.",
    )
    timeout_seconds: float = Field(
        default=5.0, description="How long to wait for the receiver before giving up."
    )
    coverage_drop_points: float = Field(
        default=5.0,
        description="Alert when the share of artists with an image drops by more points.",
    )
    failure_spike_points: float = Field(
        default=5.0,
        description="Alert when one failure outcome's share of the catalog rises by more points.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url.strip())

    def link(self, path: str) -> str:
        """A link into the UI (the base URL redacted too: it may carry credentials)."""
        return redact_urls(f"{self.ui_base_url.rstrip('/')}/{path.lstrip('/')}")

    def post(self, text: str) -> bool:
        return post_webhook(self.webhook_url, text, timeout=self.timeout_seconds)


def _headline(error: Any) -> str:
    """The user's exception, not Dagster's wrapper around it, as one redacted line.

    ``error`` is an event's error info (Dagster's ``SerializableErrorInfo``, not public).
    """
    while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return first_line(error.message) if error is not None else ""


def run_failure_text(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> str:
    """The alert for one failed run: job, run id, failed steps, first error line, link."""
    run = context.dagster_run
    steps = []
    error = ""
    for event in context.get_step_failure_events():
        steps.append(event.step_key or "?")
        if not error:
            error = _headline(getattr(event.event_specific_data, "error", None))
    if not error:
        failure = context.failure_event
        error = _headline(getattr(failure.event_specific_data, "error", None)) or first_line(
            failure.message or ""
        )
    lines = [
        f"Dagster run failed: {run.job_name} (run {run.run_id})",
        f"Failed step: {', '.join(dict.fromkeys(steps)) or '(none: the run itself failed)'}",
        f"Error: {error or '(no message)'}",
        f"<{alerts.link(f'runs/{run.run_id}')}|Open the run in the Dagster UI>",
    ]
    return "\n".join(lines)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    description="Posts every failed run of this code location to PODPOD_ALERT_WEBHOOK_URL.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, alerts: AlertsResource
) -> dg.SkipReason | None:
    if not alerts.enabled:
        return dg.SkipReason("alerts are off: PODPOD_ALERT_WEBHOOK_URL is not set")
    if not alerts.post(run_failure_text(context, alerts)):
        context.log.warning("the run-failure alert was not delivered (receiver down or slow)")
    return None


def coverage_snapshot(catalog: CatalogResource, scraper: ScraperResource) -> CoverageSnapshot:
    """The catalog's coverage now, in the categories of the coverage report."""
    config = scraper.load_config()
    frame = catalog.repository().coverage(
        now=datetime.now(UTC),
        max_age=timedelta(days=config.refresh.stale_after_days),
        variant_set=config.images.variants.fingerprint,
    )
    rows = zip(frame["category"], frame["artists"], strict=True)
    counts = {str(category): int(n) for category, n in rows}
    return CoverageSnapshot(
        artists=sum(counts.values()),
        with_image=sum(
            counts.get(name, 0)
            for name in (CATEGORY_CURRENT, CATEGORY_STALE, CATEGORY_VARIANTS_MISSING)
        ),
        failures={
            category.removeprefix(FAILED_PREFIX): n
            for category, n in counts.items()
            if category.startswith(FAILED_PREFIX)
        },
    )


@dg.sensor(
    name="coverage_alert_sensor",
    description=(
        "After each coverage report, compares the catalog's coverage with the previous "
        "report's and posts once when the share of artists with an image dropped, or one "
        "failure outcome spiked (thresholds: the alerts resource)."
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
def coverage_alert_sensor(
    context: dg.SensorEvaluationContext,
    alerts: AlertsResource,
    catalog: CatalogResource,
    scraper: ScraperResource,
) -> dg.SkipReason | None:
    if not alerts.enabled:
        return dg.SkipReason("alerts are off: PODPOD_ALERT_WEBHOOK_URL is not set")
    records = context.instance.fetch_materializations(COVERAGE_ASSET, limit=1).records
    # The cursor: the last report seen and the coverage then (the comparison's baseline).
    state = json.loads(context.cursor) if context.cursor else {}
    if not records or records[0].storage_id <= state.get("storage_id", -1):
        return dg.SkipReason("no new coverage report")
    current = coverage_snapshot(catalog, scraper)
    context.update_cursor(json.dumps({"storage_id": records[0].storage_id, **asdict(current)}))
    if "artists" not in state:
        return dg.SkipReason("first coverage report: kept as the baseline")
    problems = coverage_problems(
        CoverageSnapshot(state["artists"], state["with_image"], state.get("failures", {})),
        current,
        drop_points=alerts.coverage_drop_points,
        spike_points=alerts.failure_spike_points,
    )
    if not problems:
        return dg.SkipReason("coverage did not drop since the previous report")
    text = "\n".join(
        [
            "podpod artist image coverage dropped since the previous report:",
            *(f"- {problem}" for problem in problems),
            f"<{alerts.link('assets/artist_image_coverage')}|Open the coverage report>",
        ]
    )
    if not alerts.post(text):
        context.log.warning("the coverage alert was not delivered (receiver down or slow)")
    return None
