"""How due artists become runs: the one module that knows how work is batched.

Two shapes of batch, both running the same step body (``defs.execution.refresh_step``):

- **A range of partitions** (:func:`range_run_requests`): a run of ``artist_images_job``
  over contiguous partition keys, exactly what a UI backfill or
  ``dagster asset materialize --partition-range`` runs. The catalog sensor's new artists
  are always contiguous (dynamic partitions keep insertion order and the sensor adds them
  in one request), so they run this way, and Dagster shows their failed artists as
  Failed partitions.
- **An arbitrary set of artists** (:data:`artist_refresh_job`): Dagster 1.13 runs of a
  partitioned asset cover a contiguous range only, launching a backfill of an arbitrary
  key set has no public API, and backfills split a scattered set into one run per
  contiguous range. Due artists are scattered, so the schedule runs ``artist_refresh_job``,
  an op job whose config lists the ids (or selects every failed artist), in batches of
  ``refresh.batch_size``. Its events are the assets' events per partition; what it cannot
  give is a Failed partition status (Dagster derives that from a run that planned the
  partition); its failures show as the partition's latest event and a failed run.
"""

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from podpod_scraping.defs.assets import SCRAPE_POOL, TRANSIENT_RETRY
from podpod_scraping.defs.execution import refresh_step
from podpod_scraping.defs.jobs import artist_images_job
from podpod_scraping.defs.metrics import MetricsResource
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource

REFRESH_OP = "refresh_artists"
REASON_TAG = "podpod/reason"
BATCH_SIZE_TAG = "podpod/batch_size"
#: Dagster's own tags for a run over a range of partitions (what backfills and the CLI set).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class RefreshBatchConfig(dg.Config):
    """The artists one run refreshes (partition keys = catalog ids) and why."""

    artist_ids: list[str] = []
    select: Literal["ids", "failed"] = "ids"
    reason: str = "manual"
    force: bool = Field(
        default=False,
        description="Take each artist's best image now, even one ranked below its current one.",
    )


@dg.op(name=REFRESH_OP, pool=SCRAPE_POOL, retry_policy=TRANSIENT_RETRY, out={})
def refresh_artists_op(
    context: dg.OpExecutionContext,
    config: RefreshBatchConfig,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    scraper: ScraperResource,
    metrics: MetricsResource,
) -> Any:
    """Refresh the configured artists (or every artist whose last attempt failed)."""
    if config.select == "failed":
        artist_ids = catalog.repository().failed_artist_ids()
    else:
        artist_ids = config.artist_ids
    yield from refresh_step(
        context,
        artist_ids,
        catalog=catalog,
        objects=objects,
        scraper=scraper,
        reason=config.reason,
        metrics=metrics,
        force=config.force,
    )


@dg.job(
    name="artist_refresh_job",
    description="Refresh the images of a batch of artists listed in the run config.",
    tags={"podpod/kind": "artist-refresh"},
)
def artist_refresh_job() -> None:
    refresh_artists_op()


@dg.job(
    name="artist_retry_failed_job",
    description=(
        "Retry now every catalog artist whose last attempt failed (backoff ignored): "
        "launch it without any config."
    ),
    tags={"podpod/kind": "artist-refresh"},
    config=dg.RunConfig(
        ops={REFRESH_OP: RefreshBatchConfig(select="failed", reason="retry-failed")}
    ),
)
def artist_retry_failed_job() -> None:
    refresh_artists_op()


#: Runs that still hold their artists: queued, about to start, or running.
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def artists_in_flight(instance: dg.DagsterInstance, partition_keys: Sequence[str]) -> set[str]:
    """Artists of unfinished runs (batches and ranges), so a tick never requests them twice.

    ``partition_keys`` is the ``artists`` partitions in order, to resolve ranges.
    """
    in_flight: set[str] = set()
    batches = instance.get_runs(
        filters=dg.RunsFilter(job_name=artist_refresh_job.name, statuses=_UNFINISHED)
    )
    for run in batches:
        config: Any = run.run_config
        in_flight.update(
            config.get("ops", {}).get(REFRESH_OP, {}).get("config", {}).get("artist_ids", [])
        )
    ranges = instance.get_runs(
        filters=dg.RunsFilter(job_name=artist_images_job.name, statuses=_UNFINISHED)
    )
    position = {key: index for index, key in enumerate(partition_keys)}
    for run in ranges:
        start = run.tags.get(RANGE_START_TAG) or run.tags.get("dagster/partition")
        end = run.tags.get(RANGE_END_TAG) or start
        if start in position and end in position:
            in_flight.update(partition_keys[position[start] : position[end] + 1])
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
    """One ``artist_refresh_job`` run per batch: ceil(K / batch_size) runs for K artists.

    ``run_key_prefix`` must change whenever the same artists may legitimately be requested
    again (a run key deduplicates forever): the schedule uses its tick time.
    """
    requests = []
    for batch in batches(artist_ids, batch_size):
        digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                job_name=artist_refresh_job.name,
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


def range_run_requests(
    contiguous_keys: Sequence[str], *, batch_size: int, reason: str
) -> list[dg.RunRequest]:
    """``artist_images_job`` runs over consecutive chunks of contiguous partition keys.

    The caller guarantees that ``contiguous_keys`` are consecutive in partition order
    (e.g. the keys a sensor tick appends), so each chunk is exactly a partition range.
    """
    requests = []
    for chunk in batches(contiguous_keys, batch_size):
        requests.append(
            dg.RunRequest(
                job_name=artist_images_job.name,
                tags={
                    RANGE_START_TAG: chunk[0],
                    RANGE_END_TAG: chunk[-1],
                    REASON_TAG: reason,
                    BATCH_SIZE_TAG: str(len(chunk)),
                },
            )
        )
    return requests
