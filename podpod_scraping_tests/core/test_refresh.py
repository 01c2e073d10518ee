"""The refresh service's flow: reports stream out while artists are in flight, and stop.

The store and the scraper are the service's collaborators, outside the unit: an
in-memory store honouring the ``ImageStore`` protocol and a scraper whose answers the test
controls. The production store is tested in ``storage/test_images.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.identity import ArtistContext
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapedImage, ScrapeResult
from podpod_scraping.core.refresh import (
    ArtistStatus,
    ArtistTask,
    OriginalImage,
    Publication,
    Recorded,
    RefreshOptions,
    SkippedArtist,
    StorageUnavailable,
    StoreError,
    refresh_artists,
)
from podpod_scraping.core.scraper import ArtistImageScraper, KnownImage
from podpod_scraping.core.sources import SourceConfig


class MemoryStore:
    """Records failures; every artist id is a catalog artist unless listed as missing."""

    def __init__(
        self,
        missing: Sequence[str] = (),
        fail_reads: bool = False,
        fail_writes: Exception | None = None,
    ) -> None:
        self.failures: list[str] = []
        self._missing = set(missing)
        self._fail_reads = fail_reads
        self._fail_writes = fail_writes
        self._lock = threading.Lock()

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        if self._fail_reads:
            raise ConnectionError("catalog unreachable")
        return [
            SkippedArtist(key, ArtistStatus.NOT_IN_CATALOG)
            if key in self._missing
            else ArtistTask(Artist(key, f"Artist {key}"))
            for key in artist_ids
        ]

    def current_intact(self, task: ArtistTask) -> bool:
        raise AssertionError("no artist is unchanged in these tests")

    def read_original(self, task: ArtistTask) -> bytes | None:
        raise AssertionError("no artist is unchanged in these tests")

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        raise AssertionError("no artist is found in these tests")

    def publish(self, publication: Publication, *, batch_id: str) -> Recorded:
        raise AssertionError("no artist is found in these tests")

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> Recorded:
        raise AssertionError("no artist is unchanged in these tests")

    def record_failure(self, task: ArtistTask, result: ScrapeResult, *, batch_id: str) -> Recorded:
        if self._fail_writes is not None:
            raise self._fail_writes
        with self._lock:
            self.failures.append(task.artist.id)
        return Recorded(current=task.current)


class ControlledScraper(ArtistImageScraper):
    """Every artist's page is missing; artists in ``held`` wait until ``release`` is set."""

    def __init__(self, fetcher: Fetcher, held: Sequence[str] = ()) -> None:
        super().__init__(
            [SourceConfig(name="s", page_url="https://example.invalid/{id}", selector="img")],
            fetcher,
            ImagePolicy(),
        )
        self.held = set(held)
        self.release = threading.Event()
        self.scraped: list[str] = []
        self._lock = threading.Lock()

    def scrape(
        self,
        artist: Artist,
        known: KnownImage | None = None,
        context: ArtistContext | None = None,
    ) -> ScrapeResult:
        with self._lock:
            self.scraped.append(artist.id)
        if artist.id in self.held:
            assert self.release.wait(timeout=10)
        return ScrapeResult(
            artist_id=artist.id,
            outcome=Outcome.PAGE_NOT_FOUND,
            reason="s: page answered 404",
            attempted_at=datetime.now(UTC),
        )


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy()) as opened:  # never used: the scraper answers itself
        yield opened


def test_reports_stream_out_while_other_artists_are_still_in_flight(fetcher: Fetcher) -> None:
    scraper = ControlledScraper(fetcher, held=["1"])
    reports = refresh_artists(
        ["1", "2", "3"],
        store=MemoryStore(),
        scraper=scraper,
        images=ImagePolicy(),
        batch_id="b",
        options=RefreshOptions(concurrency=3),
    )

    first_two = {next(reports).artist_id, next(reports).artist_id}  # "1" is still held
    scraper.release.set()
    last = next(reports)

    assert first_two == {"2", "3"}
    assert last.artist_id == "1"
    assert last.status is ArtistStatus.FAILED
    assert list(reports) == []


def test_ids_not_in_the_catalog_are_reported_without_being_scraped(fetcher: Fetcher) -> None:
    scraper = ControlledScraper(fetcher)
    reports = list(
        refresh_artists(
            ["1", "2", "2"],
            store=MemoryStore(missing=["2"]),
            scraper=scraper,
            images=ImagePolicy(),
            batch_id="b",
        )
    )

    assert sorted((r.artist_id, r.status) for r in reports) == [
        ("1", ArtistStatus.FAILED),
        ("2", ArtistStatus.NOT_IN_CATALOG),
    ]
    assert scraper.scraped == ["1"]


def test_closing_the_stream_early_stops_feeding_new_artists(fetcher: Fetcher) -> None:
    scraper = ControlledScraper(fetcher)
    store = MemoryStore()
    reports = refresh_artists(
        [str(i) for i in range(1, 501)],
        store=store,
        scraper=scraper,
        images=ImagePolicy(),
        batch_id="b",
        options=RefreshOptions(concurrency=2),
    )
    for _ in range(3):
        next(reports)

    reports.close()
    scraped_at_close = len(scraper.scraped)

    assert scraped_at_close < 500
    assert len(store.failures) == scraped_at_close  # nothing in flight was abandoned
    assert len(scraper.scraped) == scraped_at_close  # and nothing new started after


def test_a_failing_catalog_read_is_raised_to_the_caller(fetcher: Fetcher) -> None:
    reports = refresh_artists(
        ["1"],
        store=MemoryStore(fail_reads=True),
        scraper=ControlledScraper(fetcher),
        images=ImagePolicy(),
        batch_id="b",
    )

    with pytest.raises(ConnectionError, match="catalog unreachable"):
        list(reports)


def test_every_artist_is_reported_before_the_stream_ends(fetcher: Fetcher) -> None:
    """Found by the throughput benchmark: the last reports of a batch were once queued after
    the end marker (a done-callback racing the feeder's wait) and silently dropped."""
    ids = [str(i) for i in range(1, 1001)]
    for _ in range(3):
        reports = refresh_artists(
            ids,
            store=MemoryStore(),
            scraper=ControlledScraper(fetcher),
            images=ImagePolicy(),
            batch_id="b",
            options=RefreshOptions(concurrency=16),
        )
        received = []
        for report in reports:  # a slow caller (as one recording Dagster events): queue full
            received.append(report.artist_id)
            time.sleep(0.0005)

        assert sorted(received) == sorted(ids)


def _drain(
    store: MemoryStore, scraper: ControlledScraper, ids: list[str], **options: int
) -> tuple[list[str], BaseException | None]:
    """The statuses reported before the stream ended, and what it raised."""
    statuses: list[str] = []
    try:
        for report in refresh_artists(
            ids,
            store=store,
            scraper=scraper,
            images=ImagePolicy(),
            batch_id="b",
            options=RefreshOptions(**options),
        ):
            statuses.append(report.status.value)
    except BaseException as error:
        return statuses, error
    return statuses, None


def test_a_dead_store_stops_the_batch_after_consecutive_storage_failures(
    fetcher: Fetcher,
) -> None:
    scraper = ControlledScraper(fetcher)
    store = MemoryStore(fail_writes=StoreError("bucket unreachable", transient=True))
    ids = [str(n) for n in range(1, 201)]

    statuses, raised = _drain(store, scraper, ids, concurrency=2, max_storage_failures=5)

    assert isinstance(raised, StorageUnavailable)
    assert raised.transient
    assert "5 artists in a row" in str(raised)
    assert set(statuses) == {"storage_failed"}
    assert 5 <= len(scraper.scraped) <= 5 + 2 + 1  # the in-flight ones end; no more start


def test_a_storage_error_that_cannot_heal_stops_the_batch_at_once(fetcher: Fetcher) -> None:
    scraper = ControlledScraper(fetcher)
    store = MemoryStore(fail_writes=StoreError("403 Forbidden", transient=False))

    statuses, raised = _drain(
        store, scraper, [str(n) for n in range(1, 101)], concurrency=1, max_storage_failures=50
    )

    assert isinstance(raised, StorageUnavailable)
    assert not raised.transient
    assert "403 Forbidden" in str(raised)
    assert len(statuses) <= 2


def test_a_bug_in_the_store_is_not_taken_for_a_transient_fault(fetcher: Fetcher) -> None:
    scraper = ControlledScraper(fetcher)
    store = MemoryStore(fail_writes=KeyError("oops"))

    _, raised = _drain(store, scraper, ["1", "2", "3"], concurrency=1)

    assert isinstance(raised, StorageUnavailable)
    assert not raised.transient


def test_failures_between_successes_do_not_trip_the_breaker(fetcher: Fetcher) -> None:
    """Only failures *in a row* count: one bad write among good ones is retried later."""

    class FlakyStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def record_failure(
            self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
        ) -> Recorded:
            with self._lock:
                self.calls += 1
                flaky = self.calls % 2 == 0
            if flaky:
                raise StoreError("503", transient=True)
            return Recorded(current=None)

    statuses, raised = _drain(
        FlakyStore(),
        ControlledScraper(fetcher),
        [str(n) for n in range(1, 21)],
        concurrency=1,
        max_storage_failures=2,
    )

    assert raised is None
    assert statuses.count("storage_failed") == 10
    assert statuses.count("failed") == 10
