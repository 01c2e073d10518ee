"""The recorded API cases as catalog artists: one backfill over them shows every outcome."""

from __future__ import annotations

from pathlib import Path

from podpod_scraping.cli import main
from podpod_scraping.demo.apis import ARTISTS, BAD_MUSICBRAINZ, CASE_ARTISTS
from podpod_scraping.demo.site import DEMO_ARTISTS
from podpod_scraping.storage.catalog.repository import CatalogRepository, make_engine


def test_seed_demo_with_api_cases_adds_every_case_artist(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"

    assert main(["db", "seed-demo", "--api-cases", "--url", url]) == 0

    artists = CatalogRepository(make_engine(url)).artists([str(i) for i, _ in CASE_ARTISTS])
    assert len(artists) == len(CASE_ARTISTS)
    assert not {i for i, _ in CASE_ARTISTS} & {artist.id for artist in DEMO_ARTISTS}


def test_every_case_artist_is_a_recorded_name_or_a_deliberate_unknown() -> None:
    recorded = {a.name for a in ARTISTS} | {alias for a in ARTISTS for alias in a.aliases}
    names = {name for _, name in CASE_ARTISTS}
    unknown = names - recorded - set(BAD_MUSICBRAINZ)
    assert unknown == {"Nobody Knows Me"}
