"""The artist image assets: scraped original + published image (one step) → coverage report.

``artist_source_image`` and ``artist_image`` are produced together by one step
(:func:`artist_images`), because per artist the work is one pipeline (scrape → archive
the original → normalize → publish) and running it per artist, concurrently, is what
makes a run fast. A run covers many artists (``BackfillPolicy.single_run``); each
artist's outcome is its own partition's events (``defs.events``): a materialization
when the artist has a current image after the attempt, a Failed partition otherwise.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from podpod_scraping.defs.events import IMAGE_KEY, SOURCE_IMAGE_KEY
from podpod_scraping.defs.execution import refresh_step
from podpod_scraping.defs.metrics import (
    MetricsResource,
    coverage_counts,
    coverage_metadata,
    push_coverage,
)
from podpod_scraping.defs.partitions import artist_partitions
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource

GROUP = "artist_images"
SCRAPE_POOL = "scrape"

#: Transient infrastructure failures (GCS hiccup, database failover) retry the step; the
#: retry skips artists this run already recorded, and every write is idempotent.
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=3,
    delay=30,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)

SOURCE_IMAGE_SPEC = dg.AssetSpec(
    SOURCE_IMAGE_KEY,
    description=(
        "One partition: the original image scraped for one artist, as the source served "
        "it (validated bytes archived at sources/<artist>/<sha256>.<ext>), with its "
        "provenance: source, page URL, image URL, HTTP validators. Materialized when an "
        "attempt finds or confirms (HTTP 304) the artist's original."
    ),
    group_name=GROUP,
    kinds={"python", "gcs"},
    partitions_def=artist_partitions,
    skippable=True,
)

IMAGE_SPEC = dg.AssetSpec(
    IMAGE_KEY,
    description=(
        "One partition: the image the app serves for one artist, normalized from its "
        "original (EXIF orientation applied, metadata stripped, bounded size, web format), "
        "published once at artists/<artist>/<sha256>.<ext> and recorded as the artist's "
        "current row in artist_images. Materialized when the artist has a current image "
        "after the attempt; a failed attempt keeps the previous image and marks the "
        "partition Failed. Every event shows the current image (size, URI, preview)."
    ),
    group_name=GROUP,
    kinds={"gcs", "postgres"},
    partitions_def=artist_partitions,
    deps=[SOURCE_IMAGE_KEY],
    skippable=True,
)


class ArtistImagesConfig(dg.Config):
    """Run config of a materialization; every field is optional."""

    force: bool = Field(
        default=False,
        description=(
            "Take each artist's best image now, even one ranked below its current one "
            "(a person's decision; refreshes never do it on their own)."
        ),
    )


@dg.multi_asset(
    name="artist_images",
    specs=[SOURCE_IMAGE_SPEC, IMAGE_SPEC],
    partitions_def=artist_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=SCRAPE_POOL,
    retry_policy=TRANSIENT_RETRY,
    can_subset=False,
)
def artist_images(
    context: dg.AssetExecutionContext,
    config: ArtistImagesConfig,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    scraper: ScraperResource,
    metrics: MetricsResource,
) -> Any:
    """Refresh the artists of the run's partitions (one, a range, or a backfill's range)."""
    yield from refresh_step(
        context,
        context.partition_keys,
        catalog=catalog,
        objects=objects,
        scraper=scraper,
        reason="partitions" + (" (forced)" if config.force else ""),
        metrics=metrics,
        force=config.force,
    )


@dg.asset(
    deps=[IMAGE_KEY],
    kinds={"pandas", "postgres"},
    group_name=GROUP,
)
def artist_image_coverage(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    scraper: ScraperResource,
    metrics: MetricsResource,
) -> dg.Output[Any]:
    """How many artists have a current image, a stale one, none yet, or failed (by reason).

    The value is a pandas DataFrame (category, artists); the UI shows it as a markdown table,
    and its numbers as plots across reports. The counts are pushed as gauges too.
    """
    repository = catalog.repository()
    config = scraper.load_config()
    frame = repository.coverage(
        now=datetime.now(UTC),
        max_age=timedelta(days=config.refresh.stale_after_days),
        variant_set=config.images.variants.fingerprint,
    )
    outcomes = repository.last_outcome_counts()
    outcome_table = "\n".join(
        ["| last attempt | artists |", "| --- | --- |"]
        + [f"| {outcome} | {count} |" for outcome, count in outcomes.items()]
    )
    counts = coverage_counts(dict(zip(frame["category"], frame["artists"], strict=True)))
    push_coverage(metrics, counts, context.log)
    return dg.Output(
        frame,
        metadata=coverage_metadata(counts)
        | {
            "coverage": dg.MetadataValue.md(frame.to_markdown(index=False) or ""),
            "last_attempt_outcomes": dg.MetadataValue.md(outcome_table),
            "artists": int(frame["artists"].sum()) if not frame.empty else 0,
        },
    )
