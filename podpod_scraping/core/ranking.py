"""Which image an artist gets: every candidate of every source, ranked by configured rules.

The old loop took the first acceptable image it met. Here each candidate (a page's
``<picture>`` sources, ``srcset`` entries, ``<img>``, og:image, JSON-LD; each image an
API lists) is ranked, and the same rules decide whether a refresh may replace the
current image: never with a worse one. The default order of the rules (the ``ranking``
section's ``order``):

1. ``license``: a free licence (Commons, a licence configured for a site) before an
   unknown one; a non-free image is never a candidate at all;
2. ``source``: the source's position in ``sources`` (first = preferred);
3. ``resolution``: a larger short side, up to ``images.max_side`` (what is published:
   beyond it two images are equally good);
4. ``aspect``: near square or portrait (an avatar) before landscape.

A candidate whose size is unknown before it is fetched (an ``<img>`` without a
``srcset`` width) ranks as size 0 until fetched: the scraper fetches up to
``max_fetch`` candidates to learn their sizes, then ranks again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from pydantic import Field, field_validator

from podpod_scraping.core.identity import CurrentImageRank, Identity
from podpod_scraping.core.schema import FiniteFloat, FrozenModel, PositiveInt

Rule = Literal["license", "source", "resolution", "aspect"]
DEFAULT_ORDER: tuple[Rule, ...] = ("license", "source", "resolution", "aspect")


class RankingPolicy(FrozenModel):
    """The ``ranking`` config section: rule order and how much work one artist may cost."""

    order: tuple[Rule, ...] = DEFAULT_ORDER
    #: Image candidates downloaded per artist at most (the best-ranked ones).
    max_fetch: Annotated[PositiveInt, Field(le=20)] = 3
    #: width/height at or above which a portrait counts as good as square (3:4 = 0.75).
    portrait_min_ratio: Annotated[FiniteFloat, Field(gt=0, le=1)] = 0.75

    @field_validator("order")
    @classmethod
    def _each_once(cls, order: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if len(set(order)) != len(order) or not order:
            raise ValueError(f"list each rule once, e.g. {list(DEFAULT_ORDER)}")
        return order


@dataclass(frozen=True)
class ImageCandidate:
    """One image a source offers for an artist, with what is known before fetching it.

    ``free``: True for a free licence, None when unknown, False for non-free (refused).
    """

    source_name: str
    priority: int  # the source's position in the config (0 = first)
    image_url: str
    page_url: str
    width: int | None = None
    height: int | None = None
    free: bool | None = None
    license: str | None = None
    license_url: str | None = None
    attribution: str | None = None
    attribution_required: bool | None = None
    identity: Identity | None = None
    order: int = 0  # the source's own order (a page's order, Wikidata's preferred rank)

    @property
    def size_known(self) -> bool:
        return self.width is not None and self.height is not None

    @property
    def size_stated(self) -> bool:
        """A size is stated (a srcset width at least): good enough to rank without fetching."""
        return self.width is not None or self.height is not None

    def sized(self, width: int, height: int) -> ImageCandidate:
        """This candidate with the size learnt by fetching it."""
        return replace(self, width=width, height=height)


RankKey = tuple[float, ...]


def rank_key(
    *,
    free: bool | None,
    priority: int,
    width: int | None,
    height: int | None,
    policy: RankingPolicy,
    max_side: int,
) -> RankKey:
    """Lower is better; compared rule by rule in ``policy.order``."""
    values: dict[str, float] = {
        "license": 0.0 if free else 1.0,
        "source": float(priority),
        "resolution": -float(min(_short_side(width, height), max_side)),
        "aspect": _aspect_penalty(width, height, policy.portrait_min_ratio),
    }
    return tuple(values[rule] for rule in policy.order)


def candidate_key(candidate: ImageCandidate, policy: RankingPolicy, max_side: int) -> RankKey:
    """A candidate's rank key, from what is known about it now."""
    return (
        *rank_key(
            free=candidate.free,
            priority=candidate.priority,
            width=candidate.width,
            height=candidate.height,
            policy=policy,
            max_side=max_side,
        ),
        float(candidate.order),
    )


def current_key(
    current: CurrentImageRank, priority: int, policy: RankingPolicy, max_side: int
) -> RankKey:
    """The current image's key by the same rules (a recorded licence counts as free)."""
    return (
        *rank_key(
            free=True if current.license else None,
            priority=priority,
            width=current.width,
            height=current.height,
            policy=policy,
            max_side=max_side,
        ),
        0.0,
    )


def rank(
    candidates: list[ImageCandidate], policy: RankingPolicy, max_side: int
) -> list[ImageCandidate]:
    """Best first; equal candidates keep their order (a source's own preference)."""
    return sorted(candidates, key=lambda c: candidate_key(c, policy, max_side))


def size_text(width: int | None, height: int | None) -> str:
    if width is None:
        return "unknown size"
    return f"{width}x{height}" if height is not None else f"{width}w"


def _short_side(width: int | None, height: int | None) -> int:
    if width is None and height is None:
        return 0
    if width is None or height is None:
        return width or height or 0  # only a srcset width: the best estimate there is
    return min(width, height)


def _aspect_penalty(width: int | None, height: int | None, portrait_min: float) -> float:
    if not width or not height:
        return 1.0
    ratio = width / height
    if ratio > 1:
        return round(ratio - 1, 2)  # landscape: the wider, the worse
    return round(max(0.0, portrait_min - ratio), 2)  # very tall portraits too
