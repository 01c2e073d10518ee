"""The catalog migrations: idempotent, ours only, and runnable from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from podpod_scraping.storage.catalog import migrate
from podpod_scraping.storage.catalog.models import Base
from podpod_scraping.storage.catalog.repository import create_artists_table, make_engine
from podpod_scraping_tests.fixtures.postgres import PostgresServer

OWN_TABLES = {
    "artist_images",
    "artist_image_variants",
    "artist_scrape_state",
    "artist_identities",
    migrate.VERSION_TABLE,
}
#: The newest revision: every test below expects a database migrated to it.
HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


@pytest.fixture(params=["postgres", "sqlite"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("empty")
    yield server.url(name)
    server.drop_database(name)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revisions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")  # noqa: S608
            return list(connection.execute(query).scalars())
    finally:
        engine.dispose()


def test_upgrade_twice_is_idempotent(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.upgrade(empty_url)

    assert _tables(empty_url) == OWN_TABLES
    assert _revisions(empty_url) == [HEAD]


def test_migrations_never_create_the_main_apis_artists_table(empty_url: str) -> None:
    migrate.upgrade(empty_url)

    assert "artists" not in _tables(empty_url)


def test_migrations_leave_the_main_apis_alembic_history_alone(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('main_api_42')"))
    create_artists_table(engine)
    engine.dispose()

    migrate.upgrade(empty_url)

    engine = make_engine(empty_url)
    with engine.connect() as connection:
        main_api = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert main_api == [("main_api_42",)]
    assert _revisions(empty_url) == [HEAD]


def test_migrated_schema_has_the_one_current_image_index(empty_url: str) -> None:
    migrate.upgrade(empty_url)

    engine = make_engine(empty_url)
    indexes = {index["name"]: index for index in sa.inspect(engine).get_indexes("artist_images")}
    engine.dispose()
    one_current = indexes["uq_artist_images_one_current"]
    assert one_current["unique"]
    assert one_current["column_names"] == ["artist_id"]
    where = one_current.get("dialect_options", {})
    assert "is_current" in str(where.get("postgresql_where", where.get("sqlite_where")))
    assert "ix_artist_images_is_current_scraped_at" in indexes


def test_cli_upgrade_reads_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv(migrate.URL_ENV, url)

    assert migrate.main(["upgrade"]) == 0

    assert _revisions(url) == [HEAD]


def test_cli_upgrade_without_any_url_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(migrate.URL_ENV, raising=False)

    with pytest.raises(SystemExit) as exit_info:
        migrate.main(["upgrade"])

    assert exit_info.value.code == 2
    assert migrate.URL_ENV in capsys.readouterr().err


def test_make_engine_maps_bare_postgresql_urls_to_psycopg2() -> None:
    for url in ("postgresql://u@127.0.0.1:5/db", "postgres://u@127.0.0.1:5/db"):
        engine = make_engine(url)
        assert engine.url.drivername == "postgresql+psycopg2"
        engine.dispose()


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    migrate.upgrade(empty_url)

    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    # Alembic's own version table is not a model; anything else is drift.
    drift = [entry for entry in diff if migrate.VERSION_TABLE not in str(entry)]
    assert drift == []
