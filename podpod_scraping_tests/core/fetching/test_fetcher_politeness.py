"""robots.txt, retries, Retry-After and per-host limits."""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from podpod_scraping.core.fetching import Fetcher, FetchError, FetchPolicy
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.demo.server import FixtureServer
from podpod_scraping_tests.core.fetching.hostile import HostileSite, RecordingSleep, policy_for

SiteFactory = Callable[..., HostileSite]


def _failure(fetcher: Fetcher, url: str, *, image: bool = False) -> FetchError:
    fetch = fetcher.fetch_image if image else fetcher.fetch_page
    with pytest.raises(FetchError) as caught:
        fetch(url)
    return caught.value


# -- robots.txt ----------------------------------------------------------------------


def test_robots_disallowed_path_is_never_requested(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        error = _failure(fetcher, site.url("/private/secret"))
    assert error.outcome is Outcome.BLOCKED_BY_ROBOTS
    assert site.hits["/private/secret"] == 0


def test_robots_group_for_our_user_agent_token_is_obeyed(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        error = _failure(fetcher, site.url("/not-for-podpod"))
    assert error.outcome is Outcome.BLOCKED_BY_ROBOTS
    assert site.hits["/not-for-podpod"] == 0


def test_robots_is_fetched_once_per_host(site: HostileSite) -> None:
    with Fetcher(policy_for(site)) as fetcher:
        fetcher.fetch_page(site.url("/page"))
        fetcher.fetch_image(site.url("/image.png"))
        _failure(fetcher, site.url("/private/secret"))
    assert site.hits["/robots.txt"] == 1


def test_robots_can_be_switched_off(site: HostileSite) -> None:
    with Fetcher(policy_for(site, obey_robots=False)) as fetcher:
        fetcher.fetch_page(site.url("/private/secret"))
    assert site.hits["/robots.txt"] == 0


def test_missing_robots_allows_everything(make_site: SiteFactory) -> None:
    site = make_site(robots_status=404)
    with Fetcher(policy_for(site)) as fetcher:
        assert fetcher.fetch_page(site.url("/private/secret")).status == 200


def test_unavailable_robots_blocks_this_attempt_without_touching_the_page(
    make_site: SiteFactory, fake_sleep: RecordingSleep
) -> None:
    site = make_site(robots_status=503)
    with Fetcher(policy_for(site, max_attempts=2), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/page"))
    assert error.outcome is Outcome.FETCH_ERROR
    assert error.outcome.is_transient
    assert "robots.txt" in error.reason
    assert site.hits["/page"] == 0
    assert site.hits["/robots.txt"] == 2


def test_crawl_delay_spaces_requests_to_the_host(
    make_site: SiteFactory, fake_sleep: RecordingSleep
) -> None:
    site = make_site(robots="User-agent: podpod-scraping\nCrawl-delay: 3\n")
    with Fetcher(policy_for(site), sleep=fake_sleep) as fetcher:
        fetcher.fetch_page(site.url("/page"))
        fetcher.fetch_page(site.url("/page"))
    assert len(fake_sleep.waits) == 1
    assert 2.5 < fake_sleep.waits[0] <= 3.0


def test_min_interval_spaces_requests_to_the_host(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    policy = policy_for(site, per_host_min_interval=1.0, obey_robots=False)
    with Fetcher(policy, sleep=fake_sleep) as fetcher:
        fetcher.fetch_page(site.url("/page"))
        fetcher.fetch_page(site.url("/page"))
    assert len(fake_sleep.waits) == 1
    assert 0.5 < fake_sleep.waits[0] <= 1.0


def test_per_host_concurrency_is_capped(site: HostileSite) -> None:
    policy = policy_for(site, per_host_concurrency=2, obey_robots=False)
    with Fetcher(policy) as fetcher, ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: fetcher.fetch_page(site.url("/slow")), range(6)))
    assert all(response.status == 200 for response in responses)
    assert site.hits["/slow"] == 6
    assert site.max_inflight == 2


# -- retries -------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured_before_retrying(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    with Fetcher(policy_for(site), sleep=fake_sleep) as fetcher:
        response = fetcher.fetch_page(site.url("/rate-limited-once"))
    assert response.status == 200
    assert fake_sleep.waits == [2.0]
    assert site.hits["/rate-limited-once"] == 2


def test_retry_after_is_capped_by_max_retry_after(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    with Fetcher(policy_for(site, max_retry_after=5.0), sleep=fake_sleep) as fetcher:
        fetcher.fetch_page(site.url("/retry-after-huge"))
    assert fake_sleep.waits == [5.0]


def test_retry_after_beyond_the_deadline_gives_up_at_once(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    policy = policy_for(site, max_retry_after=2000.0, total_timeout=10.0)
    with Fetcher(policy, sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/retry-after-huge"))
    assert error.outcome is Outcome.RATE_LIMITED
    assert error.status == 429
    assert fake_sleep.waits == []
    assert site.hits["/retry-after-huge"] == 1


def test_persistent_429_ends_as_rate_limited(site: HostileSite, fake_sleep: RecordingSleep) -> None:
    with Fetcher(policy_for(site, max_attempts=3), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/always-429"))
    assert error.outcome is Outcome.RATE_LIMITED
    assert site.hits["/always-429"] == 3
    assert fake_sleep.waits == [1.0, 1.0]


def test_503_then_200_succeeds_after_one_retry(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    with Fetcher(policy_for(site, backoff_base=0.5), sleep=fake_sleep) as fetcher:
        response = fetcher.fetch_page(site.url("/unavailable-once"))
    assert response.status == 200
    assert site.hits["/unavailable-once"] == 2
    assert len(fake_sleep.waits) == 1
    assert 0.0 <= fake_sleep.waits[0] <= 0.5  # full jitter within the first backoff step


def test_persistent_5xx_ends_as_fetch_error(site: HostileSite, fake_sleep: RecordingSleep) -> None:
    with Fetcher(policy_for(site, max_attempts=3), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/always-503"))
    assert error.outcome is Outcome.FETCH_ERROR
    assert error.status == 503
    assert site.hits["/always-503"] == 3
    assert len(fake_sleep.waits) == 2


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/gone", 410)])
def test_missing_page_is_not_retried(
    site: HostileSite, fake_sleep: RecordingSleep, path: str, status: int
) -> None:
    with Fetcher(policy_for(site), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url(path))
    assert error.outcome is Outcome.PAGE_NOT_FOUND
    assert error.status == status
    assert site.hits[path] == 1
    assert fake_sleep.waits == []


def test_missing_image_is_no_image_on_page_not_retried(
    site: HostileSite, fake_sleep: RecordingSleep
) -> None:
    with Fetcher(policy_for(site), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/missing-image.png"), image=True)
    assert error.outcome is Outcome.NO_IMAGE
    assert not error.outcome.is_transient
    assert error.reason.startswith("image URL answered 404")
    assert site.hits["/missing-image.png"] == 1
    assert fake_sleep.waits == []


def test_other_4xx_is_permanent(site: HostileSite, fake_sleep: RecordingSleep) -> None:
    with Fetcher(policy_for(site), sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, site.url("/forbidden"))
    assert error.outcome is Outcome.FETCH_ERROR
    assert error.status == 403
    assert site.hits["/forbidden"] == 1


def test_too_large_is_not_retried(site: HostileSite, fake_sleep: RecordingSleep) -> None:
    with Fetcher(policy_for(site, max_image_bytes=1000), sleep=fake_sleep) as fetcher:
        _failure(fetcher, site.url("/huge-length"), image=True)
    assert site.hits["/huge-length"] == 1
    assert fake_sleep.waits == []


def test_refused_connection_is_retried_then_a_network_error(
    fake_sleep: RecordingSleep, site: HostileSite
) -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    policy = policy_for(
        site,
        allowed_private_hosts=frozenset({f"127.0.0.1:{closed_port}"}),
        max_attempts=3,
        obey_robots=False,
    )
    with Fetcher(policy, sleep=fake_sleep) as fetcher:
        error = _failure(fetcher, f"http://127.0.0.1:{closed_port}/page")
    assert error.outcome is Outcome.NETWORK_ERROR
    assert "3 attempts" in error.reason
    assert len(fake_sleep.waits) == 2


def test_connections_open_to_a_host_never_outnumber_its_slots() -> None:
    """More threads than slots, keep-alive on: at most per_host_concurrency TCP connections
    are ever open to the host (a site limiting connections per client never sees more)."""
    with FixtureServer(port=0) as server:
        server.add_route("/page", body=b"<html>ok</html>", headers={"Content-Type": "text/html"})
        policy = FetchPolicy(
            allowed_private_hosts=frozenset({f"127.0.0.1:{server.port}"}),
            per_host_concurrency=3,
            per_host_min_interval=0.0,
            obey_robots=False,
        )
        with Fetcher(policy) as fetcher, ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(
                pool.map(lambda _: fetcher.fetch_page(f"{server.base_url}/page"), range(60))
            )

        assert all(response.status == 200 for response in responses)
        assert server.hits["/page"] == 60
        assert 1 <= server.max_open_connections <= 3
