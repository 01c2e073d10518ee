"""Test-wide guard rails and the shared fixtures of the real services.

The network tripwire fails any attempt, from test code or the code under test in this
process, to open a socket to an address outside 127.0.0.0/8 and ::1, or to resolve a
name through DNS. Hostile cases therefore can never reach a real host, even through a
broken guard.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = [
    "podpod_scraping_tests.fixtures.postgres",
    "podpod_scraping_tests.fixtures.gcs",
    "podpod_scraping_tests.fixtures.web",
    "podpod_scraping_tests.fixtures.dagster",
    "podpod_scraping_tests.fixtures.pushgateway",
    "podpod_scraping_tests.fixtures.webhook",
]

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkTripwireError(AssertionError):
    """Raised when a test tries to reach something that is not loopback."""


def _is_loopback_literal(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if not _is_loopback_literal(host):
            raise NetworkTripwireError(f"test tried to connect to non-loopback {address!r}")
    # AF_UNIX paths (str/bytes) are local by definition.


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is None:
        return _real_getaddrinfo(host, *args, **kwargs)
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower() not in _LOCAL_NAMES:
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            raise NetworkTripwireError(f"test tried a DNS look-up of {name!r}") from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def network_tripwire() -> Iterator[None]:
    """Refuse every non-loopback connection and every DNS query for the whole session."""
    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", _guarded_connect)
    mp.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    mp.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
    mp.undo()
