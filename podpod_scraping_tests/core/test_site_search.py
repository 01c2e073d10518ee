"""A site whose artist URLs carry its own ids: search page, strict match, then the page.

Through the real scraper and Fetcher against a site on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from podpod_scraping.core.config import ScraperConfigError, parse_scraper_config
from podpod_scraping.core.fetching import Fetcher
from podpod_scraping.core.identity import ArtistContext, Identity, IdentityMethod, site_namespace
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeResult
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.demo.server import FixtureServer
from podpod_scraping_tests.defs.conftest import make_jpeg

NAMESPACE = site_namespace("search-site")


def _results(*hits: tuple[str, str]) -> bytes:
    items = "".join(
        f'<li class="hit"><a href="{href}"><span class="n">{name}</span> (profile)</a></li>'
        for href, name in hits
    )
    return f"<html><body><ul>{items}</ul></body></html>".encode()


class Site:
    def __init__(self, server: FixtureServer) -> None:
        self.server = server
        config = parse_scraper_config(
            yaml.safe_dump(
                {
                    "sources": [
                        {
                            "name": "search-site",
                            "selector": "img.photo",
                            "search": {
                                "url": f"{server.base_url}/search?q={{name_plus}}",
                                "result": "li.hit",
                                "result_name": "span.n",
                            },
                        }
                    ],
                    "fetch": {
                        "allowed_private_hosts": [server.host_port],
                        "per_host_min_interval": 0.0,
                        "max_attempts": 1,
                    },
                }
            )
        )
        self.fetcher = Fetcher(config.fetch)
        self.scraper = ArtistImageScraper(config.sources, self.fetcher, config.images)

    def artist_page(self, page_id: str, seed: int) -> None:
        self.server.add_route(
            f"/img/{page_id}.jpg", body=make_jpeg(seed), headers={"Content-Type": "image/jpeg"}
        )
        self.server.add_route(
            f"/a/{page_id}",
            body=f'<img class="photo" src="/img/{page_id}.jpg">'.encode(),
            headers={"Content-Type": "text/html"},
        )

    def search_answers(self, body: bytes) -> None:
        self.server.add_route("/search", body=body, headers={"Content-Type": "text/html"})

    def scrape(self, name: str, context: ArtistContext | None = None) -> ScrapeResult:
        return self.scraper.scrape(Artist("1", name), context=context)


@pytest.fixture
def site(fixture_server: FixtureServer) -> Iterator[Site]:
    opened = Site(fixture_server)
    yield opened
    opened.fetcher.close()


def test_the_one_strictly_matching_result_leads_to_the_artist_page(site: Site) -> None:
    site.artist_page("x91", 1)
    site.search_answers(_results(("/a/x90", "Sigur Ros Tribute"), ("/a/x91", "Sigur Rós")))

    result = site.scrape("Sigur Rós")

    assert result.outcome is Outcome.FOUND, result.reason
    assert result.page_url == f"{site.server.base_url}/a/x91"
    (identity,) = result.identities
    assert (identity.namespace, identity.external_id) == (NAMESPACE, result.page_url)
    assert identity.method is IdentityMethod.MATCHED


def test_two_results_of_the_same_name_are_ambiguous_and_fetch_no_page(site: Site) -> None:
    site.artist_page("n1", 1)
    site.artist_page("n2", 2)
    site.search_answers(_results(("/a/n1", "Nirvana"), ("/a/n2", "NIRVANA")))

    result = site.scrape("Nirvana")

    assert result.outcome is Outcome.AMBIGUOUS_IDENTITY
    assert {c.external_id for c in result.candidates} == {
        f"{site.server.base_url}/a/n1",
        f"{site.server.base_url}/a/n2",
    }
    assert site.server.hits["/a/n1"] == site.server.hits["/a/n2"] == 0


def test_a_pinned_page_is_used_without_searching(site: Site) -> None:
    site.artist_page("n2", 2)
    pinned = Identity(NAMESPACE, f"{site.server.base_url}/a/n2", IdentityMethod.PINNED)

    result = site.scrape("Nirvana", ArtistContext(identities={NAMESPACE: pinned}))

    assert result.outcome is Outcome.FOUND, result.reason
    assert site.server.hits["/search"] == 0


def test_no_matching_result_is_no_identity_not_a_guess(site: Site) -> None:
    site.artist_page("z1", 1)
    site.search_answers(_results(("/a/z1", "Some Other Band")))

    result = site.scrape("Nobody Knows Me")

    assert result.outcome is Outcome.NO_IDENTITY
    assert site.server.hits["/a/z1"] == 0


def test_a_site_source_needs_a_page_url_or_a_search() -> None:
    with pytest.raises(ScraperConfigError, match="give page_url"):
        parse_scraper_config("sources:\n  - {name: s, selector: img}\n")
