"""The refresh service's storage: originals and published images in the object store,
rows in the catalog. The one place that writes either (``core.refresh.ImageStore``).

Order is what keeps the main API safe: a published object is written once under its
content-addressed name *before* its row, and the row insert + current-image switch is
one transaction, so the API never reads a row that points at a missing object. A failed
attempt only touches the scrape state. Reruns write nothing new (names are content
addresses; rows are unique per artist and image).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

from sqlalchemy import exc as sa_exc

from podpod_scraping.core.formats import format_for_content_type
from podpod_scraping.core.naming import image_object_name, variant_object_name
from podpod_scraping.core.outcomes import ScrapedImage, ScrapeResult
from podpod_scraping.core.refresh import (
    ArtistStatus,
    ArtistTask,
    CurrentImage,
    OriginalImage,
    Publication,
    Recorded,
    SkippedArtist,
    StoreError,
)
from podpod_scraping.core.scraper import KnownImage
from podpod_scraping.core.variants import VariantSet
from podpod_scraping.storage.catalog import repository as catalog
from podpod_scraping.storage.catalog.errors import is_permanent_catalog_error
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    ImageRecord,
    VariantRecord,
    VariantSetRecord,
)
from podpod_scraping.storage.objects import (
    ObjectConflictError,
    ObjectStore,
    ObjectStoreError,
    StoredObject,
)

SOURCE_PREFIX = "sources"
#: Published objects are content-addressed and never rewritten: cache them forever.
PUBLISHED_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Originals are private working copies (kept to re-normalize without re-scraping).
SOURCE_CACHE_CONTROL = "private, max-age=0, no-store"


def original_object_name(artist_id: str, sha256: str, content_type: str) -> str:
    """``sources/<artist>/<sha256>.<ext>``: where an artist's original is archived."""
    extension = format_for_content_type(content_type).extension
    return image_object_name(artist_id, sha256, extension, prefix=SOURCE_PREFIX)


def current_image(image: catalog.CurrentImage) -> CurrentImage:
    """A catalog row as the refresh service reports it."""
    return CurrentImage(
        sha256=image.sha256,
        object_uri=image.object_uri,
        public_url=image.public_url,
        width=image.width,
        height=image.height,
        byte_size=image.byte_size,
        content_type=image.content_type,
        source_name=image.source_name,
        source_image_url=image.source_image_url,
        license=image.license,
        scraped_at=image.scraped_at,
        source_sha256=image.source_sha256,
        preview_jpeg=image.preview,
        object_name=image.object_name,
        variant_set=image.variant_set,
        variant_count=image.variant_count,
        avatar_method=image.avatar_method,
        dominant_color=image.dominant_color,
        avatar_preview=image.avatar_preview,
    )


def _current_from_record(record: ImageRecord) -> CurrentImage:
    found = record.variants
    return CurrentImage(
        sha256=record.sha256,
        object_uri=record.object_uri,
        public_url=record.public_url,
        width=record.width,
        height=record.height,
        byte_size=record.byte_size,
        content_type=record.content_type,
        source_name=record.source_name,
        source_image_url=record.source_image_url,
        license=record.license,
        scraped_at=record.scraped_at,
        source_sha256=record.source_sha256,
        preview_jpeg=record.preview,
        object_name=record.object_name,
        variant_set=found.variant_set if found else None,
        variant_count=len(found.variants) if found else 0,
        avatar_method=found.avatar_method if found else None,
        dominant_color=found.dominant_color if found else None,
        avatar_preview=found.avatar_preview if found else None,
    )


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Object-store and catalog errors as :class:`StoreError`, saying whether they heal."""
    try:
        yield
    except ObjectConflictError as error:
        raise StoreError(f"{what}: {error}", transient=False, artist_only=True) from error
    except ObjectStoreError as error:
        raise StoreError(f"{what}: {error}", transient=error.transient) from error
    except sa_exc.SQLAlchemyError as error:
        fix = is_permanent_catalog_error(error)
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        message = f"{what}: catalog error: {detail}" + (f" ({fix})" if fix else "")
        raise StoreError(message, transient=fix is None) from error


class CatalogImageStore:
    """:class:`~podpod_scraping.core.refresh.ImageStore` over an object store and the catalog.

    Thread-safe: the object stores and the repository are, and this keeps no state.
    """

    def __init__(self, objects: ObjectStore, repository: CatalogRepository) -> None:
        self._objects = objects
        self._repository = repository

    @property
    def objects(self) -> ObjectStore:
        return self._objects

    @property
    def repository(self) -> CatalogRepository:
        return self._repository

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        repository = self._repository
        with store_errors("reading the batch's artists"):
            artists = repository.artists(artist_ids)
            present = [key for key in artist_ids if key in artists]
            currents = repository.current_images(present)
            states = repository.scrape_states(present)
        items: list[ArtistTask | SkippedArtist] = []
        for key in artist_ids:
            artist = artists.get(key)
            if artist is None:
                items.append(
                    SkippedArtist(
                        key, ArtistStatus.NOT_IN_CATALOG, reason="artist not in the catalog"
                    )
                )
                continue
            row = currents.get(key)
            current = current_image(row) if row is not None else None
            state = states.get(key)
            if state is not None and state.last_batch_id == batch_id:
                items.append(
                    SkippedArtist(
                        key,
                        ArtistStatus.ALREADY_DONE,
                        artist_name=artist.name,
                        outcome=state.last_outcome,
                        reason=state.last_reason or "",
                        current=current,
                    )
                )
                continue
            known = None
            if current is not None and state is not None and state.source_image_url:
                known = KnownImage(
                    source_image_url=state.source_image_url,
                    etag=state.source_etag,
                    last_modified=state.source_last_modified,
                )
            items.append(ArtistTask(artist=artist, current=current, known=known))
        return items

    def current_intact(self, task: ArtistTask) -> bool:
        """Whether the current image's object exists with the bytes its row names.

        A 304 from the source only proves the *source* is unchanged; it is trusted only
        when the object the app serves is really there (lost, deleted, a new bucket).
        """
        current = task.current
        if current is None:
            return False
        name = current.object_name or image_object_name(
            task.artist.id, current.sha256, format_for_content_type(current.content_type).extension
        )
        with store_errors(f"checking {current.object_uri}"):
            info = self._objects.stat(name)
        return info is not None and info.sha256 in (None, current.sha256)

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        name = original_object_name(artist_id, image.sha256, image.content_type)
        with store_errors(f"archiving the original of artist {artist_id}"):
            stored = self._objects.put_immutable(
                name,
                image.data,
                content_type=image.content_type,
                cache_control=SOURCE_CACHE_CONTROL,
                metadata={"artist_id": artist_id, "source": image.provenance.source_name},
            )
        return OriginalImage(
            sha256=image.sha256,
            content_type=image.content_type,
            width=image.width,
            height=image.height,
            byte_size=image.byte_size,
            image_url=image.provenance.image_url,
            object_uri=stored.uri,
        )

    def publish(self, publication: Publication, *, batch_id: str) -> Recorded:
        artist_id = publication.artist_id
        image, scraped = publication.image, publication.scraped
        provenance = scraped.provenance
        name = image_object_name(artist_id, image.sha256, image.extension)
        with store_errors(f"publishing the image of artist {artist_id}"):
            stored = self._objects.put_immutable(
                name,
                image.data,
                content_type=image.content_type,
                cache_control=PUBLISHED_CACHE_CONTROL,
                metadata={
                    "artist_id": artist_id,
                    "sha256": image.sha256,
                    "source": provenance.source_name,
                    "source_sha256": scraped.sha256,
                },
            )
            variants = (
                self._put_variants(artist_id, image.sha256, publication.variants, stored)
                if publication.variants is not None
                else None
            )
        attempted_at = publication.result.attempted_at
        record = ImageRecord(
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
            source_sha256=scraped.sha256,
            source_content_type=scraped.content_type,
            source_byte_size=scraped.byte_size,
            preview=publication.preview_jpeg,
            variants=variants,
        )
        with store_errors(f"recording the image of artist {artist_id}"):
            outcome = self._repository.record_image(
                record,
                attempted_at=attempted_at,
                reason=publication.result.reason,
                batch_id=batch_id,
            )
            if outcome.superseded:
                return self._superseded(artist_id)
            if variants is None:  # the row keeps the set it has: report it as stored
                row = self._repository.current_images([artist_id]).get(artist_id)
                if row is not None and row.sha256 == image.sha256:
                    return Recorded(current=current_image(row), switched=outcome.switched)
        return Recorded(current=_current_from_record(record), switched=outcome.switched)

    def _put_variants(
        self, artist_id: str, sha256: str, found: VariantSet, published: StoredObject
    ) -> VariantSetRecord:
        """Write every variant object once (before any row names it); the set's record.

        Bytes already written (the published JPEG as fallback, a square image's avatar =
        its full variants) are not uploaded again: their rows name the same object.
        """
        records: list[VariantRecord] = []
        written = {published.sha256: published}
        for variant in found.variants:
            stored = written.get(variant.sha256)
            if stored is None:
                name = variant_object_name(artist_id, sha256, found.fingerprint, variant.file_name)
                stored = self._objects.put_immutable(
                    name,
                    variant.data,
                    content_type=variant.content_type,
                    cache_control=PUBLISHED_CACHE_CONTROL,
                    metadata={"artist_id": artist_id, "image_sha256": sha256},
                )
                written[variant.sha256] = stored
            records.append(
                VariantRecord(
                    kind=variant.kind.value,
                    format=variant.format,
                    width=variant.width,
                    height=variant.height,
                    object_name=stored.name,
                    public_url=stored.public_url,
                    content_type=variant.content_type,
                    byte_size=variant.byte_size,
                    sha256=variant.sha256,
                )
            )
        placeholders = found.placeholders
        return VariantSetRecord(
            variant_set=found.fingerprint,
            variants=tuple(records),
            blurhash=placeholders.blurhash,
            thumbhash=placeholders.thumbhash,
            dominant_color=placeholders.dominant_color,
            aspect_ratio=placeholders.aspect_ratio,
            avatar_method=found.avatar_method.value if found.avatar_method else None,
            avatar_preview=found.avatar_preview,
        )

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> Recorded:
        with store_errors(f"recording artist {task.artist.id}"):
            newest = self._repository.record_unchanged(
                task.artist.id,
                attempted_at=result.attempted_at,
                reason=result.reason,
                batch_id=batch_id,
            )
            if not newest:
                return self._superseded(task.artist.id)
        if task.current is None:
            return Recorded(current=None)
        return Recorded(
            current=dataclasses.replace(
                task.current, scraped_at=max(task.current.scraped_at, result.attempted_at)
            )
        )

    def record_failure(self, task: ArtistTask, result: ScrapeResult, *, batch_id: str) -> Recorded:
        with store_errors(f"recording artist {task.artist.id}"):
            state = self._repository.record_failure(
                task.artist.id,
                result.outcome,
                result.reason,
                attempted_at=result.attempted_at,
                batch_id=batch_id,
            )
            if state is None:
                return self._superseded(task.artist.id)
        return Recorded(current=task.current)

    def _superseded(self, artist_id: str) -> Recorded:
        """A newer attempt won: report the current image it left (read back)."""
        row = self._repository.current_images([artist_id]).get(artist_id)
        return Recorded(current=current_image(row) if row else None, superseded=True)
