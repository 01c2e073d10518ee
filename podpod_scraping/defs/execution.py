"""How a Dagster step refreshes a batch of artists: the one body of both entry points.

The partitioned assets (UI backfills, the CLI, the sensor's runs of new artists) and the
batch refresh job (the schedule, "retry the failed ones") both run :func:`refresh_step`:
it calls the plain-Python service (``core.refresh``), yields each artist's events as the
artist ends (``defs.events``), logs progress, and ends the step honestly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from podpod_scraping.core.refresh import BatchTally, RefreshOptions, refresh_artists
from podpod_scraping.core.telemetry import RunTelemetry
from podpod_scraping.defs.events import batch_verdict, report_events
from podpod_scraping.defs.metrics import MetricsResource, entry_point, finish_run
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource

#: Seconds between progress lines in the run's log.
PROGRESS_EVERY_S = 5.0


def refresh_step(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    artist_ids: Sequence[str],
    *,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    scraper: ScraperResource,
    reason: str,
    metrics: MetricsResource | None = None,
) -> Iterator[Any]:
    """Refresh ``artist_ids``, yielding Dagster events per artist; raise at the end if any
    artist failed (no retry) or storage failed (retried; done artists are not redone)."""
    config = scraper.load_config()
    store = catalog.image_store(objects)
    tally = BatchTally()
    telemetry = RunTelemetry(entry_point(context), context.run.run_id)
    total = len(dict.fromkeys(artist_ids))
    started = last_progress = time.monotonic()
    context.log.info(
        f"{reason}: refreshing {total} artist(s), {config.refresh.concurrency} at a time"
    )
    with scraper.scraper(config, observer=telemetry) as artist_scraper:
        reports = refresh_artists(
            artist_ids,
            store=store,
            scraper=artist_scraper,
            images=config.images,
            batch_id=context.run.run_id,
            options=RefreshOptions(concurrency=config.refresh.concurrency),
        )
        for report in reports:
            tally.add(report)
            telemetry.add_report(report)
            yield from report_events(report)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                rate = tally.total / (now - started)
                context.log.info(
                    f"{reason}: {tally.total}/{total} done ({rate:.1f}/s); {tally.summary()}"
                )
    elapsed = time.monotonic() - started
    context.log.info(f"{reason}: {tally.summary()} in {elapsed:.1f}s")
    finish_run(context, telemetry.snapshot(), metrics)
    verdict = batch_verdict(tally)
    if verdict is not None:
        raise verdict
