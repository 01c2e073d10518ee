"""How a Dagster step refreshes a batch of artists: the one body of both entry points.

The partitioned assets (UI backfills, the CLI, the sensor's runs of new artists) and the
batch refresh job (the schedule, "retry the failed ones") both run :func:`refresh_step`:
it calls the plain-Python service (``core.refresh``), yields each artist's events as the
artist ends (``defs.events``), logs progress, and ends the step honestly.

Only faults that heal are retried (the step's retry policy): a storage outage, a
database failover. A bad config file, bad credentials, a missing bucket or table, an
unknown id and a bug fail the step at once (``Failure(allow_retries=False)``) with a
message that names the fix: retrying them would only delay the fix by minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from podpod_scraping.core.config import ScraperConfigError
from podpod_scraping.core.refresh import (
    BatchTally,
    RefreshOptions,
    StorageUnavailable,
    StoreError,
    refresh_artists,
)
from podpod_scraping.core.telemetry import RunTelemetry
from podpod_scraping.defs.events import StorageError, batch_verdict, report_events
from podpod_scraping.defs.metrics import MetricsResource, entry_point, finish_run
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource
from podpod_scraping.storage.images import store_errors

#: Seconds between progress lines in the run's log; they are also the run's heartbeat
#: (``defs.recovery`` takes a STARTED run that stopped logging for dead).
PROGRESS_EVERY_S = 5.0


@contextmanager
def failing_fast(what: str) -> Iterator[None]:
    """Turn an error into the step's end: retried if it heals, at once otherwise."""
    try:
        yield
    except (dg.Failure, StorageError):
        raise
    except ScraperConfigError as error:
        raise dg.Failure(
            description=f"{what}: {error} (fix the scraper config file: PODPOD_SCRAPER_CONFIG)",
            allow_retries=False,
        ) from error
    except (StoreError, StorageUnavailable) as error:
        if error.transient:
            raise StorageError(f"{what}: {error} (retried)") from error
        raise dg.Failure(description=f"{what}: {error}", allow_retries=False) from error
    except Exception as error:  # a bug, or a setting no retry fixes
        raise dg.Failure(
            description=f"{what}: {type(error).__name__}: {error} (not retried)",
            allow_retries=False,
        ) from error


def refresh_step(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    artist_ids: Sequence[str],
    *,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    scraper: ScraperResource,
    reason: str,
    metrics: MetricsResource | None = None,
    force: bool = False,
) -> Iterator[Any]:
    """Refresh ``artist_ids``, yielding Dagster events per artist; raise at the end if any
    artist failed (no retry) or storage failed (retried; done artists are not redone)."""
    with failing_fast("cannot start the refresh"):
        config = scraper.load_config()
        with store_errors("opening the object store"):
            store = catalog.image_store(objects, config, force=force)
    tally = BatchTally()
    telemetry = RunTelemetry(entry_point(context), context.run.run_id)
    total = len(dict.fromkeys(artist_ids))
    started = last_progress = time.monotonic()
    context.log.info(
        f"{reason}: refreshing {total} artist(s), {config.refresh.concurrency} at a time"
    )

    def progress() -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        context.log.info(
            f"{reason}: {tally.total}/{total} done ({tally.total / elapsed:.1f}/s); "
            f"{tally.summary()}"
        )

    try:
        with (
            failing_fast(f"{reason}: refresh stopped"),
            scraper.scraper(config, observer=telemetry) as artist_scraper,
        ):
            reports = refresh_artists(
                artist_ids,
                store=store,
                scraper=artist_scraper,
                images=config.images,
                batch_id=context.run.run_id,
                options=RefreshOptions(
                    concurrency=config.refresh.concurrency,
                    max_storage_failures=config.refresh.max_storage_failures,
                ),
                on_idle=progress,
                idle_every=PROGRESS_EVERY_S,
            )
            for report in reports:
                tally.add(report)
                telemetry.add_report(report)
                yield from report_events(report)
                now = time.monotonic()
                if now - last_progress >= PROGRESS_EVERY_S:
                    last_progress = now
                    progress()
    finally:  # a batch stopped early (storage down) still logs and pushes its numbers
        store.close()
        elapsed = time.monotonic() - started
        context.log.info(f"{reason}: {tally.summary()} in {elapsed:.1f}s")
        finish_run(context, telemetry.snapshot(), metrics)
    verdict = batch_verdict(tally)
    if verdict is not None:
        raise verdict
