"""Alert text never leaks URL secrets; coverage compares reports; posting never raises."""

from __future__ import annotations

import time

from podpod_scraping.core.alerts import (
    CoverageSnapshot,
    coverage_problems,
    first_line,
    post_webhook,
    redact_urls,
)
from podpod_scraping_tests.fixtures.webhook import WebhookReceiver


def test_redact_urls_removes_userinfo_query_and_fragment_but_keeps_host_and_path() -> None:
    text = (
        "connect failed: postgresql+psycopg2://scraper:hunter2@db.internal:5432/podpod"
        "?sslpassword=x and https://storage.example/o/a.jpg?X-Goog-Signature=abc#frag"
    )

    redacted = redact_urls(text)

    assert "hunter2" not in redacted
    assert "scraper" not in redacted
    assert "abc" not in redacted
    assert "postgresql+psycopg2://[redacted]@db.internal:5432/podpod?[redacted]" in redacted
    assert "https://storage.example/o/a.jpg?[redacted]#[redacted]" in redacted


def test_redact_urls_leaves_a_plain_url_unchanged() -> None:
    assert redact_urls("see http://127.0.0.1:3000/runs/abc") == "see http://127.0.0.1:3000/runs/abc"


def test_first_line_is_the_first_non_blank_line_redacted() -> None:
    assert first_line("\n  ValueError: https://u:p@h/x\ntraceback...") == (
        "ValueError: https://[redacted]@h/x"
    )


def test_a_drop_of_more_than_the_threshold_is_a_problem() -> None:
    before = CoverageSnapshot(artists=100, with_image=90)
    after = CoverageSnapshot(artists=100, with_image=80)

    problems = coverage_problems(before, after, drop_points=5, spike_points=5)

    assert problems == [
        "artists with an image: 90.0% -> 80.0% (80/100), down 10.0 points",
    ]


def test_coverage_that_stays_low_is_no_new_problem() -> None:
    low = CoverageSnapshot(artists=100, with_image=50, failures={"timeout": 40})

    assert coverage_problems(low, low, drop_points=5, spike_points=5) == []


def test_a_drop_within_the_threshold_is_no_problem() -> None:
    before = CoverageSnapshot(artists=100, with_image=90)
    after = CoverageSnapshot(artists=100, with_image=86)

    assert coverage_problems(before, after, drop_points=5, spike_points=5) == []


def test_a_spike_of_one_failure_outcome_is_a_problem() -> None:
    before = CoverageSnapshot(artists=200, with_image=150, failures={"timeout": 2})
    after = CoverageSnapshot(artists=200, with_image=150, failures={"timeout": 40})

    problems = coverage_problems(before, after, drop_points=5, spike_points=5)

    assert problems == ["failed with timeout: 2 -> 40 artists, up 19.0 points"]


def test_post_webhook_sends_slack_json_and_reports_delivery(webhook: WebhookReceiver) -> None:
    assert post_webhook(webhook.url, "hello", timeout=5) is True

    assert webhook.posts == [("/services/T000/B000/secret-token", {"text": "hello"})]


def test_post_webhook_to_a_receiver_that_is_down_returns_false(down_webhook_url: str) -> None:
    assert post_webhook(down_webhook_url, "hello", timeout=2) is False


def test_post_webhook_gives_up_on_a_slow_receiver_after_the_timeout(
    slow_webhook: WebhookReceiver,
) -> None:
    started = time.monotonic()

    delivered = post_webhook(slow_webhook.url, "hello", timeout=1)

    assert delivered is False
    assert time.monotonic() - started < 10
