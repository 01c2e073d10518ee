"""Strict name matching: the only way a name search may lead to an artist's identity.

A wrong artist's photo is worse than none, so "close enough" never counts: a candidate
matches only when one of its names is the artist's name or one of the artist's aliases,
exactly or after NFKC normalization and case folding ("Sigur Rós" = "SIGUR RÓS", a
full-width "IU" = "IU", but "Sigur Ros" is not "Sigur Rós"). How several matches are
told apart (scores, fan counts) is each source's rule; this module only says who matches.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from podpod_scraping.core.outcomes import Artist


def name_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def artist_names(artist: Artist) -> tuple[str, ...]:
    """The artist's name first, then its catalog aliases."""
    return (artist.name, *artist.aliases)


def matched_name(artist: Artist, candidate_names: Iterable[str]) -> str | None:
    """The artist's name or alias that one of ``candidate_names`` matches strictly, if any.

    The artist's own name wins over an alias, so the evidence says the strongest reason.
    """
    theirs = {name_key(name) for name in candidate_names if name and name.strip()}
    for ours in artist_names(artist):
        if ours and name_key(ours) in theirs:
            return ours
    return None
