"""The one exception the fetching layer raises."""

from __future__ import annotations

from podpod_scraping.core.outcomes import Outcome, ScrapeError


class FetchError(ScrapeError):
    """A fetch that ended without a usable response.

    ``outcome`` says what kind of failure it was (the scraper records it as the artist's
    outcome); ``reason`` is human-readable and never contains credentials or signatures;
    ``status`` is the HTTP status when a server answered.
    """

    def __init__(self, outcome: Outcome, reason: str, *, status: int | None = None) -> None:
        super().__init__(outcome, reason)
        self.status = status
