"""Safe, polite HTTP fetching: SSRF guard, size/time limits, robots.txt, per-host manners.

Everything that leaves this service for the web goes through :class:`Fetcher`.
"""

from podpod_scraping.core.fetching.addresses import (
    AddressGuard,
    Resolver,
    canonical_host,
    check_address,
    default_resolver,
    redact_url,
)
from podpod_scraping.core.fetching.client import (
    Fetcher,
    FetchPolicy,
    FetchResponse,
    parse_retry_after,
)
from podpod_scraping.core.fetching.errors import FetchError
from podpod_scraping.core.fetching.observer import RequestObserver

__all__ = [
    "AddressGuard",
    "FetchError",
    "FetchPolicy",
    "FetchResponse",
    "Fetcher",
    "RequestObserver",
    "Resolver",
    "canonical_host",
    "check_address",
    "default_resolver",
    "parse_retry_after",
    "redact_url",
]
