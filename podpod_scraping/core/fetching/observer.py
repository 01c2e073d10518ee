"""The fetcher's one telemetry hook: told about every HTTP attempt, knows nothing else."""

from __future__ import annotations

from typing import Protocol


class RequestObserver(Protocol):
    """Told about every HTTP attempt the fetcher makes (retries and robots.txt included).

    Called from many fetch threads at once: implementations must be thread-safe and quick.
    """

    def observe_request(
        self, host: str, status: int | None, seconds: float, body_bytes: int
    ) -> None:
        """``host`` is ``host:port``; ``status`` is None when no answer came (timeout,
        network error); ``body_bytes`` is what was read of the (decoded) body."""
        ...
