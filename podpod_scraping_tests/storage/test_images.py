"""The refresh service over its production storage: Postgres catalog, GCS emulator, HTTP site.

These pin what a retried step relies on (a batch id never records an artist twice) and
what a storage fault for one artist must not do (stop or corrupt the others).
"""

from __future__ import annotations

from typing import Any

from google.cloud import storage

from podpod_scraping.core.images import normalize_image
from podpod_scraping.core.refresh import ArtistStatus
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.demo.site import FixtureServer
from podpod_scraping.storage.catalog.repository import CatalogRepository, insert_artists
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping_tests.defs.conftest import make_jpeg
from podpod_scraping_tests.storage.conftest import POLICY, refresh, serve


def test_a_batch_id_never_records_an_artist_twice(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
) -> None:
    insert_artists(catalog.engine, [(1, "Nell"), (2, "Gone")])
    serve(fixture_server, 1, make_jpeg(1))
    serve(fixture_server, 2, None)
    first = refresh(store, scraper, ["1", "2"], batch_id="run-1")
    assert {k: r.status for k, r in first.items()} == {
        "1": ArtistStatus.SUCCEEDED,
        "2": ArtistStatus.FAILED,
    }
    hits = dict(fixture_server.hits)

    retried = refresh(store, scraper, ["1", "2"], batch_id="run-1")  # a retried step

    assert {k: r.status for k, r in retried.items()} == {
        "1": ArtistStatus.ALREADY_DONE,
        "2": ArtistStatus.ALREADY_DONE,
    }
    assert retried["2"].outcome is not None
    assert retried["2"].outcome.value == "page_not_found"
    assert dict(fixture_server.hits) == hits  # nothing fetched again
    assert catalog.scrape_states(["2"])["2"].consecutive_failures == 1  # backoff unchanged

    refresh(store, scraper, ["2"], batch_id="run-2")  # the next run is a new attempt
    assert catalog.scrape_states(["2"])["2"].consecutive_failures == 2


def test_a_storage_failure_for_one_artist_leaves_the_others_published(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
    gcs_bucket: storage.Bucket,
) -> None:
    insert_artists(catalog.engine, [(1, "Blocked"), (2, "Fine")])
    serve(fixture_server, 1, make_jpeg(1))
    serve(fixture_server, 2, make_jpeg(2))
    # Other bytes already sit at artist 1's published name: a write-once conflict.
    published = normalize_image(make_jpeg(1), POLICY)
    gcs_bucket.blob(f"artists/1/{published.sha256}.jpg").upload_from_string(b"not the image")

    reports = refresh(store, scraper, ["1", "2"], batch_id="run-1")

    assert reports["1"].status is ArtistStatus.STORAGE_FAILED
    assert "already exists with different bytes" in (reports["1"].error or "")
    assert not reports["1"].storage_transient  # no retry overwrites it: a person must look
    assert reports["2"].status is ArtistStatus.SUCCEEDED
    assert "1" not in catalog.scrape_states(["1"])  # nothing recorded: the retry redoes it
    assert "1" not in catalog.current_images(["1"])
    current: Any = catalog.current_images(["2"])["2"]
    assert gcs_bucket.get_blob(current.object_name) is not None
