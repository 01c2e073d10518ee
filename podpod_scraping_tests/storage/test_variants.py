"""Variant sets over the production storage: Postgres catalog, GCS emulator, HTTP site.

What the main API relies on: every variant row names an object that is really there with
those bytes, a set is all or nothing, reruns write nothing, and images published before
variants existed get their set from an ordinary refresh.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from google.cloud import storage

from podpod_scraping.core import variants as variants_module
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeResult
from podpod_scraping.core.refresh import ArtistStatus, refresh_artists
from podpod_scraping.storage.catalog.models import ArtistImageRow, ArtistImageVariantRow
from podpod_scraping.storage.catalog.repository import (
    CATEGORY_VARIANTS_MISSING,
    CatalogRepository,
    insert_artists,
)
from podpod_scraping.storage.images import PUBLISHED_CACHE_CONTROL
from podpod_scraping_tests.core.images_factory import band_photo, encode
from podpod_scraping_tests.defs.conftest import make_jpeg
from podpod_scraping_tests.storage.conftest import POLICY, Service, serve

FINGERPRINT = POLICY.variants.fingerprint
OFF = ImagePolicy.model_validate({"variants": {"enabled": False}})


def _variant_rows(catalog: CatalogRepository) -> list[dict[str, Any]]:
    with catalog.engine.connect() as connection:
        query = sa.select(ArtistImageVariantRow).order_by(ArtistImageVariantRow.id)
        return [dict(row._mapping) for row in connection.execute(query)]


def _image_rows(catalog: CatalogRepository) -> list[dict[str, Any]]:
    with catalog.engine.connect() as connection:
        query = sa.select(ArtistImageRow).order_by(ArtistImageRow.id)
        return [dict(row._mapping) for row in connection.execute(query)]


def _generations(bucket: storage.Bucket) -> dict[str, int | None]:
    return {blob.name: blob.generation for blob in bucket.client.list_blobs(bucket)}


def _published_once(
    service: Service,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int | None]]:
    """Artist 1 published once; its image rows, variant rows and every object's generation."""
    insert_artists(service.catalog.engine, [(1, "Nell")])
    serve(service.site, 1, make_jpeg(1))
    service.refresh(["1"], batch_id="run-1")
    catalog = service.catalog
    return _image_rows(catalog), _variant_rows(catalog), _generations(service.bucket)


def test_every_variant_in_the_bucket_matches_its_row(service: Service) -> None:
    catalog, bucket = service.catalog, service.bucket
    insert_artists(catalog.engine, [(1, "Band")])
    image, _ = band_photo(1200, 800)
    serve(service.site, 1, encode(image, "JPEG", quality=90))

    report = service.refresh(["1"], batch_id="run-1")["1"]

    assert report.status is ArtistStatus.SUCCEEDED
    current = catalog.current_images(["1"])["1"]
    rows = catalog.variants(current.id)
    assert len(rows) == current.variant_count == 8  # 4 widths, 3 avatar widths, the JPEG
    assert current.variant_set == FINGERPRINT
    assert current.avatar_method == "face"
    assert current.blurhash
    assert current.thumbhash
    assert current.dominant_color
    assert current.aspect_ratio == 1.5
    for row in rows:
        blob = bucket.get_blob(row.object_name)
        assert blob is not None, row.object_name
        data = blob.download_as_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert len(data) == row.byte_size == blob.size
        assert blob.content_type == row.content_type
        assert blob.cache_control == PUBLISHED_CACHE_CONTROL
        if row.kind == "fallback":  # the published JPEG itself: no second JPEG
            assert row.object_name == current.object_name
        else:
            assert row.object_name.startswith(f"artists/1/{current.sha256}/{FINGERPRINT}/")


def test_a_failing_variant_encode_keeps_the_previous_image_and_records_nothing_new(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, bucket = service.catalog, service.bucket
    rows, variants, objects = _published_once(service)
    before = catalog.current_images(["1"])["1"]
    serve(service.site, 1, make_jpeg(2))  # a new original...
    real_encode = variants_module.encode_image

    def failing(image: Any, pillow_format: str, options: dict[str, object]) -> bytes:
        if pillow_format == "WEBP" and image.width == 320:  # ...whose 320 px WebP fails
            raise OSError("encoder error -2")
        return real_encode(image, pillow_format, options)

    monkeypatch.setattr(variants_module, "encode_image", failing)

    report = service.refresh(["1"], batch_id="run-2")["1"]

    assert report.status is ArtistStatus.FAILED
    assert "variant failed to encode" in report.reason
    assert catalog.current_images(["1"])["1"].sha256 == before.sha256
    assert _image_rows(catalog) == rows  # no row for the new image
    assert _variant_rows(catalog) == variants
    new = set(_generations(bucket)) - set(objects)
    assert all(name.startswith("sources/") for name in new)  # only the archived original


def test_a_rerun_writes_no_new_object_and_no_new_row(service: Service) -> None:
    catalog, bucket = service.catalog, service.bucket
    rows, variants, objects = _published_once(service)

    report = service.refresh(["1"], batch_id="run-2")["1"]

    assert report.status is ArtistStatus.SUCCEEDED
    assert report.current is not None
    assert report.current.variant_count == len(variants)
    assert _generations(bucket) == objects
    assert _variant_rows(catalog) == variants
    assert [row["id"] for row in _image_rows(catalog)] == [row["id"] for row in rows]


def test_a_current_image_without_variants_gets_its_set_from_a_refresh(service: Service) -> None:
    catalog, bucket = service.catalog, service.bucket
    insert_artists(catalog.engine, [(1, "Nell")])
    serve(service.site, 1, make_jpeg(1))
    service.refresh(["1"], batch_id="run-1", images=OFF)  # before variants existed
    now, max_age = datetime.now(UTC), timedelta(days=30)
    assert catalog.stale_artist_ids(now=now, max_age=max_age) == []
    assert catalog.stale_artist_ids(now=now, max_age=max_age, variant_set=FINGERPRINT) == ["1"]
    coverage = catalog.coverage(now=now, max_age=max_age, variant_set=FINGERPRINT)
    assert (
        dict(zip(coverage["category"], coverage["artists"], strict=True))[CATEGORY_VARIANTS_MISSING]
        == 1
    )
    image_id = catalog.current_images(["1"])["1"].id

    report = service.refresh(["1"], batch_id="run-2")["1"]

    assert report.status is ArtistStatus.SUCCEEDED
    assert not report.switched  # the same image: its row gained the set
    current = catalog.current_images(["1"])["1"]
    assert (current.id, current.variant_set, current.variant_count) == (image_id, FINGERPRINT, 4)
    assert catalog.stale_artist_ids(now=now, max_age=max_age, variant_set=FINGERPRINT) == []
    for row in catalog.variants(image_id):
        assert bucket.get_blob(row.object_name) is not None


class _KeepsCurrent:
    """A scraper whose sources keep the current image (the never-worse rule's answer)."""

    def __init__(self) -> None:
        self.calls = 0

    def scrape(self, artist: Artist, known: Any = None, context: Any = None) -> ScrapeResult:
        self.calls += 1
        return ScrapeResult(
            artist_id=artist.id,
            outcome=Outcome.UNCHANGED,
            reason="kept current: 400x300 from site beats the 200x200 found on other",
            attempted_at=datetime.now(UTC),
            source_name="site",
        )


def test_a_kept_current_image_without_variants_gets_its_set_from_its_archived_original(
    service: Service,
) -> None:
    catalog = service.catalog
    insert_artists(catalog.engine, [(1, "Nell")])
    serve(service.site, 1, make_jpeg(1))
    service.refresh(["1"], batch_id="run-1", images=OFF)  # before variants existed
    before = catalog.current_images(["1"])["1"]
    keeps = _KeepsCurrent()
    service.site.reset_hits()

    (report,) = refresh_artists(
        ["1"],
        store=service.store,
        scraper=keeps,  # type: ignore[arg-type]  # a stand-in for the sources' answer
        images=POLICY,
        batch_id="run-2",
    )

    assert keeps.calls == 2  # the refresh, then one unconditional try
    assert service.site.total_hits == 0  # nothing fetched from the site
    assert report.status is ArtistStatus.SUCCEEDED
    assert "republished from the archived original" in report.reason
    current = catalog.current_images(["1"])["1"]
    assert (current.id, current.sha256) == (before.id, before.sha256)
    assert (current.variant_set, current.variant_count) == (FINGERPRINT, 4)
    for row in catalog.variants(current.id):
        assert service.bucket.get_blob(row.object_name) is not None
