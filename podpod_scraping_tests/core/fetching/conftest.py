"""Fixtures of the fetching tests: the secret servers, hostile sites and a fake sleep."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from podpod_scraping_tests.core.fetching.hostile import (
    HostileSite,
    RecordingSleep,
    SecretServers,
    SiteRunner,
    start_secret_servers,
    stop_secret_servers,
)


@pytest.fixture
def secret() -> Iterator[SecretServers]:
    """Loopback listeners standing in for what an SSRF would reach; they count connections."""
    servers = start_secret_servers()
    yield servers
    stop_secret_servers(servers)


@pytest.fixture
def make_site(secret: SecretServers) -> Iterator[Callable[..., HostileSite]]:
    """Factory of hostile sites, stopped at teardown."""
    runner = SiteRunner(secret)
    yield runner.start
    runner.stop_all()


@pytest.fixture
def site(make_site: Callable[..., HostileSite]) -> HostileSite:
    return make_site()


@pytest.fixture
def fake_sleep() -> RecordingSleep:
    return RecordingSleep()
