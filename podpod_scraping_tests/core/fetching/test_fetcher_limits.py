"""Size and time limits hold whatever the server claims or does."""

from __future__ import annotations

import pytest

from podpod_scraping.core.fetching import Fetcher, FetchError
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping_tests.core.fetching.hostile import HostileSite, RecordingSleep, policy_for


def _failure(fetcher: Fetcher, url: str, *, image: bool = False) -> FetchError:
    fetch = fetcher.fetch_image if image else fetcher.fetch_page
    with pytest.raises(FetchError) as caught:
        fetch(url)
    return caught.value


def test_trickling_server_is_cut_off_by_the_total_deadline(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    policy = policy_for(site, total_timeout=2.0, read_timeout=1.0)  # 0.5 s gaps: no read timeout
    with Fetcher(policy, sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/trickle"))
    assert error.outcome is Outcome.TIMEOUT
    assert site.hits["/trickle"] == 1  # a spent deadline is not retried


def test_endless_body_is_cut_at_the_page_limit(site: HostileSite) -> None:
    with Fetcher(policy_for(site, max_page_bytes=200_000)) as fetcher:
        error = _failure(fetcher, site.url("/endless"))
    assert error.outcome is Outcome.TOO_LARGE
    assert "page is larger than 200000 bytes" in error.reason


def test_content_length_above_the_limit_is_refused_before_reading(site: HostileSite) -> None:
    with Fetcher(policy_for(site, max_image_bytes=1_000_000)) as fetcher:
        error = _failure(fetcher, site.url("/huge-length"), image=True)
    assert error.outcome is Outcome.TOO_LARGE
    assert "Content-Length 1000000000000" in error.reason


def test_body_longer_than_its_content_length_is_never_read_past_it(site: HostileSite) -> None:
    with Fetcher(policy_for(site, max_page_bytes=1000)) as fetcher:
        response = fetcher.fetch_page(site.url("/lying-length"))
        # The connection the liar poisoned is not reused for the next request.
        assert fetcher.fetch_page(site.url("/page")).status == 200
    assert response.content == b"b" * 100


def test_gzip_bomb_is_cut_while_decompressing(site: HostileSite) -> None:
    with Fetcher(policy_for(site, max_page_bytes=1_000_000)) as fetcher:
        error = _failure(fetcher, site.url("/gzip-bomb"))
    assert error.outcome is Outcome.TOO_LARGE


def test_gzip_page_is_decoded(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        response = fetcher.fetch_page(site.url("/gzip-page"))
    assert response.content == b"<html>compressed artist page</html>"


def test_image_within_limits_is_returned_with_validators(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        response = fetcher.fetch_image(site.url("/image.png"))
    assert response.content.startswith(b"\x89PNG")
    assert response.content_type == "image/png"
    assert response.etag == '"v1"'
    assert response.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert not response.not_modified


def test_matching_etag_gives_not_modified_without_body(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        response = fetcher.fetch_image(
            site.url("/image.png"), etag='"v1"', last_modified="Wed, 01 Jan 2025 00:00:00 GMT"
        )
    assert response.not_modified
    assert response.status == 304
    assert response.content == b""
    assert response.etag == '"v1"'
    sent = site.headers["/image.png"][0]
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Wed, 01 Jan 2025 00:00:00 GMT"


def test_stale_etag_gets_the_full_image(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        response = fetcher.fetch_image(site.url("/image.png"), etag='"v0"')
    assert not response.not_modified
    assert response.content.startswith(b"\x89PNG")
