"""SSRF defences end to end: hostile URLs and redirects never reach the secret server."""

from __future__ import annotations

import logging

import pytest

from podpod_scraping.core.fetching import Fetcher, FetchError, FetchPolicy
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping_tests.core.fetching.hostile import (
    HostileSite,
    SecretServers,
    evil_resolver,
    policy_for,
)


def _refused(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch_page(url)
    assert caught.value.outcome is Outcome.UNSAFE_URL, caught.value.reason
    return caught.value


_HOSTILE_FORMS = [
    ("loopback on a port that is not allow-listed", "http://127.0.0.1:{port}/"),
    ("unspecified address", "http://0.0.0.0:{port}/"),
    ("IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]:{port}/"),
    ("localhost by name", "http://localhost:{port}/"),
    ("decimal loopback", "http://2130706433:{port}/"),
    ("hex loopback", "http://0x7f000001:{port}/"),
    ("short loopback", "http://127.1:{port}/"),
    ("name resolving to loopback", "http://evil.test:{port}/"),
    ("metadata-looking path on loopback", "http://127.0.0.1:{port}/computeMetadata/v1/"),
]


@pytest.mark.parametrize(("case", "template"), _HOSTILE_FORMS, ids=[c for c, _ in _HOSTILE_FORMS])
def test_hostile_loopback_form_never_reaches_the_secret_server(
    site: HostileSite, secret: SecretServers, case: str, template: str
) -> None:
    with Fetcher(policy_for(site), resolver=evil_resolver) as fetcher:
        _refused(fetcher, template.format(port=secret.port))
    assert secret.hits == 0


def test_other_loopback_address_never_reaches_the_secret_server(
    site: HostileSite, secret: SecretServers
) -> None:
    if secret.alt_v4_port is None:
        pytest.skip("127.0.0.2 cannot be bound on this machine")
    with Fetcher(policy_for(site)) as fetcher:
        _refused(fetcher, f"http://127.0.0.2:{secret.alt_v4_port}/")
    assert secret.hits == 0


def test_ipv6_loopback_never_reaches_the_secret_server(
    site: HostileSite, secret: SecretServers
) -> None:
    if secret.v6_port is None:
        pytest.skip("::1 cannot be bound on this machine")
    with Fetcher(policy_for(site)) as fetcher:
        _refused(fetcher, f"http://[::1]:{secret.v6_port}/")
    assert secret.hits == 0


def test_connection_goes_to_the_checked_address_without_a_second_lookup(
    site: HostileSite,
) -> None:
    """The tripwire fails any DNS query for alias.test: only our resolver may answer it."""
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    alias = f"alias.test:{site.port}"
    policy = policy_for(site, allowed_private_hosts=frozenset({alias}))
    with Fetcher(policy, resolver=resolver) as fetcher:
        response = fetcher.fetch_page(f"http://{alias}/page")
    assert response.status == 200
    assert site.headers["/page"][0]["Host"] == alias  # Host keeps the name, not the IP
    assert set(lookups) == {"alias.test"}


def test_default_policy_refuses_the_loopback_fixture_site(site: HostileSite) -> None:
    with Fetcher(FetchPolicy(per_host_min_interval=0.0)) as fetcher:
        error = _refused(fetcher, site.url("/page"))
    assert "loopback" in error.reason
    assert site.total_hits == 0


def test_allow_listed_site_is_fetched_with_the_configured_user_agent(site: HostileSite) -> None:
    policy = policy_for(site, user_agent="podpod-scraping/9.9 (+https://example.invalid/bot)")
    with Fetcher(policy) as fetcher:
        response = fetcher.fetch_page(site.url("/page"))
    assert response.status == 200
    assert b"artist-image" in response.content
    assert response.content_type == "text/html; charset=utf-8"
    sent = site.headers["/page"][0]
    assert sent["User-Agent"] == "podpod-scraping/9.9 (+https://example.invalid/bot)"


def test_redirect_to_non_allow_listed_loopback_is_refused(
    site: HostileSite, secret: SecretServers
) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        error = _refused(fetcher, site.url("/redirect-to-secret"))
    assert "redirect from" in error.reason
    assert site.hits["/redirect-to-secret"] == 1
    assert secret.hits == 0


def test_redirect_to_metadata_server_is_refused(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        error = _refused(fetcher, site.url("/redirect-to-metadata"))
    assert "cloud metadata" in error.reason


def test_redirect_to_name_resolving_to_loopback_is_refused(
    site: HostileSite, secret: SecretServers
) -> None:
    with Fetcher(policy_for(site), resolver=evil_resolver) as fetcher:
        error = _refused(fetcher, site.url("/redirect-to-evil-name"))
    assert "evil.test (127.0.0.1): loopback" in error.reason
    assert secret.hits == 0


def test_name_resolving_to_the_allow_listed_address_is_still_refused(
    site: HostileSite,
) -> None:
    """The allow-list names the URL host; a rebinding name does not inherit it."""
    with Fetcher(policy_for(site), resolver=evil_resolver) as fetcher:
        _refused(fetcher, f"http://evil.test:{site.port}/page")
    assert site.total_hits == 0


def test_redirect_to_file_url_is_refused(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        error = _refused(fetcher, site.url("/redirect-to-file"))
    assert "not 'file'" in error.reason


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo="])
def test_file_and_data_image_urls_are_refused(site: HostileSite, url: str) -> None:
    with Fetcher(policy_for(site)) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch_image(url)
    assert caught.value.outcome is Outcome.UNSAFE_URL


def test_redirect_loop_ends_as_too_many_redirects(site: HostileSite) -> None:
    with (
        Fetcher(policy_for(site, max_redirects=5)) as fetcher,
        pytest.raises(FetchError) as caught,
    ):
        fetcher.fetch_page(site.url("/loop-a"))
    assert caught.value.outcome is Outcome.FETCH_ERROR
    assert "too many redirects" in caught.value.reason
    assert site.hits["/loop-a"] + site.hits["/loop-b"] == 6


def test_redirects_within_the_site_are_followed(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        response = fetcher.fetch_page(site.url("/redirect-to-page"))
    assert response.url == site.url("/page")
    assert site.hits["/page"] == 1


def test_credentials_and_signatures_never_appear_in_reasons_or_logs(
    site: HostileSite, secret: SecretServers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Fetcher(policy_for(site)) as fetcher:
        error = _refused(fetcher, site.url("/redirect-with-credentials"))
        with pytest.raises(FetchError) as caught:
            fetcher.fetch_image(
                site.url("/missing-image.png?X-Goog-Signature=SIGSECRET&token=TOKSECRET")
            )
    assert secret.hits == 0
    assert caught.value.reason.startswith("image URL answered 404")
    assert "X-Goog-Signature=REDACTED" in caught.value.reason
    for text in (error.reason, caught.value.reason, str(caught.value), caplog.text):
        for leaked in ("hunter2", "admin:", "SIGSECRET", "TOKSECRET"):
            assert leaked not in text
    assert "missing-image.png" in caplog.text  # httpx's request log is kept, redacted
