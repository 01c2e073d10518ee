"""Refreshing an unchanged image costs one small conditional request and no upload.

The first run keeps the image's ETag / Last-Modified per source URL (artist_scrape_state);
the next run sends them back as If-None-Match / If-Modified-Since. The fixture server
answers 304 (no body) to a matching validator, exactly as HTTP caches and CDNs do.
"""

from __future__ import annotations

from typing import Any

from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg

ETAG = '"photo-v1"'
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
# Row identity: everything but scraped_at, which an unchanged check refreshes on purpose.
IDENTITY = ("id", "artist_id", "sha256", "object_name", "object_uri", "is_current", "byte_size")


def _identities(pipeline: Pipeline, artist_id: int) -> list[dict[str, Any]]:
    return [{key: row[key] for key in IDENTITY} for row in pipeline.rows(artist_id)]


def _generations(pipeline: Pipeline) -> dict[str, int | None]:
    """Every object in the bucket: originals and published images (nothing else exists)."""
    return {name: blob.generation for name, blob in pipeline.blobs(prefix="").items()}


def _first_run(pipeline: Pipeline, headers: dict[str, str]) -> None:
    pipeline.add_artist(1, "Nell", image=make_jpeg(1), image_headers=headers)
    assert pipeline.run(["1"]).success
    assert pipeline.state(1)["last_outcome"] == "found"
    pipeline.site.reset_hits()


def test_unchanged_image_is_revalidated_with_a_304_and_nothing_is_written(
    pipeline: Pipeline,
) -> None:
    _first_run(pipeline, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
    state = pipeline.state(1)
    assert (state["source_etag"], state["source_last_modified"]) == (ETAG, LAST_MODIFIED)
    rows, objects = _identities(pipeline, 1), _generations(pipeline)
    scraped_at = pipeline.rows(1)[0]["scraped_at"]

    result = pipeline.run(["1"])

    assert result.success
    image_path = pipeline.image_path(1)
    assert pipeline.site.hits[image_path] == 1
    (sent,) = pipeline.site.headers[image_path]
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    state = pipeline.state(1)
    assert state["last_outcome"] == "unchanged"
    assert "(304)" in state["last_reason"]  # only a 304 answer (no body) gives this outcome
    assert state["consecutive_failures"] == 0
    metadata = result.materialized("artist_image")["1"]
    assert metadata["outcome"].value == "unchanged"
    # The latest event shows the current image, not only the outcome.
    current = pipeline.rows(1)[0]
    assert metadata["sha256"].value == current["sha256"]
    assert metadata["object_uri"].value == current["object_uri"]
    assert metadata["width"].value == current["width"]
    assert "data:image/jpeg" in str(metadata["preview"].value)
    assert result.materialized("artist_source_image")["1"]["outcome"].value == "unchanged"
    assert _generations(pipeline) == objects  # no upload, original or published
    assert _identities(pipeline, 1) == rows  # no new row, same current image
    assert pipeline.rows(1)[0]["scraped_at"] > scraped_at  # verified now: not stale


def test_last_modified_alone_is_enough_for_a_304(pipeline: Pipeline) -> None:
    _first_run(pipeline, {"Last-Modified": LAST_MODIFIED})
    objects = _generations(pipeline)

    assert pipeline.run(["1"]).success

    (sent,) = pipeline.site.headers[pipeline.image_path(1)]
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    assert "If-None-Match" not in sent
    assert pipeline.state(1)["last_outcome"] == "unchanged"
    assert _generations(pipeline) == objects


def test_changed_image_at_the_same_url_is_downloaded_and_published(pipeline: Pipeline) -> None:
    _first_run(pipeline, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
    old = _identities(pipeline, 1)
    image_path = pipeline.image_path(1)
    pipeline.site.add_route(
        image_path,
        body=make_jpeg(2),
        headers={"Content-Type": "image/jpeg", "ETag": '"photo-v2"'},
    )

    assert pipeline.run(["1"]).success

    (sent,) = pipeline.site.headers[image_path]
    assert sent["If-None-Match"] == ETAG  # asked conditionally, got the new bytes
    state = pipeline.state(1)
    assert state["last_outcome"] == "found"
    assert state["source_etag"] == '"photo-v2"'
    rows = pipeline.rows(1)
    assert [row["id"] for row in rows[:1]] == [old[0]["id"]]
    assert [row["is_current"] for row in rows] == [False, True]
    assert pipeline.bucket.get_blob(rows[0]["object_name"]) is not None


def test_redirected_image_is_revalidated_under_the_url_the_page_names(pipeline: Pipeline) -> None:
    """The page names /images/1-v1.jpg, which redirects to the CDN path holding the bytes:
    validators are kept under the named URL, so the refresh is a 304, not a download."""
    pipeline.add_artist(1, "Nell")
    named = "/images/1-v1.jpg"
    served = "/cdn/photo-1.jpg"
    pipeline.set_page_html(
        1, f'<html><body><img class="artist-image" src="{named}" alt="photo"></body></html>'
    )
    pipeline.site.add_route(named, status=302, headers={"Location": served})
    pipeline.site.add_route(
        served, body=make_jpeg(1), headers={"Content-Type": "image/jpeg", "ETag": ETAG}
    )
    assert pipeline.run(["1"]).success
    assert pipeline.state(1)["source_image_url"].endswith(named)
    objects = _generations(pipeline)
    pipeline.site.reset_hits()

    assert pipeline.run(["1"]).success

    (sent,) = pipeline.site.headers[served]
    assert sent["If-None-Match"] == ETAG
    assert pipeline.state(1)["last_outcome"] == "unchanged"
    assert _generations(pipeline) == objects


def test_a_304_for_an_image_without_variants_fetches_it_once_and_publishes_its_set(
    pipeline: Pipeline,
) -> None:
    """The backfill of variants is an ordinary refresh of the partition: the same assets."""
    pipeline.configure(images={"variants": {"enabled": False}})  # published before variants
    _first_run(pipeline, {"ETag": ETAG})
    assert pipeline.variant_rows(1) == []
    rows = _identities(pipeline, 1)
    pipeline.configure(images={"variants": {"enabled": True}})

    result = pipeline.run(["1"])

    assert result.success
    image_path = pipeline.image_path(1)
    conditional, unconditional = pipeline.site.headers[image_path]
    assert conditional["If-None-Match"] == ETAG  # answered 304 ...
    assert "If-None-Match" not in unconditional  # ... so fetched once more, in full
    assert _identities(pipeline, 1) == rows  # the same image row and object
    current = pipeline.rows(1)[0]
    variants = pipeline.variant_rows(1)
    assert current["variant_set"] is not None
    assert {row["variant_set"] for row in variants} == {current["variant_set"]}
    assert {row["kind"] for row in variants} == {"full", "avatar", "fallback"}
    assert all(pipeline.bucket.get_blob(row["object_name"]) for row in variants)
    metadata = result.materialized("artist_image")["1"]
    assert metadata["variants"].value == len(variants)
    assert "data:image/jpeg;base64," in str(metadata["avatar_preview"].value)
    assert current["dominant_color"] in str(metadata["placeholder_color"].value)
