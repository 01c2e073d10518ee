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
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc

from podpod_scraping.core.config import CatalogColumns, IdentityPolicy
from podpod_scraping.core.formats import format_for_content_type
from podpod_scraping.core.identity import (
    ArtistContext,
    CurrentImageRank,
    Identity,
    IdentityMethod,
    preferred,
)
from podpod_scraping.core.naming import image_object_name
from podpod_scraping.core.outcomes import ScrapedImage, ScrapeResult, sha256_hex
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
from podpod_scraping.storage.catalog import repository as catalog
from podpod_scraping.storage.catalog.errors import is_permanent_catalog_error
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    ImageRecord,
    TakedownRecord,
)
from podpod_scraping.storage.objects import (
    IMMUTABLE_CACHE_CONTROL,
    ObjectConflictError,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
)
from podpod_scraping.storage.variant_sets import InlineVariantWriter, VariantJob, VariantWriter


def _utcnow() -> datetime:
    return datetime.now(UTC)


SOURCE_PREFIX = "sources"
#: Published objects are content-addressed and never rewritten: cache them forever.
PUBLISHED_CACHE_CONTROL = IMMUTABLE_CACHE_CONTROL
#: Originals are private working copies (kept to re-normalize without re-scraping).
SOURCE_CACHE_CONTROL = "private, max-age=0, no-store"


def original_object_name(artist_id: str, sha256: str, content_type: str) -> str:
    """``sources/<artist>/<sha256>.<ext>``: where an artist's original is archived."""
    extension = format_for_content_type(content_type).extension
    return image_object_name(artist_id, sha256, extension, prefix=SOURCE_PREFIX)


def current_image(image: catalog.CurrentImage | ImageRecord) -> CurrentImage:
    """A catalog row (or the record just written) as the refresh service reports it."""
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
        source_page_url=image.source_page_url,
        source_content_type=image.source_content_type,
        attribution=image.attribution,
        license_url=image.license_url,
        attribution_required=image.attribution_required,
        identity_namespace=image.identity_namespace,
        identity_id=image.identity_id,
        **_variant_fields(image),
    )


def _variant_fields(image: catalog.CurrentImage | ImageRecord) -> dict[str, Any]:
    """The variant set of a row, or of a record just written (its set, if it has one)."""
    if isinstance(image, ImageRecord):
        found = image.variants
        return {
            "variant_set": found.variant_set if found else None,
            "variant_count": len(found.variants) if found else 0,
            "avatar_method": found.avatar_method if found else None,
            "dominant_color": found.dominant_color if found else None,
            "avatar_preview": found.avatar_preview if found else None,
        }
    return {
        "variant_set": image.variant_set,
        "variant_count": image.variant_count,
        "avatar_method": image.avatar_method,
        "dominant_color": image.dominant_color,
        "avatar_preview": image.avatar_preview,
    }


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

    Thread-safe: the object stores, the repository and the variant writer are, and this
    keeps no state. Variant sets are written by ``variant_writer`` (default: in the
    calling thread; the runs' resources give it worker processes); :meth:`close` ends it.
    """

    def __init__(
        self,
        objects: ObjectStore,
        repository: CatalogRepository,
        *,
        columns: CatalogColumns = CatalogColumns(),  # noqa: B008 — frozen, immutable default
        identity: IdentityPolicy = IdentityPolicy(),  # noqa: B008
        force: bool = False,
        clock: Callable[[], datetime] = _utcnow,
        variant_writer: VariantWriter | None = None,
    ) -> None:
        self._objects = objects
        self._variant_writer = variant_writer or InlineVariantWriter(objects)
        self._repository = repository
        self._columns = columns
        self._identity = identity
        self._force = force
        self._clock = clock

    @property
    def objects(self) -> ObjectStore:
        return self._objects

    @property
    def variant_writer(self) -> VariantWriter:
        return self._variant_writer

    def close(self) -> None:
        """End the variant writer's workers, if it has any (idempotent)."""
        self._variant_writer.close()

    @property
    def repository(self) -> CatalogRepository:
        return self._repository

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        repository = self._repository
        with store_errors("reading the batch's artists"):
            artists = repository.catalog_artists(artist_ids, self._columns)
            present = [key for key in artist_ids if key in artists]
            currents = repository.current_images(present)
            states = repository.scrape_states(present)
            stored_identities = repository.identities(present)
            takedowns = repository.takedowns(present)
        now = self._clock()
        verify_before = now - timedelta(days=self._identity.reverify_after_days)
        items: list[ArtistTask | SkippedArtist] = []
        for key in artist_ids:
            entry = artists.get(key)
            if entry is None:
                items.append(
                    SkippedArtist(
                        key, ArtistStatus.NOT_IN_CATALOG, reason="artist not in the catalog"
                    )
                )
                continue
            artist = entry.artist
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
            stored = stored_identities.get(key, [])
            from_catalog = self._catalog_identities(key, entry.identities, stored, now)
            blocked = takedowns.get(key)
            context = ArtistContext(
                identities=preferred([*stored, *from_catalog]),
                verify_before=verify_before,
                blocked_image_urls=blocked.image_urls if blocked else frozenset(),
                blocked_sha256s=blocked.sha256s if blocked else frozenset(),
                current=(
                    CurrentImageRank(
                        source_name=current.source_name,
                        image_url=current.source_image_url,
                        width=current.width,
                        height=current.height,
                        license=current.license,
                    )
                    if current is not None
                    else None
                ),
                force=self._force,
            )
            items.append(ArtistTask(artist=artist, current=current, known=known, context=context))
        return items

    def _catalog_identities(
        self, artist_id: str, columns: dict[str, str], stored: list[Identity], now: datetime
    ) -> list[Identity]:
        """The catalog columns' ids as identities; new or changed ones are recorded
        (so ``identity show`` and the main API see where each id came from)."""
        recorded = {
            (identity.namespace, identity.external_id)
            for identity in stored
            if identity.method is IdentityMethod.CATALOG
        }
        identities = [
            Identity(
                namespace,
                external_id,
                IdentityMethod.CATALOG,
                evidence={"column": self._columns.identity_columns[namespace]},
                resolved_at=now,
            )
            for namespace, external_id in columns.items()
        ]
        changed = [i for i in identities if (i.namespace, i.external_id) not in recorded]
        if changed:
            with store_errors(f"recording the catalog identities of artist {artist_id}"):
                self._repository.record_identities(artist_id, changed, at=now)
        return identities

    def read_original(self, task: ArtistTask) -> bytes | None:
        current = task.current
        if current is None or not current.source_sha256 or not current.source_content_type:
            return None
        name = original_object_name(
            task.artist.id, current.source_sha256, current.source_content_type
        )
        with store_errors(f"reading the original {self._objects.uri(name)}"):
            try:
                data = self._objects.read(name)
            except ObjectNotFoundError:
                return None
        return data if sha256_hex(data) == current.source_sha256 else None

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

    def _refuse_taken_down(self, artist_id: str, hashes: set[str]) -> None:
        """Never write a taken-down image's objects again (the scraper skips them too)."""
        with store_errors(f"reading the takedowns of artist {artist_id}"):
            takedowns = self._repository.takedowns([artist_id]).get(artist_id)
        if takedowns is not None and hashes & takedowns.sha256s:
            raise StoreError(
                f"artist {artist_id}: image {sorted(hashes & takedowns.sha256s)[0][:12]} was "
                "taken down; it is not stored again",
                transient=False,
                artist_only=True,
            )

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        name = original_object_name(artist_id, image.sha256, image.content_type)
        self._refuse_taken_down(artist_id, {image.sha256})
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
        self._refuse_taken_down(artist_id, {image.sha256, scraped.sha256})
        with store_errors(f"publishing the image of artist {artist_id}"):
            # The set first: a variant that fails to encode (VariantError) fails the
            # publication before any of its objects is written.
            variants = (
                self._variant_writer.write(
                    VariantJob(artist_id, image.sha256, name, publication.variants)
                )
                if publication.variants is not None
                else None
            )
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
            license_url=provenance.license_url,
            attribution_required=provenance.attribution_required,
            identity_namespace=provenance.identity_namespace,
            identity_id=provenance.identity_id,
            variants=variants,
        )
        with store_errors(f"recording the image of artist {artist_id}"):
            outcome = self._repository.record_image(
                record,
                attempted_at=attempted_at,
                reason=publication.result.reason,
                batch_id=batch_id,
                identities=publication.result.identities,
            )
            if outcome.superseded:
                return self._superseded(artist_id)
            if variants is None:  # the row keeps the set it has: report it as stored
                row = self._repository.current_images([artist_id]).get(artist_id)
                if row is not None and row.sha256 == image.sha256:
                    return Recorded(current=current_image(row), switched=outcome.switched)
        return Recorded(current=current_image(record), switched=outcome.switched)

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> Recorded:
        with store_errors(f"recording artist {task.artist.id}"):
            newest = self._repository.record_unchanged(
                task.artist.id,
                attempted_at=result.attempted_at,
                reason=result.reason,
                batch_id=batch_id,
                identities=result.identities,
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
                identities=result.identities,
            )
            if state is None:
                return self._superseded(task.artist.id)
        return Recorded(current=task.current)

    def _superseded(self, artist_id: str) -> Recorded:
        """A newer attempt won: report the current image it left (read back)."""
        row = self._repository.current_images([artist_id]).get(artist_id)
        return Recorded(current=current_image(row) if row else None, superseded=True)

    def take_down(
        self,
        artist_id: str,
        *,
        reason: str,
        sha256: str | None = None,
        every: bool = False,
        at: datetime | None = None,
    ) -> TakedownReport:
        """Take an artist's image down: rows marked (with reason and time), then objects deleted.

        Rows first, in one transaction with the current-image switch, so the main API never
        reads a current row whose object is gone; then the published object, its variants
        (every set) and the archived original of every taken-down row are deleted.
        Idempotent: run it again (e.g. after an object-store error) and it deletes whatever
        is left.
        """
        with store_errors(f"taking down images of artist {artist_id}"):
            record = self._repository.take_down(
                artist_id, reason=reason, at=at or self._clock(), sha256=sha256, every=every
            )
        deleted: list[str] = []
        for taken in record.images:
            image = taken.image
            names = [*taken.variant_objects, image.object_name]
            if image.source_sha256 and image.source_content_type:
                names.append(
                    original_object_name(artist_id, image.source_sha256, image.source_content_type)
                )
            for name in dict.fromkeys(names):
                with store_errors(f"deleting {self._objects.uri(name)}"):
                    if self._objects.delete(name):
                        deleted.append(name)
        return TakedownReport(record=record, deleted_objects=tuple(deleted))


@dataclasses.dataclass(frozen=True)
class TakedownReport:
    """A takedown's result: the rows marked, the current image now, the objects deleted."""

    record: TakedownRecord
    deleted_objects: tuple[str, ...]
