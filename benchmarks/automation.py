"""Sensor and schedule at catalog scale: prints numbers, asserts nothing.

    uv run python -m benchmarks.automation [--artists 100000] [--stale 1000]

Starts a throw-away PostgreSQL (catalog + Dagster storage, as in production), fills the
catalog, then times:
- the catalog sensor's first tick (every artist new) and a steady-state tick;
- adding every artist as a dynamic partition (what the first tick's result asks Dagster);
- the staleness schedule's tick with ``--stale`` scattered stale artists, and how many
  runs it launches (vs. the contiguous partition ranges Dagster's own backfills would need).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml
from sqlalchemy import text

from podpod_scraping.defs.batching import REFRESH_OP
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping.defs.resources import CatalogResource, ScraperResource
from podpod_scraping.defs.schedules import build_refresh_schedule
from podpod_scraping.defs.sensors import artist_catalog_sensor
from podpod_scraping.storage.catalog.migrate import upgrade
from podpod_scraping.storage.catalog.repository import create_artists_table, make_engine
from podpod_scraping_tests.fixtures.postgres import running_postgres


def _fill(url: str, artists: int, stale: set[int], now: datetime) -> None:
    engine = make_engine(url)
    create_artists_table(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO artists (id, name, created_at, updated_at) "
                "SELECT g, 'Artist ' || g, now(), now() FROM generate_series(1, :n) AS g"
            ),
            {"n": artists},
        )
    engine.dispose()


def _scrape_everyone(url: str, artists: int, stale: set[int], now: datetime) -> None:
    """Every artist has a current image and a success state; ``stale`` ones are 40 days old."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO artist_images (artist_id, object_name, object_uri, public_url, "
                "sha256, width, height, content_type, byte_size, source_name, source_page_url, "
                "source_image_url, scraped_at, created_at, is_current) "
                "SELECT g, 'artists/' || g || '/x.jpg', 'gs://b/x', 'https://x', "
                "lpad(to_hex(g), 64, '0'), 400, 400, 'image/jpeg', 1000, 's', 'http://p', "
                "'http://i', CASE WHEN g = ANY(:stale) THEN :old ELSE :fresh END, :fresh, true "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": artists, "stale": sorted(stale), "old": now - timedelta(days=40), "fresh": now},
        )
        connection.execute(
            text(
                "INSERT INTO artist_scrape_state (artist_id, last_attempt_at, last_outcome, "
                "last_reason, consecutive_failures, last_success_at) "
                "SELECT g, :fresh, 'found', 'ok', 0, :fresh FROM generate_series(1, :n) AS g"
            ),
            {"n": artists, "fresh": now},
        )
    engine.dispose()


def _contiguous_ranges(keys: list[int]) -> int:
    ranges, previous = 0, None
    for key in sorted(keys):
        if previous is None or key != previous + 1:
            ranges += 1
        previous = key
    return ranges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artists", type=int, default=100_000)
    parser.add_argument("--stale", type=int, default=1_000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    stale = set(random.Random(7).sample(range(1, args.artists + 1), args.stale))

    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        catalog_db, dagster_db = server.create_database("bench"), server.create_database("dag")
        url = server.url(catalog_db)
        upgrade(url)
        _fill(url, args.artists, stale, now)
        config = Path(tmp) / "scraper.yaml"
        config.write_text(
            yaml.safe_dump(
                {"sources": [{"name": "s", "page_url": "https://x/{id}", "selector": "img"}]}
            )
        )
        resources = {
            "catalog": CatalogResource(url=url),
            "scraper": ScraperResource(config_path=str(config)),
        }
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text(
            yaml.safe_dump(
                {
                    "storage": {"postgres": {"postgres_url": server.url(dagster_db)}},
                    "telemetry": {"enabled": False},
                }
            )
        )
        with dg.DagsterInstance.from_config(str(home)) as instance:
            print(f"catalog: {args.artists:,} artists in PostgreSQL")

            started = time.perf_counter()
            with dg.build_sensor_context(instance=instance, resources=resources) as context:
                first = artist_catalog_sensor(context)
            first_tick = time.perf_counter() - started
            assert isinstance(first, dg.SensorResult)
            adds = [
                r
                for r in first.dynamic_partitions_requests or []
                if isinstance(r, dg.AddDynamicPartitionsRequest)
            ]
            print(
                f"sensor first tick (all new): {first_tick:.2f} s, "
                f"{sum(len(r.partition_keys) for r in adds):,} partitions to add, "
                f"{len(first.run_requests or [])} runs requested (capped per tick)"
            )

            started = time.perf_counter()
            for request in adds:
                instance.add_dynamic_partitions(
                    ARTISTS_PARTITION_NAME, list(request.partition_keys)
                )
            print(
                f"adding {args.artists:,} dynamic partitions: {time.perf_counter() - started:.2f} s"
            )

            _scrape_everyone(url, args.artists, stale, now)
            started = time.perf_counter()
            with dg.build_sensor_context(
                instance=instance, resources=resources, cursor=first.cursor
            ) as context:
                steady = artist_catalog_sensor(context)
            assert isinstance(steady, dg.SensorResult)
            print(
                f"sensor steady tick ({args.artists:,} artists, in sync): "
                f"{time.perf_counter() - started:.2f} s, {len(steady.run_requests or [])} runs"
            )

            schedule = build_refresh_schedule()
            started = time.perf_counter()
            with dg.build_schedule_context(
                instance=instance, resources=resources, scheduled_execution_time=now
            ) as context:
                data = schedule.evaluate_tick(context)
            elapsed = time.perf_counter() - started
            requests = data.run_requests or []
            requested = {
                int(k)
                for r in requests
                for k in r.run_config["ops"][REFRESH_OP]["config"]["artist_ids"]
            }
            print(
                f"schedule tick with {args.stale:,} scattered stale artists: {elapsed:.2f} s, "
                f"{len(requests)} runs for {len(requested):,} artists "
                f"(exactly the stale set: {requested == stale}); contiguous partition ranges "
                f"would need {_contiguous_ranges(sorted(stale))} runs"
            )


if __name__ == "__main__":
    main()
