"""Per-artist scrape outcomes and the values that carry them between layers.

Every attempt for one artist ends in exactly one :class:`Outcome` with a human-readable
reason. Only ``FOUND`` carries an image; every other outcome leaves the artist's current
published image untouched.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from podpod_scraping.core.identity import Identity, IdentityCandidate


class Outcome(StrEnum):
    """How one artist's attempt ended. Values are stored in the catalog; never rename them."""

    FOUND = "found"
    UNCHANGED = "unchanged"
    NO_IMAGE = "no_image_on_page"
    PAGE_NOT_FOUND = "page_not_found"
    BLOCKED_BY_ROBOTS = "blocked_by_robots"
    UNSAFE_URL = "unsafe_url"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    INVALID_IMAGE = "invalid_image"
    TOO_SMALL = "too_small"
    PLACEHOLDER = "placeholder"
    RATE_LIMITED = "rate_limited"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    FETCH_ERROR = "fetch_error"
    INVALID_ARTIST = "invalid_artist"  # no usable name to look the artist up by
    AMBIGUOUS_IDENTITY = "ambiguous_identity"  # several equally good matches: pin one
    NO_IDENTITY = "no_identity"  # no source knows an artist of this name (strictly matched)
    NOT_FREE = "not_free"  # the only images found are non-free (never published)

    @property
    def is_success(self) -> bool:
        """True when the artist has a usable image after this attempt."""
        return self in (Outcome.FOUND, Outcome.UNCHANGED)

    @property
    def is_transient(self) -> bool:
        """True when retrying later may give another answer (site busy, network trouble)."""
        return self in (
            Outcome.RATE_LIMITED,
            Outcome.NETWORK_ERROR,
            Outcome.TIMEOUT,
            Outcome.FETCH_ERROR,
        )


class ScrapeError(Exception):
    """A failure that ends one artist's attempt with a specific outcome.

    Core modules raise subclasses of this; the scraper turns them into a
    :class:`ScrapeResult` so one artist's failure never escapes into its batch.
    """

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(f"{outcome.value}: {reason}")
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class Artist:
    """An artist as read from the main API's catalog. ``id`` is the partition key.

    ``name`` is NFKC-normalized and trimmed (full-width letters, stray spaces and
    compatibility forms never reach a URL template); it may be empty, which the scraper
    refuses as ``invalid_artist`` before any request.
    """

    id: str
    name: str
    aliases: tuple[str, ...] = ()  # other names from the catalog's configured alias columns

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalize_name(self.name))
        aliases = (normalize_name(alias) for alias in self.aliases)
        unique = dict.fromkeys(alias for alias in aliases if alias and alias != self.name)
        object.__setattr__(self, "aliases", tuple(unique))


def normalize_name(name: str | None) -> str:
    """NFKC, whitespace collapsed and trimmed; ``None`` (a NULL name) becomes ``""``."""
    if name is None:
        return ""
    return " ".join(unicodedata.normalize("NFKC", str(name)).split())


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the identity of an image everywhere in this service."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Where an image came from; stored with every published image.

    ``image_url`` is the URL as the page names it: conditional requests are keyed by it,
    so an image reached through a redirect is still recognised on the next refresh.
    ``resolved_url`` is where the bytes were finally served from (after redirects).
    """

    source_name: str
    page_url: str
    image_url: str
    license: str | None = None  # short name, e.g. "CC BY-SA 4.0"
    attribution: str | None = None  # plain text, e.g. "Jane Doe"
    etag: str | None = None
    last_modified: str | None = None
    resolved_url: str | None = None
    license_url: str | None = None
    attribution_required: bool | None = None  # None: the source does not say
    identity_namespace: str | None = None  # the identity the image was found through
    identity_id: str | None = None


@dataclass(frozen=True)
class ScrapedImage:
    """The original bytes fetched for an artist, validated as an image, plus provenance.

    ``decoded`` is validation's decoded first frame (a ``core.images.DecodedImage``),
    kept so that normalization does not decode the same bytes a second time.
    """

    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    provenance: Provenance
    fetched_at: datetime
    decoded: Any = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    @property
    def byte_size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ScrapeResult:
    """The one recorded result of one artist's attempt."""

    artist_id: str
    outcome: Outcome
    reason: str
    attempted_at: datetime
    image: ScrapedImage | None = None
    source_name: str | None = None
    page_url: str | None = None
    # Identities this attempt resolved or re-verified (the store records them), and the
    # equally good candidates of an AMBIGUOUS_IDENTITY outcome (for a person to pin one).
    identities: tuple[Identity, ...] = ()
    candidates: tuple[IdentityCandidate, ...] = ()

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.FOUND) != (self.image is not None):
            raise ValueError("a FOUND result carries an image and no other outcome does")
