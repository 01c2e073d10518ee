"""The refresh service over its production storage: the fixtures and helpers of these tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google.cloud import storage

from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.refresh import ArtistReport, refresh_artists
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.core.sources import SourceConfig
from podpod_scraping.demo.site import FixtureServer
from podpod_scraping.storage.catalog.repository import CatalogRepository
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping.storage.objects import GCSObjectStore

POLICY = ImagePolicy()


@pytest.fixture
def store(catalog: CatalogRepository, gcs_bucket: storage.Bucket) -> CatalogImageStore:
    return CatalogImageStore(
        GCSObjectStore(str(gcs_bucket.name), client=gcs_bucket.client), catalog
    )


@pytest.fixture
def scraper(fixture_server: FixtureServer) -> Iterator[ArtistImageScraper]:
    source = SourceConfig(
        name="site",
        page_url=f"{fixture_server.base_url}/artists/{{id}}",
        selector="img.artist-image",
    )
    policy = FetchPolicy(
        allowed_private_hosts=frozenset({f"127.0.0.1:{fixture_server.port}"}),
        per_host_min_interval=0.0,
        max_attempts=1,
    )
    with Fetcher(policy) as fetcher:
        yield ArtistImageScraper([source], fetcher, POLICY)


def serve(site: FixtureServer, artist_id: int, image: bytes | None) -> None:
    """Artist ``artist_id``'s page and image on the fixture site (a 404 page for None)."""
    if image is None:
        site.add_route(f"/artists/{artist_id}", status=404, body=b"gone")
        return
    site.add_route(f"/images/{artist_id}.jpg", body=image, headers={"Content-Type": "image/jpeg"})
    site.add_route(
        f"/artists/{artist_id}",
        body=f'<img class="artist-image" src="/images/{artist_id}.jpg">',
        headers={"Content-Type": "text/html"},
    )


def refresh(
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    ids: list[str],
    batch_id: str,
    images: ImagePolicy = POLICY,
) -> dict[str, ArtistReport]:
    """One batch through the refresh service; its reports by artist id."""
    reports = refresh_artists(ids, store=store, scraper=scraper, images=images, batch_id=batch_id)
    return {report.artist_id: report for report in reports}


@dataclass(frozen=True)
class Service:
    """The refresh service's real surroundings: catalog, store, scraper, site and bucket."""

    catalog: CatalogRepository
    store: CatalogImageStore
    scraper: ArtistImageScraper
    site: FixtureServer
    bucket: storage.Bucket

    def refresh(
        self, ids: list[str], batch_id: str, images: ImagePolicy = POLICY
    ) -> dict[str, ArtistReport]:
        return refresh(self.store, self.scraper, ids, batch_id, images)


@pytest.fixture
def service(
    catalog: CatalogRepository,
    store: CatalogImageStore,
    scraper: ArtistImageScraper,
    fixture_server: FixtureServer,
    gcs_bucket: storage.Bucket,
) -> Service:
    return Service(catalog, store, scraper, fixture_server, gcs_bucket)
