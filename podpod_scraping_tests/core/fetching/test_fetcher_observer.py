"""The fetcher tells its observer about every HTTP attempt: retries, robots.txt, failures."""

from __future__ import annotations

import socket
import threading

import pytest

from podpod_scraping.core.fetching import Fetcher, FetchError
from podpod_scraping_tests.core.fetching.hostile import HostileSite, RecordingSleep, policy_for

_PAGE = b"<html><body><img class='artist-image' src='/image.png'></body></html>"


class Recorder:
    """A thread-safe list of what the fetcher reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, int]] = []
        self.seconds: list[float] = []
        self._lock = threading.Lock()

    def observe_request(
        self, host: str, status: int | None, seconds: float, body_bytes: int
    ) -> None:
        with self._lock:
            self.calls.append((host, status, body_bytes))
            self.seconds.append(seconds)


def test_observer_sees_robots_txt_and_the_page_with_its_body_size(site: HostileSite) -> None:
    recorder = Recorder()
    with Fetcher(policy_for(site), observer=recorder) as fetcher:
        fetcher.fetch_page(site.url("/page"))
    robots = len(site.robots.encode())
    assert recorder.calls == [(site.host_port, 200, robots), (site.host_port, 200, len(_PAGE))]
    assert all(seconds >= 0 for seconds in recorder.seconds)


def test_observer_sees_every_retry_of_a_503(site: HostileSite, fake_sleep: RecordingSleep) -> None:
    recorder = Recorder()
    with Fetcher(policy_for(site), observer=recorder, sleep=fake_sleep) as fetcher:
        fetcher.fetch_page(site.url("/unavailable-once"))
    statuses = [status for _, status, _ in recorder.calls[1:]]  # after robots.txt
    assert statuses == [503, 200]


def test_observer_sees_an_attempt_without_answer_as_no_status(site: HostileSite) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens once the probe is closed
    host_port = f"127.0.0.1:{closed_port}"
    recorder = Recorder()
    policy = policy_for(site, allowed_private_hosts=frozenset({host_port}), max_attempts=1)
    with Fetcher(policy, observer=recorder) as fetcher, pytest.raises(FetchError):
        fetcher.fetch_page(f"http://{host_port}/page")
    assert recorder.calls
    assert all(call == (host_port, None, 0) for call in recorder.calls)
