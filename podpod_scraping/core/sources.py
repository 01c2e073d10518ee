"""Image sources as configuration: a page URL template, a CSS selector and fallbacks.

The old design hard-coded one search page and ``img.artist-image``. Here a site is an
entry in a YAML file (priority order = file order), so adding or fixing a site never
needs code. This module only parses configuration and HTML; fetching is the fetcher's
job, and deciding whether a URL is safe to fetch is the fetcher's safety layer's job.
"""

from __future__ import annotations

import json
import os
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote, quote_plus, urldefrag, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag
from pydantic import AfterValidator, Discriminator, Field, field_validator, model_validator
from pydantic import Tag as UnionTag

from podpod_scraping.core.apis import DeezerSource, MusicBrainzSource, WikidataCommonsSource
from podpod_scraping.core.outcomes import Artist, Outcome, ScrapeError
from podpod_scraping.core.schema import (
    UNION_TAGS,
    FrozenModel,
    NonEmptyStr,
    ScraperConfigError,
    load_yaml_model,
)

#: Placeholders a ``page_url`` template may use.
PLACEHOLDERS = frozenset({"id", "name", "slug", "name_plus"})
#: Fallbacks tried, in the configured order, after the selector.
KNOWN_FALLBACKS = ("og:image", "twitter:image", "json-ld")
#: Attributes read from a matched element when no ``attribute`` is configured, in order.
DEFAULT_ATTRIBUTES = ("srcset", "data-srcset", "data-src", "data-lazy-src", "data-original", "src")

_OG_PROPERTIES = frozenset({"og:image", "og:image:url", "og:image:secure_url"})
_TWITTER_PROPERTIES = frozenset({"twitter:image", "twitter:image:src"})
# JSON-LD nodes describing the artist come before the page's other nodes (publisher logo...).
_ARTIST_TYPES = frozenset({"musicgroup", "person", "performinggroup", "musicartist"})
_NEVER_USEFUL_SCHEMES = ("data:", "javascript:", "about:", "blob:")


#: Kept as a name for callers of :func:`parse_sources`: it *is* the config error type.
SourceConfigError = ScraperConfigError
Fallback = Literal["og:image", "twitter:image", "json-ld"]


class SourceConfig(FrozenModel):
    """One configured site: where an artist's page is and how to find the image on it."""

    kind: Literal["site"] = "site"
    name: NonEmptyStr
    page_url: NonEmptyStr | None = None
    selector: NonEmptyStr
    attribute: NonEmptyStr | None = None
    fallbacks: tuple[Fallback, ...] = KNOWN_FALLBACKS
    license: NonEmptyStr | None = None
    attribution: NonEmptyStr | None = None
    search: SiteSearch | None = None

    @field_validator("page_url")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        if template is not None:
            _check_template(template)
        return template

    @model_validator(mode="after")
    def _page_or_search(self) -> Self:
        if self.page_url is None and self.search is None:
            raise ValueError(
                "give page_url (the artist's page from the name, e.g. "
                "'https://site.example/a/{slug}') or search (a search page and its results)"
            )
        return self

    def entry_url_for(self, artist: Artist) -> str:
        """The first URL fetched for an artist: the search page, or else the artist page."""
        if self.search is not None:
            return fill_template(self.search.url, artist, self.name)
        return self.page_url_for(artist)

    @field_validator("selector")
    @classmethod
    def _css(cls, selector: str) -> str:
        _check_selector(selector)
        return selector

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _no_fallbacks(cls, value: Any) -> Any:
        return () if value is None else value  # `fallbacks:` left empty means none

    @field_validator("fallbacks")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    def page_url_for(self, artist: Artist) -> str:
        """The artist's page URL on this site (``page_url`` filled from the name)."""
        if self.page_url is None:
            raise ScrapeError(
                Outcome.PAGE_NOT_FOUND, f"{self.name} finds artist pages by search only"
            )
        return fill_template(self.page_url, artist, self.name)


class SiteSearch(FrozenModel):
    """A site's search step, for sites whose artist URLs carry their own ids.

    ``url`` is filled like ``page_url``; each element matched by ``result`` is one hit,
    its link the first ``result_link`` inside it (or the element itself), its name the
    text of ``result_name`` inside it (or the link's text). The same strict name match as
    the APIs: exactly one distinct matching page, else ambiguous; no match, no page.
    """

    url: NonEmptyStr
    result: NonEmptyStr
    result_link: NonEmptyStr = "a[href]"
    result_name: NonEmptyStr | None = None

    @field_validator("url")
    @classmethod
    def _template(cls, template: str) -> str:
        _check_template(template)
        return template

    @field_validator("result", "result_link", "result_name")
    @classmethod
    def _css(cls, selector: str | None) -> str | None:
        if selector is not None:
            _check_selector(selector)
        return selector


def fill_template(template: str, artist: Artist, source_name: str) -> str:
    """A URL template filled from the artist (every value percent-encoded).

    Raises ScrapeError(PAGE_NOT_FOUND) when the template needs a slug and the name has
    none (only punctuation): guessing a page there could match the wrong artist.
    """
    values: dict[str, str] = {
        "id": quote(str(artist.id), safe=""),
        "name": quote(artist.name, safe=""),
        "name_plus": quote_plus(artist.name, safe=""),
    }
    if "slug" in _placeholders(template):
        slug = slugify(artist.name)
        if not slug:
            raise ScrapeError(
                Outcome.PAGE_NOT_FOUND,
                f"artist name {artist.name!r} gives an empty slug for {source_name}",
            )
        values["slug"] = quote(slug, safe="-")
    return template.format_map(values)


def _check_selector(selector: str) -> None:
    try:
        soupsieve.compile(selector)
    except (soupsieve.SelectorSyntaxError, ValueError, TypeError) as error:
        first_line = str(error).splitlines()[0]
        raise ValueError(
            f"{selector!r} is not a valid CSS selector ({first_line}); e.g. 'img.artist-image'"
        ) from None


def slugify(name: str) -> str:
    """Lowercase, accents folded to ASCII, every run of other characters turned into '-'.

    Letters with no ASCII form (Hangul, kana, Cyrillic, ...) are kept as they are, since
    sites use them in their paths too; ``page_url_for`` percent-encodes them.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFC", folded).lower()
    return re.sub(r"[\W_]+", "-", folded).strip("-")


def _placeholders(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


# --------------------------------------------------------------------------- config


def _unique_names(sources: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: dict[str, int] = {}
    for index, source in enumerate(sources):
        if source.name in seen:
            raise ValueError(
                f"duplicate name {source.name!r} in sources[{index}] "
                f"(already used by sources[{seen[source.name]}]); rename one"
            )
        seen[source.name] = index
    return sources


#: The source kinds of the ``sources`` list (``kind:``; a site when left out).
SOURCE_KINDS = ("site", "wikidata_commons", "musicbrainz", "deezer")
UNION_TAGS.update(SOURCE_KINDS)


def _kind(value: Any) -> str:
    kind = value.get("kind", "site") if isinstance(value, dict) else getattr(value, "kind", "site")
    return kind if kind in SOURCE_KINDS else "site"


AnySource = Annotated[
    Annotated[SourceConfig, UnionTag("site")]
    | Annotated[WikidataCommonsSource, UnionTag("wikidata_commons")]
    | Annotated[MusicBrainzSource, UnionTag("musicbrainz")]
    | Annotated[DeezerSource, UnionTag("deezer")],
    Discriminator(_kind),
]

#: The ``sources`` section: at least one source, names unique, in priority order.
SourceList = Annotated[tuple[AnySource, ...], Field(min_length=1), AfterValidator(_unique_names)]


class _SourcesOnly(FrozenModel, extra="ignore"):
    """The ``sources`` list of a config file; the other sections are not looked at."""

    sources: SourceList


def load_sources(path: str | os.PathLike[str]) -> list[AnySource]:
    """Read and validate the sources of the config file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise SourceConfigError(f"cannot read sources file {file}: {error}") from error
    return parse_sources(text, origin=str(file))


def parse_sources(text: str, origin: str = "<string>") -> list[AnySource]:
    """Parse YAML text with a top-level ``sources`` list; other top-level keys are ignored
    (they belong to the rest of the scraper configuration)."""
    return list(load_yaml_model(_SourcesOnly, text, origin).sources)


def _check_template(template: str) -> None:
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)]
    except ValueError as error:
        raise ValueError(f"{template!r} is malformed: {error}") from None
    fields = [f for f, _, _ in parsed if f is not None]
    if any(spec or conv for f, spec, conv in parsed if f is not None):
        raise ValueError(f"{template!r}: placeholders take no format spec or conversion")
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ValueError(
            f"{template!r} uses unknown placeholder(s) {unknown}; known: {sorted(PLACEHOLDERS)}"
        )
    if not fields:
        # The same page for every artist would give every artist the same image.
        raise ValueError(f"{template!r} has no placeholder; use one of {sorted(PLACEHOLDERS)}")
    parts = urlsplit(template.format_map(dict.fromkeys(fields, "x")))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{template!r} must be an absolute http(s) URL, e.g. 'https://site.example/a/{{slug}}'"
        )


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class FoundImages:
    """What a page offers: candidate URLs to fetch, and the schemes of values dropped.

    ``ignored_schemes`` (e.g. ``("data:",)``) lets a page with only an inline image say
    so in its outcome reason instead of a bare "no image".
    """

    urls: list[str]
    ignored_schemes: tuple[str, ...] = ()


def extract_image_urls(html: str | bytes, base_url: str, source: SourceConfig) -> list[str]:
    """Absolute candidate image URLs found on a page, best first (see :func:`find_images`)."""
    return find_images(html, base_url, source).urls


def find_images(html: str | bytes, base_url: str, source: SourceConfig) -> FoundImages:
    """Absolute candidate image URLs found on a page, best first, without duplicates.

    Order: every element matched by ``source.selector`` (per element: the largest
    ``srcset`` candidate, then lazy-load attributes, then ``src``; or exactly
    ``source.attribute`` when configured), then the configured fallbacks (og:image,
    twitter:image, JSON-LD ``image``) in their configured order.

    Relative URLs resolve against ``base_url`` (the page's final URL after redirects),
    or the page's ``<base href>``. ``data:``, ``javascript:``, ``about:`` and ``blob:``
    values are dropped (never a real image to store: spacers, tracking pixels). Other
    schemes such as ``file://`` or ``ftp://`` are deliberately KEPT so that the fetcher's
    safety layer refuses them and the attempt records an explicit ``unsafe_url``
    outcome instead of a silent ``no_image_on_page``.
    """
    soup = BeautifulSoup(html, "html.parser")
    base = _document_base(soup, base_url)
    raw: list[str] = []
    for element in soup.select(source.selector):
        raw.extend(_element_urls(element, source.attribute))
    for fallback in source.fallbacks:
        if fallback == "og:image":
            raw.extend(_meta_urls(soup, _OG_PROPERTIES))
        elif fallback == "twitter:image":
            raw.extend(_meta_urls(soup, _TWITTER_PROPERTIES))
        elif fallback == "json-ld":
            raw.extend(_json_ld_urls(soup))
    found: dict[str, None] = {}
    ignored: set[str] = set()
    for value in raw:
        url = _absolute(value, base)
        if url is not None:
            found.setdefault(url, None)
        else:
            scheme = value.strip().lower().split(":", 1)[0] + ":"
            if scheme in _NEVER_USEFUL_SCHEMES:
                ignored.add(scheme)
    return FoundImages(urls=list(found), ignored_schemes=tuple(sorted(ignored)))


def _document_base(soup: BeautifulSoup, page_url: str) -> str:
    tag = soup.find("base", href=True)
    if isinstance(tag, Tag):
        href = str(tag.get("href") or "").strip()
        if href and not href.lower().startswith(_NEVER_USEFUL_SCHEMES):
            return urljoin(page_url, href)
    return page_url


def _absolute(value: str, base: str) -> str | None:
    value = value.strip()
    if not value or value.startswith("#") or value.lower().startswith(_NEVER_USEFUL_SCHEMES):
        return None
    try:
        url, _fragment = urldefrag(urljoin(base, value))
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    return url or None


def _attr(element: Tag, name: str) -> str:
    value = element.get(name)
    if isinstance(value, list):  # multi-valued attributes such as class
        return " ".join(value)
    return (value or "").strip()


def _element_urls(element: Tag, attribute: str | None) -> Iterator[str]:
    names = (attribute,) if attribute else DEFAULT_ATTRIBUTES
    for name in names:
        value = _attr(element, name)
        if not value:
            continue
        if name.endswith("srcset"):
            best = largest_srcset_candidate(value)
            if best:
                yield best
        else:
            yield value


def parse_srcset(value: str) -> list[tuple[str, str | None]]:
    """Split a ``srcset`` into ``(url, descriptor)`` pairs (WHATWG parsing, simplified).

    URLs may contain commas (``w_300,h_200`` image-CDN paths); a comma only separates
    candidates when it follows whitespace after the URL or ends the URL.
    """
    candidates: list[tuple[str, str | None]] = []
    pos, length = 0, len(value)
    while pos < length:
        while pos < length and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < length and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if not url:
            break
        if url.endswith(","):
            candidates.append((url.rstrip(","), None))
            continue
        start = pos
        depth = 0
        while pos < length and (value[pos] != "," or depth):
            depth += {"(": 1, ")": -1}.get(value[pos], 0)
            pos += 1
        descriptor = value[start:pos].strip()
        candidates.append((url, descriptor or None))
    return candidates


def _descriptors(value: str) -> Iterator[tuple[str, float, str]]:
    """``srcset`` candidates as ``(url, number, unit)``: unit ``w`` (width) or ``x``."""
    for url, descriptor in parse_srcset(value):
        token = (descriptor or "1x").split()[0].lower()
        try:
            number = float(token[:-1])
        except ValueError:
            continue
        if token[-1:] in ("w", "x"):
            yield url, number, token[-1]


def largest_srcset_candidate(value: str) -> str | None:
    """The srcset URL with the largest width (``w``), else the largest density (``x``)."""
    widths = [(n, url) for url, n, unit in _descriptors(value) if unit == "w"]
    densities = [(n, url) for url, n, unit in _descriptors(value) if unit == "x"]
    for group in (widths, densities):
        if group:
            # max() keeps the first of equal candidates: the page's own preference.
            return max(group, key=lambda item: item[0])[1]
    return None


def _meta_urls(soup: BeautifulSoup, keys: frozenset[str]) -> Iterator[str]:
    for meta in soup.find_all("meta"):
        if not isinstance(meta, Tag):
            continue
        key = (_attr(meta, "property") or _attr(meta, "name")).lower()
        if key in keys:
            content = _attr(meta, "content")
            if content:
                yield content


def _json_ld_urls(soup: BeautifulSoup) -> list[str]:
    artist_first: list[str] = []
    others: list[str] = []
    for script in soup.find_all("script"):
        if not isinstance(script, Tag):
            continue
        kind = _attr(script, "type").split(";")[0].strip().lower()
        if kind != "application/ld+json":
            continue
        try:
            data = json.loads(script.get_text(), strict=False)
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is common; the page may still have other candidates
        for node in _json_ld_nodes(data):
            images = list(_json_ld_images(node.get("image")))
            types = node.get("@type")
            type_names = types if isinstance(types, list) else [types]
            is_artist = any(str(t).lower() in _ARTIST_TYPES for t in type_names)
            (artist_first if is_artist else others).extend(images)
    return artist_first + others


def _json_ld_nodes(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object, depth first (``@graph`` members and nested entities too)."""
    if depth > 20:
        return
    if isinstance(data, list):
        for item in data:
            yield from _json_ld_nodes(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key, value in data.items():
            if key != "image" and isinstance(value, dict | list):
                yield from _json_ld_nodes(value, depth + 1)


def _json_ld_images(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _json_ld_images(item)
    elif isinstance(value, dict):
        for key in ("contentUrl", "url"):
            if isinstance(value.get(key), str):
                yield value[key]


# --------------------------------------------------------------------------- sized candidates


@dataclass(frozen=True)
class PageImage:
    """One image a page offers, with the size the page states (``srcset`` ``w``,
    ``og:image:width``/``height``), or None where it states none."""

    url: str
    width: int | None = None
    height: int | None = None


def find_image_candidates(
    html: str | bytes, base_url: str, source: SourceConfig
) -> tuple[list[PageImage], tuple[str, ...]]:
    """Every image candidate of a page (not only the first), in page order, deduplicated.

    For each element matched by the selector: the ``<source>`` entries of its enclosing
    ``<picture>`` (every ``srcset`` candidate), its own ``srcset`` candidates, lazy-load
    attributes and ``src`` (or exactly ``source.attribute``); then the fallbacks. Sizes
    are what the page states; the scraper ranks them and fetches to learn the rest.
    Returns the candidates and the never-fetched schemes dropped (see :func:`find_images`).
    """
    soup = BeautifulSoup(html, "html.parser")
    base = _document_base(soup, base_url)
    raw: list[tuple[str, int | None, int | None]] = []
    for element in soup.select(source.selector):
        picture = element if element.name == "picture" else element.find_parent("picture")
        image: Tag = element
        if isinstance(picture, Tag):
            for entry in picture.find_all("source"):
                if isinstance(entry, Tag):
                    raw.extend(_srcset_entries(_attr(entry, "srcset")))
        if element.name == "picture":
            inner = element.find("img")
            image = inner if isinstance(inner, Tag) else element
        names = (source.attribute,) if source.attribute else DEFAULT_ATTRIBUTES
        for name in names:
            value = _attr(image, name)
            if not value:
                continue
            if name.endswith("srcset"):
                raw.extend(_srcset_entries(value))
            else:
                raw.append((value, None, None))
    for fallback in source.fallbacks:
        if fallback == "og:image":
            raw.extend(_og_images(soup))
        elif fallback == "twitter:image":
            raw.extend((url, None, None) for url in _meta_urls(soup, _TWITTER_PROPERTIES))
        elif fallback == "json-ld":
            raw.extend((url, None, None) for url in _json_ld_urls(soup))
    found: dict[str, PageImage] = {}
    ignored: set[str] = set()
    for value, width, height in raw:
        url = _absolute(value, base)
        if url is None:
            scheme = value.strip().lower().split(":", 1)[0] + ":"
            if scheme in _NEVER_USEFUL_SCHEMES:
                ignored.add(scheme)
            continue
        held = found.get(url)
        if held is None or (width or 0) > (held.width or 0):
            found[url] = PageImage(url, width, height if width else None)
    return list(found.values()), tuple(sorted(ignored))


def _srcset_entries(value: str) -> list[tuple[str, int | None, int | None]]:
    """Every ``srcset`` candidate, largest first: ``w`` widths known, densities not."""
    entries = sorted(_descriptors(value), key=lambda entry: -entry[1])
    return [
        (url, int(number) if unit == "w" and number >= 1 else None, None)
        for url, number, unit in entries
    ]


def _og_images(soup: BeautifulSoup) -> list[tuple[str, int | None, int | None]]:
    """og:image URLs with the og:image:width/height that follow each one."""
    images: list[list[Any]] = []
    for meta in soup.find_all("meta"):
        if not isinstance(meta, Tag):
            continue
        key = (_attr(meta, "property") or _attr(meta, "name")).lower()
        content = _attr(meta, "content")
        if key in _OG_PROPERTIES and content:
            images.append([content, None, None])
        elif key in ("og:image:width", "og:image:height") and images and content.isdigit():
            images[-1][1 if key.endswith("width") else 2] = int(content)
    return [(url, width, height) for url, width, height in images]
