"""Validate untrusted image bytes and normalize them into the one format the app serves.

Everything here treats its input as hostile: the type is decided from the bytes (never a
Content-Type header or a file extension), Pillow only ever sees the allow-listed formats,
the pixel count is checked from the header *before* any pixel is decoded, and truncated or
corrupt files are refused rather than padded. Normalization is deterministic (same input
bytes, same output bytes) so a rerun publishes the same content-addressed object.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from io import BytesIO
from typing import Annotated, Literal, Self

import imagehash
from PIL import ExifTags, Image, ImageCms, ImageOps, ImageStat
from pydantic import Field, StrictInt, StrictStr, field_validator, model_validator

from podpod_scraping.core.formats import ImageFormat, available_formats, format_named
from podpod_scraping.core.outcomes import Outcome, ScrapeError, sha256_hex
from podpod_scraping.core.schema import FiniteFloat, FrozenModel, PositiveInt
from podpod_scraping.core.variants import VariantPolicy, encode_image, flatten_on_white

# Placeholder detection works on a reduced copy: phash only looks at 32x32 anyway, and the
# flat-colour test needs a few thousand pixels, not millions.
_PREVIEW_SIDE = 256
# A published photo has far more contrast than this in at least one channel; blank
# avatars and single-colour blocks (even after JPEG noise) stay well below it.
FLAT_COLOUR_MAX_STDDEV = 3.0
_PHASH_HEX_LENGTH = 16  # imagehash.phash default: 8x8 bits


# Formats recognised only to give a precise refusal; Pillow never parses them.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\x1f\x8b", "gzip-compressed data"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


class ImagePolicy(FrozenModel):
    """What an acceptable image is and how it is published (the ``images`` config section)."""

    max_pixels: PositiveInt = 40_000_000
    min_width: PositiveInt = 200
    min_height: PositiveInt = 200
    max_aspect_ratio: Annotated[FiniteFloat, Field(ge=1.0)] = 3.0  # long side / short side
    max_side: PositiveInt = 1024
    output_format: Literal["jpeg", "webp"] = "jpeg"
    quality: Annotated[StrictInt, Field(ge=1, le=100)] = 85
    placeholder_hashes: tuple[StrictStr, ...] = ()
    placeholder_max_distance: Annotated[StrictInt, Field(ge=0, le=64)] = 6
    variants: VariantPolicy = VariantPolicy()

    @field_validator("placeholder_hashes")
    @classmethod
    def _hashes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            _parse_hash(value)  # ValueError names the hash and the expected form
        return values

    @model_validator(mode="after")
    def _side_fits_minimum(self) -> Self:
        if self.max_side < max(self.min_width, self.min_height):
            raise ValueError(
                f"max_side ({self.max_side}) must be at least min_width and min_height "
                f"({self.min_width}, {self.min_height}): no image could pass otherwise"
            )
        widest = self.variants.widths[-1]
        if self.variants.enabled and widest > self.max_side:
            raise ValueError(
                f"variants.widths go up to {widest} px but max_side is {self.max_side}: "
                "originals are decoded towards max_side, so wider variants would be upscaled"
            )
        return self


class ImageRejected(ScrapeError):
    """The bytes are not an image we accept.

    The outcome is one of NOT_AN_IMAGE, INVALID_IMAGE, TOO_SMALL, TOO_LARGE or PLACEHOLDER.
    """


@dataclass(frozen=True)
class ImageInfo:
    """What validation learnt about an accepted original."""

    format: str  # "jpeg", "png", "webp", "gif" (or "avif")
    content_type: str
    width: int  # after EXIF orientation
    height: int


@dataclass(frozen=True)
class NormalizedImage:
    """The bytes the app serves: oriented, metadata-free, sRGB, bounded, web-encoded."""

    data: bytes
    content_type: str
    extension: str  # from core.formats: "jpg", "webp", ...
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)


@dataclass(frozen=True)
class DecodedImage:
    """A validated original and its first frame, decoded once (oriented sRGB RGB).

    JPEGs may be DCT-downscaled towards the publish size while decoding, so ``image`` can
    be smaller than ``info`` says; it is what normalization and previews start from.
    ``rgba`` keeps the original's transparency (None when it had none) for the variants
    that can carry it; ``image`` has it flattened on white.
    """

    info: ImageInfo
    image: Image.Image = field(repr=False, compare=False)
    rgba: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def variant_source(self) -> Image.Image:
        """What variants are rendered from: with its alpha when the original had one."""
        return self.rgba if self.rgba is not None else self.image


def decode_image(data: bytes, policy: ImagePolicy) -> DecodedImage:
    """Validate ``data`` completely (type, size, integrity, placeholder); raise ImageRejected."""
    info, flat, image = _validate(data, policy)
    return DecodedImage(info, flat, image if image.mode == "RGBA" else None)


def inspect_image(data: bytes, policy: ImagePolicy) -> ImageInfo:
    """Validate ``data`` like :func:`decode_image` and keep only what was learnt."""
    return decode_image(data, policy).info


def normalize_decoded(decoded: DecodedImage, policy: ImagePolicy) -> NormalizedImage:
    """The publishable image of an already validated original (no second decode)."""
    image = _bound(decoded.image, policy.max_side)
    fmt = format_named(policy.output_format)
    options: dict[str, object] = {"quality": policy.quality}
    if fmt.pillow == "JPEG":
        # Baseline, not progressive: progressive encoding costs 2-5x the CPU, and Pillow holds
        # the GIL while encoding, so it would serialise a whole batch (measured: 12 vs 5 ms
        # for 600x600); optimize keeps files as small.
        options |= {"optimize": True}
    encoded = _encode(image, fmt.pillow, **options)
    return NormalizedImage(encoded, fmt.content_type, fmt.extension, image.width, image.height)


def normalize_image(data: bytes, policy: ImagePolicy) -> NormalizedImage:
    """Validate ``data`` like :func:`decode_image`, then produce the publishable image."""
    return normalize_decoded(decode_image(data, policy), policy)


def preview_jpeg(image: Image.Image, size: int = 96) -> bytes:
    """A small JPEG (at most ``size`` px, a few KB) for previews in the Dagster UI."""
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return _encode(small, "JPEG", quality=70, optimize=True)


def jpeg_data_uri(jpeg: bytes) -> str:
    """``data:image/jpeg;base64,...`` for Markdown in the Dagster UI."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def placeholder_hash(data: bytes) -> str:
    """The perceptual hash to add to ``images.placeholder_hashes`` to refuse this image.

    Computed exactly as validation computes it (first frame, oriented, alpha on white).
    """
    _, image, _ = _decode(data, ImagePolicy().max_pixels, draft_side=ImagePolicy().max_side)
    return str(imagehash.phash(_preview(flatten_on_white(image))))


def thumbnail_data_uri(data: bytes, size: int = 96) -> str:
    """A few-KB ``data:image/jpeg;base64,...`` preview of encoded image bytes."""
    _, image, _ = _decode(data, ImagePolicy().max_pixels, draft_side=size)
    return jpeg_data_uri(preview_jpeg(flatten_on_white(image), size))


# --- validation -------------------------------------------------------------------------


def _validate(data: bytes, policy: ImagePolicy) -> tuple[ImageInfo, Image.Image, Image.Image]:
    """The original's info, its image flattened on white, and as decoded (maybe RGBA)."""
    fmt, image, (width, height) = _decode(
        data,
        policy.max_pixels,
        draft_side=policy.max_side,
        max_aspect_ratio=policy.max_aspect_ratio,
    )
    if width < policy.min_width or height < policy.min_height:
        raise ImageRejected(
            Outcome.TOO_SMALL,
            f"image is {width}x{height}, minimum {policy.min_width}x{policy.min_height}",
        )
    flat = flatten_on_white(image)
    _check_placeholder(flat, policy)
    return ImageInfo(fmt.name, fmt.content_type, width, height), flat, image


def _decode(
    data: bytes, max_pixels: int, draft_side: int, max_aspect_ratio: float | None = None
) -> tuple[ImageFormat, Image.Image, tuple[int, int]]:
    """Sniff, bound and decode the first frame into an oriented sRGB RGB (or RGBA) image.

    Returns the format, the image (JPEGs may be DCT-downscaled towards ``draft_side``) and
    the full-resolution size after EXIF orientation.
    """
    fmt = _sniff(data)
    # Pillow warns above MAX_IMAGE_PIXELS and errors above twice that; honour its limit as
    # a refusal too without touching the process-wide setting.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    limit = max_pixels if pillow_limit is None else min(max_pixels, pillow_limit)
    try:
        with Image.open(BytesIO(data), formats=[fmt.pillow]) as opened:
            width, height = opened.size  # from the header: nothing decoded yet
            if width < 1 or height < 1:
                raise ImageRejected(Outcome.INVALID_IMAGE, f"image declares {width}x{height}")
            if width * height > limit:
                raise ImageRejected(
                    Outcome.TOO_LARGE, f"image has {width * height} pixels, limit {limit}"
                )
            _check_aspect_ratio(width, height, max_aspect_ratio)
            if fmt.pillow == "JPEG":
                # Let libjpeg scale by 1/2..1/8 while decoding: same checks, far less memory.
                opened.draft(None, (draft_side, draft_side))
            opened.seek(0)
            opened.load()  # full first-frame decode; truncated data raises (never padded)
            oriented, swapped = _orient(opened)
            image = _to_srgb(oriented)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # The warning only arrives as an exception where warnings are made errors.
        raise ImageRejected(Outcome.TOO_LARGE, f"decompression bomb refused: {error}") from error
    except MemoryError:
        raise
    except Exception as error:
        # Parsers of untrusted bytes fail in many ways (OSError, SyntaxError, struct.error,
        # ValueError, EOFError, ...); every one of them means a corrupt or truncated file.
        raise ImageRejected(
            Outcome.INVALID_IMAGE, f"corrupt or truncated {fmt.name}: {error}"
        ) from error
    return fmt, image, ((height, width) if swapped else (width, height))


def _sniff(data: bytes) -> ImageFormat:
    """Decide the format from magic bytes; anything not allow-listed is NOT_AN_IMAGE."""
    if not data:
        raise ImageRejected(Outcome.NOT_AN_IMAGE, "empty body is not an image")
    name: str | None = None
    if data.startswith(b"\xff\xd8\xff"):
        name = "jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        name = "png"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        name = "gif"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        name = "webp"
    elif data[4:8] == b"ftyp":
        brands = _ftyp_brands(data)
        if brands & _AVIF_BRANDS:
            name = "avif"
        elif brands & _HEIF_BRANDS:
            raise ImageRejected(Outcome.NOT_AN_IMAGE, "HEIF is not an accepted image format")
    if name is not None:
        allowed = available_formats()
        if name not in allowed:
            raise ImageRejected(Outcome.NOT_AN_IMAGE, f"{name} is not an accepted image format")
        return allowed[name]
    for magic, label in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise ImageRejected(Outcome.NOT_AN_IMAGE, f"{label} is not an accepted image format")
    markup = _describe_markup(data)
    if markup is not None:
        raise ImageRejected(Outcome.NOT_AN_IMAGE, markup)
    raise ImageRejected(
        Outcome.NOT_AN_IMAGE, f"unrecognised content starting with {data[:8]!r} is not an image"
    )


def _ftyp_brands(data: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF ``ftyp`` box (AVIF/HEIF)."""
    box_size = min(int.from_bytes(data[0:4], "big"), len(data), 256)
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, box_size - 3, 4))
    return brands


def _describe_markup(data: bytes) -> str | None:
    """Name SVG, XML and HTML bodies (including UTF-16 and BOM-prefixed ones)."""
    head = data[:65536].replace(b"\x00", b"")  # crude UTF-16 to ASCII for the tags we seek
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff\ufffe \t\r\n").lower()
    if not text.startswith("<"):
        return None
    if "<svg" in text or text.startswith("<!doctype svg"):
        return "SVG is not accepted"
    if text.startswith("<?xml") and "<html" not in text:
        return "XML document is not an image"
    if any(tag in text[:4096] for tag in ("<!doctype html", "<html", "<head", "<body")):
        return "HTML page is not an image"
    return "markup document is not an image"


def _check_aspect_ratio(width: int, height: int, max_aspect_ratio: float | None) -> None:
    if max_aspect_ratio is None:
        return
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect_ratio:
        raise ImageRejected(
            Outcome.INVALID_IMAGE, f"aspect ratio {round(ratio, 2)} exceeds {max_aspect_ratio}"
        )


def _orient(image: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation; junk EXIF is ignored rather than failing a good image."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        transposed = ImageOps.exif_transpose(image)
    except Exception:
        return image.copy(), False
    return transposed, orientation in (5, 6, 7, 8)


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB in sRGB (RGBA when some pixel is transparent), with no metadata left in ``info``.

    The alpha is kept for variants that can carry it; :func:`_flatten` puts it on white.
    """
    icc = image.info.get("icc_profile")
    if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit PNG greyscale
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
        image.info.pop("transparency", None)  # a 16-bit colour key has no 8-bit equivalent
    alpha: Image.Image | None = None
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        image = rgba.convert("RGB")
    elif image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    if icc:
        image = _apply_icc(image, icc)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if alpha is not None and alpha.getextrema() != (255, 255):
        image.putalpha(alpha)
    image.info.clear()  # comments, XMP, EXIF, ICC must never reach the encoder
    return image


def _apply_icc(image: Image.Image, icc: bytes) -> Image.Image:
    """Convert from the embedded profile to sRGB so colours survive dropping the profile."""
    try:
        source = ImageCms.core.profile_frombytes(icc)
        space = source.xcolor_space.strip()
        if (space, image.mode) not in {("RGB", "RGB"), ("CMYK", "CMYK"), ("GRAY", "L")}:
            return image
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a broken profile: fall back to the untagged colours
    return converted if converted is not None else image


def _check_placeholder(image: Image.Image, policy: ImagePolicy) -> None:
    preview = _preview(image)
    if max(ImageStat.Stat(preview).stddev) <= FLAT_COLOUR_MAX_STDDEV:
        raise ImageRejected(Outcome.PLACEHOLDER, "image is a single flat colour")
    if not policy.placeholder_hashes:
        return
    found = imagehash.phash(preview)
    for known in policy.placeholder_hashes:
        distance = found - _parse_hash(known)
        if distance <= policy.placeholder_max_distance:
            raise ImageRejected(
                Outcome.PLACEHOLDER,
                f"image matches known placeholder {known} (distance {distance})",
            )


def _preview(image: Image.Image) -> Image.Image:
    preview = image.copy()
    preview.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE), Image.Resampling.LANCZOS)
    return preview


def _parse_hash(value: str) -> imagehash.ImageHash:
    if len(value) != _PHASH_HEX_LENGTH:
        raise ValueError(f"placeholder hash {value!r} must be {_PHASH_HEX_LENGTH} hex digits")
    try:
        return imagehash.hex_to_hash(value)
    except ValueError as error:
        raise ValueError(f"placeholder hash {value!r} is not hexadecimal") from error


# --- normalization ----------------------------------------------------------------------


def _bound(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longest side is at most ``max_side``."""
    longest = max(image.size)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _encode(image: Image.Image, pillow_format: str, **options: object) -> bytes:
    return encode_image(image, pillow_format, options)


__all__ = [
    "FLAT_COLOUR_MAX_STDDEV",
    "DecodedImage",
    "ImageInfo",
    "ImagePolicy",
    "ImageRejected",
    "NormalizedImage",
    "decode_image",
    "inspect_image",
    "jpeg_data_uri",
    "normalize_decoded",
    "normalize_image",
    "placeholder_hash",
    "preview_jpeg",
    "thumbnail_data_uri",
]
