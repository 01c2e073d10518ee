"""How K due artists become ceil(K / batch_size) runs: the one module that knows.

Dagster 1.13 runs of a partitioned asset cover a *contiguous range* of partition keys, in
insertion order for dynamic partitions, and launching a backfill of an arbitrary key set
from a sensor or schedule has no public API (``RunRequest.for_asset_graph_subset`` is
private; backfills split a scattered set into one run per contiguous range anyway). Due
artists are scattered, so ranges would turn K artists into up to K runs.

So a batch is one run of :data:`artist_refresh_job`, an op job whose run config lists the
artist ids. Its op runs the same scrape → archive → normalize → publish code as the assets
(``defs/refresh.py``, ``storage/images.py``) and reports an ``AssetMaterialization`` per
artist for ``artist_source_image`` and ``artist_image`` with the same metadata, so each
partition's status and history in the UI read as if the assets had run for it.

If a Dagster upgrade stops attributing those reported materializations to partitions,
``podpod_scraping_tests/defs/test_batching.py`` fails.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import dagster as dg

from podpod_scraping.core.publishing import prepare_publication
from podpod_scraping.defs.assets import (
    SCRAPE_POOL,
    TRANSIENT_RETRY,
    artist_image,
    artist_source_image,
)
from podpod_scraping.defs.io_managers import StorageError
from podpod_scraping.defs.refresh import (
    NOT_IN_CATALOG,
    outcome_summary,
    publication_metadata,
    scrape_batch,
    scrape_metadata,
)
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource
from podpod_scraping.storage.images import ImagePublisher, SourceImageArchive

REFRESH_OP = "refresh_artists"
REASON_TAG = "podpod/reason"
BATCH_SIZE_TAG = "podpod/batch_size"


class RefreshBatchConfig(dg.Config):
    """The artists one run refreshes (partition keys = catalog ids) and why."""

    artist_ids: list[str]
    reason: str = "manual"


@dg.op(name=REFRESH_OP, pool=SCRAPE_POOL, retry_policy=TRANSIENT_RETRY)
def refresh_artists(
    context: dg.OpExecutionContext,
    config: RefreshBatchConfig,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    scraper: ScraperResource,
) -> None:
    """Scrape, archive, normalize and publish a batch; one artist's failure stays its own."""
    keys = list(dict.fromkeys(config.artist_ids))
    batch = scrape_batch(catalog, scraper, keys)
    for key in batch.missing:
        context.log.warning(f"artist {key} is not in the catalog any more; skipped")
    store = objects.store()
    archive = SourceImageArchive(store)
    publisher = ImagePublisher(store, catalog.repository())
    policy = scraper.load_config().images
    outcomes: dict[str, str] = {}
    errors: list[str] = []
    for key, result in batch.results.items():
        try:
            archive.save(result)
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=artist_source_image.key,
                    partition=key,
                    metadata=scrape_metadata(batch.artists[key], result),
                )
            )
            publication = prepare_publication(result, policy)
            publisher.publish(publication)
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=artist_image.key,
                    partition=key,
                    metadata=publication_metadata(publication, store),
                )
            )
            outcomes[key] = publication.outcome.value
        except Exception as error:
            context.log.error(f"artist {key}: storing failed: {type(error).__name__}: {error}")
            errors.append(f"{key}: {type(error).__name__}: {error}")
    context.log.info(f"{config.reason}: " + outcome_summary(outcomes))
    if batch.missing:
        context.log.info(f"{len(batch.missing)} artist(s) {NOT_IN_CATALOG['reason']}")
    if errors:
        raise StorageError(f"storing failed for {len(errors)} artist(s): " + "; ".join(errors[:10]))


@dg.job(
    name="artist_refresh_job",
    description="Refresh the images of a batch of artists listed in the run config.",
    tags={"podpod/kind": "artist-refresh"},
)
def artist_refresh_job() -> None:
    refresh_artists()


#: Runs that still hold their artists: queued, about to start, or running.
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def artists_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Artists of unfinished batch runs, so a tick never requests them a second time."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=artist_refresh_job.name, statuses=_UNFINISHED)
    )
    in_flight: set[str] = set()
    for run in runs:
        config: Any = run.run_config
        in_flight.update(
            config.get("ops", {}).get(REFRESH_OP, {}).get("config", {}).get("artist_ids", [])
        )
    return in_flight


def batches(artist_ids: Sequence[str], batch_size: int) -> list[list[str]]:
    """Split ids (order kept, duplicates dropped) into batches of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    unique = list(dict.fromkeys(artist_ids))
    return [unique[i : i + batch_size] for i in range(0, len(unique), batch_size)]


def refresh_run_requests(
    artist_ids: Sequence[str],
    *,
    batch_size: int,
    reason: str,
    run_key_prefix: str | None,
) -> list[dg.RunRequest]:
    """One run request per batch of artists: ceil(K / batch_size) runs for K artists.

    ``run_key_prefix`` must change whenever the same artists may legitimately be requested
    again (a sensor run key deduplicates forever): the schedule uses its tick time.
    """
    requests = []
    for batch in batches(artist_ids, batch_size):
        digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{batch[0]}-{batch[-1]}:{digest}"
                if run_key_prefix
                else None,
                run_config=dg.RunConfig(
                    ops={REFRESH_OP: RefreshBatchConfig(artist_ids=batch, reason=reason)}
                ),
                tags={REASON_TAG: reason, BATCH_SIZE_TAG: str(len(batch))},
            )
        )
    return requests
