"""The catalog sensor: partitions follow the catalog, new artists get an image in minutes."""

import time

import dagster as dg

from podpod_scraping.defs.batching import range_run_requests
from podpod_scraping.defs.jobs import artist_images_job
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME, artist_partitions
from podpod_scraping.defs.resources import CatalogResource, ScraperResource

#: At most this many runs per tick; the rest of the new artists wait for the schedule.
MAX_RUNS_PER_TICK = 50


@dg.sensor(
    name="artist_catalog_sensor",
    target=artist_images_job,
    minimum_interval_seconds=60,
    description=(
        "Adds a partition per new catalog artist, deletes partitions of removed artists, and "
        "requests a first scrape of the new artists as partition-range runs."
    ),
)
def artist_catalog_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, scraper: ScraperResource
) -> dg.SensorResult:
    """Sync ``artists`` partitions with the catalog and scrape the artists it adds.

    Two set differences over ids (one SQL query, one partitions query) keep it fast at
    catalog scale. The artists added in one tick are appended to the partitions in one
    request, so they are contiguous in partition order: their first scrape is a few
    partition-range runs of ``refresh.batch_size`` artists, exactly like a UI backfill
    (their failures show as Failed partitions). Removed artists lose their partition
    only: their objects and rows stay, and the main API stops listing them.
    """
    started = time.monotonic()
    repository = catalog.repository()
    catalog_ids = repository.all_artist_ids()
    in_catalog = set(catalog_ids)
    partitions = set(context.instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
    added = [key for key in catalog_ids if key not in partitions]
    removed = sorted(partitions - in_catalog)

    batch_size = scraper.load_config().refresh.batch_size
    scraped = added[: batch_size * MAX_RUNS_PER_TICK]
    requests = range_run_requests(scraped, batch_size=batch_size, reason="new-artist")

    partition_requests: list[
        dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest
    ] = []
    if added:
        partition_requests.append(artist_partitions.build_add_request(added))
    if removed:
        partition_requests.append(artist_partitions.build_delete_request(removed))
    context.log.info(
        f"catalog {len(catalog_ids)} artists; +{len(added)} / -{len(removed)} partitions; "
        f"{len(scraped)} new artist(s) in {len(requests)} run(s); "
        f"{time.monotonic() - started:.2f}s"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        skip_reason=None if (requests or partition_requests) else "catalog and partitions in sync",
    )
