"""What refreshing a batch of artists means, shared by the assets and the batch job.

The partitioned assets (UI backfills, the CLI) and the batch refresh job (sensor, schedule)
run exactly these functions, so both paths scrape, store and describe artists the same way.
"""

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from podpod_scraping.core.fetching import redact_url
from podpod_scraping.core.images import thumbnail_data_uri
from podpod_scraping.core.outcomes import Artist, ScrapeResult
from podpod_scraping.core.publishing import Publication
from podpod_scraping.core.scraper import KnownImage
from podpod_scraping.defs.resources import CatalogResource, ScraperResource
from podpod_scraping.storage.objects import ObjectStore

NOT_IN_CATALOG = {"outcome": "not_in_catalog", "reason": "artist not in the catalog"}


@dataclass(frozen=True)
class ScrapeBatch:
    """One batch's scrape: the artists found in the catalog and one result per artist."""

    artists: Mapping[str, Artist]
    results: Mapping[str, ScrapeResult]
    missing: list[str]


def known_images(catalog: CatalogResource, keys: Collection[str]) -> dict[str, KnownImage]:
    """HTTP validators of each artist's current image, for conditional requests."""
    repository = catalog.repository()
    current = repository.current_images(keys)
    known: dict[str, KnownImage] = {}
    for key, state in repository.scrape_states(keys).items():
        if key in current and state.source_image_url:
            known[key] = KnownImage(
                source_image_url=state.source_image_url,
                etag=state.source_etag,
                last_modified=state.source_last_modified,
            )
    return known


def scrape_batch(
    catalog: CatalogResource, scraper: ScraperResource, keys: Collection[str]
) -> ScrapeBatch:
    """Scrape the catalog artists among ``keys`` concurrently; never raises for one artist."""
    artists = catalog.repository().artists(keys)
    missing = [key for key in keys if key not in artists]
    known = known_images(catalog, list(artists))
    with scraper.scraper() as (artist_scraper, _config):
        results = artist_scraper.scrape_many(
            artists.values(), known, max_workers=scraper.max_workers
        )
    return ScrapeBatch(artists=artists, results=results, missing=missing)


def scrape_metadata(artist: Artist, result: ScrapeResult) -> dict[str, Any]:
    """What a person wants to see on a scraped-image partition."""
    metadata: dict[str, Any] = {
        "artist": artist.name,
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
    return metadata


def publication_metadata(publication: Publication, store: ObjectStore) -> dict[str, Any]:
    """What a person wants to see on a published-image partition, preview included."""
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
    return metadata


def outcome_summary(outcomes: Mapping[str, Any]) -> str:
    counts = Counter(str(value) for value in outcomes.values())
    return f"{len(outcomes)} artist(s): " + ", ".join(
        f"{name}={count}" for name, count in sorted(counts.items())
    )
