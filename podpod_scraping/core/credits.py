"""The credit line an app prints under an image, from the image's provenance."""

from __future__ import annotations

from urllib.parse import urlsplit

from podpod_scraping.core.outcomes import Provenance

#: Hosts whose images are credited by the project's name rather than the source's.
_VIA = {"commons.wikimedia.org": "Wikimedia Commons", "www.deezer.com": "Deezer"}


def credit_line(provenance: Provenance) -> str | None:
    """E.g. "Photo: Jane Doe, CC BY-SA 4.0, via Wikimedia Commons"; None without a licence
    or an author (nothing to credit that a person could check)."""
    if not provenance.license and not provenance.attribution:
        return None
    host = (urlsplit(provenance.page_url).hostname or "").lower()
    via = _VIA.get(host, provenance.source_name)
    parts = [p for p in (provenance.attribution, provenance.license) if p]
    return f"Photo: {', '.join(parts)}, via {via}"
