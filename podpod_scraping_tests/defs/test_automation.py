"""Sensor, schedule and batching against a real Postgres catalog and a real Dagster instance."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml
from sqlalchemy import text

from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.defs.assets import artist_images
from podpod_scraping.defs.batching import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    REFRESH_OP,
    artist_refresh_job,
    artist_retry_failed_job,
    batches,
    refresh_run_requests,
)
from podpod_scraping.defs.jobs import artist_images_job
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping.defs.schedules import build_refresh_schedule
from podpod_scraping.defs.sensors import artist_catalog_sensor
from podpod_scraping.storage.catalog.repository import (
    ImageRecord,
    VariantRecord,
    VariantSetRecord,
    insert_artists,
    make_engine,
)
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 03:00 Asia/Seoul on the 28th


def _resources(pipeline: Pipeline) -> dict:
    """What the sensor and the schedule use: the catalog and the scraper config."""
    return {key: pipeline.resources[key] for key in ("catalog", "scraper")}


def _sensor(pipeline: Pipeline) -> dg.SensorResult:
    """One sensor tick; the context is closed so its resources never outlive the test."""
    with dg.build_sensor_context(
        instance=pipeline.instance, resources=_resources(pipeline)
    ) as context:
        result = artist_catalog_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _tick(pipeline: Pipeline, when: datetime) -> list[dg.RunRequest]:
    """One schedule tick at ``when``, with its context closed."""
    with dg.build_schedule_context(
        instance=pipeline.instance, resources=_resources(pipeline), scheduled_execution_time=when
    ) as context:
        return list(build_refresh_schedule().evaluate_tick(context).run_requests or [])


def _artist_ids(requests: list[dg.RunRequest]) -> list[list[str]]:
    return [r.run_config["ops"][REFRESH_OP]["config"]["artist_ids"] for r in requests]


def _record_image(pipeline: Pipeline, artist_id: int, scraped_at: datetime) -> None:
    pipeline.repository.record_image(
        ImageRecord(
            artist_id=str(artist_id),
            object_name=f"artists/{artist_id}/{'a' * 64}.jpg",
            object_uri="gs://b/x",
            public_url="https://x",
            sha256="a" * 64,
            width=400,
            height=400,
            content_type="image/jpeg",
            byte_size=1000,
            source_name="s",
            source_page_url="http://p",
            source_image_url="http://i",
            license=None,
            attribution=None,
            scraped_at=scraped_at,
            variants=VariantSetRecord(  # a complete set: only its age makes it due
                variant_set=str(ImagePolicy().variants.fingerprint),
                variants=(
                    VariantRecord(
                        "full",
                        "webp",
                        128,
                        128,
                        f"artists/{artist_id}/v.webp",
                        "https://x/v",
                        "image/webp",
                        10,
                        "b" * 64,
                    ),
                ),
                blurhash="L00000fQfQfQfQfQfQfQfQfQfQfQ",
                thumbhash="AAAA",
                dominant_color="#000000",
                aspect_ratio=1.0,
                avatar_method="centre",
                avatar_preview=None,
            ),
        ),
        attempted_at=scraped_at,
    )


@pytest.mark.parametrize(("count", "size"), [(1, 100), (100, 100), (101, 100), (1000, 100), (7, 3)])
def test_batching_yields_ceil_k_over_size_runs(count: int, size: int) -> None:
    ids = [str(i) for i in range(1, count + 1)]

    requests = refresh_run_requests(ids, batch_size=size, reason="stale", run_key_prefix="t")

    assert len(requests) == math.ceil(count / size)
    assert [key for batch in _artist_ids(requests) for key in batch] == ids
    assert len({r.run_key for r in requests}) == len(requests)


def test_batches_drop_duplicate_ids_and_keep_order() -> None:
    assert batches(["3", "1", "3", "2"], 2) == [["3", "1"], ["2"]]


def _apply(pipeline: Pipeline, result: dg.SensorResult) -> None:
    """Apply a tick's partition requests to the instance, as the daemon does."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            pipeline.instance.add_dynamic_partitions(
                ARTISTS_PARTITION_NAME, list(request.partition_keys)
            )
        else:
            for key in request.partition_keys:
                pipeline.instance.delete_dynamic_partition(ARTISTS_PARTITION_NAME, key)


def _range_keys(pipeline: Pipeline, requests: list[dg.RunRequest]) -> list[list[str]]:
    """The partition keys each range run request covers, in partition order."""
    ordered = list(pipeline.instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
    covered = []
    for request in requests:
        assert request.job_name == artist_images_job.name
        start = ordered.index(request.tags[RANGE_START_TAG])
        end = ordered.index(request.tags[RANGE_END_TAG])
        covered.append(ordered[start : end + 1])
    return covered


def test_sensor_adds_new_artists_deletes_removed_and_requests_a_range_run_of_the_added(
    pipeline: Pipeline,
) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(i, f"A{i}") for i in range(1, 6)])
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, ["1", "2", "99"])
    _record_image(pipeline, 1, NOW)  # already scraped: not requested again
    result = _sensor(pipeline)

    add, delete = result.dynamic_partitions_requests or []
    assert isinstance(add, dg.AddDynamicPartitionsRequest)
    assert list(add.partition_keys) == ["3", "4", "5"]
    assert isinstance(delete, dg.DeleteDynamicPartitionsRequest)
    assert list(delete.partition_keys) == ["99"]
    _apply(pipeline, result)
    assert _range_keys(pipeline, list(result.run_requests or [])) == [["3", "4", "5"]]


def test_sensor_does_not_request_the_same_new_artists_twice(pipeline: Pipeline) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(i, f"A{i}") for i in range(1, 4)])
    _apply(pipeline, _sensor(pipeline))
    insert_artists(make_engine(pipeline.catalog_url), [(4, "A4")])

    second = _sensor(pipeline)
    _apply(pipeline, second)

    assert _range_keys(pipeline, list(second.run_requests or [])) == [["4"]]
    assert _sensor(pipeline).run_requests == []


def test_sensor_batches_new_artists_by_the_configured_size(pipeline: Pipeline) -> None:
    config = yaml.safe_load(pipeline.config_path.read_text(encoding="utf-8"))
    config.setdefault("refresh", {})["batch_size"] = 4
    pipeline.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    insert_artists(make_engine(pipeline.catalog_url), [(i, f"A{i}") for i in range(1, 11)])

    result = _sensor(pipeline)
    _apply(pipeline, result)

    covered = _range_keys(pipeline, list(result.run_requests or []))
    assert [len(keys) for keys in covered] == [4, 4, 2]
    assert [key for keys in covered for key in keys] == [str(i) for i in range(1, 11)]


def test_sensor_range_run_scrapes_exactly_the_new_artists(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Old", image=make_jpeg(1))  # a partition already
    insert_artists(make_engine(pipeline.catalog_url), [(2, "New A"), (3, "New B")])
    pipeline.set_page(2, image=make_jpeg(2))
    pipeline.set_page(3, image=make_jpeg(3))
    result = _sensor(pipeline)
    _apply(pipeline, result)
    (request,) = result.run_requests or []

    run = dg.materialize(  # what the daemon runs for the request: its range tags
        [artist_images],
        instance=pipeline.instance,
        resources=pipeline.resources,
        tags=dict(request.tags),
    )

    assert run.success
    materialized = pipeline.instance.get_materialized_partitions(dg.AssetKey("artist_image"))
    assert materialized == {"2", "3"}


def _schedule_requests(pipeline: Pipeline, when: datetime) -> list[list[str]]:
    return _artist_ids(_tick(pipeline, when))


def test_schedule_requests_exactly_the_due_artists(pipeline: Pipeline) -> None:
    engine = make_engine(pipeline.catalog_url)
    names = {1: "new", 2: "fresh", 3: "stale", 4: "failed-in-backoff", 5: "failed-past-backoff"}
    insert_artists(engine, list(names.items()))
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, [str(i) for i in names])
    repository = pipeline.repository
    _record_image(pipeline, 2, NOW - timedelta(days=29))
    _record_image(pipeline, 3, NOW - timedelta(days=31))
    repository.record_failure(
        "4", Outcome.PAGE_NOT_FOUND, "gone", attempted_at=NOW - timedelta(minutes=30)
    )
    repository.record_failure(
        "5", Outcome.PAGE_NOT_FOUND, "gone", attempted_at=NOW - timedelta(hours=2)
    )

    requested = _schedule_requests(pipeline, NOW)

    assert requested == [["1", "3", "5"]]


def test_schedule_backoff_grows_with_consecutive_failures(pipeline: Pipeline) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(1, "dead page")])
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, ["1"])
    repository = pipeline.repository
    for _ in range(3):  # third failure: backoff of a day
        repository.record_failure("1", Outcome.PAGE_NOT_FOUND, "gone", attempted_at=NOW)

    assert _schedule_requests(pipeline, NOW + timedelta(hours=23)) == []
    assert _schedule_requests(pipeline, NOW + timedelta(hours=25)) == [["1"]]


def test_schedule_run_keys_change_with_the_tick_so_tomorrow_is_not_suppressed(
    pipeline: Pipeline,
) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(1, "A")])
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, ["1"])

    keys = [r.run_key for when in (NOW, NOW + timedelta(days=1)) for r in _tick(pipeline, when)]

    assert len(keys) == 2
    assert keys[0] != keys[1]


def test_schedule_defaults_to_three_am_seoul() -> None:
    schedule = build_refresh_schedule()

    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "Asia/Seoul"


def test_refresh_job_materializes_exactly_its_batch_of_partitions(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Gone", page_status=404)
    pipeline.add_artist(3, "Lee Hi", image=make_jpeg(3))
    pipeline.add_artist(4, "Not in batch", image=make_jpeg(4))
    (request,) = refresh_run_requests(
        ["3", "1", "2"], batch_size=10, reason="test", run_key_prefix=None
    )

    result = artist_refresh_job.execute_in_process(
        run_config=request.run_config,
        instance=pipeline.instance,
        resources=pipeline.resources,
        raise_on_error=False,
    )

    assert not result.success  # artist 2 failed: the run says so
    for asset in ("artist_source_image", "artist_image"):
        materialized = pipeline.instance.get_materialized_partitions(dg.AssetKey(asset))
        assert materialized == {"1", "3"}, asset
    records = pipeline.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("artist_image"), asset_partitions=["2"]),
        limit=1,
    ).records
    observation = records[0].asset_observation
    assert observation is not None
    assert observation.metadata["outcome"].value == "page_not_found"
    assert len(pipeline.rows(1)) == len(pipeline.rows(3)) == 1
    assert pipeline.rows(2) == pipeline.rows(4) == []
    with make_engine(pipeline.catalog_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM artist_scrape_state")).scalar() == 3


def test_retry_failed_job_refreshes_every_failed_artist_now(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Back Soon", page_status=404)
    pipeline.add_artist(3, "Lee Hi", image=make_jpeg(3))
    assert not pipeline.run(["1", "2", "3"]).success
    pipeline.set_page(2, image=make_jpeg(2))  # the site is fixed; artist 2 is in backoff
    pipeline.site.reset_hits()

    result = artist_retry_failed_job.execute_in_process(
        instance=pipeline.instance, resources=pipeline.resources
    )

    assert result.success
    assert pipeline.state(2)["last_outcome"] == "found"
    assert pipeline.site.hits.get(pipeline.page_path(1), 0) == 0  # only the failed one
    assert pipeline.site.hits.get(pipeline.page_path(3), 0) == 0


def test_coverage_schedule_materializes_the_coverage_report_hourly() -> None:
    from podpod_scraping.defs.schedules import coverage_job, coverage_schedule

    assert coverage_schedule.cron_schedule == "30 * * * *"
    assert coverage_schedule.job_name == coverage_job.name
    assert coverage_job.selection == dg.AssetSelection.assets("artist_image_coverage")


def test_schedule_skips_artists_held_by_an_unfinished_batch_run(pipeline: Pipeline) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(1, "A"), (2, "B"), (3, "C")])
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, ["1", "2", "3"])
    (running,) = refresh_run_requests(["2"], batch_size=10, reason="new", run_key_prefix=None)
    pipeline.instance.create_run_for_job(
        job_def=artist_refresh_job,
        run_config=dict(running.run_config),
        status=dg.DagsterRunStatus.STARTED,
    )

    assert _schedule_requests(pipeline, NOW) == [["1", "3"]]


def test_schedule_skips_artists_held_by_an_unfinished_range_run(pipeline: Pipeline) -> None:
    insert_artists(make_engine(pipeline.catalog_url), [(i, f"A{i}") for i in range(1, 6)])
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, [str(i) for i in range(1, 6)])
    job = dg.Definitions(
        assets=[artist_images], jobs=[artist_images_job], resources=pipeline.resources
    ).get_job_def(artist_images_job.name)
    pipeline.instance.create_run_for_job(
        job_def=job,
        tags={RANGE_START_TAG: "2", RANGE_END_TAG: "4"},
        status=dg.DagsterRunStatus.STARTED,
    )

    assert _schedule_requests(pipeline, NOW) == [["1", "5"]]
