"""Behaviour that only a real Postgres server can show: concurrency and session time zones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa

from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    RecordOutcome,
    insert_artists,
    make_engine,
)
from podpod_scraping_tests.storage.catalog.test_repository import NOW, image

ROUNDS = 25


def _current_count(repo: CatalogRepository, artist_id: int) -> int:
    with repo.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM artist_images WHERE artist_id = :a AND is_current"),
            {"a": artist_id},
        ).scalar_one()


def test_concurrent_publications_for_one_artist_leave_exactly_one_current(
    catalog: CatalogRepository,
) -> None:
    insert_artists(catalog.engine, [(1, "Contended")])
    barrier = threading.Barrier(2, timeout=30)

    def writer(shas: str) -> Callable[[], list[RecordOutcome]]:
        def run() -> list[RecordOutcome]:
            outcomes = []
            for round_ in range(ROUNDS):
                barrier.wait()  # both threads publish at the same moment, every round
                at = NOW + timedelta(minutes=round_)
                sha = shas[round_ % 2]
                outcomes.append(
                    catalog.record_image(image("1", sha, scraped_at=at), attempted_at=at)
                )
            return outcomes

        return run

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(writer("ab")), pool.submit(writer("cd"))]
        results = [future.result(timeout=120) for future in futures]

    assert all(len(outcomes) == ROUNDS for outcomes in results)
    assert _current_count(catalog, 1) == 1
    with catalog.engine.connect() as connection:
        shas = connection.execute(
            sa.text("SELECT sha256 FROM artist_images WHERE artist_id = 1 ORDER BY sha256")
        ).scalars()
        assert [sha[0] for sha in shas] == ["a", "b", "c", "d"]  # no duplicate history rows
    assert catalog.current_images(["1"])["1"].sha256[0] in "abcd"


def test_timestamps_read_in_another_session_time_zone_are_utc(catalog_url: str) -> None:
    engine = make_engine(catalog_url, connect_args={"options": "-c timezone=Asia/Seoul"})
    repo = CatalogRepository(engine)
    insert_artists(engine, [(1, "Seoul")])
    try:
        repo.record_image(image("1", "a"), attempted_at=NOW)
        with engine.connect() as connection:
            raw = connection.execute(sa.text("SELECT scraped_at FROM artist_images")).scalar_one()

        scraped_at = repo.current_images(["1"])["1"].scraped_at
    finally:
        engine.dispose()

    assert raw.utcoffset() == timedelta(hours=9)  # the driver really answered in Seoul time
    assert scraped_at == NOW
    assert scraped_at.utcoffset() == timedelta(0)
