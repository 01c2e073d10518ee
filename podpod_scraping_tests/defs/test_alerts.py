"""The alert sensors against a real webhook receiver on 127.0.0.1.

The run-failure sensor is evaluated on a real failed run; the coverage sensor on real
coverage reports of the production path (Postgres catalog, GCS emulator, fixture site).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg
import pytest

from podpod_scraping.defs.alerts import (
    AlertsResource,
    coverage_alert_sensor,
    run_failure_alert_sensor,
)
from podpod_scraping.defs.assets import artist_image_coverage
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg
from podpod_scraping_tests.fixtures.webhook import WebhookReceiver

SECRET_DSN = "postgresql+psycopg2://scraper:hunter2@db.internal:5432/podpod?sslpassword=s3"


@dg.op
def load_catalog() -> None:
    raise RuntimeError(f"could not connect to {SECRET_DSN}\nsecond line")


@dg.job
def failing_job() -> None:
    load_catalog()


def _failure_context(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


def test_a_failed_run_posts_run_step_error_and_link_without_secrets(
    webhook: WebhookReceiver,
) -> None:
    alerts = AlertsResource(webhook_url=webhook.url, ui_base_url="https://ops:pw@dagster.example/")
    with dg.instance_for_test() as instance:
        context = _failure_context(instance)

        run_failure_alert_sensor(context, alerts=alerts)

        run_id = context.dagster_run.run_id
    [text] = webhook.texts()
    assert f"failing_job (run {run_id})" in text
    assert "Failed step: load_catalog" in text
    assert (
        "Error: RuntimeError: could not connect to "
        "postgresql+psycopg2://[redacted]@db.internal:5432/podpod?[redacted]"
    ) in text
    assert "second line" not in text
    assert f"<https://[redacted]@dagster.example/runs/{run_id}|" in text
    for secret in ("hunter2", "s3", "ops:pw", "secret-token"):
        assert secret not in text


def test_the_run_failure_sensor_is_off_without_a_webhook_url() -> None:
    with dg.instance_for_test() as instance:
        result = run_failure_alert_sensor(
            _failure_context(instance), alerts=AlertsResource(webhook_url="")
        )

    assert isinstance(result, dg.SkipReason)


def test_a_receiver_that_is_down_does_not_fail_the_sensor(down_webhook_url: str) -> None:
    with dg.instance_for_test() as instance:
        result = run_failure_alert_sensor(
            _failure_context(instance), alerts=AlertsResource(webhook_url=down_webhook_url)
        )

    assert result is None


def test_a_slow_receiver_costs_the_sensor_only_its_timeout(
    slow_webhook: WebhookReceiver,
) -> None:
    alerts = AlertsResource(webhook_url=slow_webhook.url, timeout_seconds=1)
    with dg.instance_for_test() as instance:
        context = _failure_context(instance)
        started = time.monotonic()

        result = run_failure_alert_sensor(context, alerts=alerts)

    assert result is None
    assert time.monotonic() - started < 10
    assert len(slow_webhook.posts) == 1


@pytest.fixture
def coverage_pipeline(
    pipeline_on: Callable[..., AbstractContextManager[Pipeline]],
) -> Iterator[Pipeline]:
    with pipeline_on() as opened:
        yield opened


class CoverageAlerts:
    """The coverage sensor as the daemon ticks it: one cursor carried across ticks."""

    def __init__(self, pipeline: Pipeline, alerts: AlertsResource) -> None:
        self.pipeline = pipeline
        self.resources = {**pipeline.resources, "alerts": alerts}
        self.cursor: str | None = None

    def report(self) -> None:
        result = dg.materialize(
            [artist_image_coverage],
            instance=self.pipeline.instance,
            resources=self.pipeline.resources,
        )
        assert result.success

    def tick(self) -> Any:
        context = dg.build_sensor_context(
            instance=self.pipeline.instance, cursor=self.cursor, resources=self.resources
        )
        result = coverage_alert_sensor(context)
        self.cursor = context.cursor
        return result


def test_coverage_drop_and_failure_spike_post_once_not_at_every_report(
    coverage_pipeline: Pipeline, webhook: WebhookReceiver
) -> None:
    pipeline = coverage_pipeline
    alerts = CoverageAlerts(pipeline, AlertsResource(webhook_url=webhook.url))
    for artist_id in (1, 2, 3):
        pipeline.add_artist(artist_id, f"Artist {artist_id}", image=make_jpeg(artist_id))
    assert pipeline.run(["1", "2", "3"]).success
    alerts.report()
    assert isinstance(alerts.tick(), dg.SkipReason)  # the first report is the baseline

    for artist_id in (4, 5, 6):
        pipeline.add_artist(artist_id, f"Artist {artist_id}", page_status=404)
    assert not pipeline.run(["4", "5", "6"]).success
    alerts.report()
    alerts.tick()
    alerts.report()  # the next hour: still low, nothing new
    alerts.tick()
    alerts.tick()  # no new report at all

    [text] = webhook.texts()
    assert "artists with an image: 100.0% -> 50.0% (3/6), down 50.0 points" in text
    assert "failed with page_not_found: 0 -> 3 artists, up 50.0 points" in text
    assert "/assets/artist_image_coverage|" in text


def test_the_coverage_sensor_is_off_without_a_webhook_url(coverage_pipeline: Pipeline) -> None:
    alerts = CoverageAlerts(coverage_pipeline, AlertsResource(webhook_url=""))
    alerts.report()

    result = alerts.tick()

    assert isinstance(result, dg.SkipReason)
    assert "off" in (result.skip_message or "")
