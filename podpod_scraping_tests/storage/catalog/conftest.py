"""The catalog on both backends: real Postgres (production) and SQLite (embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podpod_scraping.storage.catalog.migrate import upgrade
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    create_artists_table,
    make_engine,
)


@pytest.fixture(params=["postgres", "sqlite"])
def any_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated catalog with an ``artists`` table, on each backend in turn."""
    if request.param == "postgres":
        return request.getfixturevalue("catalog_url")
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url)
    engine = make_engine(url)
    create_artists_table(engine)
    engine.dispose()
    return url


@pytest.fixture
def repo(any_catalog_url: str) -> Iterator[CatalogRepository]:
    engine = make_engine(any_catalog_url)
    yield CatalogRepository(engine)
    engine.dispose()
