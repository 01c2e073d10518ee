"""A real pipeline for Dagster-layer tests: Postgres catalog, GCS emulator, HTTP site."""

from __future__ import annotations

import functools
import html
import io
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from google.cloud import storage
from PIL import Image, ImageDraw
from sqlalchemy import text

from podpod_scraping.defs.assets import artist_images
from podpod_scraping.defs.batching import REFRESH_OP, RefreshBatchConfig, artist_refresh_job
from podpod_scraping.defs.metrics import MetricsResource
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource
from podpod_scraping.demo.site import FixtureServer, Route
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    insert_artists,
    make_engine,
)
from podpod_scraping_tests.fixtures.gcs import GCSEmulator
from podpod_scraping_tests.fixtures.postgres import PostgresServer, new_catalog


def make_jpeg(seed: int, size: tuple[int, int] = (400, 300)) -> bytes:
    """A deterministic photo-like JPEG (a gradient with shapes, never a flat placeholder)."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for x in range(size[0]):
        shade = (x * 255) // size[0]
        draw.line(
            [(x, 0), (x, size[1])], fill=((shade + seed * 40) % 256, (seed * 70) % 256, 255 - shade)
        )
    draw.ellipse(
        [size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], fill=((seed * 90) % 256, 30, 60)
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


#: The two entry points of the one refresh step: a run of the partitioned assets over a
#: range (UI backfills, the CLI, the sensor) and the batch refresh job (the schedule).
ENTRY_POINTS = ("assets", "batch")


@dataclass
class RunOutcome:
    """One run's result, read the same way whichever entry point ran it."""

    result: dg.ExecuteInProcessResult

    @property
    def success(self) -> bool:
        return self.result.success

    def _events(self, kind: str, asset: str) -> dict[str, Any]:
        key = dg.AssetKey(asset)
        found: dict[str, Any] = {}
        for event in self.result.all_events:
            if kind == "materialization" and event.is_step_materialization:
                data: Any = event.step_materialization_data.materialization
            elif kind == "observation" and event.event_type_value == "ASSET_OBSERVATION":
                data = event.asset_observation_data.asset_observation
            else:
                continue
            if data.asset_key == key:
                found[str(data.partition)] = data.metadata
        return found

    def materialized(self, asset: str = "artist_image") -> dict[str, Any]:
        """Partition → metadata of this run's materializations of ``asset``."""
        return self._events("materialization", asset)

    def observed(self, asset: str = "artist_image") -> dict[str, Any]:
        """Partition → metadata of this run's observations of ``asset``."""
        return self._events("observation", asset)

    def failure_description(self) -> str:
        """The step's failure message ('' when the run succeeded)."""
        for event in self.result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                return (error.message if error else "") + str(
                    event.step_failure_data.user_failure_data or ""
                )
        return ""


@dataclass
class Pipeline:
    """The production path on real services, driven in-process."""

    instance: dg.DagsterInstance
    resources: dict[str, Any]
    catalog_url: str
    bucket: storage.Bucket
    site: FixtureServer
    config_path: Path
    entry: str = "assets"
    versions: dict[int, int] = field(default_factory=dict)

    @property
    def repository(self) -> CatalogRepository:
        return CatalogRepository(make_engine(self.catalog_url))

    def add_artist(
        self,
        artist_id: int,
        name: str,
        *,
        image: bytes | None = None,
        page_status: int = 200,
        image_headers: dict[str, str] | None = None,
    ) -> None:
        """Put an artist in the catalog and its page (and image) on the site."""
        insert_artists(make_engine(self.catalog_url), [(artist_id, name)])
        self.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, [str(artist_id)])
        self.set_page(artist_id, image=image, page_status=page_status, image_headers=image_headers)

    def set_page(
        self,
        artist_id: int,
        *,
        image: bytes | None = None,
        page_status: int = 200,
        image_body: bytes | None = None,
        image_content_type: str = "image/jpeg",
        image_headers: dict[str, str] | None = None,
    ) -> None:
        """(Re)define the artist's page; ``image_body`` serves raw (possibly broken) bytes.

        ``image_headers`` are extra response headers of the image (e.g. ETag, Last-Modified).
        """
        # A new image URL per definition, as sites do when a photo changes.
        self.versions[artist_id] = self.versions.get(artist_id, 0) + 1
        img_path = self.image_path(artist_id)
        body = image if image_body is None else image_body
        if page_status != 200:
            self.site.add_route(f"/artists/{artist_id}", status=page_status, body=b"gone")
            return
        html = "<html><body><h1>artist</h1>"
        if body is not None:
            html += f'<img class="artist-image" src="..{img_path}" alt="photo">'
            headers = {"Content-Type": image_content_type} | (image_headers or {})
            self.site.add_route(img_path, body=body, headers=headers)
        html += "</body></html>"
        self.site.add_route(
            f"/artists/{artist_id}",
            body=html.encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    def image_path(self, artist_id: int) -> str:
        """Path of the image the artist's current page definition (``set_page``) shows."""
        return f"/images/{artist_id}-v{self.versions.get(artist_id, 0)}.jpg"

    def page_path(self, artist_id: int) -> str:
        return f"/artists/{artist_id}"

    def set_page_html(self, artist_id: int, body: str) -> None:
        """Serve ``body`` as the artist's page (any HTML, e.g. hostile ``src`` values)."""
        self.site.add_route(
            self.page_path(artist_id),
            body=body.encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    def set_image_src(self, artist_id: int, src: str) -> None:
        """Make the artist's page show ``<img class="artist-image" src=...>`` with this value."""
        self.set_page_html(
            artist_id,
            '<html><body><h1>artist</h1><img class="artist-image" '
            f'src="{html.escape(src, quote=True)}" alt="photo"></body></html>',
        )

    def redirect_page(self, artist_id: int, location: str, status: int = 302) -> None:
        """Make the artist's page redirect to ``location``."""
        self.site.add_route(
            self.page_path(artist_id), status=status, headers={"Location": location}
        )

    def configure(
        self,
        *,
        fetch: dict[str, Any] | None = None,
        images: dict[str, Any] | None = None,
        allow_hosts: Iterable[str] = (),
    ) -> None:
        """Change the scraper YAML file; every run reads it afresh (as production does).

        ``fetch``/``images`` settings are merged into their sections; ``allow_hosts``
        (``host:port``) are added to ``fetch.allowed_private_hosts``.
        """
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        fetch_section = config.setdefault("fetch", {})
        fetch_section.update(fetch or {})
        allowed = fetch_section.setdefault("allowed_private_hosts", [])
        allowed.extend(host for host in allow_hosts if host not in allowed)
        if images:
            config.setdefault("images", {}).update(images)
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    def run(self, keys: list[str], entry: str | None = None, *, force: bool = False) -> RunOutcome:
        """One run over ``keys`` through ``entry`` (default: this pipeline's entry point).

        ``assets``: exactly what a single-run backfill (or the CLI) runs over a partition
        range; ``batch``: exactly what the schedule's batch refresh job runs. ``force``:
        the run config a person gives to take the best image even if it is worse.
        """
        entry = entry or self.entry
        if entry == "batch":
            return RunOutcome(
                artist_refresh_job.execute_in_process(
                    run_config=dg.RunConfig(
                        ops={
                            REFRESH_OP: RefreshBatchConfig(
                                artist_ids=keys, reason="test", force=force
                            )
                        }
                    ),
                    instance=self.instance,
                    resources=self.resources,
                    raise_on_error=False,
                )
            )
        existing = list(self.instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
        ordered = [key for key in existing if key in set(keys)]
        assert ordered == existing[existing.index(ordered[0]) : existing.index(ordered[-1]) + 1], (
            "tests run contiguous partition ranges"
        )
        tags = (
            {"dagster/partition": ordered[0]}
            if len(ordered) == 1
            else {
                "dagster/asset_partition_range_start": ordered[0],
                "dagster/asset_partition_range_end": ordered[-1],
            }
        )
        return RunOutcome(
            dg.materialize(
                [artist_images],
                instance=self.instance,
                resources=self.resources,
                tags=tags,
                run_config={"ops": {"artist_images": {"config": {"force": force}}}},
                raise_on_error=False,
            )
        )

    def rows(self, artist_id: int) -> list[dict[str, Any]]:
        with make_engine(self.catalog_url).connect() as connection:
            result = connection.execute(
                text("SELECT * FROM artist_images WHERE artist_id = :id ORDER BY id"),
                {"id": artist_id},
            )
            return [dict(row._mapping) for row in result]

    def variant_rows(self, artist_id: int | None = None) -> list[dict[str, Any]]:
        """``artist_image_variants`` rows (of one artist's images, or all), in id order."""
        query = text(
            "SELECT v.* FROM artist_image_variants v JOIN artist_images i ON i.id = v.image_id"
            " WHERE :id IS NULL OR i.artist_id = :id ORDER BY v.id"
        )
        with make_engine(self.catalog_url).connect() as connection:
            result = connection.execute(query, {"id": artist_id})
            return [dict(row._mapping) for row in result]

    def state(self, artist_id: int) -> dict[str, Any]:
        with make_engine(self.catalog_url).connect() as connection:
            row = connection.execute(
                text("SELECT * FROM artist_scrape_state WHERE artist_id = :id"), {"id": artist_id}
            ).first()
            assert row is not None, f"artist {artist_id} has no scrape state"
            return dict(row._mapping)

    def blobs(self, prefix: str = "artists/") -> dict[str, storage.Blob]:
        return {
            blob.name: blob for blob in self.bucket.client.list_blobs(self.bucket, prefix=prefix)
        }


class ScriptedFixtureServer(FixtureServer):
    """A FixtureServer whose paths can answer a script first (e.g. 503, then the route)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._scripts: dict[str, list[Route]] = {}

    def script(self, path: str, first: Sequence[Route]) -> None:
        """Answer the next ``len(first)`` hits of ``path`` with these, then its route."""
        with self._lock:
            self._scripts[path] = list(first)

    def _record(self, path: str, headers: dict[str, str]) -> Route | None:
        route = super()._record(path, headers)
        with self._lock:
            pending = self._scripts.get(path)
            return pending.pop(0) if pending else route


@contextmanager
def open_pipeline(
    *,
    catalog_url: str,
    bucket: storage.Bucket,
    site: FixtureServer,
    workdir: Path,
    concurrency: int = 4,
    entry: str = "assets",
    dagster_home: Path | None = None,
) -> Iterator[Pipeline]:
    """The pipeline's resources over a catalog, a bucket and a site, with its own instance
    (a test instance, or the instance of ``dagster_home`` for tests that start servers).

    ``STORAGE_EMULATOR_HOST`` must already point at the emulator.
    """
    port = site.port
    config_path = workdir / "scraper.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "name": "fixture-site",
                        "page_url": f"http://127.0.0.1:{port}/artists/{{id}}",
                        "selector": "img.artist-image",
                        "license": "CC-BY-4.0",
                    }
                ],
                "fetch": {
                    "allowed_private_hosts": [f"127.0.0.1:{port}"],
                    "per_host_min_interval": 0.0,
                    "per_host_concurrency": 4,
                    "max_attempts": 1,
                },
                "refresh": {"concurrency": concurrency},
            }
        )
    )
    objects = ObjectStoreResource(url=f"gs://{bucket.name}")
    catalog = CatalogResource(url=catalog_url)
    resources = {
        "catalog": catalog,
        "objects": objects,
        "scraper": ScraperResource(config_path=str(config_path)),
        "metrics": MetricsResource(),  # no push; tests that want one set a Pushgateway
    }
    opened = (
        dg.DagsterInstance.from_config(str(dagster_home))
        if dagster_home is not None
        else dg.instance_for_test()
    )
    with opened as instance:
        yield Pipeline(
            instance=instance,
            resources=resources,
            catalog_url=catalog_url,
            bucket=bucket,
            site=site,
            config_path=config_path,
            entry=entry,
        )


@pytest.fixture
def pipeline_on(
    catalog_url: str,
    gcs_bucket: storage.Bucket,
    gcs_emulator: Any,
    fixture_server: FixtureServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., AbstractContextManager[Pipeline]]:
    """``open_pipeline`` over the test's catalog, bucket and site (emulator host set);
    call it with the remaining options (``entry``, ``dagster_home``)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    return functools.partial(
        open_pipeline,
        catalog_url=catalog_url,
        bucket=gcs_bucket,
        site=fixture_server,
        workdir=tmp_path,
    )


@pytest.fixture(params=ENTRY_POINTS)
def pipeline(
    pipeline_on: Callable[..., AbstractContextManager[Pipeline]], request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    """The pipeline, once per entry point (the asset range run and the batch job)."""
    with pipeline_on(entry=request.param) as opened:
        yield opened


@contextmanager
def standalone_pipeline(
    postgres_server: PostgresServer,
    gcs_emulator: GCSEmulator,
    site: FixtureServer,
    workdir: Path,
    *,
    concurrency: int = 4,
    entry: str = "assets",
) -> Iterator[Pipeline]:
    """A pipeline on its own new catalog database and bucket, for module-scoped scenarios
    (the ``pipeline`` fixture is per test)."""
    with new_catalog(postgres_server) as catalog_url, pytest.MonkeyPatch.context() as patch:
        bucket = gcs_emulator.client().create_bucket(f"test-{uuid.uuid4().hex[:20]}")
        patch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
        with open_pipeline(
            catalog_url=catalog_url,
            bucket=bucket,
            site=site,
            workdir=workdir,
            concurrency=concurrency,
            entry=entry,
        ) as opened:
            yield opened


@pytest.fixture(autouse=True)
def _finalize_instances_between_tests(finalize_dagster_instances: None) -> None:
    """Every test here creates Dagster instances; see ``fixtures/dagster.py``."""
