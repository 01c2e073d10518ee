"""The image formats this service knows: one table for validation, naming and storage.

Validation accepts a format only if it is listed here and this Pillow build decodes it;
object names take their extension from here; stores take their Content-Type from here.
Adding a format is one row, so the three can never disagree again (an AVIF original
used to pass validation and then fail in storage, whose own table lacked it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from PIL import features


@dataclass(frozen=True)
class ImageFormat:
    """One format: our name, the only Pillow plugin allowed to parse it, its web identity."""

    name: str  # "jpeg", "png", ...
    pillow: str  # Pillow's plugin / save format name
    content_type: str
    extension: str  # object-name extension, no dot
    pillow_feature: str | None = None  # a Pillow feature that must be built in (e.g. "avif")

    @property
    def available(self) -> bool:
        """True when this Pillow build can decode (and encode) the format."""
        return self.pillow_feature is None or bool(features.check(self.pillow_feature))


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("jpeg", "JPEG", "image/jpeg", "jpg"),
    ImageFormat("png", "PNG", "image/png", "png"),
    ImageFormat("gif", "GIF", "image/gif", "gif"),
    ImageFormat("webp", "WEBP", "image/webp", "webp", pillow_feature="webp"),
    ImageFormat("avif", "AVIF", "image/avif", "avif", pillow_feature="avif"),
)

_BY_NAME = {fmt.name: fmt for fmt in FORMATS}
_BY_CONTENT_TYPE = {fmt.content_type: fmt for fmt in FORMATS}

#: Every extension an object name may carry (``core.naming`` checks names against it).
EXTENSIONS = frozenset(fmt.extension for fmt in FORMATS)


@cache
def available_formats() -> dict[str, ImageFormat]:
    """The formats this Pillow build handles, by name (cached: features are fixed per build)."""
    return {fmt.name: fmt for fmt in FORMATS if fmt.available}


def format_named(name: str) -> ImageFormat:
    """The format called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown image format {name!r}; known: {sorted(_BY_NAME)}") from None


def format_for_content_type(content_type: str) -> ImageFormat:
    """The format whose Content-Type is ``content_type`` (parameters ignored)."""
    base = content_type.split(";", 1)[0].strip().lower()
    try:
        return _BY_CONTENT_TYPE[base]
    except KeyError:
        raise KeyError(
            f"no image format has Content-Type {content_type!r}; known: {sorted(_BY_CONTENT_TYPE)}"
        ) from None
