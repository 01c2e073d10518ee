"""What the store tells the scraper about each artist before it searches (real Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from google.cloud import storage

from podpod_scraping.core.config import CatalogColumns, IdentityPolicy
from podpod_scraping.core.identity import Identity, IdentityMethod
from podpod_scraping.core.outcomes import Outcome, ScrapeResult
from podpod_scraping.core.refresh import ArtistTask
from podpod_scraping.storage.catalog.repository import CatalogRepository, insert_artists
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping.storage.objects import GCSObjectStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MBID = "33333333-3333-3333-3333-333333333333"


def _store(
    catalog: CatalogRepository, bucket: storage.Bucket, **options: object
) -> CatalogImageStore:
    return CatalogImageStore(
        GCSObjectStore(str(bucket.name), client=bucket.client),
        catalog,
        clock=lambda: NOW,
        **options,  # type: ignore[arg-type]
    )


def _task(store: CatalogImageStore, artist_id: str) -> ArtistTask:
    (task,) = store.tasks([artist_id], batch_id="run-1")
    assert isinstance(task, ArtistTask)
    return task


def test_a_pinned_identity_reaches_the_scraper_over_a_match(
    catalog: CatalogRepository, gcs_bucket: storage.Bucket
) -> None:
    insert_artists(catalog.engine, [(1, "Nell")])
    catalog.record_identities(
        "1",
        [Identity("musicbrainz", "matched-id", IdentityMethod.MATCHED, resolved_at=NOW)],
        at=NOW,
    )
    catalog.record_identities(
        "1", [Identity("deezer", "123", IdentityMethod.MATCHED, resolved_at=NOW)], at=NOW
    )
    catalog.pin_identity("1", "musicbrainz", MBID, at=NOW, by=None)

    context = _task(_store(catalog, gcs_bucket), "1").context

    assert {ns: i.external_id for ns, i in context.identities.items()} == {
        "musicbrainz": MBID,
        "deezer": "123",
    }
    assert context.identities["musicbrainz"].method is IdentityMethod.PINNED


def test_catalog_columns_give_aliases_and_recorded_catalog_identities(
    catalog: CatalogRepository, gcs_bucket: storage.Bucket
) -> None:
    insert_artists(catalog.engine, [(2, "아이유")])
    with catalog.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE artists ADD COLUMN name_en TEXT"))
        connection.execute(sa.text("ALTER TABLE artists ADD COLUMN mbid TEXT"))
        connection.execute(sa.text("UPDATE artists SET name_en = 'IU', mbid = :m"), {"m": MBID})
    columns = CatalogColumns(alias_columns=("name_en",), identity_columns={"musicbrainz": "mbid"})

    task = _task(_store(catalog, gcs_bucket, columns=columns), "2")

    assert task.artist.aliases == ("IU",)
    assert task.context.identities["musicbrainz"].method is IdentityMethod.CATALOG
    (stored,) = catalog.identities(["2"])["2"]  # recorded, so `identity show` lists it
    assert (stored.external_id, stored.evidence) == (MBID, {"column": "mbid"})


def test_the_context_carries_the_reverification_age_and_force(
    catalog: CatalogRepository, gcs_bucket: storage.Bucket
) -> None:
    insert_artists(catalog.engine, [(3, "Sigur Rós")])
    store = _store(catalog, gcs_bucket, identity=IdentityPolicy(reverify_after_days=7), force=True)

    context = _task(store, "3").context

    assert context.verify_before == NOW - timedelta(days=7)
    assert context.force is True
    assert context.current is None
    assert context.blocked_image_urls == frozenset()


def test_a_failed_attempts_identities_are_still_recorded(
    catalog: CatalogRepository, gcs_bucket: storage.Bucket
) -> None:
    insert_artists(catalog.engine, [(4, "Nell")])
    store = _store(catalog, gcs_bucket)
    task = _task(store, "4")
    identity = Identity("musicbrainz", MBID, IdentityMethod.MATCHED, resolved_at=NOW)
    result = ScrapeResult(
        artist_id="4",
        outcome=Outcome.NO_IMAGE,
        reason="musicbrainz: no image relation",
        attempted_at=NOW,
        identities=(identity,),
    )

    store.record_failure(task, result, batch_id="run-1")

    assert catalog.identities(["4"])["4"] == [identity]
