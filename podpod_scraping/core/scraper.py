"""Find, fetch and validate one artist's image across the configured sources.

This is the old APScheduler loop's body done carefully: every artist ends in exactly one
:class:`~podpod_scraping.core.outcomes.ScrapeResult`, whatever a site does, and a batch is
scraped concurrently without one artist's failure escaping into the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from podpod_scraping.core.fetching import Fetcher, redact_url
from podpod_scraping.core.identity import ArtistContext
from podpod_scraping.core.images import ImagePolicy, decode_image
from podpod_scraping.core.outcomes import (
    Artist,
    Outcome,
    Provenance,
    ScrapedImage,
    ScrapeError,
    ScrapeResult,
    sha256_hex,
)
from podpod_scraping.core.sources import SourceConfig, find_images

logger = logging.getLogger(__name__)

# How far an attempt got: when every source fails, the failure that got furthest is the
# most useful one to report (an invalid image says more than a missing page elsewhere).
_STAGE = {
    Outcome.PAGE_NOT_FOUND: 0,
    Outcome.BLOCKED_BY_ROBOTS: 0,
    Outcome.UNSAFE_URL: 1,
    Outcome.NETWORK_ERROR: 0,
    Outcome.TIMEOUT: 0,
    Outcome.RATE_LIMITED: 0,
    Outcome.FETCH_ERROR: 0,
    Outcome.NO_IMAGE: 1,
    Outcome.TOO_LARGE: 2,
    Outcome.NOT_AN_IMAGE: 2,
    Outcome.INVALID_IMAGE: 2,
    Outcome.TOO_SMALL: 2,
    Outcome.PLACEHOLDER: 2,
}

#: Image candidates tried per page before giving up on that source.
MAX_CANDIDATES_PER_PAGE = 3


@dataclass(frozen=True)
class KnownImage:
    """What we know about an artist's current image, for conditional requests."""

    source_image_url: str
    etag: str | None = None
    last_modified: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ArtistImageScraper:
    """Scrapes artists' images from configured sources through one shared, polite fetcher."""

    def __init__(
        self,
        sources: Sequence[SourceConfig],
        fetcher: Fetcher,
        image_policy: ImagePolicy,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not sources:
            raise ValueError("at least one source is required")
        self._sources = list(sources)
        self._fetcher = fetcher
        self._image_policy = image_policy
        self._clock = clock

    def scrape(
        self,
        artist: Artist,
        known: KnownImage | None = None,
        context: ArtistContext | None = None,
    ) -> ScrapeResult:
        """Try each source in priority order; return the first valid image or the best failure.

        ``context`` carries what the store knows (identities, taken-down URLs, the current
        image); sources that search by identity use it.
        """
        attempted_at = self._clock()
        if not artist.name:
            # An empty name would fill {name} templates with nothing: a site's index or an
            # empty search, whose image is nobody's. No request is made.
            return ScrapeResult(
                artist_id=artist.id,
                outcome=Outcome.INVALID_ARTIST,
                reason="the catalog has no name for this artist (empty or NULL)",
                attempted_at=attempted_at,
            )
        failure: ScrapeResult | None = None
        for source in self._sources:
            try:
                result = self._scrape_source(
                    artist, source, known, attempted_at, context or ArtistContext()
                )
            except ScrapeError as error:
                result = ScrapeResult(
                    artist_id=artist.id,
                    outcome=error.outcome,
                    reason=f"{source.name}: {error.reason}",
                    attempted_at=attempted_at,
                    source_name=source.name,
                )
            except Exception as error:  # a bug or an unforeseen library error
                logger.exception(
                    "unexpected error scraping artist %s from %s", artist.id, source.name
                )
                result = ScrapeResult(
                    artist_id=artist.id,
                    outcome=Outcome.FETCH_ERROR,
                    reason=f"{source.name}: unexpected {type(error).__name__}: {error}",
                    attempted_at=attempted_at,
                    source_name=source.name,
                )
            if result.outcome.is_success:
                return result
            if failure is None or _STAGE.get(result.outcome, 0) > _STAGE.get(failure.outcome, 0):
                failure = result
        assert failure is not None
        return failure

    def _scrape_source(
        self,
        artist: Artist,
        source: SourceConfig,
        known: KnownImage | None,
        attempted_at: datetime,
        context: ArtistContext,
    ) -> ScrapeResult:
        page_url = source.page_url_for(artist)
        page = self._fetcher.fetch_page(page_url)
        found = find_images(page.content, page.url, source)
        # A taken-down image URL is never fetched again for this artist.
        candidates = [url for url in found.urls if url not in context.blocked_image_urls]
        if not candidates:
            reason = f"{source.name}: no image on {redact_url(page.url)}"
            if found.urls:
                reason += " (only images taken down for this artist)"
            if found.ignored_schemes:
                schemes = ", ".join(found.ignored_schemes)
                reason += f" (only {schemes} URLs, which are never fetched)"
            return ScrapeResult(
                artist_id=artist.id,
                outcome=Outcome.NO_IMAGE,
                reason=reason,
                attempted_at=attempted_at,
                source_name=source.name,
                page_url=page.url,
            )
        last_error: ScrapeError | None = None
        for image_url in candidates[:MAX_CANDIDATES_PER_PAGE]:
            try:
                return self._fetch_candidate(
                    artist, source, page.url, image_url, known, attempted_at, context
                )
            except ScrapeError as error:
                last_error = error
        assert last_error is not None
        return ScrapeResult(
            artist_id=artist.id,
            outcome=last_error.outcome,
            reason=f"{source.name}: {last_error.reason}",
            attempted_at=attempted_at,
            source_name=source.name,
            page_url=page.url,
        )

    def _fetch_candidate(
        self,
        artist: Artist,
        source: SourceConfig,
        page_url: str,
        image_url: str,
        known: KnownImage | None,
        attempted_at: datetime,
        context: ArtistContext,
    ) -> ScrapeResult:
        conditional = known is not None and known.source_image_url == image_url
        response = self._fetcher.fetch_image(
            image_url,
            etag=known.etag if conditional and known else None,
            last_modified=known.last_modified if conditional and known else None,
        )
        if response.not_modified:
            return ScrapeResult(
                artist_id=artist.id,
                outcome=Outcome.UNCHANGED,
                reason=f"{source.name}: image unchanged since last fetch (304)",
                attempted_at=attempted_at,
                source_name=source.name,
                page_url=page_url,
            )
        if sha256_hex(response.content) in context.blocked_sha256s:
            raise ScrapeError(
                Outcome.NO_IMAGE, f"{image_url} serves an image taken down for this artist"
            )
        decoded = decode_image(response.content, self._image_policy)
        info = decoded.info
        image = ScrapedImage(
            data=response.content,
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            provenance=Provenance(
                source_name=source.name,
                page_url=page_url,
                image_url=image_url,
                license=source.license,
                attribution=source.attribution,
                etag=response.etag,
                last_modified=response.last_modified,
                resolved_url=response.url,
            ),
            fetched_at=attempted_at,
            decoded=decoded,
        )
        return ScrapeResult(
            artist_id=artist.id,
            outcome=Outcome.FOUND,
            reason=f"{source.name}: {info.width}x{info.height} {info.format}",
            attempted_at=attempted_at,
            image=image,
            source_name=source.name,
            page_url=page_url,
        )
