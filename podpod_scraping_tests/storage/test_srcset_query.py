"""The README's srcset query: what the main API runs, run here against a real catalog."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from podpod_scraping.storage.catalog.repository import insert_artists
from podpod_scraping_tests.defs.conftest import make_jpeg
from podpod_scraping_tests.storage.conftest import Service, serve

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_query() -> str:
    match = re.search(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert match is not None, "README has no ```sql block"
    return match.group(1)


def _widths(srcset: str) -> list[str]:
    return [entry.rsplit(" ", 1)[1] for entry in srcset.split(", ")]


def test_the_readme_query_builds_the_srcsets_of_a_published_artist(service: Service) -> None:
    insert_artists(service.catalog.engine, [(7, "Nell")])
    serve(service.site, 7, make_jpeg(1, size=(800, 600)))
    service.refresh(["7"], batch_id="run-1")

    with service.catalog.engine.connect() as connection:
        (row,) = connection.execute(sa.text(_readme_query()), {"artist_ids": [7]}).all()

    current = service.catalog.current_images(["7"])["7"]
    assert row.fallback_url == current.public_url == row.jpeg_url
    assert (row.blurhash, row.dominant_color) == (current.blurhash, current.dominant_color)
    assert _widths(row.srcset) == ["128w", "320w", "640w", "800w"]
    assert _widths(row.avatar_srcset) == ["128w", "320w"]  # the 600 px square: no 600 avatar
    assert row.avatar_method in {"face", "saliency", "centre"}
