"""Sources are configuration: URL templates, CSS selectors and fallbacks, parsed strictly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeError
from podpod_scraping.core.sources import (
    SourceConfig,
    SourceConfigError,
    extract_image_urls,
    find_images,
    load_sources,
    parse_sources,
    parse_srcset,
    slugify,
)
from podpod_scraping.demo.site import DEMO_ARTISTS, DemoSite, FixtureServer

PAGE = "https://site.example/artists/aurora-vale"
IMG = SourceConfig(name="site", page_url="https://site.example/a/{id}", selector="img.artist-image")
NO_FALLBACKS = SourceConfig(
    name="site", page_url="https://site.example/a/{id}", selector="img.artist-image", fallbacks=()
)
SPACER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def _extract(body: str, source: SourceConfig = IMG, page: str = PAGE) -> list[str]:
    return extract_image_urls(f"<html><head></head><body>{body}</body></html>", page, source)


def _source(page_url: str) -> SourceConfig:
    return SourceConfig(name="s", page_url=page_url, selector="img")


# --------------------------------------------------------------------------- URL templates


def test_name_placeholders_are_url_quoted() -> None:
    artist = Artist(id="42", name="Beyoncé & Jay/Z")
    url = _source("https://s.example/{id}?q={name_plus}&p={name}").page_url_for(artist)
    assert url == ("https://s.example/42?q=Beyonc%C3%A9+%26+Jay%2FZ&p=Beyonc%C3%A9%20%26%20Jay%2FZ")


def test_slug_folds_accents_lowercases_and_dashes_punctuation() -> None:
    artist = Artist(id="1", name="  Élodie Marchand & The Ünits! ")
    assert _source("https://s.example/artists/{slug}").page_url_for(artist) == (
        "https://s.example/artists/elodie-marchand-the-units"
    )


def test_slug_keeps_non_latin_letters_percent_encoded() -> None:
    assert slugify("새벽별 Band") == "새벽별-band"
    url = _source("https://s.example/{slug}").page_url_for(Artist(id="5", name="새벽별"))
    assert url == "https://s.example/%EC%83%88%EB%B2%BD%EB%B3%84"


def test_name_without_any_slug_letters_is_page_not_found_not_a_guess() -> None:
    with pytest.raises(ScrapeError) as error:
        _source("https://s.example/{slug}").page_url_for(Artist(id="9", name="!!!"))
    assert error.value.outcome is Outcome.PAGE_NOT_FOUND


def test_id_placeholder_is_quoted() -> None:
    url = _source("https://s.example/{id}").page_url_for(Artist(id="a/b c", name="x"))
    assert url == "https://s.example/a%2Fb%20c"


# --------------------------------------------------------------------------- extraction


def test_relative_src_resolves_against_the_final_page_url() -> None:
    urls = _extract('<img class="artist-image" src="../images/a.jpg">')
    assert urls == ["https://site.example/images/a.jpg"]


def test_protocol_relative_src_keeps_the_page_scheme() -> None:
    urls = _extract('<img class="artist-image" src="//cdn.example/a.jpg">')
    assert urls == ["https://cdn.example/a.jpg"]


def test_base_href_changes_where_relative_urls_resolve() -> None:
    html = (
        '<html><head><base href="/static/v2/"></head>'
        '<body><img class="artist-image" src="img/a.jpg"></body></html>'
    )
    assert extract_image_urls(html, PAGE, IMG) == ["https://site.example/static/v2/img/a.jpg"]


def test_srcset_width_descriptors_pick_the_widest_then_src() -> None:
    urls = _extract(
        '<img class="artist-image" src="s.jpg" srcset="m.jpg 640w, l.jpg 1600w, s.jpg 320w">'
    )
    assert urls == ["https://site.example/artists/l.jpg", "https://site.example/artists/s.jpg"]


def test_srcset_density_descriptors_pick_the_highest() -> None:
    urls = _extract('<img class="artist-image" srcset="/a.jpg, /a@3x.jpg 3x, /a@2x.jpg 2x">')
    assert urls == ["https://site.example/a@3x.jpg"]


def test_srcset_urls_may_contain_commas() -> None:
    value = "https://img.example/w_300,h_300/a.jpg 300w, https://img.example/w_900,h_900/a.jpg 900w"
    assert parse_srcset(value) == [
        ("https://img.example/w_300,h_300/a.jpg", "300w"),
        ("https://img.example/w_900,h_900/a.jpg", "900w"),
    ]
    urls = _extract(f'<img class="artist-image" srcset="{value}">')
    assert urls == ["https://img.example/w_900,h_900/a.jpg"]


def test_lazy_data_src_beats_a_spacer_src_which_is_dropped() -> None:
    urls = _extract(f'<img class="artist-image" src="{SPACER}" data-src="/real.jpg">')
    assert urls == ["https://site.example/real.jpg"]


@pytest.mark.parametrize("attribute", ["data-lazy-src", "data-original"])
def test_other_lazy_load_attributes_are_read(attribute: str) -> None:
    urls = _extract(f'<img class="artist-image" src="/thumb.jpg" {attribute}="/full.jpg">')
    assert urls == ["https://site.example/full.jpg", "https://site.example/thumb.jpg"]


def test_og_image_is_the_fallback_when_the_selector_matches_nothing() -> None:
    html = (
        '<html><head><meta property="og:image" content="https://cdn.example/og.jpg"></head>'
        '<body><img class="site-logo" src="/logo.png"></body></html>'
    )
    assert extract_image_urls(html, PAGE, IMG) == ["https://cdn.example/og.jpg"]


def test_og_image_secure_url_is_read() -> None:
    html = '<meta property="og:image:secure_url" content="https://cdn.example/og.jpg">'
    assert extract_image_urls(html, PAGE, IMG) == ["https://cdn.example/og.jpg"]


@pytest.mark.parametrize("key", ["twitter:image", "twitter:image:src"])
def test_twitter_image_is_read_from_name_or_property(key: str) -> None:
    html = f'<meta name="{key}" content="/tw.jpg"><meta property="{key}" content="/tw2.jpg">'
    assert extract_image_urls(html, PAGE, IMG) == [
        "https://site.example/tw.jpg",
        "https://site.example/tw2.jpg",
    ]


def test_selector_matches_come_before_fallbacks_in_configured_order() -> None:
    source = SourceConfig(
        name="s",
        page_url="https://s.example/{id}",
        selector="img.artist-image",
        fallbacks=("twitter:image", "og:image"),
    )
    html = (
        '<meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="/tw.jpg">'
        '<img class="artist-image" src="/img.jpg">'
    )
    assert extract_image_urls(html, PAGE, source) == [
        "https://site.example/img.jpg",
        "https://site.example/tw.jpg",
        "https://site.example/og.jpg",
    ]


def test_no_configured_fallbacks_means_selector_only() -> None:
    html = '<meta property="og:image" content="/og.jpg"><img class="other" src="/x.jpg">'
    assert extract_image_urls(html, PAGE, NO_FALLBACKS) == []


def _json_ld(data: Any) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"@type": "MusicGroup", "image": "/a.jpg"}, ["/a.jpg"]),
        ({"@type": "Person", "image": ["/a.jpg", "/b.jpg"]}, ["/a.jpg", "/b.jpg"]),
        (
            {"@type": "MusicGroup", "image": {"@type": "ImageObject", "url": "/a.jpg"}},
            ["/a.jpg"],
        ),
        (
            {"@type": "MusicGroup", "image": {"@type": "ImageObject", "contentUrl": "/c.jpg"}},
            ["/c.jpg"],
        ),
        (
            {
                "@context": "https://schema.org",
                "@graph": [
                    {"@type": "Organization", "image": "/logo.png"},
                    {"@type": "MusicGroup", "image": [{"url": "/g.jpg"}]},
                ],
            },
            ["/g.jpg", "/logo.png"],  # the artist's node first, the publisher's logo last
        ),
    ],
    ids=["string", "list", "image-object-url", "image-object-content-url", "graph"],
)
def test_json_ld_image_forms(data: Any, expected: list[str]) -> None:
    urls = extract_image_urls(_json_ld(data), PAGE, IMG)
    assert urls == [f"https://site.example{path}" for path in expected]


def test_broken_json_ld_is_skipped_and_the_next_block_read() -> None:
    html = '<script type="application/ld+json">{"image": "/a.jpg",,}</script>' + _json_ld(
        {"@type": "Person", "image": "/b.jpg"}
    )
    assert extract_image_urls(html, PAGE, IMG) == ["https://site.example/b.jpg"]


def test_configured_attribute_is_the_only_one_read() -> None:
    source = SourceConfig(
        name="s", page_url="https://s.example/{id}", selector="a.photo", attribute="href"
    )
    html = '<a class="photo" href="/full.jpg" src="/nope.jpg" data-src="/nope2.jpg">photo</a>'
    assert extract_image_urls(html, PAGE, source) == ["https://site.example/full.jpg"]


def test_configured_srcset_attribute_is_parsed_as_srcset() -> None:
    source = SourceConfig(
        name="s",
        page_url="https://s.example/{id}",
        selector="source",
        attribute="srcset",
        fallbacks=(),
    )
    html = '<picture><source srcset="/a.webp 1x, /b.webp 2x"><img src="/c.jpg"></picture>'
    assert extract_image_urls(html, PAGE, source) == ["https://site.example/b.webp"]


def test_file_urls_are_kept_for_the_fetcher_to_refuse_but_data_and_javascript_dropped() -> None:
    html = (
        '<img class="artist-image" src="file:///etc/passwd">'
        '<img class="artist-image" src="data:image/png;base64,iVBORw0KGgo=">'
        '<img class="artist-image" src="javascript:alert(1)">'
        '<img class="artist-image" src="#">'
        '<img class="artist-image" src="  ">'
    )
    assert _extract(html) == ["file:///etc/passwd"]


def test_dropped_inline_values_are_reported_by_scheme_for_the_outcome_reason() -> None:
    html = (
        '<img class="artist-image" src="DATA:image/png;base64,iVBORw0KGgo=">'
        '<img class="artist-image" src="javascript:alert(1)">'
        '<img class="artist-image" src="#">'
    )
    found = find_images(html, PAGE, IMG)
    assert found.urls == []
    assert found.ignored_schemes == ("data:", "javascript:")


def test_page_without_dropped_values_reports_none() -> None:
    found = find_images('<img class="artist-image" src="/a.jpg">', PAGE, IMG)
    assert found.urls == ["https://site.example/a.jpg"]
    assert found.ignored_schemes == ()


def test_duplicates_are_removed_keeping_the_first_position() -> None:
    html = (
        '<meta property="og:image" content="https://site.example/a.jpg">'
        '<img class="artist-image" src="/a.jpg#top">'
        '<img class="artist-image" src="/b.jpg">'
        '<img class="artist-image" src="https://site.example/a.jpg">'
    )
    assert extract_image_urls(html, PAGE, IMG) == [
        "https://site.example/a.jpg",
        "https://site.example/b.jpg",
    ]


def test_broken_html_still_yields_the_image() -> None:
    html = '<html><body><div><p>unclosed <img class="artist-image" src="/a.jpg"<div></span>'
    assert extract_image_urls(html, PAGE, IMG) == ["https://site.example/a.jpg"]


def test_bytes_in_a_declared_encoding_are_decoded() -> None:
    html = ('<meta charset="iso-8859-1"><img class="artist-image" src="/Élodie.jpg">').encode(
        "iso-8859-1"
    )
    assert extract_image_urls(html, PAGE, IMG) == ["https://site.example/Élodie.jpg"]


# --------------------------------------------------------------------------- configuration

VALID_ENTRY: dict[str, Any] = {
    "name": "demo-site",
    "page_url": "http://127.0.0.1:8765/artists/{slug}",
    "selector": "img.artist-image",
}


def _yaml(*entries: Any) -> str:
    return yaml.safe_dump({"sources": list(entries)})


def test_minimal_entry_gets_the_documented_defaults() -> None:
    (source,) = parse_sources(_yaml(VALID_ENTRY))
    assert source == SourceConfig(
        name="demo-site",
        page_url="http://127.0.0.1:8765/artists/{slug}",
        selector="img.artist-image",
        attribute=None,
        fallbacks=("og:image", "twitter:image", "json-ld"),
        license=None,
        attribution=None,
    )


def test_full_entry_and_priority_order_are_kept() -> None:
    second = {
        **VALID_ENTRY,
        "name": "second",
        "attribute": "data-full",
        "fallbacks": ["json-ld"],
        "license": "CC-BY-4.0",
        "attribution": "Jane Doe",
    }
    sources = parse_sources(_yaml(VALID_ENTRY, second))
    assert [s.name for s in sources] == ["demo-site", "second"]
    assert isinstance(sources[1], SourceConfig)
    assert sources[1].attribute == "data-full"
    assert sources[1].fallbacks == ("json-ld",)
    assert (sources[1].license, sources[1].attribution) == ("CC-BY-4.0", "Jane Doe")


def test_other_top_level_sections_are_ignored() -> None:
    text = yaml.safe_dump({"sources": [VALID_ENTRY], "fetch": {"max_attempts": 2}})
    assert [s.name for s in parse_sources(text)] == ["demo-site"]


def test_load_sources_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(_yaml(VALID_ENTRY), encoding="utf-8")
    assert [s.name for s in load_sources(path)] == ["demo-site"]


def test_load_sources_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_yaml({**VALID_ENTRY, "selector": "img["}), encoding="utf-8")
    with pytest.raises(SourceConfigError, match=r"bad\.yaml:\d+: sources\[0\]\.selector: "):
        load_sources(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigError, match="cannot read sources file"):
        load_sources(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: [", "not valid YAML"),
        ("- just a list", "expected a mapping with a 'sources' list"),
        ("sources: []", "sources: required: add a 'sources:' list with at least one entry"),
        (_yaml("just a string"), r"sources\[0\]: must be a mapping"),
        (
            _yaml({k: v for k, v in VALID_ENTRY.items() if k != "selector"}),
            r":2: sources\[0\]\.selector: required: add 'selector'",
        ),
        (_yaml({**VALID_ENTRY, "name": ""}), r"sources\[0\]\.name: must not be empty"),
        (
            _yaml({**VALID_ENTRY, "selector": "img[class="}),
            "sources\\[0\\].selector: 'img\\[class=' is not a valid CSS selector",
        ),
        (
            _yaml({**VALID_ENTRY, "page_url": "https://s.example/{artist_name}"}),
            r"unknown placeholder\(s\) \['artist_name'\]",
        ),
        (
            _yaml({**VALID_ENTRY, "page_url": "ftp://s.example/{slug}"}),
            "must be an absolute http\\(s\\) URL",
        ),
        (
            _yaml({**VALID_ENTRY, "page_url": "/artists/{slug}"}),
            "must be an absolute http\\(s\\) URL",
        ),
        (_yaml({**VALID_ENTRY, "page_url": "https://s.example/artists"}), "has no placeholder"),
        (_yaml({**VALID_ENTRY, "page_url": "https://s.example/{id:>5}"}), "no format spec"),
        (_yaml({**VALID_ENTRY, "page_url": "https://s.example/{slug"}), "is malformed"),
        (
            _yaml({**VALID_ENTRY, "fallbacks": ["og:image", "favicon"]}),
            r"fallbacks\[1\]: must be 'og:image', 'twitter:image' or 'json-ld' \(got favicon\)",
        ),
        (
            _yaml({**VALID_ENTRY, "fallbacks": "og:image"}),
            r"fallbacks: must be a list \(got og:image\)",
        ),
        (
            _yaml({**VALID_ENTRY, "selectr": "img"}),
            r"sources\[0\]\.selectr: unknown key; did you mean 'selector'\?",
        ),
        (_yaml({**VALID_ENTRY, "license": 42}), r"license: must be a valid string \(got 42\)"),
        (
            _yaml(VALID_ENTRY, {**VALID_ENTRY, "selector": "img"}),
            r"duplicate name 'demo-site' in sources\[1\] \(already used by sources\[0\]\)",
        ),
    ],
    ids=[
        "bad-yaml",
        "no-sources-key",
        "empty-list",
        "entry-not-mapping",
        "missing-selector",
        "empty-name",
        "bad-selector",
        "unknown-placeholder",
        "non-http-template",
        "relative-template",
        "no-placeholder",
        "format-spec",
        "unbalanced-brace",
        "unknown-fallback",
        "fallbacks-not-list",
        "unknown-field",
        "license-not-string",
        "duplicate-name",
    ],
)
def test_invalid_configuration_gives_a_specific_message(text: str, message: str) -> None:
    with pytest.raises(SourceConfigError, match=message) as error:
        parse_sources(text, origin="sources.yaml")
    assert str(error.value).startswith("sources.yaml")


# --------------------------------------------------------------------------- over real HTTP


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10, follow_redirects=True) as http:
        yield http


def test_image_url_is_extracted_from_a_page_fetched_over_http_after_a_redirect(
    fixture_server: FixtureServer, client: httpx.Client
) -> None:
    fixture_server.add_route("/a/42", status=301, headers={"Location": "/artists/v2/aurora-vale"})
    fixture_server.add_route(
        "/artists/v2/aurora-vale",
        body='<h1>Aurora</h1><img class="artist-image" srcset="p-320.jpg 320w, p-960.jpg 960w">',
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    source = SourceConfig(
        name="fixture", page_url=fixture_server.url("/a/{id}"), selector="img.artist-image"
    )

    page = client.get(source.page_url_for(Artist(id="42", name="Aurora Vale")))
    urls = extract_image_urls(page.content, str(page.url), source)

    assert urls == [fixture_server.url("/artists/v2/p-960.jpg")]
    assert fixture_server.hits["/a/42"] == 1


def test_demo_sources_file_finds_every_demo_artists_image(
    demo_site: DemoSite, demo_sources_file: Path, client: httpx.Client
) -> None:
    (source,) = load_sources(demo_sources_file)
    assert isinstance(source, SourceConfig)
    for demo in DEMO_ARTISTS:
        page = client.get(source.page_url_for(Artist(id=str(demo.id), name=demo.name)))
        if demo.kind in ("not_found", "api_commons"):  # api_commons: found through the APIs
            assert page.status_code == 404, demo
            continue
        urls = extract_image_urls(page.content, str(page.url), source)
        if demo.kind == "no_image":
            assert urls == [], demo
        else:
            assert urls[0] == demo_site.image_url(demo), demo
