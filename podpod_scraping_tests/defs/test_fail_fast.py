"""Mistakes that cannot heal fail the step at once, naming the fix; no retry waits them out."""

from __future__ import annotations

import time

import pytest
import yaml
from sqlalchemy import text

from podpod_scraping.storage.catalog.repository import make_engine
from podpod_scraping_tests.defs.conftest import Pipeline, RunOutcome, make_jpeg


def _retries(outcome: RunOutcome) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in outcome.result.all_events)


@pytest.mark.parametrize(
    ("section", "setting", "value", "named"),
    [
        ("fetch", "total_timeout", -1, "fetch.total_timeout"),
        ("fetch", "max_attempts", True, "fetch.max_attempts"),
        ("refresh", "concurrency", 2.5, "refresh.concurrency"),
        ("fetch", "connect_timeout", float("nan"), "fetch.connect_timeout"),
    ],
)
def test_a_bad_config_value_fails_the_run_at_once_naming_the_key(
    pipeline: Pipeline, section: str, setting: str, value: object, named: str
) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    config = yaml.safe_load(pipeline.config_path.read_text(encoding="utf-8"))
    config.setdefault(section, {})[setting] = value  # NaN is written as .nan
    pipeline.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    started = time.monotonic()
    outcome = pipeline.run(["1"])

    assert not outcome.success
    assert named in outcome.failure_description()
    assert _retries(outcome) == 0
    assert time.monotonic() - started < 30
    assert pipeline.rows(1) == []


def test_a_missing_config_file_fails_the_run_at_once_naming_the_variable(
    pipeline: Pipeline,
) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.config_path.unlink()

    outcome = pipeline.run(["1"])

    assert not outcome.success
    assert "PODPOD_SCRAPER_CONFIG" in outcome.failure_description()
    assert _retries(outcome) == 0


def test_a_renamed_catalog_column_fails_the_run_at_once_naming_it(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    with make_engine(pipeline.catalog_url).begin() as connection:
        connection.execute(text("ALTER TABLE artists RENAME COLUMN name TO display_name"))

    outcome = pipeline.run(["1"])

    assert not outcome.success
    description = outcome.failure_description()
    assert "name" in description
    assert "artists" in description
    assert _retries(outcome) == 0


def test_a_missing_bucket_fails_the_run_at_once(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.bucket.delete(force=True)

    started = time.monotonic()
    outcome = pipeline.run(["1"])

    assert not outcome.success
    assert "bucket does not exist" in outcome.failure_description()
    assert _retries(outcome) == 0
    assert time.monotonic() - started < 30
