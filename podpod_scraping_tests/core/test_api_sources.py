"""API sources end to end: the real scraper and Fetcher over recorded-response APIs on 127.0.0.1.

Each test is one case of issue 9's list: the outcome an artist gets, and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from podpod_scraping.core.config import parse_scraper_config
from podpod_scraping.core.fetching import Fetcher
from podpod_scraping.core.identity import (
    DEEZER,
    MUSICBRAINZ,
    WIKIDATA,
    ArtistContext,
    CurrentImageRank,
    Identity,
    IdentityMethod,
)
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeResult
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.demo.apis import RecordedApis, api_sources
from podpod_scraping.demo.server import FixtureServer

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Harness:
    """A scraper over the recorded APIs, with the waits the fetcher asked for."""

    def __init__(
        self, server: FixtureServer, apis: RecordedApis, *, lookup_relations: bool = False
    ) -> None:
        self.server = server
        self.apis = apis
        self.sleeps: list[float] = []
        sources = api_sources(server.base_url)
        sources[1]["lookup_relations"] = lookup_relations
        config = parse_scraper_config(
            yaml.safe_dump(
                {
                    "sources": sources,
                    "fetch": {
                        "allowed_private_hosts": [server.host_port],
                        "per_host_min_interval": 0.0,
                    },
                }
            )
        )
        self.fetcher = Fetcher(config.fetch, sleep=self.sleeps.append)
        self.scraper = ArtistImageScraper(
            config.sources, self.fetcher, config.images, ranking=config.ranking
        )

    def scrape(
        self, name: str, *aliases: str, context: ArtistContext | None = None
    ) -> ScrapeResult:
        return self.scraper.scrape(Artist("1", name, aliases), context=context)


@pytest.fixture
def apis(fixture_server: FixtureServer) -> RecordedApis:
    return RecordedApis(fixture_server).install()


@pytest.fixture
def harness(fixture_server: FixtureServer, apis: RecordedApis) -> Iterator[Harness]:
    harness = Harness(fixture_server, apis)
    yield harness
    harness.fetcher.close()


def _pinned(namespace: str, external_id: str) -> Identity:
    return Identity(namespace, external_id, IdentityMethod.PINNED, resolved_at=NOW)


def test_uniquely_matched_artist_gets_the_commons_image_with_licence_and_identity(
    harness: Harness,
) -> None:
    result = harness.scrape("Sigur Rós")

    assert result.outcome is Outcome.FOUND, result.reason
    assert result.image is not None
    provenance = result.image.provenance
    assert provenance.source_name == "wikimedia-commons"
    assert provenance.license == "CC BY-SA 4.0"
    assert provenance.license_url == "https://creativecommons.org/licenses/by-sa/4.0"
    assert provenance.attribution == "Jane Doe"
    assert provenance.attribution_required is True
    assert provenance.identity_namespace == WIKIDATA
    assert provenance.identity_id == "Q900006"
    assert (result.image.width, result.image.height) == (1024, 1210)  # the 1024 px thumbnail
    namespaces = {i.namespace: i for i in result.identities}
    assert namespaces[MUSICBRAINZ].external_id.endswith("000000000006")
    assert namespaces[MUSICBRAINZ].method is IdentityMethod.MATCHED
    assert namespaces[MUSICBRAINZ].score == 100


def test_two_artists_of_one_name_are_ambiguous_with_both_candidates_and_no_image(
    harness: Harness,
) -> None:
    result = harness.scrape("Nirvana")

    assert result.outcome is Outcome.AMBIGUOUS_IDENTITY
    assert result.image is None
    assert {(c.name, c.disambiguation) for c in result.candidates} == {
        ("Nirvana", "US rock band"),
        ("Nirvana", "1960s UK band"),
    }


def test_a_pinned_mbid_gets_that_artists_image_although_the_name_is_ambiguous(
    harness: Harness,
) -> None:
    uk_band = "00000000-0000-4000-8000-000000000003"
    context = ArtistContext(identities={MUSICBRAINZ: _pinned(MUSICBRAINZ, uk_band)})

    result = harness.scrape("Nirvana", context=context)

    assert result.outcome is Outcome.FOUND, result.reason
    assert result.image is not None
    assert result.image.provenance.identity_id == "Q900003"


def test_a_pinned_artist_never_gets_the_most_popular_namesakes_deezer_photo(
    harness: Harness,
) -> None:
    # Pinned to an MBID Wikidata does not know: only Deezer could answer, by name.
    unknown_to_wikidata = "00000000-0000-4000-8000-000000000099"
    context = ArtistContext(identities={MUSICBRAINZ: _pinned(MUSICBRAINZ, unknown_to_wikidata)})

    result = harness.scrape("Nirvana", context=context)

    assert result.image is None  # not the US band's picture (the fans' tie-break)
    assert all(i.namespace != DEEZER for i in result.identities)


def test_a_korean_name_matches_through_its_english_alias(harness: Harness) -> None:
    result = harness.scrape("아이유", "IU")

    assert result.outcome is Outcome.FOUND, result.reason
    mb = next(i for i in result.identities if i.namespace == MUSICBRAINZ)
    assert mb.matched_name == "아이유"  # MusicBrainz lists 아이유 as an alias of IU
    assert mb.external_id.endswith("000000000001")


@pytest.mark.parametrize("name", ["AC/DC", "Guns N' Roses", "?&#%", "🦄 Unicorn"])
def test_names_that_need_url_encoding_reach_the_api_intact(
    harness: Harness, fixture_server: FixtureServer, name: str
) -> None:
    result = harness.scrape(name)

    assert result.outcome is Outcome.FOUND, result.reason
    assert fixture_server.hits["/musicbrainz/ws/2/artist"] == 1


def test_a_non_free_commons_file_is_refused(harness: Harness) -> None:
    result = harness.scrape("Closed Circle")

    assert result.outcome is Outcome.NOT_FREE
    assert "never published" in result.reason


def test_a_deprecated_image_statement_is_never_used(harness: Harness) -> None:
    result = harness.scrape("Old Photo Band")

    assert result.outcome is Outcome.FOUND, result.reason
    assert result.image is not None
    assert "2020" in result.image.provenance.image_url
    assert (result.image.width, result.image.height) == (800, 800)


def test_a_preferred_image_statement_wins_over_a_larger_normal_one(harness: Harness) -> None:
    result = harness.scrape("Sora Lune")

    assert result.image is not None
    assert "2024" in result.image.provenance.image_url


def test_deezers_placeholder_silhouette_is_never_an_image(harness: Harness) -> None:
    result = harness.scrape("Silhouette Singer")

    assert result.outcome is Outcome.PLACEHOLDER
    assert "placeholder" in result.reason


def test_deezers_quota_error_is_rate_limited_not_a_parse_failure(harness: Harness) -> None:
    result = harness.scrape("Quota Queen")

    assert result.outcome is Outcome.RATE_LIMITED
    assert "Quota limit exceeded" in result.reason


def test_a_musicbrainz_503_is_retried_after_its_retry_after(harness: Harness) -> None:
    result = harness.scrape("Busy Signal")

    assert result.outcome is Outcome.FOUND, result.reason
    assert 1.0 in harness.sleeps
    assert harness.server.hits["/musicbrainz/ws/2/artist"] == 2


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Broken Json", "malformed JSON"),
        ("Html Error", "expected JSON"),
        ("Odd Shape", "unexpected answer"),
    ],
)
def test_a_bad_api_answer_is_a_clear_outcome_of_that_artist(
    harness: Harness, name: str, words: str
) -> None:
    result = harness.scrape(name)

    assert result.outcome is Outcome.FETCH_ERROR
    assert words in result.reason


def test_an_unknown_name_has_no_identity(harness: Harness) -> None:
    result = harness.scrape("Nobody Of This Name")

    assert result.outcome is Outcome.NO_IDENTITY


def test_a_refresh_that_finds_only_a_worse_image_keeps_the_current_one(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    fixture_server.add_route("/wikidata/w/api.php", status=503)  # Wikidata is down today
    current = CurrentImageRank("wikimedia-commons", "http://x/iu.jpg", 1200, 1600, "CC BY-SA 4.0")

    result = harness.scrape("IU", context=ArtistContext(current=current))

    assert result.outcome is Outcome.UNCHANGED
    assert result.reason == (
        "kept current: 1200x1600 from wikimedia-commons beats the 1000x1000 found on deezer"
    )
    assert not [p for p in fixture_server.hits if "/images/" in p]  # nothing downloaded


def test_a_current_image_its_source_no_longer_offers_is_replaced_by_a_smaller_one(
    harness: Harness,
) -> None:
    current = CurrentImageRank("wikimedia-commons", "http://x/gone.jpg", 1024, 1024, "CC0")

    result = harness.scrape("Old Photo Band", context=ArtistContext(current=current))

    assert result.outcome is Outcome.FOUND
    assert result.image is not None
    assert result.image.width == 800


def test_force_replaces_the_current_image_with_a_worse_one(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    fixture_server.add_route("/wikidata/w/api.php", status=503)
    current = CurrentImageRank("wikimedia-commons", "http://x/iu.jpg", 1200, 1600, "CC BY-SA 4.0")

    result = harness.scrape("IU", context=ArtistContext(current=current, force=True))

    assert result.outcome is Outcome.FOUND
    assert result.source_name == "deezer"


def test_a_taken_down_image_url_is_never_fetched_again(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    first = harness.scrape("Pale Orchard")
    assert first.image is not None
    url = first.image.provenance.image_url
    fixture_server.reset_hits()

    again = harness.scrape(
        "Pale Orchard", context=ArtistContext(blocked_image_urls=frozenset({url}))
    )

    assert again.outcome is Outcome.NO_IMAGE
    assert "taken-down" in again.reason
    assert not [p for p in fixture_server.hits if "/images/" in p]


def test_a_stored_identity_is_not_resolved_again(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    mbid = "00000000-0000-4000-8000-000000000015"
    context = ArtistContext(
        identities={
            MUSICBRAINZ: Identity(MUSICBRAINZ, mbid, IdentityMethod.MATCHED, resolved_at=NOW),
            WIKIDATA: Identity(WIKIDATA, "Q900015", IdentityMethod.MATCHED, resolved_at=NOW),
        },
        verify_before=NOW - timedelta(days=180),
    )

    result = harness.scrape("Pale Orchard", context=context)

    assert result.outcome is Outcome.FOUND
    assert result.identities == ()  # nothing resolved: the deezer source is not reached first
    assert fixture_server.hits["/musicbrainz/ws/2/artist"] == 0


def test_a_matched_identity_older_than_verify_before_is_verified_again(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    mbid = "00000000-0000-4000-8000-000000000015"
    old = Identity(MUSICBRAINZ, mbid, IdentityMethod.MATCHED, resolved_at=NOW - timedelta(days=400))
    context = ArtistContext(identities={MUSICBRAINZ: old}, verify_before=NOW - timedelta(days=180))

    result = harness.scrape("Pale Orchard", context=context)

    assert fixture_server.hits["/musicbrainz/ws/2/artist"] == 1
    assert any(i.namespace == MUSICBRAINZ and i.external_id == mbid for i in result.identities)


def test_musicbrainz_url_rels_give_the_wikidata_item_without_a_wikidata_search(
    fixture_server: FixtureServer, apis: RecordedApis
) -> None:
    harness = Harness(fixture_server, apis, lookup_relations=True)
    try:
        result = harness.scrape("Sigur Rós")
    finally:
        harness.fetcher.close()

    assert result.outcome is Outcome.FOUND, result.reason
    wikidata = next(i for i in result.identities if i.namespace == WIKIDATA)
    assert wikidata.external_id == "Q900006"
    assert wikidata.evidence["via"] == "musicbrainz url-rels"
    assert fixture_server.hits["/musicbrainz/ws/2/artist/00000000-0000-4000-8000-000000000006"] == 1


def test_a_pinned_deezer_id_is_looked_up_not_searched(
    harness: Harness, fixture_server: FixtureServer
) -> None:
    context = ArtistContext(identities={DEEZER: _pinned(DEEZER, "5011")})

    result = harness.scrape("Silhouette Singer", context=context)

    assert result.outcome is Outcome.PLACEHOLDER
    assert fixture_server.hits["/deezer/artist/5011"] == 1
    assert fixture_server.hits["/deezer/search/artist"] == 0
