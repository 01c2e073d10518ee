"""CatalogRepository on real Postgres and on SQLite (the embedded default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from podpod_scraping.core.outcomes import Artist, Outcome
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    ImageRecord,
    ScrapeState,
    insert_artists,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=30)


def image(artist_id: str, sha: str, *, scraped_at: datetime = NOW, **changes: Any) -> ImageRecord:
    """A published image record; ``sha`` is one hex character repeated (64 chars)."""
    digest = sha * 64
    values: dict[str, Any] = {
        "artist_id": artist_id,
        "object_name": f"artists/{artist_id}/{digest}.jpg",
        "object_uri": f"gs://bucket/artists/{artist_id}/{digest}.jpg",
        "public_url": f"https://cdn.example/artists/{artist_id}/{digest}.jpg",
        "sha256": digest,
        "width": 800,
        "height": 600,
        "content_type": "image/jpeg",
        "byte_size": 12345,
        "source_name": "fixture-site",
        "source_page_url": f"https://site.example/artists/{artist_id}",
        "source_image_url": f"https://site.example/img/{artist_id}-{sha}.jpg",
        "license": "CC-BY-4.0",
        "attribution": "Photographer",
        "scraped_at": scraped_at,
        "source_etag": f'"etag-{sha}"',
        "source_last_modified": "Sat, 01 Jun 2025 10:00:00 GMT",
    }
    values.update(changes)
    return ImageRecord(**values)


def image_rows(repo: CatalogRepository, artist_id: int) -> list[dict[str, Any]]:
    with repo.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT id, sha256, is_current FROM artist_images WHERE artist_id = :a ORDER BY id"
            ),
            {"a": artist_id},
        )
        return [{**row._mapping, "is_current": bool(row.is_current)} for row in rows]


def record_failure(repo: CatalogRepository, artist_id: str, at: datetime, **kw: Any) -> ScrapeState:
    """A failure that is the newest attempt (so it is recorded)."""
    state = repo.record_failure(
        artist_id,
        kw.pop("outcome", Outcome.PAGE_NOT_FOUND),
        kw.pop("reason", "HTTP 404"),
        attempted_at=at,
        **kw,
    )
    assert state is not None
    return state


@pytest.fixture
def artists(repo: CatalogRepository) -> CatalogRepository:
    """Artists 1..9 in the catalog."""
    insert_artists(repo.engine, [(n, f"Artist {n}") for n in range(1, 10)])
    return repo


# -- reading the catalog --------------------------------------------------------------------


def test_artists_returns_known_ids_and_ignores_unknown_or_malformed(
    artists: CatalogRepository,
) -> None:
    found = artists.artists(["1", "3", "42", "abc", "007", "-1", "", "99999999999999999999"])

    assert found == {"1": Artist(id="1", name="Artist 1"), "3": Artist(id="3", name="Artist 3")}


def test_all_artist_ids_are_ordered_numerically(repo: CatalogRepository) -> None:
    insert_artists(repo.engine, [(10, "ten"), (2, "two"), (1, "one")])

    assert repo.all_artist_ids() == ["1", "2", "10"]


def test_insert_artists_upserts_by_id(repo: CatalogRepository) -> None:
    insert_artists(repo.engine, [(5, "Old name")])
    insert_artists(repo.engine, [(5, "New name")])

    assert repo.artists(["5"]) == {"5": Artist(id="5", name="New name")}


def test_lookups_of_more_ids_than_one_sql_list_holds(repo: CatalogRepository) -> None:
    insert_artists(repo.engine, [(n, f"a{n}") for n in range(1, 2501)])
    ids = [str(n) for n in range(1, 2501)]

    assert len(repo.artists(ids)) == 2500
    assert repo.current_images(ids) == {}


# -- record_image ----------------------------------------------------------------------------


def test_first_image_creates_one_current_row_and_resets_state(artists: CatalogRepository) -> None:
    artists.record_failure("1", Outcome.NETWORK_ERROR, "down", attempted_at=NOW - timedelta(days=1))

    result = artists.record_image(image("1", "a"), attempted_at=NOW)

    assert result.created
    assert result.switched
    assert image_rows(artists, 1) == [
        {"id": result.image_id, "sha256": "a" * 64, "is_current": True}
    ]
    current = artists.current_images(["1"])["1"]
    assert (current.id, current.sha256, current.scraped_at) == (result.image_id, "a" * 64, NOW)
    assert current.object_uri == image("1", "a").object_uri
    state = artists.scrape_states(["1"])["1"]
    assert state.last_outcome is Outcome.FOUND
    assert state.consecutive_failures == 0
    assert state.next_attempt_at is None
    assert state.last_success_at == NOW
    assert (state.source_image_url, state.source_etag) == (
        image("1", "a").source_image_url,
        '"etag-a"',
    )


def test_rerun_with_the_same_image_duplicates_nothing(artists: CatalogRepository) -> None:
    first = artists.record_image(image("1", "a"), attempted_at=NOW)
    later = NOW + timedelta(days=40)

    again = artists.record_image(image("1", "a", scraped_at=later), attempted_at=later)

    assert (again.image_id, again.created, again.switched) == (first.image_id, False, False)
    assert len(image_rows(artists, 1)) == 1
    assert artists.current_images(["1"])["1"].scraped_at == later  # verified current again


def test_new_image_switches_current_and_keeps_history(artists: CatalogRepository) -> None:
    old = artists.record_image(image("1", "a"), attempted_at=NOW)

    new = artists.record_image(image("1", "b"), attempted_at=NOW + timedelta(days=31))

    assert new.created
    assert new.switched
    assert image_rows(artists, 1) == [
        {"id": old.image_id, "sha256": "a" * 64, "is_current": False},
        {"id": new.image_id, "sha256": "b" * 64, "is_current": True},
    ]
    assert artists.current_images(["1"])["1"].sha256 == "b" * 64


def test_returning_to_an_earlier_image_reuses_its_row(artists: CatalogRepository) -> None:
    first = artists.record_image(image("1", "a"), attempted_at=NOW)
    artists.record_image(image("1", "b"), attempted_at=NOW + timedelta(days=1))

    back = artists.record_image(image("1", "a"), attempted_at=NOW + timedelta(days=2))

    assert (back.image_id, back.created, back.switched) == (first.image_id, False, True)
    assert [row["is_current"] for row in image_rows(artists, 1)] == [True, False]


def test_one_artists_image_never_affects_another(artists: CatalogRepository) -> None:
    artists.record_image(image("1", "a"), attempted_at=NOW)
    artists.record_image(image("2", "a"), attempted_at=NOW)  # same bytes, other artist

    assert set(artists.current_images(["1", "2"])) == {"1", "2"}
    assert len(image_rows(artists, 1)) == len(image_rows(artists, 2)) == 1


def test_malformed_artist_id_is_refused_on_write(artists: CatalogRepository) -> None:
    with pytest.raises(ValueError, match="not a catalog id"):
        artists.record_image(image("abc", "a"), attempted_at=NOW)


# -- failures and unchanged ------------------------------------------------------------------


def test_failure_never_touches_images_and_backs_off(artists: CatalogRepository) -> None:
    artists.record_image(image("1", "a"), attempted_at=NOW)
    rows_before = image_rows(artists, 1)
    current_before = artists.current_images(["1"])["1"]

    attempts = [NOW + timedelta(days=d) for d in (31, 32, 33, 34, 45)]
    states = [record_failure(artists, "1", at) for at in attempts]

    assert [s.consecutive_failures for s in states] == [1, 2, 3, 4, 5]
    assert [s.next_attempt_at for s in states] == [
        attempts[0] + timedelta(hours=1),
        attempts[1] + timedelta(hours=6),
        attempts[2] + timedelta(days=1),
        attempts[3] + timedelta(days=7),
        attempts[4] + timedelta(days=7),
    ]
    assert states[-1].last_outcome is Outcome.PAGE_NOT_FOUND
    assert states[-1].last_reason == "HTTP 404"
    assert states[-1].last_success_at == NOW  # the last success is remembered
    assert states[-1].source_etag == '"etag-a"'  # validators of the current image are kept
    assert artists.scrape_states(["1"])["1"] == states[-1]
    assert image_rows(artists, 1) == rows_before
    assert artists.current_images(["1"])["1"] == current_before


def test_failure_of_a_never_seen_artist_starts_at_one(artists: CatalogRepository) -> None:
    state = record_failure(artists, "2", NOW, outcome=Outcome.TIMEOUT, reason="slow")

    assert (state.artist_id, state.consecutive_failures) == ("2", 1)
    assert state.next_attempt_at == NOW + timedelta(hours=1)
    assert state.last_success_at is None
    assert artists.current_images(["2"]) == {}


def test_success_outcomes_are_refused_as_failures(artists: CatalogRepository) -> None:
    with pytest.raises(ValueError, match="success"):
        artists.record_failure("1", Outcome.FOUND, "oops", attempted_at=NOW)


def test_unchanged_resets_failures_and_refreshes_the_current_image(
    artists: CatalogRepository,
) -> None:
    artists.record_image(image("1", "a"), attempted_at=NOW)
    artists.record_failure("1", Outcome.RATE_LIMITED, "429", attempted_at=NOW + timedelta(days=31))
    later = NOW + timedelta(days=32)

    artists.record_unchanged("1", attempted_at=later, reason="HTTP 304")

    state = artists.scrape_states(["1"])["1"]
    assert state.last_outcome is Outcome.UNCHANGED
    assert state.last_reason == "HTTP 304"
    assert (state.consecutive_failures, state.next_attempt_at) == (0, None)
    assert state.last_success_at == later
    assert state.source_etag == '"etag-a"'
    assert artists.current_images(["1"])["1"].scraped_at == later
    assert len(image_rows(artists, 1)) == 1


# -- time zones ------------------------------------------------------------------------------


def test_timestamps_are_stored_as_instants_and_read_back_in_utc(
    artists: CatalogRepository,
) -> None:
    seoul = timezone(timedelta(hours=9))
    attempted = datetime(2025, 6, 1, 21, 0, tzinfo=seoul)  # 12:00 UTC

    artists.record_image(image("1", "a", scraped_at=attempted), attempted_at=attempted)

    scraped_at = artists.current_images(["1"])["1"].scraped_at
    assert scraped_at == NOW
    assert scraped_at.utcoffset() == timedelta(0)
    assert artists.scrape_states(["1"])["1"].last_attempt_at.tzinfo is not None


def test_naive_timestamps_are_refused(artists: CatalogRepository) -> None:
    with pytest.raises(ValueError, match="aware"):
        artists.record_failure("1", Outcome.TIMEOUT, "x", attempted_at=datetime(2025, 1, 1))


# -- selection of due artists ----------------------------------------------------------------


def _scenario(repo: CatalogRepository) -> None:
    """Artists 1..8, one per case (9 is left never attempted as well)."""
    # 1: never attempted (no state, no image)
    # 2: fresh image
    repo.record_image(image("2", "a"), attempted_at=NOW - timedelta(days=1))
    # 3: image older than max_age
    old = NOW - timedelta(days=31)
    repo.record_image(image("3", "a", scraped_at=old), attempted_at=old)
    # 4: no image, second failure an hour ago: inside its 6 h backoff
    repo.record_failure("4", Outcome.PAGE_NOT_FOUND, "404", attempted_at=NOW - timedelta(hours=2))
    repo.record_failure("4", Outcome.PAGE_NOT_FOUND, "404", attempted_at=NOW - timedelta(hours=1))
    # 5: no image, failed 2 h ago: its 1 h backoff has expired
    repo.record_failure("5", Outcome.TIMEOUT, "slow", attempted_at=NOW - timedelta(hours=2))
    # 6: stale image, refresh failed 10 min ago: inside its backoff
    repo.record_image(image("6", "a", scraped_at=old), attempted_at=old)
    repo.record_failure(
        "6", Outcome.NETWORK_ERROR, "reset", attempted_at=NOW - timedelta(minutes=10)
    )
    # 7: fresh image, a refresh failed long ago (backoff expired): still fresh
    repo.record_image(image("7", "a"), attempted_at=NOW - timedelta(days=2))
    repo.record_failure(
        "7", Outcome.BLOCKED_BY_ROBOTS, "robots", attempted_at=NOW - timedelta(days=1)
    )
    # 8: no image, first failure 1 h ago: its backoff ends exactly now, so it is due
    repo.record_failure("8", Outcome.NO_IMAGE, "no img", attempted_at=NOW - timedelta(hours=1))


def test_stale_selection_treats_each_case_right(artists: CatalogRepository) -> None:
    _scenario(artists)

    due = artists.stale_artist_ids(now=NOW, max_age=MAX_AGE)

    assert due == ["1", "3", "5", "8", "9"]


def test_stale_selection_honours_the_limit_in_id_order(artists: CatalogRepository) -> None:
    _scenario(artists)

    assert artists.stale_artist_ids(now=NOW, max_age=MAX_AGE, limit=2) == ["1", "3"]


def test_stale_selection_ignores_artists_no_longer_in_the_catalog(
    artists: CatalogRepository,
) -> None:
    artists.record_failure("77", Outcome.TIMEOUT, "x", attempted_at=NOW - timedelta(days=9))
    old = NOW - timedelta(days=90)
    artists.record_image(image("78", "a", scraped_at=old), attempted_at=old)

    due = artists.stale_artist_ids(now=NOW, max_age=MAX_AGE)

    assert "77" not in due
    assert "78" not in due


def test_never_attempted_lists_only_artists_without_state(artists: CatalogRepository) -> None:
    _scenario(artists)

    assert artists.never_attempted_artist_ids() == ["1", "9"]


# -- coverage --------------------------------------------------------------------------------


def test_coverage_counts_each_category(artists: CatalogRepository) -> None:
    _scenario(artists)

    frame = artists.coverage(now=NOW, max_age=MAX_AGE)

    assert list(frame.columns) == ["category", "artists"]
    assert dict(zip(frame["category"], frame["artists"], strict=True)) == {
        "current image": 2,  # 2, 7
        "object missing": 0,
        "variants missing": 0,
        "stale": 2,  # 3, 6
        "never attempted": 2,  # 1, 9
        "never found": 0,
        "failed: page_not_found": 1,  # 4
        "failed: timeout": 1,  # 5
        "failed: no_image_on_page": 1,  # 8
    }
    assert int(frame["artists"].sum()) == len(artists.all_artist_ids())


def test_coverage_of_an_empty_catalog_has_the_fixed_categories(repo: CatalogRepository) -> None:
    frame = repo.coverage(now=NOW, max_age=MAX_AGE)

    assert list(frame["category"]) == [
        "current image",
        "object missing",
        "variants missing",
        "stale",
        "never attempted",
        "never found",
    ]
    assert list(frame["artists"]) == [0, 0, 0, 0, 0, 0]


def test_an_older_attempt_never_moves_scraped_at_back(artists: CatalogRepository) -> None:
    artists.record_image(image("1", "a", scraped_at=NOW), attempted_at=NOW)
    earlier = NOW - timedelta(hours=1)

    artists.record_image(image("1", "a", scraped_at=earlier), attempted_at=earlier)
    artists.record_unchanged("1", attempted_at=earlier, reason="304")

    (current,) = artists.current_images(["1"]).values()
    assert current.scraped_at == NOW


def test_record_image_keeps_the_original_and_preview_it_was_given(
    artists: CatalogRepository,
) -> None:
    artists.record_image(
        image(
            "1",
            "a",
            source_sha256="b" * 64,
            source_content_type="image/png",
            source_byte_size=999,
            preview=b"\xff\xd8tiny",
        ),
        attempted_at=NOW,
        batch_id="run-7",
    )

    (current,) = artists.current_images(["1"]).values()
    assert (current.source_sha256, current.source_content_type) == ("b" * 64, "image/png")
    assert (current.source_byte_size, current.preview) == (999, b"\xff\xd8tiny")
    assert artists.scrape_states(["1"])["1"].last_batch_id == "run-7"


def test_failed_artist_ids_lists_every_failure_whatever_its_backoff(
    artists: CatalogRepository,
) -> None:
    artists.record_image(image("1", "a"), attempted_at=NOW)
    artists.record_failure("2", Outcome.PAGE_NOT_FOUND, "gone", attempted_at=NOW)
    artists.record_failure("3", Outcome.TIMEOUT, "slow", attempted_at=NOW)

    assert artists.failed_artist_ids() == ["2", "3"]


# -- attempts are ordered: an older one never wins ------------------------------------------


def test_an_older_attempt_finishing_late_is_kept_in_history_but_never_made_current(
    artists: CatalogRepository,
) -> None:
    newer = artists.record_image(image("1", "b"), attempted_at=NOW + timedelta(minutes=5))
    older = artists.record_image(image("1", "a"), attempted_at=NOW)

    assert newer.switched
    assert not newer.superseded
    assert older.superseded
    assert not older.switched
    assert older.created
    assert artists.current_images(["1"])["1"].sha256 == "b" * 64
    assert [(r["sha256"][0], r["is_current"]) for r in image_rows(artists, 1)] == [
        ("b", True),
        ("a", False),
    ]
    state = artists.scrape_states(["1"])["1"]
    assert state.last_attempt_at == NOW + timedelta(minutes=5)  # never moved back
    assert state.source_etag == '"etag-b"'


def test_an_older_failure_after_a_newer_success_changes_nothing(
    artists: CatalogRepository,
) -> None:
    artists.record_image(image("1", "a"), attempted_at=NOW + timedelta(minutes=5))
    before = artists.scrape_states(["1"])["1"]

    late = artists.record_failure("1", Outcome.TIMEOUT, "slow", attempted_at=NOW)

    assert late is None
    assert artists.scrape_states(["1"])["1"] == before
    assert before.consecutive_failures == 0
    assert before.next_attempt_at is None


def test_an_older_unchanged_check_after_a_newer_attempt_changes_nothing(
    artists: CatalogRepository,
) -> None:
    record_failure(artists, "1", NOW + timedelta(minutes=5))
    before = artists.scrape_states(["1"])["1"]

    assert artists.record_unchanged("1", attempted_at=NOW, reason="HTTP 304") is False
    assert artists.scrape_states(["1"])["1"] == before
