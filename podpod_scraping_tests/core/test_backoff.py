"""The failure backoff schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from podpod_scraping.core.backoff import BackoffPolicy


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        (0, timedelta(0)),
        (1, timedelta(hours=1)),
        (2, timedelta(hours=6)),
        (3, timedelta(days=1)),
        (4, timedelta(days=7)),
    ],
)
def test_default_schedule_steps(failures: int, expected: timedelta) -> None:
    assert BackoffPolicy().delay(failures) == expected


def test_delay_is_capped_at_the_last_step() -> None:
    assert BackoffPolicy().delay(50) == timedelta(days=7)


def test_custom_steps_are_used_in_order() -> None:
    policy = BackoffPolicy(steps=(timedelta(minutes=5), timedelta(minutes=30)))
    assert [policy.delay(n) for n in (1, 2, 3)] == [
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(minutes=30),
    ]


def test_negative_failure_count_is_refused() -> None:
    with pytest.raises(ValueError, match="consecutive_failures"):
        BackoffPolicy().delay(-1)


def test_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        BackoffPolicy(steps=())
