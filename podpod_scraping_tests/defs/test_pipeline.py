"""The pipeline end to end on real services: site → scraped image → GCS object → Postgres row."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
from collections.abc import Iterable

from PIL import Image
from sqlalchemy import text

from podpod_scraping.storage.catalog.repository import make_engine
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg


def _current(pipeline: Pipeline, artist_id: int) -> dict:
    current = [row for row in pipeline.rows(artist_id) if row["is_current"]]
    assert len(current) == 1, current
    return current[0]


def _identities(pipeline: Pipeline) -> list[tuple]:
    """Row identity, leaving out scraped_at (a rerun confirms the image, so it moves)."""
    rows = pipeline.rows(1) + pipeline.rows(2)
    return [(r["id"], r["artist_id"], r["sha256"], r["object_name"], r["is_current"]) for r in rows]


def test_materialization_writes_object_and_row_with_matching_sha(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))

    result = pipeline.run(["1"])

    assert result.success, result.failure_description()
    row = _current(pipeline, 1)
    blob = pipeline.bucket.blob(row["object_name"])
    data = blob.download_as_bytes()
    blob.reload()
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    assert row["object_name"] == f"artists/1/{row['sha256']}.jpg"
    assert row["object_uri"] == f"gs://{pipeline.bucket.name}/{row['object_name']}"
    assert blob.content_type == "image/jpeg" == row["content_type"]
    assert "immutable" in (blob.cache_control or "")
    assert row["byte_size"] == len(data)
    assert (row["width"], row["height"]) == (400, 300)
    assert row["source_name"] == "fixture-site"
    assert row["source_page_url"].endswith("/artists/1")
    assert row["license"] == "CC-BY-4.0"
    state = pipeline.state(1)
    assert state["last_outcome"] == "found"
    assert state["last_batch_id"] == result.result.run_id


def test_a_run_ends_the_variant_writer_processes_it_started(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))

    result = pipeline.run(["1"])

    assert result.success, result.failure_description()
    assert _current(pipeline, 1)["variant_set"] is not None  # a set was written
    writers = [p for p in multiprocessing.active_children() if p.name == "podpod-variant-writer"]
    assert writers == []


def test_row_records_the_original_it_was_normalized_from(pipeline: Pipeline) -> None:
    original = make_jpeg(1, size=(1600, 1200))
    pipeline.add_artist(1, "Nell", image=original)

    assert pipeline.run(["1"]).success

    row = _current(pipeline, 1)
    source_sha = hashlib.sha256(original).hexdigest()
    assert row["source_sha256"] == source_sha != row["sha256"]
    assert row["source_content_type"] == "image/jpeg"
    assert row["source_byte_size"] == len(original)
    archived = pipeline.bucket.blob(f"sources/1/{source_sha}.jpg").download_as_bytes()
    assert archived == original
    assert (row["width"], row["height"]) == (1024, 768)


def _published(names: Iterable[str]) -> set[str]:
    """The published images among object names (``artists/<id>/<sha>.<ext>``), not variants."""
    return {name for name in names if name.count("/") == 2}


def test_rerun_creates_no_new_object_and_no_duplicate_row(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Lee Hi", image=make_jpeg(2))
    assert pipeline.run(["1", "2"]).success
    before = {name: blob.generation for name, blob in pipeline.blobs().items()}
    rows_before = _identities(pipeline)
    variants_before = pipeline.variant_rows()

    assert pipeline.run(["1", "2"]).success

    after = {name: blob.generation for name, blob in pipeline.blobs().items()}
    assert after == before  # published images and every variant: not one new generation
    assert len(_published(before)) == 2
    assert _identities(pipeline) == rows_before
    assert len(rows_before) == 2
    assert pipeline.variant_rows() == variants_before
    # 400x300 each: WebP at 128, 320; avatars at 128; the 400 px JPEG fallback.
    assert len(variants_before) == 2 * 4


def test_changed_image_publishes_new_object_and_switches_current(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    old = _current(pipeline, 1)

    pipeline.set_page(1, image=make_jpeg(7))
    assert pipeline.run(["1"]).success

    new = _current(pipeline, 1)
    assert new["sha256"] != old["sha256"]
    rows = pipeline.rows(1)
    assert [row["sha256"] for row in rows] == [old["sha256"], new["sha256"]]
    assert _published(pipeline.blobs()) == {old["object_name"], new["object_name"]}
    # A full new set under the new image; the old set stays.
    folders = {name.rsplit("/", 2)[0] for name in pipeline.blobs() if name.count("/") == 4}
    assert folders == {f"artists/1/{old['sha256']}", f"artists/1/{new['sha256']}"}
    assert pipeline.bucket.blob(old["object_name"]).exists()


def test_broken_image_leaves_previous_current_image_untouched(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    good = _current(pipeline, 1)

    pipeline.set_page(1, image_body=make_jpeg(9)[:600])  # a truncated JPEG
    result = pipeline.run(["1"])

    assert not result.success
    assert pipeline.rows(1) == [good]
    assert pipeline.bucket.blob(good["object_name"]).download_as_bytes()
    state = pipeline.state(1)
    assert state["last_outcome"] == "invalid_image"
    assert state["consecutive_failures"] == 1


def test_missing_page_leaves_previous_current_image_untouched(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    good = _current(pipeline, 1)

    pipeline.set_page(1, page_status=404)
    assert not pipeline.run(["1"]).success

    assert pipeline.rows(1) == [good]
    assert pipeline.state(1)["last_outcome"] == "page_not_found"


def test_one_bad_artist_does_not_fail_the_others_in_its_run(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Gone Artist", page_status=404)
    pipeline.add_artist(3, "No Photo")  # a page without any image
    pipeline.add_artist(4, "Broken", image=b"<html>not an image</html>")
    pipeline.add_artist(5, "Lee Hi", image=make_jpeg(5))

    result = pipeline.run(["1", "2", "3", "4", "5"])

    assert not result.success
    assert set(result.materialized("artist_image")) == {"1", "5"}
    assert set(result.materialized("artist_source_image")) == {"1", "5"}
    assert _current(pipeline, 1)["sha256"] != _current(pipeline, 5)["sha256"]
    assert pipeline.rows(2) == pipeline.rows(3) == pipeline.rows(4) == []
    outcomes = {i: pipeline.state(i)["last_outcome"] for i in range(1, 6)}
    assert outcomes == {
        1: "found",
        2: "page_not_found",
        3: "no_image_on_page",
        4: "not_an_image",
        5: "found",
    }


def test_each_partition_carries_its_own_outcome_metadata(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Gone Artist", page_status=404)

    result = pipeline.run(["1", "2"])

    found = result.materialized("artist_image")["1"]
    assert found["outcome"].value == "found"
    assert found["artist"].value == "Nell"
    assert str(found["object_uri"].value).startswith("gs://")
    assert found["width"].value == 400
    assert "data:image/jpeg" in str(found["preview"].value)
    assert "2" not in result.materialized("artist_image")
    failed = result.observed("artist_image")["2"]
    assert failed["outcome"].value == "page_not_found"
    assert failed["artist"].value == "Gone Artist"
    assert "object_uri" not in failed


def test_failed_artists_fail_the_run_and_are_named_in_the_failure(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Gone Artist", page_status=404)

    result = pipeline.run(["1", "2"])

    assert not result.success
    description = result.failure_description()
    assert "1 of 2 artist(s)" in description
    assert "2 (Gone Artist): page_not_found" in description
    assert pipeline.state(1)["last_outcome"] == "found"


def test_failed_refresh_event_shows_the_image_still_served(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    assert pipeline.run(["1"]).success
    good = _current(pipeline, 1)

    pipeline.set_page(1, page_status=404)
    result = pipeline.run(["1"])

    event = result.observed("artist_image")["1"]
    assert event["outcome"].value == "page_not_found"
    assert event["published"].value == "previous image kept"
    assert event["sha256"].value == good["sha256"]
    assert event["object_uri"].value == good["object_uri"]
    assert (event["width"].value, event["height"].value) == (400, 300)
    assert "data:image/jpeg" in str(event["preview"].value)


def test_an_id_that_left_the_catalog_fails_the_step_at_once_and_the_others_publish(
    pipeline: Pipeline,
) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1))
    pipeline.add_artist(2, "Soon Gone", image=make_jpeg(2))
    with make_engine(pipeline.catalog_url).begin() as connection:
        connection.execute(text("DELETE FROM artists WHERE id = 2"))

    result = pipeline.run(["1", "2"])

    assert not result.success
    assert "1 of 2 id(s) are not catalog artists: 2" in result.failure_description()
    retries = [e for e in result.result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []  # no retry makes an unknown id known
    assert result.observed("artist_image")["2"]["outcome"].value == "not_in_catalog"
    assert set(result.materialized("artist_image")) == {"1"}


def test_avif_original_is_archived_and_published(pipeline: Pipeline) -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(make_jpeg(3))).save(buffer, "AVIF", quality=80)
    avif = buffer.getvalue()
    pipeline.add_artist(1, "Nell")
    pipeline.set_page(1, image_body=avif, image_content_type="image/avif")

    result = pipeline.run(["1"])

    assert result.success, result.failure_description()
    row = _current(pipeline, 1)
    assert row["source_content_type"] == "image/avif"
    source = pipeline.bucket.get_blob(f"sources/1/{row['source_sha256']}.avif")
    assert source is not None
    assert source.content_type == "image/avif"
    assert row["content_type"] == "image/jpeg"


def test_an_artist_without_a_usable_name_is_refused_without_any_request(
    pipeline: Pipeline,
) -> None:
    pipeline.add_artist(1, " \u3000 ", image=make_jpeg(1))  # spaces, an ideographic space

    result = pipeline.run(["1"])

    assert not result.success
    state = pipeline.state(1)
    assert state["last_outcome"] == "invalid_artist"
    assert "no name" in state["last_reason"]
    assert pipeline.site.hits == {}
    assert pipeline.rows(1) == []


def test_names_are_nfkc_normalized_before_they_fill_a_template(pipeline: Pipeline) -> None:
    pipeline.configure()
    config = pipeline.config_path.read_text(encoding="utf-8")
    pipeline.config_path.write_text(config.replace("/artists/{id}", "/artists/{name}"))
    pipeline.add_artist(1, "  \uff29\uff35  ")  # full-width "IU", as some catalogs store it
    pipeline.site.add_route(
        "/artists/IU",
        body=b'<img class="artist-image" src="/images/iu.jpg">',
        headers={"Content-Type": "text/html"},
    )
    pipeline.site.add_route(
        "/images/iu.jpg", body=make_jpeg(1), headers={"Content-Type": "image/jpeg"}
    )

    assert pipeline.run(["1"]).success
    assert pipeline.state(1)["last_outcome"] == "found"
