"""The best image of a page, not the first: every candidate ranked, the best few fetched."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO

import pytest
from PIL import Image

from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.identity import ArtistContext, CurrentImageRank
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.outcomes import Artist, Outcome
from podpod_scraping.core.ranking import RankingPolicy
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.core.sources import SourceConfig
from podpod_scraping.demo.server import FixtureServer


def _image(width: int, height: int, fmt: str = "JPEG") -> bytes:
    buffer = BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def scraper(fixture_server: FixtureServer) -> Iterator[ArtistImageScraper]:
    source = SourceConfig(
        name="site", page_url=f"{fixture_server.base_url}/a/{{id}}", selector="img.artist"
    )
    policy = FetchPolicy(
        allowed_private_hosts=frozenset({fixture_server.host_port}), per_host_min_interval=0.0
    )
    with Fetcher(policy) as fetcher:
        yield ArtistImageScraper(
            [source], fetcher, ImagePolicy(), ranking=RankingPolicy(max_fetch=2)
        )


def _serve(server: FixtureServer, page: str, images: dict[str, bytes]) -> None:
    server.add_route("/a/1", body=page, headers={"Content-Type": "text/html"})
    for path, data in images.items():
        kind = "image/webp" if path.endswith(".webp") else "image/jpeg"
        server.add_route(path, body=data, headers={"Content-Type": kind})


def test_a_picture_webp_source_larger_than_its_img_wins(
    scraper: ArtistImageScraper, fixture_server: FixtureServer
) -> None:
    _serve(
        fixture_server,
        "<picture><source type='image/webp' srcset='/big.webp 1200w, /mid.webp 600w'>"
        "<img class='artist' src='/small.jpg'></picture>",
        {"/big.webp": _image(1200, 1200, "WEBP"), "/small.jpg": _image(400, 400)},
    )

    result = scraper.scrape(Artist("1", "A"))

    assert result.outcome is Outcome.FOUND, result.reason
    assert result.image is not None
    assert result.image.provenance.image_url.endswith("/big.webp")
    assert result.image.content_type == "image/webp"
    assert fixture_server.hits["/mid.webp"] == 0  # a known smaller size is never fetched


def test_an_img_of_unknown_size_is_fetched_to_learn_it_and_wins_when_larger(
    scraper: ArtistImageScraper, fixture_server: FixtureServer
) -> None:
    _serve(
        fixture_server,
        "<img class='artist' srcset='/small.jpg 300w'>"
        "<meta property='og:image' content='/large.jpg'>",
        {"/small.jpg": _image(300, 300), "/large.jpg": _image(900, 900)},
    )

    result = scraper.scrape(Artist("1", "A"))

    assert result.image is not None
    assert result.image.provenance.image_url.endswith("/large.jpg")


def test_at_most_max_fetch_candidates_are_downloaded(
    scraper: ArtistImageScraper, fixture_server: FixtureServer
) -> None:
    imgs = "".join(f"<img class='artist' src='/{n}.jpg'>" for n in range(5))
    _serve(fixture_server, imgs, {f"/{n}.jpg": _image(300 + n, 300 + n) for n in range(5)})

    scraper.scrape(Artist("1", "A"))

    assert sum(fixture_server.hits[f"/{n}.jpg"] for n in range(5)) == 2


def test_a_landscape_image_loses_to_a_square_one_of_the_same_short_side(
    scraper: ArtistImageScraper, fixture_server: FixtureServer
) -> None:
    _serve(
        fixture_server,
        "<img class='artist' src='/wide.jpg'><img class='artist' src='/square.jpg'>",
        {"/wide.jpg": _image(1200, 600), "/square.jpg": _image(600, 600)},
    )

    result = scraper.scrape(Artist("1", "A"))

    assert result.image is not None
    assert result.image.provenance.image_url.endswith("/square.jpg")


def test_a_current_image_of_unknown_size_on_the_page_is_fetched_and_wins_over_a_smaller_one(
    scraper: ArtistImageScraper, fixture_server: FixtureServer
) -> None:
    current_url = fixture_server.url("/current.jpg")
    _serve(
        fixture_server,
        "<img class='artist' srcset='/new.jpg 300w'><img class='artist' src='/current.jpg'>",
        {"/new.jpg": _image(300, 300), "/current.jpg": _image(1000, 1000)},
    )
    context = ArtistContext(current=CurrentImageRank("site", current_url, 1000, 1000))

    result = scraper.scrape(Artist("1", "A"), context=context)

    assert result.outcome is Outcome.FOUND  # the same image again: the store keeps it
    assert result.image is not None
    assert result.image.provenance.image_url == current_url
