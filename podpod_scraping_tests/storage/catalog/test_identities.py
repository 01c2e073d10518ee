"""Identities in the catalog, on Postgres and SQLite: trust decides what a write replaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from podpod_scraping.core.config import CatalogColumns
from podpod_scraping.core.identity import Identity, IdentityMethod
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.storage.catalog.repository import CatalogRepository, insert_artists

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MBID_A = "11111111-1111-1111-1111-111111111111"
MBID_B = "22222222-2222-2222-2222-222222222222"


def matched(external_id: str, *, at: datetime = NOW) -> Identity:
    return Identity(
        "musicbrainz",
        external_id,
        IdentityMethod.MATCHED,
        matched_name="Nell",
        score=100.0,
        disambiguation="Korean rock band",
        evidence={"query": "artist:Nell", "candidates": 1},
        resolved_at=at,
    )


@pytest.fixture
def artists(repo: CatalogRepository) -> CatalogRepository:
    insert_artists(repo.engine, [(1, "Nell"), (2, "IU")])
    return repo


def test_a_match_is_stored_with_its_evidence(artists: CatalogRepository) -> None:
    artists.record_identities("1", [matched(MBID_A)], at=NOW)

    (stored,) = artists.identities(["1"])["1"]
    assert stored == matched(MBID_A)


def test_a_newer_match_replaces_an_older_one(artists: CatalogRepository) -> None:
    artists.record_identities("1", [matched(MBID_A)], at=NOW)
    artists.record_identities("1", [matched(MBID_B, at=NOW + timedelta(days=1))], at=NOW)

    assert [i.external_id for i in artists.identities(["1"])["1"]] == [MBID_B]


def test_a_match_never_replaces_a_pinned_identity(artists: CatalogRepository) -> None:
    artists.pin_identity("1", "musicbrainz", MBID_A, at=NOW, by="ops")

    artists.record_identities("1", [matched(MBID_B, at=NOW + timedelta(days=1))], at=NOW)

    (stored,) = artists.identities(["1"])["1"]
    assert (stored.external_id, stored.method) == (MBID_A, IdentityMethod.PINNED)
    assert stored.evidence == {"pinned_by": "ops"}


def test_a_catalog_identity_never_replaces_a_pinned_one_but_replaces_a_match(
    artists: CatalogRepository,
) -> None:
    from_catalog = Identity("musicbrainz", MBID_B, IdentityMethod.CATALOG, resolved_at=NOW)
    artists.record_identities("1", [matched(MBID_A)], at=NOW)
    artists.record_identities("1", [from_catalog], at=NOW)
    assert artists.identities(["1"])["1"][0].method is IdentityMethod.CATALOG

    artists.pin_identity("1", "musicbrainz", MBID_A, at=NOW, by=None)
    artists.record_identities("1", [from_catalog], at=NOW)
    assert artists.identities(["1"])["1"][0].external_id == MBID_A


def test_pinning_replaces_any_identity_and_unpinning_removes_only_the_pin(
    artists: CatalogRepository,
) -> None:
    artists.record_identities("1", [matched(MBID_A)], at=NOW)
    artists.record_identities("2", [matched(MBID_B)], at=NOW)

    artists.pin_identity("1", "musicbrainz", MBID_B, at=NOW, by=None)
    assert artists.identities(["1"])["1"][0].external_id == MBID_B

    assert artists.unpin_identity("1", "musicbrainz") is True
    assert artists.unpin_identity("1", "musicbrainz") is False  # nothing pinned any more
    assert artists.unpin_identity("2", "musicbrainz") is False  # a match is not a pin
    assert "1" not in artists.identities(["1"])
    assert artists.identities(["2"])["2"][0].external_id == MBID_B


def test_identities_are_recorded_with_the_attempt_that_resolved_them(
    artists: CatalogRepository,
) -> None:
    artists.record_failure(
        "1",
        Outcome.NO_IMAGE,
        "no image on the item",
        attempted_at=NOW,
        identities=[matched(MBID_A)],
    )

    assert artists.identities(["1"])["1"][0].external_id == MBID_A


def test_catalog_columns_give_aliases_and_ids_and_absent_columns_are_ignored(
    artists: CatalogRepository,
) -> None:
    with artists.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE artists ADD COLUMN name_en TEXT"))
        connection.execute(sa.text("ALTER TABLE artists ADD COLUMN mbid TEXT"))
        connection.execute(
            sa.text("UPDATE artists SET name_en = 'IU', mbid = :m WHERE id = 2"), {"m": MBID_B}
        )
        connection.execute(sa.text("UPDATE artists SET name = '아이유' WHERE id = 2"))
    columns = CatalogColumns(
        alias_columns=("name_en", "name_romanized"),  # the second one does not exist
        identity_columns={"musicbrainz": "mbid", "deezer": "deezer_id"},
    )

    found = artists.catalog_artists(["1", "2", "3"], columns)

    assert set(found) == {"1", "2"}
    assert found["2"].artist.name == "아이유"
    assert found["2"].artist.aliases == ("IU",)
    assert found["2"].identities == {"musicbrainz": MBID_B}
    assert found["1"].artist.aliases == ()
    assert found["1"].identities == {}
