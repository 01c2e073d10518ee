"""The staleness schedule: every night, refresh exactly the artists that are due."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from podpod_scraping.defs.batching import (
    artist_refresh_job,
    artists_in_flight,
    refresh_run_requests,
)
from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping.defs.resources import CatalogResource, ScraperResource

DEFAULT_REFRESH_CRON = "0 3 * * *"
DEFAULT_REFRESH_TIMEZONE = "Asia/Seoul"


def build_refresh_schedule(
    cron: str = DEFAULT_REFRESH_CRON, timezone: str = DEFAULT_REFRESH_TIMEZONE
) -> dg.ScheduleDefinition:
    """The nightly refresh at ``cron`` in ``timezone`` (set by PODPOD_REFRESH_CRON / _TIMEZONE)."""

    @dg.schedule(
        name="artist_refresh_schedule",
        cron_schedule=cron,
        execution_timezone=timezone,
        target=artist_refresh_job,
        description=(
            "Refreshes due artists in batches: no current image, an image older than "
            "refresh.stale_after_days, one without its variant set, or a failure whose "
            "backoff has expired."
        ),
    )
    def artist_refresh_schedule(
        context: dg.ScheduleEvaluationContext, catalog: CatalogResource, scraper: ScraperResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        """Request exactly the due artists; fresh ones and those inside a backoff never."""
        now = context.scheduled_execution_time or datetime.now(UTC)
        config = scraper.load_config()
        policy = config.refresh
        due = catalog.repository().stale_artist_ids(
            now=now,
            max_age=timedelta(days=policy.stale_after_days),
            variant_set=config.images.variants.fingerprint,
        )
        # Only artists the sensor has made partitions of (the others come with the sensor),
        # and not those a queued or running batch already holds.
        ordered = list(context.instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
        partitions = set(ordered)
        busy = artists_in_flight(context.instance, ordered)
        due = [key for key in due if key in partitions and key not in busy]
        if not due:
            return dg.SkipReason("no artist is due")
        # The tick time in the run key: tomorrow's refresh of the same artist is a new run.
        return refresh_run_requests(
            due,
            batch_size=policy.batch_size,
            reason="stale",
            run_key_prefix=f"stale:{now.isoformat()}",
        )

    return artist_refresh_schedule


coverage_job = dg.define_asset_job(
    name="artist_image_coverage_job",
    selection=dg.AssetSelection.assets("artist_image_coverage"),
    description="Recompute the coverage report and its consistency check.",
)

coverage_schedule = dg.ScheduleDefinition(
    name="artist_image_coverage_schedule",
    cron_schedule="30 * * * *",
    execution_timezone=DEFAULT_REFRESH_TIMEZONE,
    job=coverage_job,
    description="Hourly coverage report (current, stale, never found, failed by reason).",
)
