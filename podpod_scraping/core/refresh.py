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

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from podpod_scraping.core.identity import ArtistContext, Identity, IdentityCandidate
from podpod_scraping.core.images import (
    DecodedImage,
    ImagePolicy,
    NormalizedImage,
    decode_image,
    normalize_decoded,
    preview_jpeg,
)
from podpod_scraping.core.outcomes import (
    Artist,
    Outcome,
    Provenance,
    ScrapedImage,
    ScrapeError,
    ScrapeResult,
)
from podpod_scraping.core.scraper import ArtistImageScraper, KnownImage
from podpod_scraping.core.variants import VariantError, VariantRequest, published_fallback

logger = logging.getLogger(__name__)


class ArtistStatus(StrEnum):
    """How one artist of a batch ended, from the batch's point of view."""

    SUCCEEDED = "succeeded"  # found (published or confirmed) or unchanged: a current image
    FAILED = "failed"  # the attempt ended in a failure outcome, recorded as such
    STORAGE_FAILED = "storage_failed"  # our object store or database failed: nothing recorded
    NOT_IN_CATALOG = "not_in_catalog"  # the id is not (or no longer) a catalog artist
    ALREADY_DONE = "already_done"  # this batch recorded the artist before (a retried step)
    SUPERSEDED = "superseded"  # a newer attempt (another run) recorded the artist first


class StoreError(Exception):
    """The object store or the catalog failed: never the artist's fault.

    Stores raise this (wrapping their client's error) so the service can tell a fault
    that heals (a timeout, a 503, a failover: retry the step later) from one that
    cannot (bad credentials, a missing bucket or table: stop now and name the fix).
    """

    def __init__(self, message: str, *, transient: bool, artist_only: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        # The fault concerns this artist's objects alone (e.g. foreign bytes at its name):
        # other artists can go on, so it counts toward the breaker like a transient one.
        self.artist_only = artist_only


class StorageUnavailable(Exception):
    """The batch stopped early: storage failed for consecutive artists, or for good.

    Raised by :func:`refresh_artists` after the artists in flight ended; every report
    before it was yielded. ``transient`` says whether a later retry can succeed.
    """

    def __init__(self, message: str, *, transient: bool, failures: int) -> None:
        super().__init__(message)
        self.transient = transient
        self.failures = failures


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
    object_name: str | None = None  # the name in the object store (``object_uri``'s path)
    # Provenance the app prints as the credit line (see ``core.credits``).
    source_page_url: str | None = None
    source_content_type: str | None = None
    attribution: str | None = None
    license_url: str | None = None
    attribution_required: bool | None = None
    identity_namespace: str | None = None
    identity_id: str | None = None
    # The variant set recorded for this image (``VariantPolicy.fingerprint``), if any.
    variant_set: str | None = None
    variant_count: int = 0
    avatar_method: str | None = None
    dominant_color: str | None = None
    avatar_preview: bytes | None = None

    def lacks_variants(self, fingerprint: str | None) -> bool:
        """Whether this image has no complete set under the policy named ``fingerprint``."""
        return fingerprint is not None and self.variant_set != fingerprint


@dataclass(frozen=True)
class ArtistTask:
    """One artist to refresh, with what the store knows about its current image."""

    artist: Artist
    current: CurrentImage | None = None
    known: KnownImage | None = None  # validators for a conditional request
    context: ArtistContext = field(default_factory=ArtistContext)  # identities, takedowns


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
    """A found image ready to publish: the scrape, its archived original, the served image.

    ``variants`` is the set to render and publish with it (all or nothing: the store raises
    :class:`~podpod_scraping.core.variants.VariantError` when a variant fails to encode),
    or None when variants are off or the image already has its set (a rerun that found
    the same image renders nothing).
    """

    result: ScrapeResult
    image: NormalizedImage
    original: OriginalImage
    preview_jpeg: bytes
    variants: VariantRequest | None = None

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
    storage_transient: bool = True  # STORAGE_FAILED: whether a retry can succeed
    storage_systemic: bool = True  # STORAGE_FAILED: the fault is the store's, not one object's
    # From the attempt's ScrapeResult: identities resolved, an ambiguous name's candidates,
    # and the found image's provenance (licence, attribution, identity).
    identities: tuple[Identity, ...] = ()
    candidates: tuple[IdentityCandidate, ...] = ()
    provenance: Provenance | None = None


@dataclass(frozen=True)
class Recorded:
    """What a store write did: the artist's current image after it, and how it changed."""

    current: CurrentImage | None
    switched: bool = False  # a new image became current
    superseded: bool = False  # a newer attempt was recorded first: nothing became current


class ImageStore(Protocol):
    """Where a batch reads its artists and writes its results (catalog + object store)."""

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        """Each id as a task, or skipped (not a catalog artist, or done by ``batch_id``)."""
        ...

    def read_original(self, task: ArtistTask) -> bytes | None:
        """The archived original of the task's current image (its sha256), or None."""
        ...

    def current_intact(self, task: ArtistTask) -> bool:
        """Whether the task's current image is really in the object store (its sha256)."""
        ...

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        """Store the original once under its content address; no-op when already there."""
        ...

    def publish(self, publication: Publication, *, batch_id: str) -> Recorded:
        """Objects first (the variant set rendered, then written), then row + current switch
        (unless a newer attempt is recorded); raise VariantError when the set cannot be
        rendered, before anything of this publication is written."""
        ...

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> Recorded:
        """The source confirmed the current image (HTTP 304): refresh its age."""
        ...

    def record_failure(self, task: ArtistTask, result: ScrapeResult, *, batch_id: str) -> Recorded:
        """A failed attempt: the scrape state only; images are never touched."""
        ...


@dataclass(frozen=True)
class RefreshOptions:
    """How a batch runs.

    ``concurrency`` artists are in flight at once (per-host limits still apply). After
    ``max_storage_failures`` artists in a row fail in storage (a dead bucket or
    database), or after one failure that cannot heal, the batch stops feeding artists and
    raises :class:`StorageUnavailable` instead of waiting out every artist's timeouts.
    """

    concurrency: int = 16
    max_storage_failures: int = 5

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_storage_failures < 1:
            raise ValueError("max_storage_failures must be at least 1")


def refresh_artists(
    artist_ids: Sequence[str],
    *,
    store: ImageStore,
    scraper: ArtistImageScraper,
    images: ImagePolicy,
    batch_id: str,
    options: RefreshOptions = RefreshOptions(),
    on_idle: Callable[[], None] | None = None,
    idle_every: float = 5.0,
) -> Generator[ArtistReport, None, None]:
    """Refresh ``artist_ids`` (duplicates dropped); yield one report per id as each ends.

    Reports arrive in completion order, while the other artists are still in flight, so
    a caller can show progress (and Dagster can record events) during the batch. A
    feeder thread keeps ``concurrency`` artists in flight whatever the caller does with
    each report (recording a Dagster event takes milliseconds that must not idle the
    workers); at most :data:`REPORTS_BUFFERED` finished reports wait for the caller.
    One artist's failure, or one artist's storage error, never stops the others.
    Closing the iterator early stops feeding new artists and waits for those in flight.
    ``on_idle`` is called (in the caller's thread) every ``idle_every`` seconds without a
    report, so a caller can keep a heartbeat while every artist in flight is slow.

    Storage faults stop the batch early (see :class:`RefreshOptions`): the reports of the
    artists in flight are still yielded, then :class:`StorageUnavailable` is raised.
    """
    unique = list(dict.fromkeys(artist_ids))
    batch = _Batch(_Worker(store, scraper, images, batch_id), store, batch_id, options)
    batch.start(unique)
    try:
        while True:
            try:
                item = batch.reports.get(timeout=idle_every)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()
                continue
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        batch.stop()
    if batch.breaker.tripped is not None:
        raise batch.breaker.tripped


class _StorageBreaker:
    """Counts storage failures in a row; trips on ``limit`` of them or one that cannot heal.

    Fed by the workers as each artist ends (before its slot is freed), so once it trips
    no further artist starts.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_a_row = 0
        self._lock = threading.Lock()
        self.tripped: StorageUnavailable | None = None

    def trips(self, report: ArtistReport) -> bool:
        """Whether this report trips the breaker (only the first trip counts)."""
        with self._lock:
            return self._trips(report)

    def _trips(self, report: ArtistReport) -> bool:
        if report.status is not ArtistStatus.STORAGE_FAILED:
            self._in_a_row = 0
            return False
        self._in_a_row += 1
        if self.tripped is not None:
            return False
        permanent = not report.storage_transient and report.storage_systemic
        if permanent or self._in_a_row >= self._limit:
            why = (
                "a storage error that a retry cannot fix"
                if permanent
                else f"{self._in_a_row} artists in a row failed in storage"
            )
            self.tripped = StorageUnavailable(
                f"batch stopped: {why}; last error: {report.error}",
                transient=report.storage_transient,
                failures=self._in_a_row,
            )
            return True
        return False


#: Artists whose tasks are read from the store at once (one catalog query per chunk).
_TASK_CHUNK = 500
#: Finished reports that may wait for a slow caller before the workers pause.
REPORTS_BUFFERED = 256
_DONE = object()


class _Batch:
    """The feeder thread, the worker pool and the bounded queue of finished reports."""

    def __init__(
        self, worker: _Worker, store: ImageStore, batch_id: str, options: RefreshOptions
    ) -> None:
        self._worker = worker
        self._store = store
        self._batch_id = batch_id
        self._slots = threading.BoundedSemaphore(options.concurrency)
        self._stopping = threading.Event()
        self._no_more = threading.Event()  # stop feeding; keep delivering reports
        self.breaker = _StorageBreaker(options.max_storage_failures)
        self._pool = ThreadPoolExecutor(
            max_workers=options.concurrency, thread_name_prefix="refresh"
        )
        self.reports: queue.Queue[Any] = queue.Queue(maxsize=REPORTS_BUFFERED)
        self._feeder: threading.Thread | None = None

    def start(self, artist_ids: list[str]) -> None:
        self._feeder = threading.Thread(
            target=self._feed, args=(artist_ids,), name="refresh-feeder", daemon=True
        )
        self._feeder.start()

    def stop(self) -> None:
        """Stop feeding; wait for the artists in flight (reports not taken are dropped)."""
        self._stopping.set()
        while self._feeder is not None and self._feeder.is_alive():
            self._drain()
            self._feeder.join(timeout=0.1)
        self._pool.shutdown(wait=True)
        self._drain()

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.reports.get_nowait()

    def _feed(self, artist_ids: list[str]) -> None:
        futures: list[Future[None]] = []
        try:
            for start in range(0, len(artist_ids), _TASK_CHUNK):
                chunk = artist_ids[start : start + _TASK_CHUNK]
                if self._no_more.is_set():
                    return
                for item in self._store.tasks(chunk, self._batch_id):
                    if self._stopping.is_set() or self._no_more.is_set():
                        return
                    if isinstance(item, SkippedArtist):
                        self._put(_skipped_report(item))
                        continue
                    while not self._slots.acquire(timeout=0.5):
                        if self._stopping.is_set() or self._no_more.is_set():
                            return
                    futures.append(self._pool.submit(self._refresh, item))
        except BaseException as error:  # the store's reads failed: the caller raises it
            self._put(error)
        finally:
            wait(futures)
            self._put(_DONE)

    def _refresh(self, task: ArtistTask) -> None:
        """One artist, its report queued *before* the task ends: once the feeder has waited
        for every task, every report is in the queue ahead of the end marker."""
        try:
            report: Any = self._worker.refresh(task)
            if self.breaker.trips(report):
                self._no_more.set()  # start no more artists; those in flight still report
        except BaseException as error:  # a bug in the worker: surface it to the caller
            report = error
        try:
            self._put(report)
        finally:
            self._slots.release()

    def _put(self, item: Any) -> None:
        while not self._stopping.is_set():
            try:
                self.reports.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


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
        result = self._scraper.scrape(task.artist, task.known, task.context)  # never raises
        try:
            if result.outcome is Outcome.UNCHANGED and task.current is not None:
                result = self._repaired(task, result)
            return self._store_result(task, result)
        except Exception as error:  # storage (object store, database) or a bug: not the artist's
            # Only a StoreError says it may heal; anything else is a bug: stop the batch.
            transient = isinstance(error, StoreError) and error.transient
            systemic = not (isinstance(error, StoreError) and error.artist_only)
            logger.warning(
                "artist %s: storing failed (%s): %s: %s",
                task.artist.id,
                "transient" if transient else "permanent",
                type(error).__name__,
                error,
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
                storage_transient=transient,
                storage_systemic=systemic,
            )

    def _repaired(self, task: ArtistTask, result: ScrapeResult) -> ScrapeResult:
        """An UNCHANGED current image whose object or variant set is missing, made whole.

        First one unconditional fetch (the source may serve it again); if the source still
        keeps it as it is (e.g. the never-worse rule kept it without a download), the
        archived original is re-rendered, so a repair never waits on the source.
        """
        current = task.current
        assert current is not None
        fingerprint = self._images.variants.fingerprint
        if not self._store.current_intact(task):
            why = f"current object {current.object_uri} is missing"
        elif current.lacks_variants(fingerprint):
            why = f"current image has no variant set {fingerprint}"
        else:
            return result
        logger.info("artist %s: %s; fetching the image again", task.artist.id, why)
        again = self._scraper.scrape(task.artist, None, task.context)
        if again.outcome is not Outcome.UNCHANGED:
            return again
        rebuilt = self._from_original(task, again)
        return rebuilt if rebuilt is not None else again

    def _from_original(self, task: ArtistTask, result: ScrapeResult) -> ScrapeResult | None:
        """The current image's archived original as a FOUND result, or None when gone."""
        current = task.current
        assert current is not None
        data = self._store.read_original(task)
        if data is None:
            return None
        try:
            decoded = decode_image(data, self._images)
        except ScrapeError:
            return None  # the policy changed and refuses it now: keep what is served
        known = task.known
        image = ScrapedImage(
            data=data,
            content_type=decoded.info.content_type,
            width=decoded.info.width,
            height=decoded.info.height,
            provenance=Provenance(
                source_name=current.source_name,
                page_url=current.source_page_url or current.source_image_url,
                image_url=current.source_image_url,
                license=current.license,
                attribution=current.attribution,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
                license_url=current.license_url,
                attribution_required=current.attribution_required,
                identity_namespace=current.identity_namespace,
                identity_id=current.identity_id,
            ),
            fetched_at=result.attempted_at,
            decoded=decoded,
        )
        return ScrapeResult(
            artist_id=task.artist.id,
            outcome=Outcome.FOUND,
            reason=f"{result.reason}; republished from the archived original",
            attempted_at=result.attempted_at,
            image=image,
            source_name=current.source_name,
            page_url=current.source_page_url,
            identities=result.identities,
        )

    def _store_result(self, task: ArtistTask, result: ScrapeResult) -> ArtistReport:
        if result.outcome is Outcome.FOUND:
            return self._publish(task, result)
        if result.outcome is Outcome.UNCHANGED:
            recorded = self._store.record_unchanged(task, result, batch_id=self._batch_id)
            return self._report(task, result, ArtistStatus.SUCCEEDED, recorded)
        recorded = self._store.record_failure(task, result, batch_id=self._batch_id)
        return self._report(task, result, ArtistStatus.FAILED, recorded)

    def _publish(self, task: ArtistTask, result: ScrapeResult) -> ArtistReport:
        scraped = result.image
        assert scraped is not None
        original = self._store.archive_original(task.artist.id, scraped)
        try:
            decoded: DecodedImage = scraped.decoded or decode_image(scraped.data, self._images)
            normalized = normalize_decoded(decoded, self._images)
            preview = preview_jpeg(decoded.image)
            publication = Publication(
                result, normalized, original, preview, self._variants(task, decoded, normalized)
            )
            recorded = self._store.publish(publication, batch_id=self._batch_id)
        except (ScrapeError, VariantError) as error:  # the artist's failure, not storage's
            outcome, reason = (
                (error.outcome, error.reason)
                if isinstance(error, ScrapeError)
                else (Outcome.INVALID_IMAGE, f"a variant failed to encode: {error}")
            )
            failed = ScrapeResult(
                artist_id=result.artist_id,
                outcome=outcome,
                reason=reason,
                attempted_at=result.attempted_at,
                source_name=result.source_name,
                page_url=result.page_url,
            )
            recorded = self._store.record_failure(task, failed, batch_id=self._batch_id)
            return self._report(task, failed, ArtistStatus.FAILED, recorded)
        return self._report(task, result, ArtistStatus.SUCCEEDED, recorded, original=original)

    def _variants(
        self, task: ArtistTask, decoded: DecodedImage, image: NormalizedImage
    ) -> VariantRequest | None:
        """The set to publish with the image: None when off, or already recorded for it."""
        policy = self._images.variants
        current = task.current
        if policy.fingerprint is None:
            return None
        same = current is not None and current.sha256 == image.sha256
        if same and current is not None and not current.lacks_variants(policy.fingerprint):
            return None  # a rerun found the same image: its set is there
        info = decoded.info
        fallback = None
        if image.content_type == "image/jpeg":  # the published image is the JPEG fallback
            fallback = published_fallback(image.data, image.width, image.height)
        return VariantRequest(
            decoded.variant_source, info.width, info.height, policy, fallback=fallback
        )

    @staticmethod
    def _report(
        task: ArtistTask,
        result: ScrapeResult,
        status: ArtistStatus,
        recorded: Recorded,
        *,
        original: OriginalImage | None = None,
    ) -> ArtistReport:
        """The report of a recorded attempt; a superseded one says so, whatever it found."""
        if recorded.superseded:
            status = ArtistStatus.SUPERSEDED
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
            current=recorded.current,
            switched=recorded.switched,
            identities=result.identities,
            candidates=result.candidates,
            provenance=result.image.provenance if result.image else None,
        )


@dataclass
class BatchTally:
    """Counts of a batch's reports, for summaries and the step's final verdict."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    failed: list[ArtistReport] = field(default_factory=list)
    storage_failed: list[ArtistReport] = field(default_factory=list)
    not_in_catalog: list[ArtistReport] = field(default_factory=list)

    def add(self, report: ArtistReport) -> None:
        self.total += 1
        self.by_status[report.status.value] = self.by_status.get(report.status.value, 0) + 1
        key = report.outcome.value if report.outcome is not None else report.status.value
        self.by_outcome[key] = self.by_outcome.get(key, 0) + 1
        if report.status is ArtistStatus.STORAGE_FAILED:
            self.storage_failed.append(report)
        elif report.status is ArtistStatus.NOT_IN_CATALOG:
            self.not_in_catalog.append(report)
        elif report.status is ArtistStatus.FAILED or (
            report.status is ArtistStatus.ALREADY_DONE
            and report.outcome is not None
            and not report.outcome.is_success
        ):
            self.failed.append(report)

    def summary(self) -> str:
        counts = ", ".join(f"{name}={count}" for name, count in sorted(self.by_outcome.items()))
        return f"{self.total} artist(s): {counts}" if self.total else "0 artists"
