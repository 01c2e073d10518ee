"""Turn a scrape result into what gets published: a normalized image or a recorded failure."""

from __future__ import annotations

from dataclasses import dataclass

from podpod_scraping.core.images import ImagePolicy, NormalizedImage, normalize_image
from podpod_scraping.core.naming import image_object_name
from podpod_scraping.core.outcomes import Outcome, Provenance, ScrapeError, ScrapeResult


@dataclass(frozen=True)
class Publication:
    """One artist's publishable result: exactly one of ``image`` or a failure outcome."""

    result: ScrapeResult
    outcome: Outcome
    reason: str
    image: NormalizedImage | None = None

    @property
    def artist_id(self) -> str:
        return self.result.artist_id

    @property
    def provenance(self) -> Provenance | None:
        return self.result.image.provenance if self.result.image else None

    @property
    def object_name(self) -> str | None:
        """Content-addressed name: the same image always lands on the same object."""
        if self.image is None:
            return None
        return image_object_name(self.artist_id, self.image.sha256, self.image.extension)


def prepare_publication(result: ScrapeResult, policy: ImagePolicy) -> Publication:
    """Normalize a found image; anything else (or a normalization refusal) is a failure."""
    if result.image is None:
        return Publication(result=result, outcome=result.outcome, reason=result.reason)
    try:
        normalized = normalize_image(result.image.data, policy)
    except ScrapeError as error:
        return Publication(result=result, outcome=error.outcome, reason=error.reason)
    return Publication(
        result=result,
        outcome=Outcome.FOUND,
        reason=result.reason,
        image=normalized,
    )
