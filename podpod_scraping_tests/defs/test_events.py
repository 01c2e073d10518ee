"""Partition metadata of issue 9: identity evidence, ambiguous candidates, the credit line."""

from __future__ import annotations

from podpod_scraping.core.identity import Identity, IdentityCandidate, IdentityMethod
from podpod_scraping.core.outcomes import Outcome, Provenance
from podpod_scraping.core.refresh import ArtistReport, ArtistStatus
from podpod_scraping.defs.events import image_metadata


def _report(**fields: object) -> ArtistReport:
    return ArtistReport(
        artist_id="7",
        status=ArtistStatus.FAILED,
        artist_name="Nirvana",
        outcome=Outcome.AMBIGUOUS_IDENTITY,
        reason="two",
        **fields,  # type: ignore[arg-type]
    )


def test_an_ambiguous_outcome_lists_each_candidate_to_pin() -> None:
    report = _report(
        candidates=(
            IdentityCandidate("musicbrainz", "mb-1", "Nirvana", "US rock band", 100),
            IdentityCandidate("musicbrainz", "mb-2", "Nirvana", "1960s UK band", 100),
        )
    )

    text = image_metadata(report)["candidates"].value

    assert "identity pin 7" in text
    assert "| musicbrainz | `mb-1` | Nirvana | US rock band |" in text
    assert "`mb-2`" in text


def test_resolved_identities_show_their_evidence() -> None:
    identity = Identity(
        "musicbrainz", "mb-1", IdentityMethod.MATCHED, "IU", 100.0, "singer", {"query": "IU"}
    )

    (shown,) = image_metadata(_report(identities=(identity,)))["identities"].value

    assert shown == {
        "namespace": "musicbrainz",
        "id": "mb-1",
        "method": "matched",
        "matched_name": "IU",
        "score": 100.0,
        "disambiguation": "singer",
        "evidence": {"query": "IU"},
    }


def test_a_found_image_shows_its_credit_line_and_licence_url() -> None:
    provenance = Provenance(
        source_name="wikimedia-commons",
        page_url="https://commons.wikimedia.org/wiki/File:X.jpg",
        image_url="https://upload.example/X.jpg",
        license="CC BY-SA 4.0",
        attribution="Jane Doe",
        license_url="https://creativecommons.org/licenses/by-sa/4.0",
        identity_namespace="wikidata",
        identity_id="Q1",
    )

    metadata = image_metadata(_report(provenance=provenance))

    assert metadata["credit"] == "Photo: Jane Doe, CC BY-SA 4.0, via Wikimedia Commons"
    assert metadata["found_through"] == "wikidata:Q1"
