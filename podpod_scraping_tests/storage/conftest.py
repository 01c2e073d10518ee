"""The refresh service's production storage for these tests: Postgres, GCS emulator, a site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.cloud import storage

from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.core.sources import SourceConfig
from podpod_scraping.demo.server import FixtureServer
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
