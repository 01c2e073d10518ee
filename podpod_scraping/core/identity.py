"""Who an artist is on external namespaces, and what the scraper knows before it searches.

A wrong artist's photo is worse than none, so the scraper looks for images through an
artist's *identities* (a MusicBrainz id, a Wikidata item, a Deezer artist, a page on a
configured site) rather than through a name alone. Identities come from three places,
in order of trust: a person pinned one (``pinned``, always wins), the catalog carries one
(``catalog``, e.g. an MBID column of the main API), or a strict name match found exactly
one candidate (``matched``, with its evidence). The catalog's own table of identities is
owned by the storage layer; this module only holds the values passed across layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: Namespaces with a fixed name; configured sites use ``site:<source name>``.
MUSICBRAINZ = "musicbrainz"
WIKIDATA = "wikidata"
DEEZER = "deezer"
SITE_PREFIX = "site:"


def site_namespace(source_name: str) -> str:
    """The namespace of a configured site's own artist ids (``site:<source name>``)."""
    return f"{SITE_PREFIX}{source_name}"


class IdentityMethod(StrEnum):
    """How an identity was obtained. Values are stored in the catalog; never rename them."""

    PINNED = "pinned"  # a person said so (podpod-scraping identity pin): always wins
    CATALOG = "catalog"  # read from a configured column of the main API's artists table
    MATCHED = "matched"  # a strict name match found exactly one candidate


#: Higher wins when two identities on one namespace disagree.
METHOD_TRUST = {IdentityMethod.MATCHED: 0, IdentityMethod.CATALOG: 1, IdentityMethod.PINNED: 2}


@dataclass(frozen=True)
class Identity:
    """One artist's id on one namespace, with how it was obtained and why it is believed.

    ``evidence`` is JSON-serialisable detail a person reads when auditing a match (the
    query, the candidate count, the URL relation that led here, ...).
    """

    namespace: str
    external_id: str
    method: IdentityMethod
    matched_name: str | None = None  # the name or alias that matched (MATCHED)
    score: float | None = None  # the source's own match score, when it gives one
    disambiguation: str | None = None  # e.g. MusicBrainz's "Korean singer-songwriter"
    evidence: Mapping[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class IdentityCandidate:
    """One of several equally good matches: listed so that a person can pin one."""

    namespace: str
    external_id: str
    name: str
    disambiguation: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class CurrentImageRank:
    """What ranking needs to know about the image an artist has now (never-worse rule)."""

    source_name: str
    image_url: str
    width: int
    height: int
    license: str | None = None


@dataclass(frozen=True)
class ArtistContext:
    """What the store knows about an artist before the scraper searches.

    - ``identities``: the stored identity per namespace (pinned > catalog > matched);
    - ``verify_before``: a matched identity resolved before this time is re-verified;
    - ``blocked_image_urls``: image URLs taken down for this artist: never fetched again;
    - ``blocked_sha256s``: hashes of taken-down images: the same bytes from another URL
      are refused too;
    - ``current``: the current image, so a refresh never replaces it with a worse one;
    - ``force``: a person asked to take the best image now, even a worse one.
    """

    identities: Mapping[str, Identity] = field(default_factory=dict)
    verify_before: datetime | None = None
    blocked_image_urls: frozenset[str] = frozenset()
    blocked_sha256s: frozenset[str] = frozenset()
    current: CurrentImageRank | None = None
    force: bool = False


def preferred(identities: list[Identity]) -> dict[str, Identity]:
    """The identity to use per namespace: the most trusted method, then the newest."""
    chosen: dict[str, Identity] = {}
    for identity in identities:
        held = chosen.get(identity.namespace)
        if held is None or _rank(identity) > _rank(held):
            chosen[identity.namespace] = identity
    return chosen


def _rank(identity: Identity) -> tuple[int, float]:
    resolved = identity.resolved_at.timestamp() if identity.resolved_at else 0.0
    return METHOD_TRUST[identity.method], resolved
