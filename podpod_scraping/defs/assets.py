"""The artist image assets: scraped original → published object + row → coverage report.

Both partitioned assets run many artists in one run (``BackfillPolicy.single_run``) and
never fail the run for one artist: each artist's outcome is recorded and shown as that
partition's metadata. Only infrastructure failures (object store, database) fail a run.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from podpod_scraping.core.outcomes import ScrapeResult
from podpod_scraping.core.publishing import Publication, prepare_publication
from podpod_scraping.defs.partitions import artist_partitions
from podpod_scraping.defs.refresh import (
    NOT_IN_CATALOG,
    outcome_summary,
    publication_metadata,
    scrape_batch,
    scrape_metadata,
)
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource

GROUP = "artist_images"
SCRAPE_POOL = "scrape"

#: Transient infrastructure failures (GCS hiccup, database failover) retry the whole batch;
#: every write is idempotent, so a retry never duplicates.
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=3,
    delay=30,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


@dg.asset(
    partitions_def=artist_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="source_image_io_manager",
    kinds={"python", "gcs"},
    group_name=GROUP,
    pool=SCRAPE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def artist_source_image(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    scraper: ScraperResource,
) -> dict[str, ScrapeResult]:
    """One partition: the original image found for one artist on the configured sources.

    Holds the original bytes (validated as a real image) with provenance: source, page URL,
    image URL, license and HTTP validators; or, when nothing usable was found, the outcome
    and its reason. Sources are tried in the configured order.
    """
    batch = scrape_batch(catalog, scraper, context.partition_keys)
    for key in batch.missing:
        context.log.warning(f"artist {key} is not in the catalog any more; skipped")
        context.add_asset_metadata(NOT_IN_CATALOG, partition_key=key)
    for key, result in batch.results.items():
        context.add_asset_metadata(scrape_metadata(batch.artists[key], result), partition_key=key)
    context.log.info(outcome_summary({k: r.outcome.value for k, r in batch.results.items()}))
    return dict(batch.results)


@dg.asset(
    partitions_def=artist_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="catalog_io_manager",
    kinds={"gcs", "postgres"},
    group_name=GROUP,
    retry_policy=TRANSIENT_RETRY,
)
def artist_image(
    context: dg.AssetExecutionContext,
    scraper: ScraperResource,
    objects: ObjectStoreResource,
    artist_source_image: dict[str, ScrapeResult],
) -> dict[str, Publication]:
    """One partition: the image the app serves for one artist.

    A normalized copy of the scraped original (EXIF orientation applied, metadata stripped,
    bounded size, web format) published at ``artists/<id>/<sha256>.<ext>`` and recorded as
    the artist's current row in ``artist_images``. A failed attempt keeps the previous
    current image and records the outcome in ``artist_scrape_state``.
    """
    policy = scraper.load_config().images
    store = objects.store()
    publications = {
        key: prepare_publication(result, policy) for key, result in artist_source_image.items()
    }
    for key in context.partition_keys:
        publication = publications.get(key)
        metadata = (
            publication_metadata(publication, store)
            if publication is not None
            else {"outcome": "not_scraped", "reason": "no scrape result for this artist"}
        )
        context.add_asset_metadata(metadata, partition_key=key)
    context.log.info(outcome_summary({k: p.outcome.value for k, p in publications.items()}))
    return publications


@dg.asset(
    deps=[artist_image],
    kinds={"pandas", "postgres"},
    group_name=GROUP,
)
def artist_image_coverage(catalog: CatalogResource, scraper: ScraperResource) -> dg.Output[Any]:
    """How many artists have a current image, a stale one, none yet, or failed (by reason).

    The value is a pandas DataFrame (category, artists); the UI shows it as a markdown table.
    """
    repository = catalog.repository()
    frame = repository.coverage(
        now=datetime.now(UTC),
        max_age=timedelta(days=scraper.load_config().refresh.stale_after_days),
    )
    outcomes = repository.last_outcome_counts()
    outcome_table = "\n".join(
        ["| last attempt | artists |", "| --- | --- |"]
        + [f"| {outcome} | {count} |" for outcome, count in outcomes.items()]
    )
    return dg.Output(
        frame,
        metadata={
            "coverage": dg.MetadataValue.md(frame.to_markdown(index=False) or ""),
            "last_attempt_outcomes": dg.MetadataValue.md(outcome_table),
            "artists": int(frame["artists"].sum()) if not frame.empty else 0,
        },
    )
