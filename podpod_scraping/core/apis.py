"""Identity-first API sources: MusicBrainz, Wikidata + Commons, Deezer.

Each kind is a config model (``kind:`` in the ``sources`` list, its own ``base_url`` so a
mirror or a recorded-response server can stand in, its own manners) and a client that
turns answers into identities and :class:`~podpod_scraping.core.ranking.ImageCandidate`
values. Every request goes through the shared :class:`~podpod_scraping.core.fetching.Fetcher`
(SSRF guard, limits, retries honouring Retry-After). Every bad answer (an HTML error page,
malformed JSON, an unexpected shape, an API error object) raises a :class:`ScrapeError`
for that artist alone.

Response shapes (see DESIGN.md, "Sources of artist images"):

- MusicBrainz ``/ws/2/artist?query=…&fmt=json`` → ``artists[].{id, name, score, type,
  disambiguation, aliases[].name}``; ``/ws/2/artist/<mbid>?inc=url-rels&fmt=json`` →
  ``relations[].{type, url.resource}``.
- Wikidata ``list=search&srsearch=haswbstatement:P434=<mbid>|P434=<mbid>…`` →
  ``query.search[].title``; ``wbgetentities&ids=Q…|Q…&props=claims`` →
  ``entities.<Q>.claims.{P434,P18}[].{rank, mainsnak.datavalue.value}``.
- Commons ``query&titles=File:…|File:…&prop=imageinfo&formatversion=2`` →
  ``query.pages[].{title, missing, imageinfo[0].{url, thumburl, width, height,
  thumbwidth, thumbheight, mime, sha1, descriptionurl, extmetadata}}`` and
  ``query.normalized[].{from, to}``.
- Deezer ``/search/artist?q=`` → ``data[].{id, name, link, picture_xl, nb_fan}``; errors
  arrive as HTTP 200 ``{"error": {"code", "message"}}`` (code 4: quota).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlencode, urlsplit

from bs4 import BeautifulSoup
from pydantic import AfterValidator, Field, StrictBool

from podpod_scraping.core.coalescer import Coalescer
from podpod_scraping.core.fetching import Fetcher, FetchError, redact_url
from podpod_scraping.core.identity import (
    DEEZER,
    MUSICBRAINZ,
    WIKIDATA,
    ArtistContext,
    Identity,
    IdentityCandidate,
    IdentityMethod,
)
from podpod_scraping.core.matching import artist_names, matched_name
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeError
from podpod_scraping.core.ranking import ImageCandidate
from podpod_scraping.core.schema import (
    FiniteFloat,
    FrozenModel,
    NonEmptyStr,
    NonNegativeFloat,
    PositiveInt,
)

#: The User-Agent API sources send unless configured: product/version (contact URL).
DEFAULT_API_USER_AGENT = "podpod-scraping/0.1 (+https://github.com/podpod/podpod_scraping)"
_CONTACT = re.compile(r"(https?://\S+|[^\s@()<>]+@[^\s@()<>]+\.[A-Za-z]{2,})")
_DEEZER_PLACEHOLDER = "/images/artist//"
_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')
#: Commons extmetadata fields asked for (the rest of a file page's metadata is not read).
_EXTMETADATA = "LicenseShortName|LicenseUrl|UsageTerms|AttributionRequired|Artist|Credit|NonFree"


def _with_contact(user_agent: str) -> str:
    if not _CONTACT.search(user_agent):
        raise ValueError(
            f"{user_agent!r} has no contact: MusicBrainz and Wikimedia require a "
            "User-Agent naming a URL or an e-mail address, e.g. "
            "'podpod-scraping/0.1 (https://podpod.example; ops@podpod.example)'"
        )
    return user_agent


def _http_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(f"{url!r} must be an absolute http(s) URL without a query")
    return url.rstrip("/")


BaseUrl = Annotated[NonEmptyStr, AfterValidator(_http_base)]
ContactUserAgent = Annotated[NonEmptyStr, AfterValidator(_with_contact)]


class _ApiSource(FrozenModel):
    """What every API source has: a name, manners, and whether to read robots.txt."""

    name: NonEmptyStr
    #: Seconds between two requests to this source's host(s), and requests at once.
    min_interval: NonNegativeFloat = 1.0
    concurrency: Annotated[PositiveInt, Field(le=16)] = 1
    #: API hosts publish an API policy, not robots.txt rules for it: off by default.
    obey_robots: StrictBool = False
    user_agent: NonEmptyStr = DEFAULT_API_USER_AGENT


class MusicBrainzSource(_ApiSource):
    """Name → MBID by strict search; optionally ``url-rels`` → the Wikidata item."""

    kind: Literal["musicbrainz"]
    base_url: BaseUrl = "https://musicbrainz.org"
    user_agent: ContactUserAgent = DEFAULT_API_USER_AGENT
    search_limit: Annotated[PositiveInt, Field(le=100)] = 10
    types: tuple[NonEmptyStr, ...] = ("Person", "Group")
    #: Look the MBID up with ``inc=url-rels`` (one more MusicBrainz request per resolution)
    #: to learn its Wikidata item; without it Wikidata is asked by MBID, batched.
    lookup_relations: StrictBool = False


class WikidataCommonsSource(_ApiSource):
    """MBID → Wikidata item → P18 → Commons file with its licence (batched requests)."""

    kind: Literal["wikidata_commons"]
    base_url: BaseUrl = "https://www.wikidata.org"
    commons_url: BaseUrl = "https://commons.wikimedia.org"
    user_agent: ContactUserAgent = DEFAULT_API_USER_AGENT
    min_interval: NonNegativeFloat = 0.0
    #: Thumbnail width asked of Commons (originals are often 4000 px and 10 MB).
    thumb_width: Annotated[PositiveInt, Field(le=4000)] = 1024
    batch_size: Annotated[PositiveInt, Field(le=50)] = 50
    #: Seconds a lookup waits for other artists' lookups to share its request.
    batch_window: Annotated[FiniteFloat, Field(ge=0, le=5)] = 0.1
    maxlag: Annotated[PositiveInt, Field(le=60)] = 5


class DeezerSource(_ApiSource):
    """Name → Deezer artist by strict search (ties by fan count) → ``picture_xl``."""

    kind: Literal["deezer"]
    base_url: BaseUrl = "https://api.deezer.com"
    min_interval: NonNegativeFloat = 0.1  # ~50 requests / 5 s
    search_limit: Annotated[PositiveInt, Field(le=100)] = 10


ApiSourceConfig = MusicBrainzSource | WikidataCommonsSource | DeezerSource


# --------------------------------------------------------------------------- errors


class IdentityError(ScrapeError):
    """No identity (NO_IDENTITY) or several equally good ones (AMBIGUOUS_IDENTITY)."""

    def __init__(
        self, outcome: Outcome, reason: str, candidates: tuple[IdentityCandidate, ...] = ()
    ) -> None:
        super().__init__(outcome, reason)
        self.candidates = candidates


def _bad(source: str, what: str) -> ScrapeError:
    return ScrapeError(Outcome.FETCH_ERROR, f"{source}: unexpected answer: {what}")


def _get_json(fetcher: Fetcher, source: _ApiSource, url: str) -> Any:
    """One API request; HTML, malformed JSON or a 429/503 become clear outcomes."""
    try:
        response = fetcher.fetch_api(
            url, user_agent=source.user_agent, check_robots=source.obey_robots
        )
    except FetchError as error:
        if error.status in (429, 503):
            raise ScrapeError(Outcome.RATE_LIMITED, error.reason) from error
        raise
    content_type = (response.content_type or "").split(";")[0].strip().lower()
    shown = redact_url(response.url)
    if content_type and "json" not in content_type and content_type != "text/javascript":
        raise ScrapeError(
            Outcome.FETCH_ERROR, f"{source.name}: expected JSON from {shown}, got {content_type}"
        )
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as error:
        raise ScrapeError(
            Outcome.FETCH_ERROR, f"{source.name}: malformed JSON from {shown}: {error}"
        ) from None


def _dict(value: Any, source: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(source, f"{what} is not an object")
    return value


def _list(value: Any, source: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(source, f"{what} is not a list")
    return value


def lucene_phrase(text: str) -> str:
    """``text`` as one Lucene phrase, every special character escaped."""
    return '"' + _LUCENE_SPECIAL.sub(r"\\\1", text) + '"'


def _url(base: str, path: str, params: Mapping[str, str | int]) -> str:
    return f"{base}{path}?{urlencode(params, quote_via=quote, safe='|')}"


# --------------------------------------------------------------------------- the session


@dataclass
class IdentitySession:
    """One artist's attempt: identities used or resolved, each resolved at most once.

    Resolvers are registered per namespace by the configured sources; a source that needs
    another namespace's identity (Wikidata needs the MBID) asks the session, which uses the
    context's identity when it is trusted and otherwise resolves it (and remembers a
    failure, so a second source does not ask again).
    """

    artist: Artist
    context: ArtistContext
    now: datetime
    resolvers: dict[str, Callable[[IdentitySession], Identity]] = field(default_factory=dict)
    resolved: list[Identity] = field(default_factory=list)
    hints: dict[str, Any] = field(default_factory=dict)
    _done: dict[str, Identity | ScrapeError] = field(default_factory=dict)

    def stored(self, namespace: str) -> Identity | None:
        """The context's identity on ``namespace`` when it needs no re-verification."""
        identity = self.context.identities.get(namespace)
        if identity is None:
            return None
        if identity.method is not IdentityMethod.MATCHED or self.context.verify_before is None:
            return identity
        if identity.resolved_at is not None and identity.resolved_at >= self.context.verify_before:
            return identity
        return None  # matched too long ago: resolve again (re-verify)

    def get(self, namespace: str) -> Identity:
        if namespace in self._done:
            done = self._done[namespace]
            if isinstance(done, ScrapeError):
                raise done
            return done
        try:
            identity = self.stored(namespace)
            if identity is None:
                resolver = self.resolvers.get(namespace)
                if resolver is None:
                    raise IdentityError(
                        Outcome.NO_IDENTITY, f"no source resolves {namespace} identities"
                    )
                identity = resolver(self)
                self.resolved.append(identity)
        except ScrapeError as error:
            self._done[namespace] = error
            raise
        self._done[namespace] = identity
        return identity

    def matched(
        self,
        namespace: str,
        external_id: str,
        name: str,
        *,
        score: float | None = None,
        disambiguation: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Identity:
        return Identity(
            namespace=namespace,
            external_id=external_id,
            method=IdentityMethod.MATCHED,
            matched_name=name,
            score=score,
            disambiguation=disambiguation or None,
            evidence=dict(evidence or {}),
            resolved_at=self.now,
        )


# --------------------------------------------------------------------------- MusicBrainz


class MusicBrainzClient:
    """Strict MBID search: a name match, the top score, a single candidate there."""

    def __init__(self, source: MusicBrainzSource, fetcher: Fetcher) -> None:
        self.source = source
        self._fetcher = fetcher

    def resolve(self, session: IdentitySession) -> Identity:
        artist = session.artist
        source = self.source
        for query_name in artist_names(artist):
            url = _url(
                source.base_url,
                "/ws/2/artist",
                {"query": lucene_phrase(query_name), "fmt": "json", "limit": source.search_limit},
            )
            answer = _dict(_get_json(self._fetcher, source, url), source.name, "the answer")
            artists = _list(answer.get("artists"), source.name, "artists")
            typed = [
                _dict(a, source.name, "an artist")
                for a in artists
                if isinstance(a, dict) and a.get("type") in source.types
            ]
            if not typed:
                continue
            scores: list[float] = []
            for candidate in typed:
                score = candidate.get("score")
                if isinstance(score, bool) or not isinstance(score, int | float):
                    raise _bad(source.name, "an artist without a numeric score")
                scores.append(float(score))
            top = max(scores)
            at_top = [a for a, score in zip(typed, scores, strict=True) if score == top]
            matching = [(a, matched_name(artist, _mb_names(a))) for a in at_top]
            matching = [(a, name) for a, name in matching if name is not None]
            if not matching:
                continue
            if len(matching) > 1:
                raise IdentityError(
                    Outcome.AMBIGUOUS_IDENTITY,
                    f"{source.name}: {len(matching)} artists named {query_name!r} at score "
                    f"{top}: pin one (podpod-scraping identity pin)",
                    tuple(
                        IdentityCandidate(
                            MUSICBRAINZ,
                            str(a.get("id")),
                            str(a.get("name")),
                            a.get("disambiguation") or None,
                            float(a.get("score") or 0),
                        )
                        for a, _name in matching
                    ),
                )
            best, name = matching[0]
            mbid = best.get("id")
            if not isinstance(mbid, str) or not mbid:
                raise _bad(source.name, "an artist without an id")
            identity = session.matched(
                MUSICBRAINZ,
                mbid,
                name,
                score=float(top),
                disambiguation=best.get("disambiguation"),
                evidence={
                    "query": query_name,
                    "candidates": len(artists),
                    "type": best.get("type"),
                    "name": best.get("name"),
                },
            )
            if source.lookup_relations:
                self._relations(session, mbid)
            return identity
        raise IdentityError(
            Outcome.NO_IDENTITY,
            f"{source.name}: no Person or Group named {artist.name!r}"
            + (f" (or {', '.join(artist.aliases)})" if artist.aliases else "")
            + " at the top score",
        )

    def _relations(self, session: IdentitySession, mbid: str) -> None:
        """``url-rels`` of the MBID: its Wikidata item becomes a hint for that namespace."""
        source = self.source
        url = _url(source.base_url, f"/ws/2/artist/{quote(mbid, safe='')}", {"inc": "url-rels"})
        url += "&fmt=json"
        answer = _dict(_get_json(self._fetcher, source, url), source.name, "the lookup")
        for relation in _list(answer.get("relations", []), source.name, "relations"):
            if not isinstance(relation, dict) or relation.get("type") != "wikidata":
                continue
            resource = (relation.get("url") or {}).get("resource", "")
            qid = unquote(str(resource).rstrip("/").rsplit("/", 1)[-1])
            if re.fullmatch(r"Q\d+", qid):
                session.hints[WIKIDATA] = (qid, {"via": "musicbrainz url-rels", "mbid": mbid})
                return


def _fans(record: Mapping[str, Any]) -> int:
    fans = record.get("nb_fan")
    return fans if isinstance(fans, int) and not isinstance(fans, bool) else -1


def _mb_names(candidate: Mapping[str, Any]) -> list[str]:
    names = [str(candidate.get("name") or "")]
    for alias in candidate.get("aliases") or []:
        if isinstance(alias, dict) and isinstance(alias.get("name"), str):
            names.append(alias["name"])
    return names


# --------------------------------------------------------------------------- Wikidata + Commons


class _Recent:
    """A small thread-safe LRU of recent answers (an item asked for twice in one run)."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class CommonsFile:
    """What Commons says about one file: where, how large, and under which licence."""

    title: str
    image_url: str
    page_url: str
    width: int
    height: int
    mime: str | None
    sha1: str | None
    free: bool
    license: str | None
    license_url: str | None
    attribution: str | None
    attribution_required: bool | None


class WikidataCommonsClient:
    """Batched Wikidata and Commons lookups shared by every artist of a run."""

    def __init__(self, source: WikidataCommonsSource, fetcher: Fetcher) -> None:
        self.source = source
        self._fetcher = fetcher
        self._entities_seen = _Recent()
        window, size = source.batch_window, source.batch_size
        self.items_by_mbid: Coalescer[str, list[str]] = Coalescer(
            self._search_mbids, max_batch=size, window=window
        )
        self.entities: Coalescer[str, dict[str, Any]] = Coalescer(
            self._entities, max_batch=size, window=window
        )
        self.files: Coalescer[str, CommonsFile | None] = Coalescer(
            self._files, max_batch=size, window=window
        )

    @property
    def requests_sent(self) -> int:
        return self.items_by_mbid.sent + self.entities.sent + self.files.sent

    # -- identities

    def resolve(self, session: IdentitySession) -> Identity:
        """The Wikidata item of the artist's MBID (MusicBrainz's url-rels, else P434)."""
        mbid = session.get(MUSICBRAINZ).external_id
        hint = session.hints.get(WIKIDATA)
        if hint is not None:
            qid, evidence = hint
            return session.matched(WIKIDATA, qid, session.artist.name, evidence=evidence)
        items = self.items_by_mbid.get(mbid) or []
        if not items:
            raise IdentityError(
                Outcome.NO_IDENTITY, f"{self.source.name}: no Wikidata item has MBID {mbid}"
            )
        if len(items) > 1:
            raise IdentityError(
                Outcome.AMBIGUOUS_IDENTITY,
                f"{self.source.name}: {len(items)} Wikidata items have MBID {mbid}: pin one",
                tuple(IdentityCandidate(WIKIDATA, q, q) for q in items),
            )
        return session.matched(
            WIKIDATA,
            items[0],
            session.artist.name,
            evidence={"via": "haswbstatement:P434", "mbid": mbid},
        )

    def _search_mbids(self, mbids: list[str]) -> dict[str, list[str]]:
        source = self.source
        query = "haswbstatement:" + "|".join(f"P434={mbid}" for mbid in mbids)
        answer = self._answer(
            source.base_url,
            {"action": "query", "list": "search", "srsearch": query, "srlimit": 500},
        )
        hits = _list(
            _dict(answer.get("query"), source.name, "query").get("search"), source.name, "search"
        )
        titles = [str(_dict(h, source.name, "a hit").get("title")) for h in hits]
        found: dict[str, list[str]] = {}
        entities = self.entities.get_many(titles) if titles else {}
        for qid, entity in entities.items():
            for mbid in _claim_values(entity or {}, "P434"):
                if mbid in mbids:
                    found.setdefault(mbid, []).append(qid)
        return found

    # -- images

    def candidates(self, session: IdentitySession, priority: int) -> list[ImageCandidate]:
        identity = session.get(WIKIDATA)
        entity = self.entities.get(identity.external_id)
        if entity is None:
            raise ScrapeError(
                Outcome.PAGE_NOT_FOUND,
                f"{self.source.name}: Wikidata has no item {identity.external_id}",
            )
        titles = [f"File:{name}" for name in _claim_values(entity, "P18")]
        if not titles:
            raise ScrapeError(
                Outcome.NO_IMAGE,
                f"{self.source.name}: {identity.external_id} has no image (P18) statement "
                "that is not deprecated",
            )
        files = self.files.get_many(titles)
        found: list[ImageCandidate] = []
        for order, title in enumerate(titles):
            file = files.get(title)
            if file is None:
                continue
            found.append(
                ImageCandidate(
                    source_name=self.source.name,
                    priority=priority,
                    image_url=file.image_url,
                    page_url=file.page_url,
                    width=file.width,
                    height=file.height,
                    free=file.free,
                    license=file.license,
                    license_url=file.license_url,
                    attribution=file.attribution,
                    attribution_required=file.attribution_required,
                    identity=identity,
                    order=order,
                )
            )
        if not found:
            raise ScrapeError(
                Outcome.NO_IMAGE,
                f"{self.source.name}: Commons has none of {', '.join(titles)}",
            )
        return found

    def _entities(self, qids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        wanted = []
        for qid in qids:
            seen = self._entities_seen.get(qid)
            if seen is not None:
                found[qid] = seen
            else:
                wanted.append(qid)
        if not wanted:
            return found
        source = self.source
        answer = self._answer(
            source.base_url, {"action": "wbgetentities", "ids": "|".join(wanted), "props": "claims"}
        )
        entities = _dict(answer.get("entities"), source.name, "entities")
        for qid, entity in entities.items():
            if isinstance(entity, dict) and "missing" not in entity:
                found[qid] = entity
                self._entities_seen.put(qid, entity)
        return found

    def _files(self, titles: list[str]) -> dict[str, CommonsFile | None]:
        source = self.source
        answer = self._answer(
            source.commons_url,
            {
                "action": "query",
                "titles": "|".join(titles),
                "prop": "imageinfo",
                "iiprop": "url|size|mime|sha1|extmetadata",
                "iiurlwidth": source.thumb_width,
                "iiextmetadatafilter": _EXTMETADATA,
                "formatversion": 2,
            },
        )
        query = _dict(answer.get("query"), source.name, "query")
        renamed = {
            str(n.get("to")): str(n.get("from"))
            for n in _list(query.get("normalized", []), source.name, "normalized")
            if isinstance(n, dict)
        }
        found: dict[str, CommonsFile | None] = {}
        for page in _list(query.get("pages"), source.name, "pages"):
            page = _dict(page, source.name, "a page")
            title = str(page.get("title"))
            infos = page.get("imageinfo")
            if page.get("missing") or not isinstance(infos, list) or not infos:
                continue
            found[renamed.get(title, title)] = _commons_file(
                title, _dict(infos[0], source.name, "imageinfo"), source.name
            )
        return found

    def _answer(self, base: str, params: dict[str, str | int]) -> dict[str, Any]:
        """One MediaWiki API request (JSON, ``maxlag``); an ``error`` object is an outcome."""
        url = _url(base, "/w/api.php", {**params, "format": "json", "maxlag": self.source.maxlag})
        answer = _dict(_get_json(self._fetcher, self.source, url), self.source.name, "the answer")
        error = answer.get("error")
        if isinstance(error, dict):
            code = str(error.get("code"))
            info = str(error.get("info", ""))[:200]
            outcome = Outcome.RATE_LIMITED if code in ("maxlag", "ratelimited") else None
            raise ScrapeError(
                outcome or Outcome.FETCH_ERROR, f"{self.source.name}: API error {code}: {info}"
            )
        return answer


def _claim_values(entity: Mapping[str, Any], prop: str) -> list[str]:
    """String values of the best-ranked statements: preferred if any, else normal."""
    claims = entity.get("claims")
    statements = claims.get(prop, []) if isinstance(claims, dict) else []
    by_rank: dict[str, list[str]] = {"preferred": [], "normal": []}
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict):
            continue
        rank = statement.get("rank", "normal")
        snak = statement.get("mainsnak")
        value = (snak.get("datavalue") or {}).get("value") if isinstance(snak, dict) else None
        if rank in by_rank and isinstance(value, str) and value:
            by_rank[rank].append(value)  # "deprecated" statements are never used
    return by_rank["preferred"] or by_rank["normal"]


def _meta(extmetadata: Mapping[str, Any], key: str) -> str | None:
    entry = extmetadata.get(key)
    value = entry.get("value") if isinstance(entry, dict) else None
    if value is None:
        return None
    text = str(value)
    if "<" in text or "&" in text:  # HTML (a link to the author's page, entities)
        text = BeautifulSoup(text, "html.parser").get_text(" ")
    text = " ".join(text.split())
    return text or None


def _int(value: Any, source: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _bad(source, f"{what} is not a positive integer")
    return value


def _commons_file(title: str, info: Mapping[str, Any], source: str) -> CommonsFile:
    meta = info.get("extmetadata")
    meta = meta if isinstance(meta, dict) else {}
    thumb = info.get("thumburl")
    if isinstance(thumb, str) and thumb:
        url, width, height = thumb, info.get("thumbwidth"), info.get("thumbheight")
    else:
        url, width, height = info.get("url"), info.get("width"), info.get("height")
    if not isinstance(url, str) or not url:
        raise _bad(source, f"{title} has no URL")
    required = _meta(meta, "AttributionRequired")
    return CommonsFile(
        title=title,
        image_url=url,
        page_url=str(info.get("descriptionurl") or url),
        width=_int(width, source, f"{title}'s width"),
        height=_int(height, source, f"{title}'s height"),
        mime=info.get("mime"),
        sha1=info.get("sha1"),
        free=(_meta(meta, "NonFree") or "").lower() not in ("true", "1", "yes"),
        license=_meta(meta, "LicenseShortName"),
        license_url=_meta(meta, "LicenseUrl"),
        attribution=_meta(meta, "Artist") or _meta(meta, "Credit"),
        attribution_required=None if required is None else required.lower() == "true",
    )


# --------------------------------------------------------------------------- Deezer


class DeezerClient:
    """Strict Deezer search (ties by fan count, else ambiguous); ``picture_xl``."""

    def __init__(self, source: DeezerSource, fetcher: Fetcher) -> None:
        self.source = source
        self._fetcher = fetcher

    def resolve(self, session: IdentitySession) -> Identity:
        artist, source = session.artist, self.source
        for query_name in artist_names(artist):
            url = _url(source.base_url, "/search/artist", {"q": query_name, "limit": 10})
            data = _list(self._answer(url).get("data"), source.name, "data")
            matching = [
                (_dict(a, source.name, "an artist"), matched_name(artist, [str(a.get("name"))]))
                for a in data
                if isinstance(a, dict)
            ]
            matching = [(a, name) for a, name in matching if name is not None]
            if not matching:
                continue
            pinned = [
                i.namespace
                for i in session.context.identities.values()
                if i.method is IdentityMethod.PINNED
            ]
            if len(matching) > 1 and pinned:
                # A person pinned who this artist is elsewhere: the name is shared, so the
                # most popular namesake on Deezer is a guess, and a guess is never used.
                raise IdentityError(
                    Outcome.NO_IDENTITY,
                    f"{source.name}: {len(matching)} artists named {query_name!r} and the "
                    f"artist is pinned on {', '.join(sorted(pinned))}: pin a deezer id to "
                    "use Deezer for it",
                )
            fans = [_fans(a) for a, _ in matching]
            top = max(fans)
            best = [m for m, f in zip(matching, fans, strict=True) if f == top]
            if len(best) > 1:
                raise IdentityError(
                    Outcome.AMBIGUOUS_IDENTITY,
                    f"{source.name}: {len(best)} artists named {query_name!r} with "
                    f"{top} fans each: pin one",
                    tuple(
                        IdentityCandidate(DEEZER, str(a.get("id")), str(a.get("name")))
                        for a, _ in best
                    ),
                )
            record, name = best[0]
            session.hints[DEEZER] = record
            return session.matched(
                DEEZER,
                str(record.get("id")),
                name,
                evidence={
                    "query": query_name,
                    "candidates": len(matching),
                    "nb_fan": record.get("nb_fan"),
                    "tie_broken_by_nb_fan": len(matching) > 1,
                },
            )
        raise IdentityError(Outcome.NO_IDENTITY, f"{source.name}: no artist named {artist.name!r}")

    def candidates(self, session: IdentitySession, priority: int) -> list[ImageCandidate]:
        identity = session.get(DEEZER)
        record = session.hints.get(DEEZER)
        if record is None or str(record.get("id")) != identity.external_id:
            url = f"{self.source.base_url}/artist/{quote(identity.external_id, safe='')}"
            record = self._answer(url)
        picture = record.get("picture_xl")
        if not isinstance(picture, str) or not picture:
            raise ScrapeError(Outcome.NO_IMAGE, f"{self.source.name}: no picture_xl")
        if _DEEZER_PLACEHOLDER in urlsplit(picture).path:
            raise ScrapeError(
                Outcome.PLACEHOLDER,
                f"{self.source.name}: artist {identity.external_id} has only Deezer's "
                "placeholder silhouette",
            )
        return [
            ImageCandidate(
                source_name=self.source.name,
                priority=priority,
                image_url=picture,
                page_url=str(record.get("link") or self.source.base_url),
                width=1000,  # picture_xl is 1000x1000
                height=1000,
                free=None,
                identity=identity,
            )
        ]

    def _answer(self, url: str) -> dict[str, Any]:
        answer = _dict(_get_json(self._fetcher, self.source, url), self.source.name, "the answer")
        error = answer.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), str(error.get("message", ""))[:200]
            if code == 4:
                raise ScrapeError(Outcome.RATE_LIMITED, f"{self.source.name}: {message}")
            if code == 800:
                raise IdentityError(Outcome.NO_IDENTITY, f"{self.source.name}: {message}")
            raise ScrapeError(Outcome.FETCH_ERROR, f"{self.source.name}: error {code}: {message}")
        return answer
