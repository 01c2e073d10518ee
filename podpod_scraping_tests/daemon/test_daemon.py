"""Unattended operation under the real dagster-daemon, on production-style storage.

A throw-away Postgres holds both the catalog and Dagster's own storage (the repo's
dagster.yaml: Postgres storage, queued runs, pools); the GCS emulator holds the images; the
HTTP fixture site serves the artists. The daemon loads the repo's workspace.yaml. The sensor
must give every new artist an image; the schedule must refresh exactly the stale ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from google.cloud import storage
from sqlalchemy import text

from podpod_scraping.defs.batching import REFRESH_OP
from podpod_scraping.demo.site import FixtureServer
from podpod_scraping.storage.catalog.repository import insert_artists, make_engine
from podpod_scraping_tests.defs.conftest import make_jpeg
from podpod_scraping_tests.fixtures.postgres import PostgresServer
from podpod_scraping_tests.fixtures.processes import instance_env, process_group, wait_until

pytestmark = pytest.mark.daemon

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Deployment:
    env: dict[str, str]
    catalog_url: str
    bucket: storage.Bucket
    log: Path

    def dagster(self, *args: str) -> None:
        subprocess.run(
            [BIN / "dagster", *args, "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=180,
        )

    def current_images(self) -> dict[int, tuple[str, datetime]]:
        with make_engine(self.catalog_url).connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT artist_id, object_name, scraped_at FROM artist_images "
                    "WHERE is_current ORDER BY artist_id"
                )
            )
            return {int(r.artist_id): (r.object_name, r.scraped_at) for r in rows}

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def schedule_batches(self) -> list[tuple[list[str], dg.DagsterRunStatus]]:
        with self.instance() as instance:
            runs = instance.get_runs(
                filters=dg.RunsFilter(tags={"dagster/schedule_name": "artist_refresh_schedule"})
            )
            batches = []
            for run in runs:
                config: Any = run.run_config
                batches.append(
                    (list(config["ops"][REFRESH_OP]["config"]["artist_ids"]), run.status)
                )
            return batches


@pytest.fixture
def deployment(
    postgres_server: PostgresServer,
    catalog_url: str,
    gcs_emulator: Any,
    gcs_bucket: storage.Bucket,
    fixture_server: FixtureServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    dagster_db = postgres_server.create_database("dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    config = tmp_path / "scraper.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "name": "fixture-site",
                        "page_url": f"{fixture_server.base_url}/artists/{{id}}",
                        "selector": "img.artist-image",
                    }
                ],
                "fetch": {
                    "allowed_private_hosts": [f"127.0.0.1:{fixture_server.port}"],
                    "per_host_min_interval": 0.0,
                    "max_attempts": 1,
                },
                "refresh": {"batch_size": 2},
            }
        )
    )
    env = instance_env(postgres_server, dagster_db, home) | {
        "PODPOD_CATALOG_URL": catalog_url,
        "PODPOD_OBJECT_STORE_URL": f"gs://{gcs_bucket.name}",
        "PODPOD_SCRAPER_CONFIG": str(config),
        "PODPOD_REFRESH_CRON": "* * * * *",
        "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint,
    }
    for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(key, env[key])  # for this process's view of the same instance
    monkeypatch.setenv("DAGSTER_PG_DB", dagster_db)
    log = tmp_path / "daemon.log"
    daemon = [BIN / "dagster-daemon", "run", "-w", REPO / "workspace.yaml"]
    try:
        # The daemon, its code server and run workers share its process group.
        with process_group(daemon, env=env, log=log, cwd=REPO):
            yield Deployment(env=env, catalog_url=catalog_url, bucket=gcs_bucket, log=log)
    finally:
        postgres_server.drop_database(dagster_db)


def test_sensor_scrapes_new_artists_and_schedule_refreshes_exactly_the_stale(
    deployment: Deployment, fixture_server: FixtureServer
) -> None:
    artists = list(range(1, 6))
    for artist_id in artists:
        page = f'<html><img class="artist-image" src="/img/{artist_id}.jpg"></html>'
        fixture_server.add_route(
            f"/artists/{artist_id}", body=page, headers={"Content-Type": "text/html"}
        )
        fixture_server.add_route(
            f"/img/{artist_id}.jpg",
            body=make_jpeg(artist_id),
            headers={"Content-Type": "image/jpeg"},
        )
    insert_artists(make_engine(deployment.catalog_url), [(i, f"Artist {i}") for i in artists])

    deployment.dagster("sensor", "start", "artist_catalog_sensor")

    def all_scraped() -> dict[int, tuple[str, datetime]] | None:
        images = deployment.current_images()
        return images if len(images) == len(artists) else None

    first = wait_until(
        "every artist to have a current image", all_scraped, timeout=300, logs=[deployment.log]
    )
    for object_name, _ in first.values():
        assert deployment.bucket.blob(object_name).exists()

    stale = [2, 4]
    with make_engine(deployment.catalog_url).begin() as connection:
        connection.execute(
            text("UPDATE artist_images SET scraped_at = :old WHERE artist_id = ANY(:ids)"),
            {"old": datetime.now(UTC) - timedelta(days=40), "ids": stale},
        )
    before = deployment.current_images()
    deployment.dagster("schedule", "start", "artist_refresh_schedule")

    def refreshed() -> dict[int, tuple[str, datetime]] | None:
        images = deployment.current_images()
        done = all(images[i][1] > before[i][1] for i in stale)
        batches = deployment.schedule_batches()
        finished = batches and all(status == dg.DagsterRunStatus.SUCCESS for _, status in batches)
        return images if done and finished else None

    after = wait_until(
        "the stale artists to be refreshed", refreshed, timeout=300, logs=[deployment.log]
    )

    requested = sorted(int(key) for keys, _ in deployment.schedule_batches() for key in keys)
    assert requested == stale
    for artist_id in set(artists) - set(stale):
        assert after[artist_id] == before[artist_id]
