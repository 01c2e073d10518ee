"""Takedowns over production storage (Postgres, GCS emulator) and the real refresh path.

A takedown must delete the objects, keep the rows (marked, with the reason), switch the
current image to the next one or to none, and never bring the image back on a refresh.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from google.cloud import storage

from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.refresh import ArtistReport, ArtistStatus, refresh_artists
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.demo.server import FixtureServer
from podpod_scraping.storage.catalog.repository import CatalogRepository, insert_artists
from podpod_scraping.storage.images import CatalogImageStore, original_object_name
from podpod_scraping_tests.defs.conftest import make_jpeg

POLICY = ImagePolicy()


def _serve(site: FixtureServer, artist_id: int, image_name: str, image: bytes) -> None:
    site.add_route(f"/images/{image_name}", body=image, headers={"Content-Type": "image/jpeg"})
    site.add_route(
        f"/artists/{artist_id}",
        body=f'<img class="artist-image" src="/images/{image_name}">',
        headers={"Content-Type": "text/html"},
    )


def _refresh(
    store: CatalogImageStore, scraper: ArtistImageScraper, artist_id: str, batch_id: str
) -> ArtistReport:
    (report,) = refresh_artists(
        [artist_id], store=store, scraper=scraper, images=POLICY, batch_id=batch_id
    )
    return report


def _rows(catalog: CatalogRepository) -> list[tuple[str, bool, str | None]]:
    with catalog.engine.connect() as connection:
        return [
            (row.sha256, bool(row.is_current), row.takedown_reason)
            for row in connection.execute(
                sa.text("SELECT sha256, is_current, takedown_reason FROM artist_images ORDER BY id")
            )
        ]


@pytest.fixture
def two_images(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
) -> tuple[ArtistReport, ArtistReport]:
    """Artist 1 published image A, then image B from another URL (B is current)."""
    insert_artists(catalog.engine, [(1, "Nell")])
    _serve(fixture_server, 1, "a.jpg", make_jpeg(1))
    first = _refresh(store, scraper, "1", "run-1")
    _serve(fixture_server, 1, "b.jpg", make_jpeg(2))
    second = _refresh(store, scraper, "1", "run-2")
    assert first.status is second.status is ArtistStatus.SUCCEEDED
    assert second.switched
    return first, second


def test_taking_down_the_current_image_deletes_its_objects_and_restores_the_previous(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    gcs_bucket: storage.Bucket,
    two_images: tuple[ArtistReport, ArtistReport],
) -> None:
    first, second = two_images
    assert first.current is not None
    assert second.current is not None
    taken = second.current

    report = store.take_down("1", reason="photographer asked")

    assert report.record.switched
    assert report.record.current is not None
    assert report.record.current.sha256 == first.current.sha256
    assert gcs_bucket.get_blob(f"artists/1/{taken.sha256}.jpg") is None
    assert taken.source_sha256 is not None
    original = original_object_name("1", taken.source_sha256, "image/jpeg")
    assert gcs_bucket.get_blob(original) is None
    variants = [blob.name for blob in gcs_bucket.list_blobs(prefix=f"artists/1/{taken.sha256}/")]
    assert variants == []  # every variant of every set is gone too
    assert {f"artists/1/{taken.sha256}.jpg", original} < set(report.deleted_objects)
    assert any(f"artists/1/{taken.sha256}/" in name for name in report.deleted_objects)
    # The rows stay, the taken-down one marked with its reason; the other is current.
    assert _rows(catalog) == [
        (first.current.sha256, True, None),
        (taken.sha256, False, "photographer asked"),
    ]
    assert gcs_bucket.get_blob(f"artists/1/{first.current.sha256}.jpg") is not None


def test_a_takedown_twice_changes_nothing_the_second_time(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    two_images: tuple[ArtistReport, ArtistReport],
) -> None:
    _, second = two_images
    assert second.current is not None
    store.take_down("1", reason="first request", sha256=second.current.sha256)
    rows = _rows(catalog)

    again = store.take_down("1", reason="second request", sha256=second.current.sha256)

    assert [taken.newly for taken in again.record.images] == [False]
    assert again.deleted_objects == ()
    assert not again.record.switched
    assert _rows(catalog) == rows  # the first reason is kept


def test_taking_down_every_image_leaves_no_current_image(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    two_images: tuple[ArtistReport, ArtistReport],
) -> None:
    report = store.take_down("1", reason="artist's request", every=True)

    assert report.record.current is None
    assert catalog.current_images(["1"]) == {}
    assert [reason for _, _, reason in _rows(catalog)] == ["artist's request"] * 2


def test_a_refresh_after_a_takedown_never_fetches_the_image_again(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
    gcs_bucket: storage.Bucket,
    two_images: tuple[ArtistReport, ArtistReport],
) -> None:
    _, second = two_images
    assert second.current is not None
    store.take_down("1", reason="photographer asked")
    fixture_server.reset_hits()

    report = _refresh(store, scraper, "1", "run-3")

    assert fixture_server.hits["/images/b.jpg"] == 0
    assert report.current is not None
    assert report.current.sha256 != second.current.sha256
    assert gcs_bucket.get_blob(f"artists/1/{second.current.sha256}.jpg") is None


def test_taking_down_an_unknown_image_says_so(
    store: CatalogImageStore, two_images: tuple[ArtistReport, ArtistReport]
) -> None:
    with pytest.raises(LookupError, match=r"no image f{64}"):
        store.take_down("1", reason="typo", sha256="f" * 64)


def test_the_same_bytes_from_another_url_are_not_published_again(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
    gcs_bucket: storage.Bucket,
    two_images: tuple[ArtistReport, ArtistReport],
) -> None:
    _, second = two_images
    assert second.current is not None
    store.take_down("1", reason="photographer asked")
    _serve(fixture_server, 1, "b-copy.jpg", make_jpeg(2))  # a re-upload of image B

    report = _refresh(store, scraper, "1", "run-3")

    assert report.status is ArtistStatus.FAILED
    assert "taken down" in report.reason
    assert gcs_bucket.get_blob(f"artists/1/{second.current.sha256}.jpg") is None
    assert catalog.current_images(["1"])["1"].sha256 != second.current.sha256
