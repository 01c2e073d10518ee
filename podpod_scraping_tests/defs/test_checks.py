"""The consistency check catches a current row whose object is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from podpod_scraping.defs import checks
from podpod_scraping.defs.checks import current_images_have_objects
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg


def _check(pipeline: Pipeline) -> dg.AssetCheckResult:
    # Invoked directly: what it reads is the real catalog and the real emulator bucket.
    result = current_images_have_objects(
        catalog=pipeline.resources["catalog"], objects=pipeline.resources["objects"]
    )
    assert isinstance(result, dg.AssetCheckResult)
    return result


def test_check_passes_when_every_current_row_has_its_object(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success

    evaluation = _check(pipeline)

    assert evaluation.passed
    assert evaluation.metadata["checked"].value == 1


def test_check_fails_when_a_current_row_points_at_a_missing_object(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    (row,) = pipeline.rows(1)
    pipeline.bucket.blob(row["object_name"]).delete()

    evaluation = _check(pipeline)

    assert not evaluation.passed
    assert evaluation.metadata["missing_in_this_batch"].value == 1
    assert evaluation.metadata["missing_in_total"].value == 1


def test_check_walks_every_current_image_oldest_verified_first(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost object is found however old its image: each evaluation verifies the least
    recently verified batch, so the oldest publication is checked first, not skipped."""
    monkeypatch.setattr(checks, "CHECK_BATCH", 1)
    for n in (1, 2, 3):
        pipeline.add_artist(n, f"Artist {n}", image=make_jpeg(n))
    for n in (1, 2, 3):
        assert pipeline.run([str(n)]).success
    (oldest,) = pipeline.rows(1)
    pipeline.bucket.blob(oldest["object_name"]).delete()

    first = _check(pipeline)
    checked = [_check(pipeline).metadata["checked"].value for _ in range(2)]

    assert not first.passed
    assert first.metadata["missing_in_this_batch"].value == 1
    assert checked == [1, 1]
    assert all(row["object_checked_at"] is not None for n in (1, 2, 3) for row in pipeline.rows(n))


def test_a_missing_object_shows_in_coverage_and_makes_the_artist_due(
    pipeline: Pipeline,
) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    (row,) = pipeline.rows(1)
    pipeline.bucket.blob(row["object_name"]).delete()
    _check(pipeline)
    repository = pipeline.repository
    now = datetime.now(UTC)

    frame = repository.coverage(now=now, max_age=timedelta(days=30))
    counts = dict(zip(frame["category"], frame["artists"], strict=True))

    assert counts["object missing"] == 1
    assert counts["current image"] == 0
    assert repository.stale_artist_ids(now=now, max_age=timedelta(days=30)) == ["1"]
