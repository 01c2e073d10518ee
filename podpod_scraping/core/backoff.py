"""How long to leave a failing artist alone before trying again.

Pure and deterministic so that the catalog (which stores ``next_attempt_at``) and the
tests agree on the schedule without a clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class BackoffPolicy:
    """A capped step schedule: the n-th consecutive failure waits ``steps[n-1]``.

    Steps rather than an exponential formula: operators read and tune them directly
    (a site that is down for an hour should not wait a week, a missing page should).
    Failures beyond the last step keep waiting the last step.
    """

    steps: tuple[timedelta, ...] = (
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(days=1),
        timedelta(days=7),
    )

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a backoff policy needs at least one step")
        if any(step < timedelta(0) for step in self.steps):
            raise ValueError("backoff steps must not be negative")

    def delay(self, consecutive_failures: int) -> timedelta:
        """The wait after ``consecutive_failures`` failures in a row (0 → no wait)."""
        if consecutive_failures < 0:
            raise ValueError(f"consecutive_failures must be >= 0, got {consecutive_failures}")
        if consecutive_failures == 0:
            return timedelta(0)
        return self.steps[min(consecutive_failures, len(self.steps)) - 1]
