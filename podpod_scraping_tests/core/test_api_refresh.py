"""A batch through ``core.refresh.refresh_artists`` with the real scraper over the recorded APIs.

It measures what issue 9 asks: API requests per artist on a first run (identities
resolved) and on a refresh (identities stored): Wikidata and Commons are batched.
"""

from __future__ import annotations

from benchmarks.identity_requests import measure


def test_a_refresh_with_stored_identities_costs_a_fraction_of_a_request_per_artist() -> None:
    first, refresh = measure(120, concurrency=32)

    assert first.outcomes == {"found": 120}
    assert refresh.outcomes == {"found": 120}
    # First run: one MusicBrainz search per artist; Wikidata and Commons batched.
    assert first.per_artist < 1.5
    # Refresh: no MusicBrainz, no Deezer; only batched Wikidata + Commons lookups.
    assert refresh.per_artist < 0.35
