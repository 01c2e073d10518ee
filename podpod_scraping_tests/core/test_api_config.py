"""The API source kinds in the scraper YAML: defaults, and refusals that name file:line:key."""

from __future__ import annotations

import pytest

from podpod_scraping.core.apis import DeezerSource, MusicBrainzSource, WikidataCommonsSource
from podpod_scraping.core.config import parse_scraper_config
from podpod_scraping.core.schema import ScraperConfigError
from podpod_scraping.core.sources import SourceConfig

SITE = "  - name: site\n    page_url: 'https://s.example/a/{slug}'\n    selector: img\n"


def test_a_source_without_kind_is_a_site_as_before() -> None:
    config = parse_scraper_config("sources:\n" + SITE)

    assert isinstance(config.sources[0], SourceConfig)


def test_api_kinds_default_to_the_real_apis() -> None:
    config = parse_scraper_config(
        "sources:\n"
        "  - {kind: wikidata_commons, name: commons}\n"
        "  - {kind: musicbrainz, name: mb}\n"
        "  - {kind: deezer, name: dz}\n"
    )

    commons, mb, dz = config.sources
    assert isinstance(commons, WikidataCommonsSource)
    assert (commons.base_url, commons.commons_url) == (
        "https://www.wikidata.org",
        "https://commons.wikimedia.org",
    )
    assert isinstance(mb, MusicBrainzSource)
    assert (mb.base_url, mb.min_interval, mb.concurrency) == ("https://musicbrainz.org", 1.0, 1)
    assert isinstance(dz, DeezerSource)
    assert dz.base_url == "https://api.deezer.com"


@pytest.mark.parametrize("kind", ["musicbrainz", "wikidata_commons"])
def test_a_user_agent_without_contact_is_refused_with_file_line_and_key(kind: str) -> None:
    text = f"sources:\n{SITE}  - kind: {kind}\n    name: api\n    user_agent: 'myapp/1.0'\n"

    with pytest.raises(ScraperConfigError) as error:
        parse_scraper_config(text, origin="scraper.yaml")

    message = str(error.value)
    assert message.startswith("scraper.yaml:7: sources[1].user_agent:")
    assert "no contact" in message


@pytest.mark.parametrize(
    "user_agent", ["app/1.0 (https://app.example)", "app/1.0 (ops@app.example)"]
)
def test_a_user_agent_with_a_url_or_an_email_is_accepted(user_agent: str) -> None:
    config = parse_scraper_config(
        f"sources:\n  - {{kind: musicbrainz, name: mb, user_agent: '{user_agent}'}}\n"
    )

    source = config.sources[0]
    assert isinstance(source, MusicBrainzSource)
    assert source.user_agent == user_agent


def test_an_unknown_key_of_an_api_source_is_refused() -> None:
    with pytest.raises(ScraperConfigError, match=r"sources\[0\]\.rate: unknown key"):
        parse_scraper_config("sources:\n  - {kind: deezer, name: dz, rate: 3}\n")


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ScraperConfigError, match=r"sources\[0\]\.base_url: .*absolute http"):
        parse_scraper_config("sources:\n  - {kind: deezer, name: dz, base_url: 'ftp://x'}\n")


def test_a_wikimedia_batch_larger_than_50_is_refused() -> None:
    with pytest.raises(ScraperConfigError, match=r"sources\[0\]\.batch_size"):
        parse_scraper_config("sources:\n  - {kind: wikidata_commons, name: c, batch_size: 51}\n")
