"""The consistency check catches a current row whose object is missing."""

from __future__ import annotations

import dagster as dg

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
    assert evaluation.metadata["missing"].value == 1
