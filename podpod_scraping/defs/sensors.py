"""The catalog sensor: partitions follow the catalog, new artists get an image in minutes."""

import json
import time

import dagster as dg

from podpod_scraping.defs.batching import artist_refresh_job, batches, refresh_run_requests
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME, artist_partitions
from podpod_scraping.defs.resources import CatalogResource, ScraperResource

#: At most this many runs per tick; the rest waits for the next tick (the cursor says where).
MAX_RUNS_PER_TICK = 50


def _cursor_id(cursor: str | None) -> int:
    return int(json.loads(cursor)["requested_through"]) if cursor else 0


@dg.sensor(
    name="artist_catalog_sensor",
    target=artist_refresh_job,
    minimum_interval_seconds=60,
    description=(
        "Adds a partition per new catalog artist, deletes partitions of removed artists, and "
        "requests a first scrape of never-attempted artists in batches."
    ),
)
def artist_catalog_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, scraper: ScraperResource
) -> dg.SensorResult:
    """Sync ``artists`` partitions with the catalog and request never-scraped artists.

    Two set differences over ids (one SQL query, one partitions query) keep it fast at
    catalog scale. Removed artists lose their partition only: their published objects and
    rows stay, and the main API stops listing them because it no longer has the artist.
    The cursor holds the highest id already requested, so a slow first run is not
    requested twice; an artist whose first run failed is picked up by the schedule.
    """
    started = time.monotonic()
    repository = catalog.repository()
    catalog_ids = repository.all_artist_ids()
    in_catalog = set(catalog_ids)
    partitions = set(context.instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
    added = [key for key in catalog_ids if key not in partitions]
    removed = sorted(partitions - in_catalog)

    requested_through = _cursor_id(context.cursor)
    never = [key for key in repository.never_attempted_artist_ids() if int(key) > requested_through]
    batch_size = scraper.load_config().refresh.batch_size
    chosen = [key for batch in batches(never, batch_size)[:MAX_RUNS_PER_TICK] for key in batch]
    requests = refresh_run_requests(
        chosen, batch_size=batch_size, reason="new-artist", run_key_prefix="new-artist"
    )
    if chosen:
        requested_through = max(requested_through, int(chosen[-1]))

    partition_requests: list[
        dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest
    ] = []
    if added:
        partition_requests.append(artist_partitions.build_add_request(added))
    if removed:
        partition_requests.append(artist_partitions.build_delete_request(removed))
    context.log.info(
        f"catalog {len(catalog_ids)} artists; +{len(added)} / -{len(removed)} partitions; "
        f"{len(chosen)} new artist(s) in {len(requests)} run(s); "
        f"{time.monotonic() - started:.2f}s"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps({"requested_through": requested_through}),
        skip_reason=None if (requests or partition_requests) else "catalog and partitions in sync",
    )
