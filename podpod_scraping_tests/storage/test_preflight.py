"""``config check``'s checks against real Postgres, the GCS emulator and a loopback site."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from google.cloud import storage

from podpod_scraping.core.config import CatalogColumns, parse_scraper_config
from podpod_scraping.demo.site import FixtureServer
from podpod_scraping.storage.catalog.migrate import alembic_config, upgrade
from podpod_scraping.storage.catalog.repository import create_artists_table, make_engine
from podpod_scraping.storage.preflight import (
    PROBE_PREFIX,
    Check,
    check_catalog,
    check_config,
    check_object_store,
    check_robots,
    run_checks,
)
from podpod_scraping_tests.fixtures.postgres import PostgresServer


def _config_text(server: FixtureServer, *, allow: bool = True) -> str:
    hosts = f"['{server.host_port}']" if allow else "[]"
    return (
        "sources:\n"
        f"  - name: site\n    page_url: '{server.url('/artists/{slug}')}'\n    selector: img\n"
        f"fetch:\n  allowed_private_hosts: {hosts}\n  per_host_min_interval: 0\n"
    )


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def _problem(checks: list[Check], name: str) -> str:
    check = _by_name(checks)[name]
    assert not check.ok, check
    return check.detail


@pytest.fixture
def site(fixture_server: FixtureServer) -> FixtureServer:
    fixture_server.add_route("/robots.txt", body="User-agent: *\nDisallow: /private/\n")
    return fixture_server


@pytest.fixture
def config_file(site: FixtureServer, tmp_path: Path) -> Path:
    path = tmp_path / "scraper.yaml"
    path.write_text(_config_text(site), encoding="utf-8")
    return path


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A Postgres database with nothing in it."""
    name = postgres_server.create_database("preflight")
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def _execute(url: str, statement: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- everything


def test_a_good_setup_passes_every_check_and_leaves_no_probe_object(
    config_file: Path, catalog_url: str, gcs_client: storage.Client, gcs_bucket: storage.Bucket
) -> None:
    checks = run_checks(str(config_file), catalog_url, f"gs://{gcs_bucket.name}")

    assert [c.name for c in checks if not c.ok] == []
    assert [c.name for c in checks] == [
        "config",
        "catalog",
        "catalog migrations",
        "catalog artists",
        "object store",
        "robots.txt site",
    ]
    assert list(gcs_client.list_blobs(gcs_bucket, prefix=PROBE_PREFIX)) == []


def test_checks_are_reported_as_they_complete(
    config_file: Path, catalog_url: str, tmp_path: Path
) -> None:
    reported: list[str] = []
    checks = run_checks(
        str(config_file),
        catalog_url,
        str(tmp_path / "store"),
        report=lambda c: reported.append(c.name),
    )
    assert reported == [c.name for c in checks]


# --------------------------------------------------------------------------- config


def test_an_invalid_config_is_a_problem_with_the_schema_message(tmp_path: Path) -> None:
    path = tmp_path / "scraper.yaml"
    path.write_text(
        "sources:\n  - name: s\n    page_url: 'https://s.example/{id}'\n    selector: img\n"
        "fetch:\n  total_timeout: -1\n",
        encoding="utf-8",
    )
    check, config = check_config(str(path))
    assert config is None
    assert not check.ok
    assert "scraper.yaml:6: fetch.total_timeout: must be greater than 0 (got -1)" in check.detail


def test_no_config_path_names_the_variable() -> None:
    check, _ = check_config(None)
    assert not check.ok
    assert "PODPOD_SCRAPER_CONFIG" in check.detail


def test_an_invalid_config_skips_the_site_checks_but_not_the_others(
    tmp_path: Path, catalog_url: str
) -> None:
    checks = run_checks(str(tmp_path / "missing.yaml"), catalog_url, str(tmp_path / "store"))
    assert "does not exist" in _problem(checks, "config")
    assert [c.name for c in checks if c.ok] == [
        "catalog",
        "catalog migrations",
        "catalog artists",
        "object store",
    ]


# --------------------------------------------------------------------------- catalog


def test_an_unmigrated_catalog_says_to_run_db_upgrade(empty_database: str) -> None:
    create_artists_table(make_engine(empty_database))
    detail = _problem(check_catalog(empty_database), "catalog migrations")
    assert "not migrated" in detail
    assert "podpod-scraping db upgrade" in detail


def test_a_catalog_behind_head_names_both_revisions(empty_database: str) -> None:
    upgrade(empty_database, "0001")
    detail = _problem(check_catalog(empty_database), "catalog migrations")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"at 0001, head is {head}" in detail


def test_a_missing_artists_name_column_is_named_with_the_fix(catalog_url: str) -> None:
    _execute(catalog_url, "ALTER TABLE artists RENAME COLUMN name TO full_name")
    detail = _problem(check_catalog(catalog_url), "catalog artists")
    assert "table 'artists' has no column 'name'" in detail
    assert "full_name" in detail
    assert "PODPOD_CATALOG_URL" in detail


def test_a_missing_artists_table_is_named(empty_database: str) -> None:
    upgrade(empty_database)
    detail = _problem(check_catalog(empty_database), "catalog artists")
    assert "no table 'artists'" in detail


def test_an_unreachable_catalog_is_a_problem_naming_the_variable() -> None:
    url = f"postgresql+psycopg2://podpod:secret@127.0.0.1:{_free_port()}/podpod"
    checks = check_catalog(url, timeout=2)
    assert len(checks) == 1
    detail = _problem(checks, "catalog")
    assert "cannot connect" in detail
    assert "PODPOD_CATALOG_URL" in detail
    assert "secret" not in detail  # the password is never printed


def test_no_catalog_url_names_the_variable() -> None:
    assert "PODPOD_CATALOG_URL" in _problem(check_catalog(None), "catalog")


# --------------------------------------------------------------------------- object store


def test_a_bucket_that_does_not_exist_is_named(gcs_client: storage.Client) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    check = check_object_store(f"gs://{bucket}")
    assert not check.ok
    assert f"bucket {bucket!r} does not exist" in check.detail


def test_an_unreachable_gcs_endpoint_fails_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{_free_port()}")
    check = check_object_store("gs://some-bucket", timeout=2)
    assert not check.ok
    assert "cannot write to gs://some-bucket" in check.detail


def test_a_local_folder_store_gets_a_content_addressed_probe(tmp_path: Path) -> None:
    check = check_object_store(str(tmp_path / "images"))
    assert check.ok, check
    assert [p.name for p in (tmp_path / "images" / "_probe").glob("*.txt")] == [
        check.detail.rsplit("/", 1)[-1].rstrip(")")
    ]


def test_a_local_store_that_cannot_be_written_is_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    check = check_object_store(str(blocker / "images"))
    assert not check.ok
    assert "PODPOD_OBJECT_STORE_URL" in check.detail


def test_an_unsupported_store_url_is_a_problem() -> None:
    assert not check_object_store("s3://bucket").ok


# --------------------------------------------------------------------------- robots.txt


def _robots_check(server: FixtureServer, *, allow: bool = True) -> Check:
    (check,) = check_robots(parse_scraper_config(_config_text(server, allow=allow)), timeout=2)
    return check


def test_a_readable_robots_txt_is_fetched_through_the_fetcher(site: FixtureServer) -> None:
    check = _robots_check(site)
    assert check.ok, check
    assert site.hits["/robots.txt"] == 1


def test_a_missing_robots_txt_means_everything_is_allowed(fixture_server: FixtureServer) -> None:
    check = _robots_check(fixture_server)
    assert check.ok, check
    assert "answered 404" in check.detail


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_robots_txt_that_answers_an_error_is_a_problem(
    fixture_server: FixtureServer, status: int
) -> None:
    fixture_server.add_route("/robots.txt", status=status)
    check = _robots_check(fixture_server)
    assert not check.ok
    assert f"answered {status}" in check.detail


def test_a_site_that_does_not_answer_is_a_problem(tmp_path: Path) -> None:
    port = _free_port()
    page = f"http://127.0.0.1:{port}/a/{{id}}"
    text = (
        f"sources:\n  - {{name: gone, page_url: '{page}', selector: img}}\n"
        f"fetch:\n  allowed_private_hosts: ['127.0.0.1:{port}']\n"
    )
    (check,) = check_robots(parse_scraper_config(text), timeout=2)
    assert not check.ok
    assert "cannot read it (network_error" in check.detail


def test_a_private_host_outside_the_allow_list_is_refused_by_the_ssrf_guard(
    site: FixtureServer,
) -> None:
    check = _robots_check(site, allow=False)
    assert not check.ok
    assert "unsafe_url" in check.detail
    assert "fetch.allowed_private_hosts" in check.detail
    assert site.hits["/robots.txt"] == 0


def test_robots_rules_that_disallow_the_pages_are_a_problem(fixture_server: FixtureServer) -> None:
    fixture_server.add_route(
        "/robots.txt", body="User-agent: podpod-scraping\nDisallow: /artists/\n"
    )
    check = _robots_check(fixture_server)
    assert not check.ok
    assert "blocked_by_robots" in check.detail


def test_configured_catalog_columns_the_table_lacks_are_named_as_ignored(catalog_url: str) -> None:
    columns = CatalogColumns(alias_columns=("name",), identity_columns={"musicbrainz": "mbid"})

    checks = {check.name: check for check in check_catalog(catalog_url, columns=columns)}

    assert checks["catalog columns"].ok
    assert "catalog.identity_columns.musicbrainz: mbid" in checks["catalog columns"].detail
    assert "ignored until the main API adds it" in checks["catalog columns"].detail
