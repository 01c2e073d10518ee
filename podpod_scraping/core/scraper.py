"""Find, rank, fetch and validate one artist's image across the configured sources.

This is the old APScheduler loop's body done carefully: every artist ends in exactly one
:class:`~podpod_scraping.core.outcomes.ScrapeResult`, whatever a source does, and a batch
is scraped concurrently without one artist's failure escaping into the others.

Identity first: API sources find the artist by its identities (the context's pinned,
catalog or recently matched ones, else a strict name match, see ``core.apis``); then every
candidate image of every source that answered is ranked (``core.ranking``), the best few
are fetched, and the best valid one wins, unless the current image is better (a refresh
never replaces it with a worse one) or a person forces it. A strict match that finds
several equally good artists vetoes every image found through a *matched* identity or a
name (never a guess): only pinned and catalog identities still give an image then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urldefrag, urljoin

from bs4 import BeautifulSoup

from podpod_scraping.core.apis import (
    DeezerClient,
    DeezerSource,
    IdentityError,
    IdentitySession,
    MusicBrainzClient,
    MusicBrainzSource,
    WikidataCommonsClient,
    WikidataCommonsSource,
)
from podpod_scraping.core.fetching import Fetcher, FetchError, redact_url
from podpod_scraping.core.identity import (
    DEEZER,
    MUSICBRAINZ,
    WIKIDATA,
    ArtistContext,
    Identity,
    IdentityCandidate,
    IdentityMethod,
    site_namespace,
)
from podpod_scraping.core.images import ImagePolicy, decode_image
from podpod_scraping.core.matching import matched_name
from podpod_scraping.core.outcomes import (
    Artist,
    Outcome,
    Provenance,
    ScrapedImage,
    ScrapeError,
    ScrapeResult,
    sha256_hex,
)
from podpod_scraping.core.ranking import (
    ImageCandidate,
    RankingPolicy,
    RankKey,
    candidate_key,
    current_key,
    rank,
    size_text,
)
from podpod_scraping.core.sources import AnySource, SourceConfig, find_image_candidates

logger = logging.getLogger(__name__)

# How far an attempt got: when every source fails, the failure that got furthest is the
# most useful one to report (an invalid image says more than a missing page elsewhere;
# an ambiguous name says most: a person can pin the right artist).
_STAGE = {
    Outcome.PAGE_NOT_FOUND: 0,
    Outcome.BLOCKED_BY_ROBOTS: 0,
    Outcome.UNSAFE_URL: 1,
    # A source that failed for a while (throttled, down, a bad answer) says more than another
    # source's "no such page": a retry may find the image, and the outcome must say so.
    Outcome.NETWORK_ERROR: 1,
    Outcome.TIMEOUT: 1,
    Outcome.RATE_LIMITED: 1,
    Outcome.FETCH_ERROR: 1,
    Outcome.NO_IDENTITY: -1,  # "no source knows this name": only when nothing said more
    Outcome.NO_IMAGE: 1,
    Outcome.TOO_LARGE: 2,
    Outcome.NOT_AN_IMAGE: 2,
    Outcome.INVALID_IMAGE: 2,
    Outcome.TOO_SMALL: 2,
    Outcome.PLACEHOLDER: 2,
    Outcome.NOT_FREE: 3,
    Outcome.AMBIGUOUS_IDENTITY: 4,
}


@dataclass(frozen=True)
class KnownImage:
    """What we know about an artist's current image, for conditional requests."""

    source_image_url: str
    etag: str | None = None
    last_modified: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _SourceFailure(ScrapeError):
    """A source's failure that knows the page it concerns."""

    def __init__(self, outcome: Outcome, reason: str, page_url: str | None) -> None:
        super().__init__(outcome, reason)
        self.page_url = page_url


class _SiteAdapter:
    """A configured page: its URL from the name (or a ``site:`` identity), every image on it."""

    def __init__(self, source: SourceConfig, fetcher: Fetcher) -> None:
        self.source = source
        self._fetcher = fetcher

    def candidates(self, session: IdentitySession, priority: int) -> list[ImageCandidate]:
        source = self.source
        namespace = site_namespace(source.name)
        identity: Identity | None
        if source.search is not None:
            identity = session.get(namespace)  # stored and fresh, or found by the search
        else:
            identity = session.context.identities.get(namespace)
        page_url = identity.external_id if identity else source.page_url_for(session.artist)
        page = self._fetcher.fetch_page(page_url)
        images, ignored = find_image_candidates(page.content, page.url, source)
        if not images:
            reason = f"no image on {redact_url(page.url)}"
            if ignored:
                reason += f" (only {', '.join(ignored)} URLs, which are never fetched)"
            raise _SourceFailure(Outcome.NO_IMAGE, reason, page.url)
        return [
            ImageCandidate(
                source_name=source.name,
                priority=priority,
                image_url=image.url,
                page_url=page.url,
                width=image.width,
                height=image.height,
                free=True if source.license else None,
                license=source.license,
                attribution=source.attribution,
                identity=identity,
                order=order,
            )
            for order, image in enumerate(images)
        ]

    def resolve(self, session: IdentitySession) -> Identity:
        """The artist's page by the site's search: one strictly matching result, or none."""
        source, artist = self.source, session.artist
        search = source.search
        assert search is not None
        url = source.entry_url_for(artist)
        page = self._fetcher.fetch_page(url)
        soup = BeautifulSoup(page.content, "html.parser")
        hits: dict[str, str] = {}  # page URL -> the name it was listed under
        for result in soup.select(search.result):
            link = result if result.has_attr("href") else result.select_one(search.result_link)
            if link is None or not str(link.get("href") or "").strip():
                continue
            named = result.select_one(search.result_name) if search.result_name else link
            listed = " ".join((named.get_text(" ") if named else "").split())
            if matched_name(artist, [listed]) is None:
                continue
            target, _ = urldefrag(urljoin(page.url, str(link.get("href")).strip()))
            hits.setdefault(target, listed)
        namespace = site_namespace(source.name)
        if not hits:
            raise IdentityError(
                Outcome.NO_IDENTITY,
                f"{source.name}: no search result named {artist.name!r} on {redact_url(page.url)}",
            )
        if len(hits) > 1:
            raise IdentityError(
                Outcome.AMBIGUOUS_IDENTITY,
                f"{source.name}: {len(hits)} search results named {artist.name!r}: pin one "
                f"(podpod-scraping identity pin {artist.id} {namespace} <page URL>)",
                tuple(IdentityCandidate(namespace, target, name) for target, name in hits.items()),
            )
        ((target, listed),) = hits.items()
        ours = matched_name(artist, [listed]) or artist.name
        return session.matched(
            namespace, target, ours, evidence={"search": page.url, "listed_as": listed}
        )


class _ApiAdapter:
    """An API source's candidates (resolving the identities it needs through the session)."""

    def __init__(
        self,
        name: str,
        candidates: Callable[[IdentitySession, int], list[ImageCandidate]],
        user_agent: str | None,
    ) -> None:
        self.name = name
        self._candidates = candidates
        self.user_agent = user_agent

    def candidates(self, session: IdentitySession, priority: int) -> list[ImageCandidate]:
        return self._candidates(session, priority)


def _no_images(session: IdentitySession, priority: int) -> list[ImageCandidate]:
    """MusicBrainz names identities (its failures are the artist's); images come via Wikidata."""
    session.get(MUSICBRAINZ)
    return []


@dataclass
class _Attempt:
    """What one artist's attempt gathered across sources."""

    offers: list[ImageCandidate] = field(default_factory=list)
    failures: list[ScrapeResult] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    ambiguous: IdentityError | None = None
    tried: dict[str, ScrapeResult] = field(default_factory=dict)  # image URL -> its failure
    current_gone: bool = False  # the current image's URL answered 404/410
    blocked: frozenset[str] = frozenset()  # taken-down image URLs


class ArtistImageScraper:
    """Scrapes artists' images from configured sources through one shared, polite fetcher."""

    def __init__(
        self,
        sources: Sequence[AnySource],
        fetcher: Fetcher,
        image_policy: ImagePolicy,
        *,
        ranking: RankingPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not sources:
            raise ValueError("at least one source is required")
        self._sources = list(sources)
        self._fetcher = fetcher
        self._image_policy = image_policy
        self._ranking = ranking or RankingPolicy()
        self._clock = clock
        self._adapters: list[_SiteAdapter | _ApiAdapter] = []
        self._resolvers: dict[str, Callable[[IdentitySession], Identity]] = {}
        self.wikidata: list[WikidataCommonsClient] = []
        for source in self._sources:
            self._adapters.append(self._adapter(source))

    def _adapter(self, source: AnySource) -> _SiteAdapter | _ApiAdapter:
        if isinstance(source, SourceConfig):
            site = _SiteAdapter(source, self._fetcher)
            if source.search is not None:
                self._resolvers[site_namespace(source.name)] = site.resolve
            return site
        for url in _hosts(source):
            self._fetcher.configure_host(
                url, concurrency=source.concurrency, min_interval=source.min_interval
            )
        if isinstance(source, MusicBrainzSource):
            client = MusicBrainzClient(source, self._fetcher)
            self._resolvers.setdefault(MUSICBRAINZ, client.resolve)
            return _ApiAdapter(source.name, _no_images, source.user_agent)
        if isinstance(source, WikidataCommonsSource):
            wikidata = WikidataCommonsClient(source, self._fetcher)
            self.wikidata.append(wikidata)
            self._resolvers.setdefault(WIKIDATA, wikidata.resolve)
            return _ApiAdapter(source.name, wikidata.candidates, source.user_agent)
        deezer = DeezerClient(source, self._fetcher)
        self._resolvers.setdefault(DEEZER, deezer.resolve)
        return _ApiAdapter(source.name, deezer.candidates, source.user_agent)

    def scrape(
        self,
        artist: Artist,
        known: KnownImage | None = None,
        context: ArtistContext | None = None,
    ) -> ScrapeResult:
        """Gather every source's candidates, rank them, fetch the best; or the best failure.

        ``context`` carries what the store knows (identities, taken-down URLs, the current
        image, ``force``).
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
        context = context or ArtistContext()
        session = IdentitySession(artist, context, attempted_at, dict(self._resolvers))
        attempt = _Attempt(blocked=context.blocked_image_urls)
        start = 0
        while True:  # sources in priority order, until the best image is decided
            start = self._gather(artist, session, attempted_at, attempt, start, force=start > 0)
            result = self._choose(artist, known, context, attempt, attempted_at)
            if result.outcome.is_success or start >= len(self._adapters):
                break
        candidates = ()
        if result.outcome is Outcome.AMBIGUOUS_IDENTITY and attempt.ambiguous is not None:
            candidates = attempt.ambiguous.candidates
        return ScrapeResult(
            artist_id=result.artist_id,
            outcome=result.outcome,
            reason=result.reason,
            attempted_at=result.attempted_at,
            image=result.image,
            source_name=result.source_name,
            page_url=result.page_url,
            identities=tuple(session.resolved),
            candidates=candidates,
        )

    # -- gathering

    def _gather(
        self,
        artist: Artist,
        session: IdentitySession,
        at: datetime,
        attempt: _Attempt,
        start: int,
        *,
        force: bool,
    ) -> int:
        """Ask sources from ``start`` on until no later source can win; the next index.

        With the default rules (licence, then source), once a source offers a free image
        no later source can beat it: asking them would only cost requests (at catalog
        scale, Deezer's one request per artist). If the fetch fails, the scrape comes back
        for the rest.
        """
        for priority in range(start, len(self._adapters)):
            if not (force and priority == start) and self._decided(attempt):
                return priority
            adapter = self._adapters[priority]
            name = adapter.source.name if isinstance(adapter, _SiteAdapter) else adapter.name
            try:
                attempt.offers.extend(adapter.candidates(session, priority))
                attempt.answered.add(name)
                continue
            except ScrapeError as error:
                if (
                    isinstance(error, IdentityError)
                    and error.outcome is Outcome.AMBIGUOUS_IDENTITY
                    and attempt.ambiguous is None
                ):
                    attempt.ambiguous = error
                if not isinstance(error, FetchError) and error.outcome in (
                    Outcome.NO_IMAGE,
                    Outcome.PLACEHOLDER,
                ):
                    attempt.answered.add(name)  # it answered: it offers nothing
                reason = (
                    error.reason if error.reason.startswith(name) else f"{name}: {error.reason}"
                )
                page_url = error.page_url if isinstance(error, _SourceFailure) else None
                outcome = error.outcome
            except Exception as error:  # a bug or an unforeseen library error
                logger.exception("unexpected error scraping artist %s from %s", artist.id, name)
                reason = f"{name}: unexpected {type(error).__name__}: {error}"
                page_url, outcome = None, Outcome.FETCH_ERROR
            attempt.failures.append(
                ScrapeResult(
                    artist_id=artist.id,
                    outcome=outcome,
                    reason=reason,
                    attempted_at=at,
                    source_name=name,
                    page_url=page_url,
                )
            )
        return len(self._adapters)

    def _decided(self, attempt: _Attempt) -> bool:
        """Whether no source after those asked can offer a better candidate."""
        order = self._ranking.order
        offers = self._eligible(attempt)
        if order[0] == "source":
            return bool(offers)
        if order[:2] == ("license", "source"):
            return any(offer.free for offer in offers)
        return False

    @staticmethod
    def _eligible(attempt: _Attempt) -> list[ImageCandidate]:
        """The offers that may be fetched: not already failed, and never a guess."""
        offers = [
            o
            for o in attempt.offers
            if o.image_url not in attempt.tried and o.image_url not in attempt.blocked
        ]
        if attempt.ambiguous is None:
            return offers
        # With two equally good artists of this name somewhere, only images reached
        # through a pinned or catalog identity remain.
        return [
            offer
            for offer in offers
            if offer.identity is not None and offer.identity.method is not IdentityMethod.MATCHED
        ]

    # -- choosing

    def _choose(
        self,
        artist: Artist,
        known: KnownImage | None,
        context: ArtistContext,
        attempt: _Attempt,
        at: datetime,
    ) -> ScrapeResult:
        failures = [*attempt.failures, *attempt.tried.values()]
        offers = self._eligible(attempt)
        if attempt.ambiguous is not None and not offers:
            return self._failure(artist, failures, at)
        usable = [o for o in offers if o.free is not False]
        if len(usable) < len(offers):
            refused = next(o for o in offers if o.free is False)
            failures.append(
                self._result(
                    artist,
                    Outcome.NOT_FREE,
                    f"{refused.source_name}: {refused.image_url} is not free "
                    f"({refused.license or 'NonFree'}): never published",
                    at,
                    refused,
                )
            )
        blocked = [o for o in attempt.offers if o.image_url in attempt.blocked]
        if blocked and not usable:
            failures.append(
                self._result(
                    artist,
                    Outcome.NO_IMAGE,
                    f"{blocked[0].source_name}: only taken-down images are offered "
                    "(never fetched again)",
                    at,
                    blocked[0],
                )
            )
        if not usable:
            return self._failure(artist, failures, at)
        ranked = rank(usable, self._ranking, self._image_policy.max_side)
        keep = self._current_key(context, attempt)
        best = ranked[0]
        if (
            keep is not None
            and best.size_known
            and context.current is not None
            and best.image_url != context.current.image_url
            and keep < self._key(best)
        ):
            return self._kept(artist, context, best, at)
        fetched: list[tuple[ImageCandidate, ScrapeResult]] = []
        for tried, candidate in enumerate(ranked):
            if tried >= self._ranking.max_fetch:
                break
            if fetched:
                leader = min(fetched, key=lambda item: self._key(item[0]))[0]
                if candidate.size_stated and self._key(leader) <= self._key(candidate):
                    break  # nothing left can beat what we have
            try:
                fetched.append(self._fetch(artist, candidate, known, context, at))
            except ScrapeError as error:
                failure = self._result(
                    artist, error.outcome, f"{candidate.source_name}: {error.reason}", at, candidate
                )
                failures.append(failure)
                attempt.tried[candidate.image_url] = failure
                gone = error.outcome is Outcome.NO_IMAGE
                if (
                    gone
                    and context.current is not None
                    and candidate.image_url == context.current.image_url
                ):
                    attempt.current_gone = True
                    keep = None  # the current's source no longer offers it: it may be replaced
        if not fetched:
            return self._failure(artist, failures, at)
        winner, result = min(fetched, key=lambda item: self._key(item[0]))
        if (
            keep is not None
            and context.current is not None
            and winner.image_url != context.current.image_url
            and keep < self._key(winner)
        ):
            return self._kept(artist, context, winner, at)
        return result

    def _key(self, candidate: ImageCandidate) -> RankKey:
        return candidate_key(candidate, self._ranking, self._image_policy.max_side)

    def _current_key(self, context: ArtistContext, attempt: _Attempt) -> RankKey | None:
        """The current image's rank while it may not be replaced by a worse one, else None.

        None when forced, when there is no current image, or when its source answered and
        no longer offers its URL.
        """
        current = context.current
        if current is None or context.force or attempt.current_gone:
            return None
        offered = any(o.image_url == current.image_url for o in attempt.offers)
        if current.source_name in attempt.answered and not offered:
            return None
        names = [a.source.name if isinstance(a, _SiteAdapter) else a.name for a in self._adapters]
        priority = names.index(current.source_name) if current.source_name in names else len(names)
        return current_key(current, priority, self._ranking, self._image_policy.max_side)

    def _kept(
        self, artist: Artist, context: ArtistContext, best: ImageCandidate, at: datetime
    ) -> ScrapeResult:
        current = context.current
        assert current is not None
        return ScrapeResult(
            artist_id=artist.id,
            outcome=Outcome.UNCHANGED,
            reason=(
                f"kept current: {current.width}x{current.height} from {current.source_name} "
                f"beats the {size_text(best.width, best.height)} found on {best.source_name}"
            ),
            attempted_at=at,
            source_name=current.source_name,
        )

    def _failure(self, artist: Artist, failures: list[ScrapeResult], at: datetime) -> ScrapeResult:
        if not failures:
            return ScrapeResult(artist.id, Outcome.NO_IMAGE, "no source offered an image", at)
        best = failures[0]
        for failure in failures[1:]:
            if _STAGE.get(failure.outcome, 0) > _STAGE.get(best.outcome, 0):
                best = failure
        return best

    @staticmethod
    def _result(
        artist: Artist, outcome: Outcome, reason: str, at: datetime, candidate: ImageCandidate
    ) -> ScrapeResult:
        return ScrapeResult(
            artist_id=artist.id,
            outcome=outcome,
            reason=reason,
            attempted_at=at,
            source_name=candidate.source_name,
            page_url=candidate.page_url,
        )

    # -- fetching

    def _fetch(
        self,
        artist: Artist,
        candidate: ImageCandidate,
        known: KnownImage | None,
        context: ArtistContext,
        at: datetime,
    ) -> tuple[ImageCandidate, ScrapeResult]:
        """Fetch and validate one candidate: the candidate with its real size, and a result."""
        conditional = known is not None and known.source_image_url == candidate.image_url
        adapter = self._adapters[candidate.priority]
        response = self._fetcher.fetch_image(
            candidate.image_url,
            etag=known.etag if conditional and known else None,
            last_modified=known.last_modified if conditional and known else None,
            user_agent=adapter.user_agent if isinstance(adapter, _ApiAdapter) else None,
        )
        name = candidate.source_name
        if response.not_modified:
            current = context.current
            if current is not None and current.image_url == candidate.image_url:
                candidate = candidate.sized(current.width, current.height)
            return candidate, ScrapeResult(
                artist_id=artist.id,
                outcome=Outcome.UNCHANGED,
                reason=f"{name}: image unchanged since last fetch (304)",
                attempted_at=at,
                source_name=name,
                page_url=candidate.page_url,
            )
        if sha256_hex(response.content) in context.blocked_sha256s:
            raise ScrapeError(
                Outcome.NO_IMAGE,
                f"{candidate.image_url} serves an image taken down for this artist",
            )
        decoded = decode_image(response.content, self._image_policy)
        info = decoded.info
        identity = candidate.identity
        image = ScrapedImage(
            data=response.content,
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            provenance=Provenance(
                source_name=name,
                page_url=candidate.page_url,
                image_url=candidate.image_url,
                license=candidate.license,
                attribution=candidate.attribution,
                etag=response.etag,
                last_modified=response.last_modified,
                resolved_url=response.url,
                license_url=candidate.license_url,
                attribution_required=candidate.attribution_required,
                identity_namespace=identity.namespace if identity else None,
                identity_id=identity.external_id if identity else None,
            ),
            fetched_at=at,
            decoded=decoded,
        )
        licence = f", {candidate.license}" if candidate.license and identity else ""
        return candidate.sized(info.width, info.height), ScrapeResult(
            artist_id=artist.id,
            outcome=Outcome.FOUND,
            reason=f"{name}: {info.width}x{info.height} {info.format}{licence}",
            attempted_at=at,
            image=image,
            source_name=name,
            page_url=candidate.page_url,
        )


def _hosts(source: MusicBrainzSource | WikidataCommonsSource | DeezerSource) -> list[str]:
    if isinstance(source, WikidataCommonsSource):
        return [source.base_url, source.commons_url]
    return [source.base_url]
