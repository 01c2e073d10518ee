"""Writing artists' images: scraped originals to the archive, publications to object + row.

Shared by the IO managers (partitioned asset runs) and any batch path, so that every way of
refreshing an artist writes exactly the same things in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from podpod_scraping.core.naming import image_object_name
from podpod_scraping.core.outcomes import Outcome, Provenance, ScrapedImage, ScrapeResult
from podpod_scraping.core.publishing import Publication
from podpod_scraping.storage.catalog.repository import CatalogRepository, ImageRecord
from podpod_scraping.storage.objects import ObjectStore, StoredObject

SOURCE_PREFIX = "sources"
#: Published objects are content-addressed and never rewritten: cache them forever.
PUBLISHED_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Originals are private working copies (kept to re-normalize without re-scraping).
SOURCE_CACHE_CONTROL = "private, max-age=0, no-store"

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
}


def manifest_name(artist_id: str) -> str:
    return f"{SOURCE_PREFIX}/{artist_id}/latest.json"


def _manifest(result: ScrapeResult, object_name: str | None) -> dict[str, Any]:
    image = result.image
    return {
        "artist_id": result.artist_id,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "attempted_at": result.attempted_at.isoformat(),
        "source_name": result.source_name,
        "page_url": result.page_url,
        "image": None
        if image is None
        else {
            "object_name": object_name,
            "sha256": image.sha256,
            "content_type": image.content_type,
            "width": image.width,
            "height": image.height,
            "fetched_at": image.fetched_at.isoformat(),
            "provenance": asdict(image.provenance),
        },
    }


class SourceImageArchive:
    """Each artist's scraped originals (written once) and a manifest of the latest attempt.

    Originals are content-addressed (``sources/<id>/<sha256>.<ext>``); the manifest
    ``sources/<id>/latest.json`` is the only object ever replaced, so a failed attempt is
    visible without touching the last good original.
    """

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def save(self, result: ScrapeResult) -> None:
        object_name = None
        if result.image is not None:
            image = result.image
            object_name = image_object_name(
                result.artist_id,
                image.sha256,
                EXTENSIONS[image.content_type],
                prefix=SOURCE_PREFIX,
            )
            self._store.put_immutable(
                object_name,
                image.data,
                content_type=image.content_type,
                cache_control=SOURCE_CACHE_CONTROL,
                metadata={"artist_id": result.artist_id, "source": image.provenance.source_name},
            )
        self._store.replace(
            manifest_name(result.artist_id),
            json.dumps(_manifest(result, object_name), sort_keys=True).encode(),
            content_type="application/json",
        )

    def load(self, artist_id: str) -> ScrapeResult | None:
        name = manifest_name(artist_id)
        if not self._store.exists(name):
            return None
        manifest: Mapping[str, Any] = json.loads(self._store.read(name))
        raw_image = manifest.get("image")
        image = None
        if raw_image is not None:
            image = ScrapedImage(
                data=self._store.read(raw_image["object_name"]),
                content_type=raw_image["content_type"],
                width=int(raw_image["width"]),
                height=int(raw_image["height"]),
                provenance=Provenance(**raw_image["provenance"]),
                fetched_at=datetime.fromisoformat(raw_image["fetched_at"]),
            )
        return ScrapeResult(
            artist_id=str(manifest["artist_id"]),
            outcome=Outcome(manifest["outcome"]),
            reason=str(manifest["reason"]),
            attempted_at=datetime.fromisoformat(manifest["attempted_at"]),
            image=image,
            source_name=manifest.get("source_name"),
            page_url=manifest.get("page_url"),
        )


class ImagePublisher:
    """Publishes a normalized image (object first, then row) or records a failed attempt.

    Order matters: the object is written once under a content-addressed name *before* its
    row, and the row insert + current-image switch is one transaction, so the main API never
    reads a row that points at a missing object. Failures only touch the scrape state.
    """

    def __init__(self, store: ObjectStore, repository: CatalogRepository) -> None:
        self._store = store
        self._repository = repository

    def publish(self, publication: Publication) -> StoredObject | None:
        artist_id = publication.artist_id
        attempted_at = publication.result.attempted_at
        image, name, provenance = publication.image, publication.object_name, publication.provenance
        if image is not None and name is not None and provenance is not None:
            stored = self._store.put_immutable(
                name,
                image.data,
                content_type=image.content_type,
                cache_control=PUBLISHED_CACHE_CONTROL,
                metadata={
                    "artist_id": artist_id,
                    "sha256": image.sha256,
                    "source": provenance.source_name,
                },
            )
            self._repository.record_image(
                ImageRecord(
                    artist_id=artist_id,
                    object_name=stored.name,
                    object_uri=stored.uri,
                    public_url=stored.public_url,
                    sha256=image.sha256,
                    width=image.width,
                    height=image.height,
                    content_type=image.content_type,
                    byte_size=len(image.data),
                    source_name=provenance.source_name,
                    source_page_url=provenance.page_url,
                    source_image_url=provenance.image_url,
                    license=provenance.license,
                    attribution=provenance.attribution,
                    scraped_at=attempted_at,
                    source_etag=provenance.etag,
                    source_last_modified=provenance.last_modified,
                ),
                attempted_at=attempted_at,
                reason=publication.reason,
            )
            return stored
        if publication.outcome is Outcome.UNCHANGED:
            self._repository.record_unchanged(
                artist_id, attempted_at=attempted_at, reason=publication.reason
            )
        else:
            self._repository.record_failure(
                artist_id, publication.outcome, publication.reason, attempted_at=attempted_at
            )
        return None
