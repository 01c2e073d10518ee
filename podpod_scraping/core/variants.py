"""Everything the app needs to show an artist image well, rendered once per published image.

From one decoded original: responsive variants (configured widths, never upscaled, in WebP
and/or AVIF) plus one JPEG fallback; a square avatar at the same widths, centred on the
largest face (OpenCV's bundled Haar cascade), else on the most salient region
(``smartcrop``), else on the centre; and placeholders the app paints before any download
(BlurHash, ThumbHash, dominant colour, size, aspect ratio).

Plain Python and deterministic: the same original and policy give the same bytes, so a
rerun writes the same content-addressed objects (no-ops). Any encoding failure raises
:class:`VariantError`: the caller fails the artist's publication as a whole.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Annotated, Any, Literal

import blurhash
import cv2
import numpy as np
import smartcrop
import thash
from PIL import Image
from pydantic import Field, StrictBool, StrictInt, field_validator

from podpod_scraping.core.formats import available_formats, format_named
from podpod_scraping.core.schema import FrozenModel, PositiveInt

#: Bumped when rendering changes in a way that should give every image a new set.
RENDER_VERSION = 2
_WHITE = (255, 255, 255)
_MAX_WIDTH = 4096
#: Faces and saliency are found on a reduced copy: plenty for a crop, a fraction of the CPU.
_DETECT_SIDE = 384
_SALIENCY_SIDE = 160
_PLACEHOLDER_SIDE = 64  # ThumbHash and the colour only see a few thousand pixels
_BLURHASH_SIDE = 32  # BlurHash's 4x3 cosines and the colour need no more (cost per pixel)
_BLURHASH_COMPONENTS = 4
_AVATAR_PREVIEW_SIDE = 64


class VariantKind(StrEnum):
    """What a variant shows: the whole image, the square avatar, or the JPEG fallback."""

    FULL = "full"
    AVATAR = "avatar"
    FALLBACK = "fallback"


class AvatarMethod(StrEnum):
    """What chose the avatar's square crop (recorded per image)."""

    FACE = "face"
    SALIENCY = "saliency"
    CENTRE = "centre"


class VariantError(Exception):
    """A variant (or a placeholder) could not be rendered: nothing of the set is published."""


class VariantPolicy(FrozenModel):
    """How variants are rendered (``images.variants`` in the scraper YAML)."""

    enabled: StrictBool = True
    widths: tuple[PositiveInt, ...] = (128, 320, 640, 1024)
    formats: tuple[Literal["webp", "avif"], ...] = ("webp",)
    quality: Annotated[StrictInt, Field(ge=1, le=100)] = 80
    # libavif's speed 0 (best, very slow) .. 10 (fastest); measured in benchmarks/variants.py.
    avif_speed: Annotated[StrictInt, Field(ge=0, le=10)] = 8
    jpeg_fallback: StrictBool = True
    # A WebP at the original's own width when it is narrower than the widest width. Off by
    # default: the JPEG fallback already serves that width, and this encode, the widest
    # of the set, was about half its CPU (20 of 41 ms for the throughput benchmark's
    # 600 px images).
    original_width: StrictBool = False
    avatar: StrictBool = True
    face_detection: StrictBool = True

    @field_validator("widths")
    @classmethod
    def _widths(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values:
            raise ValueError("widths must list at least one width, e.g. [128, 320, 640, 1024]")
        if list(values) != sorted(set(values)):
            raise ValueError(f"widths must be increasing without repeats, got {list(values)}")
        if values[-1] > _MAX_WIDTH:
            raise ValueError(f"widths must be at most {_MAX_WIDTH} px, got {values[-1]}")
        return values

    @field_validator("formats")
    @classmethod
    def _formats(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError("formats must list at least one of 'webp', 'avif'")
        if len(set(values)) != len(values):
            raise ValueError(f"formats must not repeat, got {list(values)}")
        missing = [name for name in values if name not in available_formats()]
        if missing:
            raise ValueError(f"this Pillow build cannot encode {missing}; use 'webp'")
        return values

    @property
    def fingerprint(self) -> str | None:
        """Names a complete set rendered under this policy; None when variants are off.

        An image whose recorded set has another fingerprint lacks a full set: it is due
        for a refresh, and the coverage report counts it.
        """
        if not self.enabled:
            return None
        settings = self.model_dump(mode="json") | {"render": RENDER_VERSION}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return digest[:12]


@dataclass(frozen=True)
class Variant:
    """One encoded variant, ready to be written once under its content address."""

    kind: VariantKind
    format: str  # "webp", "avif", "jpeg"
    width: int
    height: int
    data: bytes
    content_type: str
    extension: str
    published: bool = False  # the published image itself (no object of its own)
    # Hashed once, when made: read several times per upload. Not a cached_property: on
    # Python 3.11 that holds one lock for every instance of the class, and with dozens of
    # threads publishing it serialised them (860 of 1030 ms per set at 64 in flight).
    sha256: str = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def byte_size(self) -> int:
        return len(self.data)

    @property
    def file_name(self) -> str:
        """``640.webp``, ``avatar-128.webp``, ``1024.jpg``: the name inside the set's folder."""
        stem = f"avatar-{self.width}" if self.kind is VariantKind.AVATAR else str(self.width)
        return f"{stem}.{self.extension}"


@dataclass(frozen=True)
class Placeholders:
    """What the app paints before any download."""

    blurhash: str
    thumbhash: str  # base64
    dominant_color: str  # "#rrggbb"
    width: int
    height: int

    @property
    def aspect_ratio(self) -> float:
        return round(self.width / self.height, 4)


@dataclass(frozen=True)
class VariantSet:
    """A complete set for one published image (all or nothing)."""

    fingerprint: str
    variants: tuple[Variant, ...]
    placeholders: Placeholders
    avatar_method: AvatarMethod | None  # None when avatars are off
    avatar_preview: bytes | None  # a small JPEG for the Dagster UI


@dataclass(frozen=True)
class VariantRequest:
    """What one image's set is rendered from: picklable, so a worker process can render it.

    ``source`` is the oriented sRGB original (RGB, or RGBA with its alpha), ``width`` x
    ``height`` its size after orientation, ``fallback`` the published JPEG when it serves
    as the set's fallback (:func:`published_fallback`).
    """

    source: Image.Image
    width: int
    height: int
    policy: VariantPolicy
    fallback: Variant | None = None

    def render(self) -> VariantSet:
        return render_variants(
            self.source, self.policy, width=self.width, height=self.height, fallback=self.fallback
        )


def render_variants(
    image: Image.Image,
    policy: VariantPolicy,
    *,
    width: int,
    height: int,
    fallback: Variant | None = None,
) -> VariantSet:
    """Render the full set from ``image`` (oriented sRGB, RGB or RGBA); raise VariantError.

    ``width`` x ``height`` is the original's size after orientation (``image`` may be a
    draft-decoded copy of it): the placeholders report it. ``fallback``, when given, is
    the JPEG already published (:func:`published_fallback`): it serves as the set's JPEG
    fallback instead of a second one. The avatar of a square image is its full variants
    (same bytes, encoded once).
    """
    fingerprint = policy.fingerprint
    if fingerprint is None:
        raise ValueError("variants are off in this policy")
    try:
        variants: list[Variant] = []
        scaled = _cascade(image, policy.widths, own=policy.original_width)
        for picture in scaled:
            variants.extend(_encode_all(picture, VariantKind.FULL, policy))
        full = list(variants)
        if policy.jpeg_fallback:
            variants.append(fallback or _fallback(image, scaled, policy))
        method: AvatarMethod | None = None
        preview: bytes | None = None
        if policy.avatar:
            square, method = avatar_crop(image, faces=policy.face_detection)
            squares = (
                scaled
                if square is image
                else _cascade(square, policy.widths, own=policy.original_width)
            )
            if square is image:  # already square: the full variants are the avatar
                variants.extend(dataclasses.replace(v, kind=VariantKind.AVATAR) for v in full)
            else:
                for picture in squares:
                    variants.extend(_encode_all(picture, VariantKind.AVATAR, policy))
            preview = _jpeg(flatten_on_white(_scale_to_width(squares[0], _AVATAR_PREVIEW_SIDE)), 70)
        # The narrowest variant has every pixel a 64 px placeholder needs (and far fewer).
        placeholders = make_placeholders(scaled[0], width=width, height=height)
    except VariantError:
        raise
    except MemoryError:
        raise
    except Exception as error:
        raise VariantError(f"{type(error).__name__}: {error}") from error
    return VariantSet(fingerprint, tuple(variants), placeholders, method, preview)


def published_fallback(data: bytes, width: int, height: int) -> Variant:
    """The published JPEG as the set's fallback: the same object, not a second encode."""
    fmt = format_named("jpeg")
    return Variant(
        VariantKind.FALLBACK,
        fmt.name,
        width,
        height,
        data,
        fmt.content_type,
        fmt.extension,
        published=True,
    )


def expected_count(policy: VariantPolicy, width: int, height: int) -> int:
    """How many variants a complete set of a ``width`` x ``height`` image has."""
    per_format = len(policy.formats)
    own = policy.original_width
    count = len(_target_widths(width, policy.widths, own=own)) * per_format
    count += 1 if policy.jpeg_fallback else 0
    if policy.avatar:
        count += len(_target_widths(min(width, height), policy.widths, own=own)) * per_format
    return count


# --- sizes and encoding -------------------------------------------------------------------


def _target_widths(available: int, widths: tuple[int, ...], *, own: bool) -> list[int]:
    """The configured widths the image can fill (never upscaled); with ``own``, also its own
    width when it is narrower than the largest. An image narrower than every width gets
    its own width either way: a set always has at least one variant of each kind."""
    fitting = [w for w in widths if w <= available]
    if available < widths[-1] and available not in fitting and (own or not fitting):
        fitting.append(available)
    return fitting


def _cascade(image: Image.Image, widths: tuple[int, ...], *, own: bool) -> list[Image.Image]:
    """``image`` at each target width, narrowest first. Each is scaled from the next wider
    one (not from the source): a 2000 px draft is resized once, the rest are cheap."""
    targets = _target_widths(image.width, widths, own=own)
    scaled: list[Image.Image] = []
    current = image
    for target in reversed(targets):
        # Heights from the source's aspect, not the previous step's (no rounding drift).
        current = _scale_to_width(current, target, aspect=image.height / image.width)
        scaled.append(current)
    return scaled[::-1]


def _scale_to_width(image: Image.Image, width: int, *, aspect: float | None = None) -> Image.Image:
    if image.width == width:
        return image
    height = max(1, round(width * (aspect if aspect is not None else image.height / image.width)))
    # Bicubic with a box pre-reduction past 3x: measured 260 vs 340 ms (LANCZOS) for a
    # whole set of a 4000x3000 photo, no visible difference at these sizes.
    return image.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)


def _fallback(image: Image.Image, scaled: list[Image.Image], policy: VariantPolicy) -> Variant:
    """One JPEG at the widest width the image fills (its own, up to the widest configured),
    for when the published image is not a JPEG and so cannot serve as the fallback."""
    width = min(image.width, policy.widths[-1])
    source = scaled[-1] if scaled[-1].width == width else _scale_to_width(image, width)
    return _encode(source, VariantKind.FALLBACK, "jpeg", policy)


def _encode_all(image: Image.Image, kind: VariantKind, policy: VariantPolicy) -> list[Variant]:
    return [_encode(image, kind, name, policy) for name in policy.formats]


def _encode(image: Image.Image, kind: VariantKind, name: str, policy: VariantPolicy) -> Variant:
    fmt = format_named(name)
    options: dict[str, Any] = {"quality": policy.quality}
    if name == "webp":
        options |= {"method": 2}  # measured: half the CPU of the default 4, ~2 % larger
    elif name == "avif":
        options |= {"speed": policy.avif_speed}
    elif name == "jpeg":
        image = flatten_on_white(image)
        options |= {"optimize": True}
    data = encode_image(image, fmt.pillow, options)
    return Variant(kind, name, image.width, image.height, data, fmt.content_type, fmt.extension)


def encode_image(image: Image.Image, pillow_format: str, options: dict[str, object]) -> bytes:
    """Encode ``image`` without any metadata (the one place images are encoded).

    Into an anonymous file, not a BytesIO: Pillow's JPEG and PNG encoders release the GIL
    only while writing to a file descriptor. Into a BytesIO, two threads encoding JPEGs
    took 1.6x as long as one; into a file, 1.0x. The pipeline encodes on dozens of threads.
    """
    image.info.clear()
    with _scratch_file() as out:
        image.save(out, pillow_format, **options)
        out.seek(0)
        return out.read()


def _scratch_file() -> IO[bytes]:
    """A file in memory with a descriptor (Linux ``memfd``), else a temporary file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("podpod-encode", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    return encode_image(image, "JPEG", {"quality": quality, "optimize": True})


def flatten_on_white(image: Image.Image) -> Image.Image:
    """RGB with any alpha composited on white (what validation and JPEG see)."""
    if image.mode != "RGBA":
        return image if image.mode == "RGB" else image.convert("RGB")
    flat = Image.new("RGB", image.size, _WHITE)
    flat.paste(image, (0, 0), image)
    return flat


# --- the avatar crop ----------------------------------------------------------------------

_cascade_lock = threading.Lock()
_cascades: dict[int, Any] = {}


def _face_cascade() -> Any:
    """OpenCV's bundled frontal-face Haar cascade, one per thread (it is not thread-safe)."""
    key = threading.get_ident()
    with _cascade_lock:
        cascade = _cascades.get(key)
        if cascade is None:
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise VariantError(f"OpenCV face cascade missing at {path}")
            _cascades[key] = cascade
        return cascade


def largest_face(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The largest frontal face as ``(x, y, w, h)`` in ``image``'s pixels, or None."""
    scale = min(1.0, _DETECT_SIDE / max(image.size))
    small = image.convert("L")
    if scale < 1.0:
        small = small.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BILINEAR,
        )
    grey = cv2.equalizeHist(np.asarray(small))
    side = min(small.size)
    faces = _face_cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(max(20, side // 10),) * 2
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in face) for face in faces), key=lambda f: f[2] * f[3])
    return round(x / scale), round(y / scale), round(w / scale), round(h / scale)


def avatar_box(
    image: Image.Image, *, faces: bool = True
) -> tuple[tuple[int, int, int, int], AvatarMethod]:
    """The largest square ``(left, top, right, bottom)``: centred on the largest face, else
    on the salient region, else on the centre; with the method that placed it."""
    side = min(image.size)
    if image.width == image.height:
        return (0, 0, side, side), AvatarMethod.CENTRE  # nothing to choose
    face = largest_face(image) if faces else None
    if face is not None:
        x, y, w, h = face
        left, top = _centred(x + w / 2, image.width, side), _centred(y + h / 2, image.height, side)
        method = AvatarMethod.FACE
    else:
        salient = _salient_origin(image, side)
        if salient is not None:
            (left, top), method = salient, AvatarMethod.SALIENCY
        else:
            left, top = (image.width - side) // 2, (image.height - side) // 2
            method = AvatarMethod.CENTRE
    return (left, top, left + side, top + side), method


def avatar_crop(image: Image.Image, *, faces: bool = True) -> tuple[Image.Image, AvatarMethod]:
    """The square avatar of ``image`` (see :func:`avatar_box`) and the method that chose it."""
    box, method = avatar_box(image, faces=faces)
    return (image if box == (0, 0, *image.size) else image.crop(box)), method


def _centred(centre: float, extent: int, side: int) -> int:
    """The start of a ``side`` window centred on ``centre``, kept inside ``extent``."""
    return int(min(max(round(centre - side / 2), 0), extent - side))


def _salient_origin(image: Image.Image, side: int) -> tuple[int, int] | None:
    """Where smartcrop puts the square (edges, skin, saturation), or None if it cannot."""
    scale = min(1.0, _SALIENCY_SIDE / max(image.size))
    small = flatten_on_white(image).resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    small_side = max(1, min(small.size))
    try:
        crop = smartcrop.SmartCrop().crop(small, small_side, small_side, prescale=False)
        box = crop["top_crop"]
    except (ValueError, KeyError, ZeroDivisionError, IndexError):
        return None
    left = _centred((box["x"] + box["width"] / 2) / scale, image.width, side)
    top = _centred((box["y"] + box["height"] / 2) / scale, image.height, side)
    return left, top


# --- placeholders -------------------------------------------------------------------------


def make_placeholders(image: Image.Image, *, width: int, height: int) -> Placeholders:
    """BlurHash, ThumbHash and the dominant colour of ``image``; the original's size."""
    small = image.copy()
    small.thumbnail((_PLACEHOLDER_SIDE, _PLACEHOLDER_SIDE), Image.Resampling.BILINEAR)
    rgb = flatten_on_white(small)
    x_components = _BLURHASH_COMPONENTS if rgb.width >= rgb.height else 3
    y_components = _BLURHASH_COMPONENTS if rgb.height > rgb.width else 3
    thumb = thash.encode(small.convert("RGBA"), resize=True, target_size=_PLACEHOLDER_SIDE)
    tiny = rgb.copy()  # a copy either way: the BlurHash encoder closes its input
    tiny.thumbnail((_BLURHASH_SIDE, _BLURHASH_SIDE), Image.Resampling.BILINEAR)
    colour = dominant_color(tiny)  # median cut costs per pixel: a thousand are plenty
    blur = blurhash.encode(tiny, x_components, y_components)
    return Placeholders(
        blurhash=blur,
        thumbhash=base64.b64encode(bytes(thumb)).decode("ascii"),
        dominant_color=colour,
        width=width,
        height=height,
    )


def dominant_color(image: Image.Image) -> str:
    """``#rrggbb`` of the most common of a few median-cut colours (not the mean's mud)."""
    quantized = image.convert("RGB").quantize(colors=5, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or [0, 0, 0]
    counts: list[tuple[int, int]] = [
        (int(count), int(index))  # type: ignore[arg-type]  # "P" images give int indices
        for count, index in (quantized.getcolors() or [(1, 0)])
    ]
    _, index = max(counts, key=lambda item: (item[0], -item[1]))
    red, green, blue = palette[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


__all__ = [
    "AvatarMethod",
    "Placeholders",
    "Variant",
    "VariantError",
    "VariantKind",
    "VariantPolicy",
    "VariantSet",
    "avatar_box",
    "avatar_crop",
    "dominant_color",
    "encode_image",
    "expected_count",
    "flatten_on_white",
    "largest_face",
    "make_placeholders",
    "published_fallback",
    "render_variants",
]
