"""Address and URL rules, checked without any connection or look-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from podpod_scraping.core.fetching import (
    AddressGuard,
    Fetcher,
    FetchError,
    FetchPolicy,
    canonical_host,
    check_address,
    parse_retry_after,
    redact_url,
)
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping_tests.core.fetching.hostile import RecordingSleep, evil_resolver, no_dns


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("169.254.1.1", "link-local"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space"),
        ("100.127.255.254", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "link-local (cloud metadata)"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private (IPv4-mapped)"),
        ("::ffff:127.0.0.1", "loopback (IPv4-mapped)"),
        ("::ffff:169.254.169.254", "link-local (cloud metadata) (IPv4-mapped)"),
        ("2002:7f00:1::", "loopback (embedded in 6to4)"),
        ("2002:a9fe:a9fe::", "link-local (cloud metadata) (embedded in 6to4)"),
        ("64:ff9b::a00:1", "private (embedded in NAT64)"),
        ("2001:db8::1", "private"),
    ],
)
def test_check_address_refuses_non_public_addresses(ip: str, expected: str) -> None:
    assert check_address(ip) == expected


def test_check_address_refuses_teredo_embedding_a_private_address() -> None:
    # Teredo client 10.0.0.1 is stored inverted in the last 32 bits.
    reason = check_address("2001:0:4136:e378:8000:63bf:f5ff:fffe")
    assert reason == "private (embedded in Teredo)"


@pytest.mark.parametrize("ip", ["8.8.8.8", "93.184.216.34", "2001:4860:4860::8888"])
def test_check_address_accepts_public_addresses(ip: str) -> None:
    assert check_address(ip) is None


def test_check_address_refuses_what_is_not_an_ip() -> None:
    assert check_address("metadata.google.internal") == "not an IP address"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("Evil.TEST.", "evil.test"),
        ("[::FFFF:127.0.0.1]", "::ffff:7f00:1"),
        ("example.com", "example.com"),
        ("1e100.net", "1e100.net"),
    ],
)
def test_canonical_host_turns_numeric_forms_into_one_address(host: str, expected: str) -> None:
    assert canonical_host(host) == expected


def _refusal(guard: AddressGuard, host: str, port: int) -> FetchError:
    with pytest.raises(FetchError) as caught:
        guard.resolve(host, port)
    assert caught.value.outcome is Outcome.UNSAFE_URL
    return caught.value


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
def test_numeric_loopback_forms_are_refused_without_lookup(host: str) -> None:
    error = _refusal(AddressGuard(no_dns), host, 80)
    assert "loopback" in error.reason


@pytest.mark.parametrize(
    "host", ["metadata.google.internal", "METADATA.google.internal.", "metadata"]
)
def test_metadata_name_is_refused_before_any_lookup(host: str) -> None:
    error = _refusal(AddressGuard(no_dns), host, 80)  # no_dns fails the test if called
    assert "cloud metadata" in error.reason


def test_metadata_is_refused_even_when_allow_listed() -> None:
    guard = AddressGuard(
        no_dns, {"169.254.169.254:80", "metadata.google.internal:80", "2852039166:80"}
    )
    _refusal(guard, "169.254.169.254", 80)
    _refusal(guard, "metadata.google.internal", 80)
    _refusal(guard, "2852039166", 80)


def test_private_address_reason_names_the_address() -> None:
    error = _refusal(AddressGuard(no_dns), "10.0.0.5", 80)
    assert error.reason == "refused 10.0.0.5: private address"


def test_allow_list_lifts_refusal_only_for_the_exact_host_and_port() -> None:
    guard = AddressGuard(no_dns, {"127.0.0.1:8765"})
    assert guard.resolve("127.0.0.1", 8765) == ["127.0.0.1"]
    _refusal(guard, "127.0.0.1", 8766)
    _refusal(guard, "127.0.0.2", 8765)
    _refusal(guard, "0.0.0.0", 8765)
    _refusal(guard, "::ffff:127.0.0.1", 8765)
    _refusal(guard, "::1", 8765)


def test_allow_list_matches_the_url_host_not_what_a_name_resolves_to() -> None:
    guard = AddressGuard(evil_resolver, {"127.0.0.1:8765"})
    error = _refusal(guard, "evil.test", 8765)
    assert error.reason == "refused evil.test (127.0.0.1): loopback address"


def test_name_with_any_private_answer_is_refused() -> None:
    error = _refusal(AddressGuard(evil_resolver), "mixed.test", 443)
    assert "10.0.0.7" in error.reason


def test_allow_list_rejects_entries_without_a_port() -> None:
    with pytest.raises(ValueError, match="host:port"):
        AddressGuard(no_dns, {"127.0.0.1"})


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/html;base64,PGh0bWw+",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "gopher://127.0.0.1:6379/_INFO",
        "http:///no-host",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_unsafe_urls_are_refused_without_lookup_or_connection(url: str) -> None:
    sleep = RecordingSleep()
    with (
        Fetcher(FetchPolicy(), resolver=no_dns, sleep=sleep) as fetcher,
        pytest.raises(FetchError) as caught,
    ):
        fetcher.fetch_page(url)
    assert caught.value.outcome is Outcome.UNSAFE_URL
    assert sleep.waits == []


def test_non_http_scheme_reason_names_the_scheme() -> None:
    with (
        Fetcher(FetchPolicy(), resolver=no_dns) as fetcher,
        pytest.raises(FetchError, match="only http and https URLs are fetched, not 'file'"),
    ):
        fetcher.fetch_image("file:///etc/passwd")


def test_redact_url_hides_signatures_tokens_and_userinfo() -> None:
    url = (
        "https://user:pa55@storage.example/bucket/a.jpg?X-Goog-Algorithm=GOOG4"
        "&X-Goog-Credential=sa%40proj.iam&X-Goog-Signature=abcdef&width=300"
        "&token=t0k&sig=s1g&key=k3y&access_token=at&X-Amz-Signature=amz#frag"
    )
    shown = redact_url(url)
    for secret in ("user", "pa55", "sa%40proj", "abcdef", "t0k", "s1g", "k3y", "=at", "amz"):
        assert secret not in shown
    assert shown.startswith("https://REDACTED@storage.example/bucket/a.jpg?")
    assert "X-Goog-Signature=REDACTED" in shown
    assert "width=300" in shown


def test_redact_url_leaves_plain_urls_alone() -> None:
    assert redact_url("https://example.com/artists/iu?q=iu") == (
        "https://example.com/artists/iu?q=iu"
    )


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 31 Dec 2024 23:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None
