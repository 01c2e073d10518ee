"""Dagster resources: the catalog database, the object store and the scraper.

Each is configured by ``dg.EnvVar`` in ``definitions.py`` (never read at import time) and
hands the plain-Python layers what they need, created once per process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
from pydantic import Field

from podpod_scraping.core.config import ScraperConfig, load_scraper_config
from podpod_scraping.core.fetching import Fetcher, RequestObserver
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.storage.catalog.repository import CatalogRepository, make_engine
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping.storage.objects import (
    GCS_PUBLIC_BASE_URL,
    GCSObjectStore,
    LocalObjectStore,
    ObjectStore,
    ObjectStoreError,
)
from podpod_scraping.storage.variant_sets import variant_writer


@cache
def _repository(url: str) -> CatalogRepository:
    # One engine (and connection pool) per database URL per process.
    return CatalogRepository(make_engine(url))


class CatalogResource(dg.ConfigurableResource):
    """The catalog database: the main API's ``artists`` table and the tables we own."""

    url: str = Field(
        description=(
            "SQLAlchemy URL of the catalog, e.g. postgresql+psycopg2://user@host/db "
            "(production) or sqlite:///path/catalog.db (embedded default)."
        )
    )

    def repository(self) -> CatalogRepository:
        return _repository(self.url)

    def image_store(
        self, objects: ObjectStoreResource, config: ScraperConfig, *, force: bool = False
    ) -> CatalogImageStore:
        """Where the refresh service reads its artists and writes images and rows; the
        caller closes it (its variant writer's worker processes)."""
        store = objects.store()
        return CatalogImageStore(
            store,
            self.repository(),
            columns=config.catalog,
            identity=config.identity,
            force=force,
            variant_writer=variant_writer(store, config.refresh.variant_processes),
        )


class ObjectStoreResource(dg.ConfigurableResource):
    """Where image objects live: a GCS bucket in production, a local folder by default."""

    url: str = Field(
        description="gs://<bucket> for Google Cloud Storage, or a local directory path.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base of public URLs (a CDN in front of the bucket); defaults per backend.",
    )
    gcs_project: str | None = Field(
        default=None, description="GCP project of the bucket (default: the credentials' project)."
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds one GCS request may take (one object: seconds, not minutes).",
    )
    retry_deadline_s: float = Field(
        default=15.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Seconds one object operation may spend retrying transient GCS errors before "
            "the artist fails in storage (the batch stops after a few such artists)."
        ),
    )

    def store(self) -> ObjectStore:
        parsed = urlparse(self.url)
        if parsed.scheme == "gs":
            if not parsed.netloc or parsed.path not in ("", "/"):
                raise ValueError(f"object store URL must be gs://<bucket>, got {self.url!r}")
            # Deferred: dagster_gcp imports BigQuery & co. (seconds), only GCS runs need it.
            from dagster_gcp import GCSResource
            from google.auth.exceptions import GoogleAuthError

            try:
                client = GCSResource(project=self.gcs_project).get_client()
            except GoogleAuthError as error:
                raise ObjectStoreError(
                    f"no Google credentials for {self.url}: {error} (set "
                    "GOOGLE_APPLICATION_CREDENTIALS, use Workload Identity, or set "
                    "STORAGE_EMULATOR_HOST for the emulator)",
                    transient=False,
                ) from error
            return GCSObjectStore(
                parsed.netloc,
                client=client,
                public_base_url=self.public_base_url or GCS_PUBLIC_BASE_URL,
                request_timeout=self.request_timeout_s,
                retry_deadline=self.retry_deadline_s,
            )
        if parsed.scheme in ("", "file"):
            root = Path(parsed.path if parsed.scheme == "file" else self.url).expanduser()
            return LocalObjectStore(root, public_base_url=self.public_base_url)
        raise ValueError(f"unsupported object store URL {self.url!r}: use gs://bucket or a path")


class ScraperResource(dg.ConfigurableResource):
    """The configured sources and the fetch, image and refresh policies (one YAML file).

    Concurrency and batch size are in the file (``refresh``), so every entry point (UI,
    CLI, sensor, schedule) runs with the same settings without any run config.
    """

    config_path: str = Field(
        description="Path of the scraper YAML file (sources, fetch, images, refresh)."
    )

    def load_config(self) -> ScraperConfig:
        return load_scraper_config(self.config_path)

    @contextmanager
    def scraper(
        self, config: ScraperConfig, observer: RequestObserver | None = None
    ) -> Iterator[ArtistImageScraper]:
        """A scraper with a fresh fetcher (robots and rate-limit state) for one run;
        ``observer`` is told about every HTTP attempt (the run's metrics)."""
        with Fetcher(config.fetch, observer=observer) as fetcher:
            yield ArtistImageScraper(config.sources, fetcher, config.images, ranking=config.ranking)
