"""The demo website serves every kind of page it promises, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from protego import Protego

from podpod_scraping.core.sources import (
    SourceConfig,
    extract_image_urls,
    load_sources,
    parse_sources,
)
from podpod_scraping.demo.site import (
    DEMO_ARTISTS,
    KINDS,
    DemoArtist,
    DemoSite,
    FixtureServer,
    demo_image,
    demo_sources_yaml,
)

ARTISTS_BY_KIND: dict[str, list[DemoArtist]] = {}
for _artist in DEMO_ARTISTS:
    ARTISTS_BY_KIND.setdefault(_artist.kind, []).append(_artist)
OK_ARTISTS = [a for a in DEMO_ARTISTS if a.has_valid_image]


def _ids(artist: DemoArtist) -> str:
    return f"{artist.id}-{artist.kind}"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy from the environment must never see these requests.
    with httpx.Client(trust_env=False, timeout=10) as http:
        yield http


def _source(site: DemoSite) -> SourceConfig:
    source = parse_sources(demo_sources_yaml(site.base_url))[0]
    assert isinstance(source, SourceConfig)
    return source


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_catalog_has_at_least_22_artists_with_ids_1_to_n_and_unique_slugs() -> None:
    assert len(DEMO_ARTISTS) >= 22
    assert [a.id for a in DEMO_ARTISTS] == list(range(1, len(DEMO_ARTISTS) + 1))
    assert len({a.slug for a in DEMO_ARTISTS}) == len(DEMO_ARTISTS)
    assert all(a.slug for a in DEMO_ARTISTS)


def test_catalog_covers_every_failure_kind_at_least_twice() -> None:
    counts = Counter(a.kind for a in DEMO_ARTISTS)
    assert set(counts) == set(KINDS)
    for kind in ("no_image", "not_found", "broken_image", "missing_image", "tiny"):
        assert counts[kind] >= 2, kind
    assert sum(n for kind, n in counts.items() if kind.startswith("ok_")) >= 12


@pytest.mark.parametrize("artist", OK_ARTISTS, ids=_ids)
def test_ok_page_leads_to_a_decodable_image_of_at_least_300px(
    demo_site: DemoSite, client: httpx.Client, artist: DemoArtist
) -> None:
    page = client.get(demo_site.page_url(artist))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    source = _source(demo_site)
    candidates = extract_image_urls(page.content, str(page.url), source)
    assert candidates[0] == demo_site.image_url(artist)

    image = client.get(candidates[0])

    assert image.status_code == 200
    expected_type = {"ok_png": "image/png", "ok_webp": "image/webp"}.get(artist.kind, "image/jpeg")
    assert image.headers["content-type"] == expected_type
    decoded = _decode(image.content)
    assert Image.MIME[decoded.format or ""] == expected_type
    assert min(decoded.size) >= 300


def test_exif_artist_image_is_stored_landscape_with_orientation_6(
    demo_site: DemoSite, client: httpx.Client
) -> None:
    (artist,) = ARTISTS_BY_KIND["ok_exif"]
    image = _decode(client.get(demo_site.image_url(artist)).content)
    assert image.size == (600, 400)
    assert image.getexif().get(0x0112) == 6


def test_large_artist_image_is_1600px_wide(demo_site: DemoSite, client: httpx.Client) -> None:
    (artist,) = ARTISTS_BY_KIND["ok_large"]
    assert _decode(client.get(demo_site.image_url(artist)).content).size == (1600, 1200)


@pytest.mark.parametrize("artist", ARTISTS_BY_KIND["not_found"], ids=_ids)
def test_not_found_artist_page_answers_404(
    demo_site: DemoSite, client: httpx.Client, artist: DemoArtist
) -> None:
    assert client.get(demo_site.page_url(artist)).status_code == 404


@pytest.mark.parametrize("artist", ARTISTS_BY_KIND["no_image"], ids=_ids)
def test_no_image_page_exists_but_offers_no_candidate(
    demo_site: DemoSite, client: httpx.Client, artist: DemoArtist
) -> None:
    page = client.get(demo_site.page_url(artist))
    assert page.status_code == 200
    source = _source(demo_site)
    assert extract_image_urls(page.content, str(page.url), source) == []


@pytest.mark.parametrize("artist", ARTISTS_BY_KIND["broken_image"], ids=_ids)
def test_broken_image_is_served_as_jpeg_but_cannot_be_decoded(
    demo_site: DemoSite, client: httpx.Client, artist: DemoArtist
) -> None:
    response = client.get(demo_site.image_url(artist))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\xff\xd8")
    with pytest.raises(OSError, match="truncated"):
        _decode(response.content)


@pytest.mark.parametrize("artist", ARTISTS_BY_KIND["missing_image"], ids=_ids)
def test_missing_image_page_points_at_a_404_image(
    demo_site: DemoSite, client: httpx.Client, artist: DemoArtist
) -> None:
    page = client.get(demo_site.page_url(artist))
    source = _source(demo_site)
    (candidate,) = extract_image_urls(page.content, str(page.url), source)
    assert candidate == demo_site.image_url(artist)
    assert client.get(candidate).status_code == 404


def test_tiny_images_are_1x1_and_50x50(demo_site: DemoSite, client: httpx.Client) -> None:
    sizes = {
        _decode(client.get(demo_site.image_url(artist)).content).size
        for artist in ARTISTS_BY_KIND["tiny"]
    }
    assert sizes == {(1, 1), (50, 50)}


def test_robots_txt_allows_everything(demo_site: DemoSite, client: httpx.Client) -> None:
    response = client.get(demo_site.url("/robots.txt"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    robots = Protego.parse(response.text)
    assert robots.can_fetch(demo_site.url("/artists/aurora-vale"), "podpod-scraping")
    assert robots.can_fetch(demo_site.url("/images/aurora-vale.jpg"), "podpod-scraping")


def test_index_links_every_artist_page(demo_site: DemoSite, client: httpx.Client) -> None:
    response = client.get(demo_site.url("/"))
    assert response.status_code == 200
    for artist in DEMO_ARTISTS:
        assert demo_site.page_url(artist).removeprefix(demo_site.base_url) in response.text


def test_image_has_validators_and_answers_304_to_matching_if_none_match(
    demo_site: DemoSite, client: httpx.Client
) -> None:
    url = demo_site.image_url(DEMO_ARTISTS[0])
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["last-modified"].endswith("GMT")

    again = client.get(url, headers={"If-None-Match": etag})
    other = client.get(url, headers={"If-None-Match": '"something-else"'})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert other.status_code == 200
    assert other.content == first.content


def test_image_answers_304_to_if_modified_since_its_last_modified(
    demo_site: DemoSite, client: httpx.Client
) -> None:
    url = demo_site.image_url(DEMO_ARTISTS[0])
    last_modified = client.get(url).headers["last-modified"]
    response = client.get(url, headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304


def test_image_version_2_serves_other_bytes_and_etag_at_the_same_url(
    client: httpx.Client,
) -> None:
    artist = DEMO_ARTISTS[0]
    with DemoSite(image_version=1) as v1, DemoSite(image_version=2) as v2:
        old = client.get(v1.image_url(artist))
        new = client.get(v2.image_url(artist))
        conditional = client.get(
            v2.image_url(artist), headers={"If-None-Match": old.headers["etag"]}
        )
    assert new.status_code == 200
    assert new.content != old.content
    assert new.headers["etag"] != old.headers["etag"]
    assert conditional.status_code == 200  # the old validator no longer matches
    assert min(_decode(new.content).size) >= 300


def test_set_image_version_changes_images_of_a_running_site(
    demo_site: DemoSite, client: httpx.Client
) -> None:
    url = demo_site.image_url(DEMO_ARTISTS[0])
    before = client.get(url).content
    demo_site.set_image_version(2)
    after = client.get(url).content
    demo_site.set_image_version(1)
    assert after != before
    assert client.get(url).content == before


def test_same_version_serves_identical_bytes_across_two_starts(client: httpx.Client) -> None:
    urls_and_bodies: list[dict[int, bytes]] = []
    for _ in range(2):
        demo_image.cache_clear()  # generate again, do not reuse this process's cache
        with DemoSite() as site:
            urls_and_bodies.append(
                {
                    artist.id: client.get(site.image_url(artist)).content
                    for artist in DEMO_ARTISTS
                    if artist.kind not in ("not_found", "no_image", "missing_image")
                }
            )
    assert urls_and_bodies[0] == urls_and_bodies[1]
    assert len(urls_and_bodies[0]) >= 16


def test_demo_sources_yaml_file_matches_the_helper_for_port_8765() -> None:
    import podpod_scraping.demo as demo_package

    path = Path(demo_package.__file__).parent / "sources.yaml"
    assert path.read_text(encoding="utf-8") == demo_sources_yaml("http://127.0.0.1:8765")
    source = load_sources(path)[0]
    assert isinstance(source, SourceConfig)
    assert source.page_url == "http://127.0.0.1:8765/artists/{slug}"
    assert source.selector == "img.artist-image"


def test_fixture_server_serves_routes_and_counts_hits_per_path(
    fixture_server: FixtureServer, client: httpx.Client
) -> None:
    fixture_server.add_route("/page", body="<p>hi</p>", headers={"Content-Type": "text/html"})
    fixture_server.add_route("/gone", status=410, body=b"gone")

    page = client.get(fixture_server.url("/page?x=1"))
    client.get(fixture_server.url("/page"))
    gone = client.get(fixture_server.url("/gone"))
    unknown = client.get(fixture_server.url("/nowhere"))

    assert (page.status_code, page.text, page.headers["content-type"]) == (
        200,
        "<p>hi</p>",
        "text/html",
    )
    assert gone.status_code == 410
    assert unknown.status_code == 404
    assert fixture_server.hits == Counter({"/page": 2, "/gone": 1, "/nowhere": 1})
    assert fixture_server.total_hits == 4
    assert fixture_server.headers["/page"][0]["User-Agent"].startswith("python-httpx")


def test_fixture_server_head_sends_headers_without_body(
    fixture_server: FixtureServer, client: httpx.Client
) -> None:
    fixture_server.add_route("/img", body=b"x" * 10, headers={"Content-Type": "image/png"})
    response = client.head(fixture_server.url("/img"))
    assert response.status_code == 200
    assert response.headers["content-length"] == "10"
    assert response.content == b""


def test_fixture_server_matches_percent_encoded_paths(
    fixture_server: FixtureServer, client: httpx.Client
) -> None:
    fixture_server.add_route("/artists/새벽별", body=b"ok")
    assert client.get(fixture_server.url("/artists/%EC%83%88%EB%B2%BD%EB%B3%84")).text == "ok"


def test_fixture_server_refuses_connections_after_stop(client: httpx.Client) -> None:
    server = FixtureServer().start()
    server.add_route("/", body=b"up")
    url = server.url("/")
    assert client.get(url).text == "up"
    server.stop()
    with pytest.raises(httpx.TransportError):
        client.get(url)


def test_module_command_serves_until_interrupted(client: httpx.Client) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "podpod_scraping.demo.site", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.split(" on ", 1)[1].split("/ ", 1)[0]
        assert base_url.startswith("http://127.0.0.1:")
        assert client.get(f"{base_url}/robots.txt").status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
