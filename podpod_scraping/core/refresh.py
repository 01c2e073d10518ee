"""Refreshing a batch of artists end to end: the one service every entry point calls.

Per artist, in this order: scrape (conditionally, with the current image's validators)
→ archive the original → normalize → publish (object, then row + current switch), or
record the failure. Artists run concurrently (``concurrency`` in flight), so one
artist's network waits, another's image work and a third's uploads overlap; only the
fetcher's per-host limits bound the load on each site. Memory is bounded by the artists
in flight: a report carries no image bytes, only what a person wants to see.

Nothing here knows Dagster: UI backfills, the CLI, the sensor's and the schedule's runs
and the benchmark's plain reference all call :func:`refresh_artists` and read the same
:class:`ArtistReport` stream. Storage is the :class:`ImageStore` hook (the catalog and
the object store in production; anything honouring the protocol in a test).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from podpod_scraping.core.images import (
    DecodedImage,
    ImagePolicy,
    NormalizedImage,
    decode_image,
    normalize_decoded,
    preview_jpeg,
)
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapedImage, ScrapeError, ScrapeResult
from podpod_scraping.core.scraper import ArtistImageScraper, KnownImage

logger = logging.getLogger(__name__)


class ArtistStatus(StrEnum):
    """How one artist of a batch ended, from the batch's point of view."""

    SUCCEEDED = "succeeded"  # found (published or confirmed) or unchanged: a current image
    FAILED = "failed"  # the attempt ended in a failure outcome, recorded as such
    STORAGE_FAILED = "storage_failed"  # our object store or database failed: nothing recorded
    NOT_IN_CATALOG = "not_in_catalog"  # the id is not (or no longer) a catalog artist
    ALREADY_DONE = "already_done"  # this batch recorded the artist before (a retried step)


@dataclass(frozen=True)
class CurrentImage:
    """The image the app serves for an artist, as a report shows it."""

    sha256: str
    object_uri: str
    public_url: str
    width: int
    height: int
    byte_size: int
    content_type: str
    source_name: str
    source_image_url: str
    license: str | None
    scraped_at: datetime
    source_sha256: str | None = None
    preview_jpeg: bytes | None = None


@dataclass(frozen=True)
class ArtistTask:
    """One artist to refresh, with what the store knows about its current image."""

    artist: Artist
    current: CurrentImage | None = None
    known: KnownImage | None = None  # validators for a conditional request


@dataclass(frozen=True)
class SkippedArtist:
    """An id of the batch that is not refreshed: not in the catalog, or already done."""

    artist_id: str
    status: ArtistStatus
    artist_name: str | None = None
    outcome: Outcome | None = None  # for ALREADY_DONE: the outcome recorded earlier
    reason: str = ""
    current: CurrentImage | None = None


@dataclass(frozen=True)
class OriginalImage:
    """The scraped original as archived (``sources/<artist>/<sha256>.<ext>``)."""

    sha256: str
    content_type: str
    width: int
    height: int
    byte_size: int
    image_url: str
    object_uri: str


@dataclass(frozen=True)
class Publication:
    """A found image ready to publish: the scrape, its archived original, the served image."""

    result: ScrapeResult
    image: NormalizedImage
    original: OriginalImage
    preview_jpeg: bytes

    @property
    def artist_id(self) -> str:
        return self.result.artist_id

    @property
    def scraped(self) -> ScrapedImage:
        assert self.result.image is not None  # a Publication is only built from a FOUND result
        return self.result.image


@dataclass(frozen=True)
class ArtistReport:
    """One artist's end of a batch: what happened and the image the app now serves."""

    artist_id: str
    status: ArtistStatus
    artist_name: str | None
    outcome: Outcome | None  # None when nothing was recorded (storage failed, not in catalog)
    reason: str
    attempted_at: datetime | None = None
    source_name: str | None = None
    page_url: str | None = None
    original: OriginalImage | None = None  # the original found (or confirmed) this attempt
    current: CurrentImage | None = None  # the current image after this attempt
    switched: bool = False  # a new image became current
    error: str | None = None  # the storage error (STORAGE_FAILED only)


class ImageStore(Protocol):
    """Where a batch reads its artists and writes its results (catalog + object store)."""

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        """Each id as a task, or skipped (not a catalog artist, or done by ``batch_id``)."""
        ...

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        """Store the original once under its content address; no-op when already there."""
        ...

    def publish(self, publication: Publication, *, batch_id: str) -> tuple[CurrentImage, bool]:
        """Object first, then row + current switch; returns the current image and whether
        it changed."""
        ...

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> CurrentImage | None:
        """The source confirmed the current image (HTTP 304): refresh its age."""
        ...

    def record_failure(self, task: ArtistTask, result: ScrapeResult, *, batch_id: str) -> None:
        """A failed attempt: the scrape state only; images are never touched."""
        ...


@dataclass(frozen=True)
class RefreshOptions:
    """How a batch runs: artists in flight at once (per-host limits still apply)."""

    concurrency: int = 16

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


def refresh_artists(
    artist_ids: Sequence[str],
    *,
    store: ImageStore,
    scraper: ArtistImageScraper,
    images: ImagePolicy,
    batch_id: str,
    options: RefreshOptions = RefreshOptions(),
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[ArtistReport]:
    """Refresh ``artist_ids`` (duplicates dropped); yield one report per id as each ends.

    Reports arrive in completion order, while the other artists are still in flight, so
    a caller can show progress (and Dagster can record events) during the batch. One
    artist's failure, or one artist's storage error, never stops the others. Closing
    the iterator early (or ``cancelled()`` turning true) stops submitting new artists
    and waits for those in flight.
    """
    unique = list(dict.fromkeys(artist_ids))
    worker = _Worker(store, scraper, images, batch_id)
    in_flight: set[Future[ArtistReport]] = set()
    limit = options.concurrency
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="refresh") as pool:
        try:
            for chunk_start in range(0, len(unique), _TASK_CHUNK):
                chunk = unique[chunk_start : chunk_start + _TASK_CHUNK]
                for item in store.tasks(chunk, batch_id):
                    if isinstance(item, SkippedArtist):
                        yield _skipped_report(item)
                        continue
                    while len(in_flight) >= limit:
                        done, in_flight = _wait_some(in_flight)
                        yield from (future.result() for future in done)
                    if cancelled():
                        return
                    in_flight.add(pool.submit(worker.refresh, item))
            while in_flight:
                done, in_flight = _wait_some(in_flight)
                yield from (future.result() for future in done)
        finally:
            for future in in_flight:
                future.cancel()


#: Artists whose tasks are read from the store at once (one catalog query per chunk).
_TASK_CHUNK = 500


def _wait_some(
    futures: set[Future[ArtistReport]],
) -> tuple[set[Future[ArtistReport]], set[Future[ArtistReport]]]:
    done, pending = wait(futures, return_when=FIRST_COMPLETED)
    return set(done), set(pending)


def _skipped_report(item: SkippedArtist) -> ArtistReport:
    return ArtistReport(
        artist_id=item.artist_id,
        status=item.status,
        artist_name=item.artist_name,
        outcome=item.outcome,
        reason=item.reason,
        current=item.current,
    )


class _Worker:
    """The per-artist pipeline; run by many threads at once (every part is thread-safe)."""

    def __init__(
        self, store: ImageStore, scraper: ArtistImageScraper, images: ImagePolicy, batch_id: str
    ) -> None:
        self._store = store
        self._scraper = scraper
        self._images = images
        self._batch_id = batch_id

    def refresh(self, task: ArtistTask) -> ArtistReport:
        result = self._scraper.scrape(task.artist, task.known)  # never raises
        try:
            return self._store_result(task, result)
        except Exception as error:  # storage (object store, database) or a bug: not the artist's
            logger.warning(
                "artist %s: storing failed: %s: %s", task.artist.id, type(error).__name__, error
            )
            return ArtistReport(
                artist_id=task.artist.id,
                status=ArtistStatus.STORAGE_FAILED,
                artist_name=task.artist.name,
                outcome=None,
                reason=f"storing failed: {type(error).__name__}: {error}",
                attempted_at=result.attempted_at,
                source_name=result.source_name,
                page_url=result.page_url,
                current=task.current,
                error=f"{type(error).__name__}: {error}",
            )

    def _store_result(self, task: ArtistTask, result: ScrapeResult) -> ArtistReport:
        if result.outcome is Outcome.FOUND:
            return self._publish(task, result)
        if result.outcome is Outcome.UNCHANGED:
            current = self._store.record_unchanged(task, result, batch_id=self._batch_id)
            return self._report(task, result, ArtistStatus.SUCCEEDED, current=current)
        self._store.record_failure(task, result, batch_id=self._batch_id)
        return self._report(task, result, ArtistStatus.FAILED, current=task.current)

    def _publish(self, task: ArtistTask, result: ScrapeResult) -> ArtistReport:
        scraped = result.image
        assert scraped is not None
        original = self._store.archive_original(task.artist.id, scraped)
        try:
            decoded: DecodedImage = scraped.decoded or decode_image(scraped.data, self._images)
            normalized = normalize_decoded(decoded, self._images)
            preview = preview_jpeg(decoded.image)
        except ScrapeError as error:  # e.g. refused at normalization: the artist's failure
            failed = ScrapeResult(
                artist_id=result.artist_id,
                outcome=error.outcome,
                reason=error.reason,
                attempted_at=result.attempted_at,
                source_name=result.source_name,
                page_url=result.page_url,
            )
            self._store.record_failure(task, failed, batch_id=self._batch_id)
            return self._report(task, failed, ArtistStatus.FAILED, current=task.current)
        publication = Publication(result, normalized, original, preview)
        current, switched = self._store.publish(publication, batch_id=self._batch_id)
        return self._report(
            task,
            result,
            ArtistStatus.SUCCEEDED,
            current=current,
            original=original,
            switched=switched,
        )

    @staticmethod
    def _report(
        task: ArtistTask,
        result: ScrapeResult,
        status: ArtistStatus,
        *,
        current: CurrentImage | None,
        original: OriginalImage | None = None,
        switched: bool = False,
    ) -> ArtistReport:
        return ArtistReport(
            artist_id=task.artist.id,
            status=status,
            artist_name=task.artist.name,
            outcome=result.outcome,
            reason=result.reason,
            attempted_at=result.attempted_at,
            source_name=result.source_name,
            page_url=result.page_url,
            original=original,
            current=current,
            switched=switched,
        )


@dataclass
class BatchTally:
    """Counts of a batch's reports, for summaries and the step's final verdict."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    failed: list[ArtistReport] = field(default_factory=list)
    storage_failed: list[ArtistReport] = field(default_factory=list)

    def add(self, report: ArtistReport) -> None:
        self.total += 1
        self.by_status[report.status.value] = self.by_status.get(report.status.value, 0) + 1
        key = report.outcome.value if report.outcome is not None else report.status.value
        self.by_outcome[key] = self.by_outcome.get(key, 0) + 1
        if report.status is ArtistStatus.STORAGE_FAILED:
            self.storage_failed.append(report)
        elif report.status is ArtistStatus.FAILED or (
            report.status is ArtistStatus.ALREADY_DONE
            and report.outcome is not None
            and not report.outcome.is_success
        ):
            self.failed.append(report)

    def summary(self) -> str:
        counts = ", ".join(f"{name}={count}" for name, count in sorted(self.by_outcome.items()))
        return f"{self.total} artist(s): {counts}" if self.total else "0 artists"
