"""The artist image assets: scraped original → published object + row → coverage report.

Both partitioned assets run many artists in one run (``BackfillPolicy.single_run``) and
never fail the run for one artist: each artist's outcome is recorded and shown as that
partition's metadata. Only infrastructure failures (object store, database) fail a run.
"""

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from podpod_scraping.core.fetching import redact_url
from podpod_scraping.core.images import thumbnail_data_uri
from podpod_scraping.core.outcomes import ScrapeResult
from podpod_scraping.core.publishing import Publication, prepare_publication
from podpod_scraping.core.scraper import KnownImage
from podpod_scraping.defs.partitions import artist_partitions
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


def _known_images(catalog: CatalogResource, keys: list[str]) -> dict[str, KnownImage]:
    repository = catalog.repository()
    current = repository.current_images(keys)
    states = repository.scrape_states(keys)
    known: dict[str, KnownImage] = {}
    for key, state in states.items():
        if key in current and state.source_image_url:
            known[key] = KnownImage(
                source_image_url=state.source_image_url,
                etag=state.source_etag,
                last_modified=state.source_last_modified,
            )
    return known


def _log_summary(context: dg.AssetExecutionContext, outcomes: Mapping[str, Any]) -> None:
    counts = Counter(str(v) for v in outcomes.values())
    context.log.info(
        f"{len(outcomes)} artist(s): " + ", ".join(f"{k}={n}" for k, n in sorted(counts.items()))
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
    keys = list(context.partition_keys)
    artists = catalog.repository().artists(keys)
    for key in keys:
        if key not in artists:
            context.log.warning(f"artist {key} is not in the catalog any more; skipped")
            context.add_asset_metadata(
                {"outcome": "not_in_catalog", "reason": "artist not in the catalog"},
                partition_key=key,
            )
    known = _known_images(catalog, list(artists))
    with scraper.scraper() as (artist_scraper, _config):
        results = artist_scraper.scrape_many(
            artists.values(), known, max_workers=scraper.max_workers
        )
    for key, result in results.items():
        metadata: dict[str, Any] = {
            "artist": artists[key].name,
            "outcome": result.outcome.value,
            "reason": result.reason,
        }
        if result.page_url:
            metadata["page_url"] = dg.MetadataValue.url(redact_url(result.page_url))
        if result.image is not None:
            metadata |= {
                "width": result.image.width,
                "height": result.image.height,
                "bytes": result.image.byte_size,
                "content_type": result.image.content_type,
                "sha256": result.image.sha256,
                "image_url": dg.MetadataValue.url(redact_url(result.image.provenance.image_url)),
            }
        context.add_asset_metadata(metadata, partition_key=key)
    _log_summary(context, {k: r.outcome.value for k, r in results.items()})
    return results


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
        if publication is None:
            context.add_asset_metadata(
                {"outcome": "not_scraped", "reason": "no scrape result for this artist"},
                partition_key=key,
            )
            continue
        metadata: dict[str, Any] = {
            "outcome": publication.outcome.value,
            "reason": publication.reason,
        }
        image, name, provenance = publication.image, publication.object_name, publication.provenance
        if image is not None and name is not None and provenance is not None:
            metadata |= {
                "width": image.width,
                "height": image.height,
                "bytes": len(image.data),
                "content_type": image.content_type,
                "sha256": image.sha256,
                "object_uri": store.uri(name),
                "public_url": dg.MetadataValue.url(store.public_url(name)),
                "source": provenance.source_name,
                "source_image_url": dg.MetadataValue.url(redact_url(provenance.image_url)),
                "license": provenance.license or "unknown",
                "preview": dg.MetadataValue.md(f"![preview]({thumbnail_data_uri(image.data)})"),
            }
        context.add_asset_metadata(metadata, partition_key=key)
    _log_summary(context, {k: p.outcome.value for k, p in publications.items()})
    return publications


@dg.asset(
    deps=[artist_image],
    kinds={"pandas", "postgres"},
    group_name=GROUP,
)
def artist_image_coverage(catalog: CatalogResource) -> dg.Output[Any]:
    """How many artists have a current image, a stale one, none yet, or failed (by reason).

    The value is a pandas DataFrame (category, artists); the UI shows it as a markdown table.
    """
    frame = catalog.repository().coverage(
        now=datetime.now(UTC), max_age=timedelta(days=catalog.stale_after_days)
    )
    return dg.Output(
        frame,
        metadata={
            "coverage": dg.MetadataValue.md(frame.to_markdown(index=False) or ""),
            "artists": int(frame["artists"].sum()) if not frame.empty else 0,
        },
    )
