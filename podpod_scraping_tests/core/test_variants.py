"""Variants, the avatar crop and the placeholders, rendered from real images made in code."""

from __future__ import annotations

import base64
from io import BytesIO
from typing import Any

import blurhash
import pytest
import thash
from PIL import Image
from pydantic import ValidationError

from podpod_scraping.core.images import ImagePolicy, decode_image
from podpod_scraping.core.variants import (
    AvatarMethod,
    Variant,
    VariantKind,
    VariantPolicy,
    VariantSet,
    avatar_box,
    expected_count,
    largest_face,
    render_variants,
)
from podpod_scraping_tests.core.images_factory import band_photo, encode, photo, photo_bytes

POLICY = ImagePolicy()


def _render(data: bytes, policy: ImagePolicy = POLICY) -> VariantSet:
    decoded = decode_image(data, policy)
    info = decoded.info
    return render_variants(
        decoded.variant_source, policy.variants, width=info.width, height=info.height
    )


def _open(variant: Variant) -> Image.Image:
    image = Image.open(BytesIO(variant.data))
    image.load()
    return image


def _by(found: VariantSet, kind: VariantKind) -> dict[tuple[str, int], Variant]:
    return {(v.format, v.width): v for v in found.variants if v.kind is kind}


def test_a_portrait_gets_every_width_in_webp_avatars_and_one_jpeg_fallback() -> None:
    found = _render(photo_bytes(1200, 1600, "JPEG", quality=90))

    full = _by(found, VariantKind.FULL)
    assert sorted(full) == [("webp", w) for w in (128, 320, 640, 1024)]
    assert all(v.height == round(v.width * 4 / 3) for v in full.values())
    assert sorted(_by(found, VariantKind.AVATAR)) == sorted(full)
    assert all(v.width == v.height for v in _by(found, VariantKind.AVATAR).values())
    (fallback,) = _by(found, VariantKind.FALLBACK).values()
    assert (fallback.format, fallback.width, fallback.content_type) == ("jpeg", 1024, "image/jpeg")
    for variant in found.variants:
        image = _open(variant)
        assert image.size == (variant.width, variant.height)
        assert Image.MIME[str(image.format)] == variant.content_type
    assert len(found.variants) == expected_count(POLICY.variants, 1200, 1600)


def test_avif_variants_are_encoded_when_configured() -> None:
    policy = ImagePolicy.model_validate({"variants": {"formats": ["webp", "avif"]}})

    found = _render(photo_bytes(800, 600, "JPEG"), policy)

    avif = [v for v in found.variants if v.format == "avif"]
    assert [v.width for v in avif if v.kind is VariantKind.FULL] == [128, 320, 640]
    assert all(_open(v).format == "AVIF" and v.content_type == "image/avif" for v in avif)


def test_the_avatar_of_a_band_photo_contains_its_off_centre_face() -> None:
    image, (x, y, w, h) = band_photo(1200, 600, face_size=220)
    assert largest_face(image) is not None  # the real Haar cascade fires on the drawn face

    (left, top, right, bottom), method = avatar_box(image)

    assert method is AvatarMethod.FACE
    assert left <= x
    assert x + w <= right
    assert top <= y
    assert y + h <= bottom
    assert left > (image.width - image.height) // 2  # not the centre crop, which cuts it


def test_a_band_photo_records_the_face_method() -> None:
    image, _ = band_photo()

    found = _render(encode(image, "JPEG", quality=92))

    assert found.avatar_method is AvatarMethod.FACE


def test_an_image_without_a_face_is_cropped_by_saliency() -> None:
    image = photo(1200, 600)
    assert largest_face(image) is None

    (left, top, right, bottom), method = avatar_box(image)

    assert method is AvatarMethod.SALIENCY
    assert (right - left, bottom - top) == (600, 600)


def test_face_detection_off_never_reports_a_face() -> None:
    image, _ = band_photo()

    _, method = avatar_box(image, faces=False)

    assert method is AvatarMethod.SALIENCY


def test_a_tiny_image_gets_no_upscaled_variant() -> None:
    found = _render(photo_bytes(240, 200, "PNG"))

    full = _by(found, VariantKind.FULL)
    assert sorted(width for _, width in full) == [128]  # never more than the original
    assert sorted(width for _, width in _by(found, VariantKind.AVATAR)) == [128]
    (fallback,) = _by(found, VariantKind.FALLBACK).values()
    assert (fallback.width, fallback.height) == (240, 200)  # the fallback serves its own width
    assert all(v.width <= 240 and v.height <= 200 for v in found.variants)
    assert (found.placeholders.width, found.placeholders.height) == (240, 200)
    assert len(found.variants) == expected_count(POLICY.variants, 240, 200)


def test_original_width_adds_a_webp_at_the_originals_own_width() -> None:
    policy = ImagePolicy.model_validate({"variants": {"original_width": True}})

    found = _render(photo_bytes(240, 200, "PNG"), policy)

    assert sorted(w for _, w in _by(found, VariantKind.FULL)) == [128, 240]
    assert sorted(w for _, w in _by(found, VariantKind.AVATAR)) == [128, 200]
    assert len(found.variants) == expected_count(policy.variants, 240, 200)


def test_an_image_narrower_than_every_width_gets_its_own_width() -> None:
    policy = ImagePolicy.model_validate({"min_width": 64, "min_height": 64})

    found = _render(photo_bytes(100, 90, "PNG"), policy)

    assert sorted(w for _, w in _by(found, VariantKind.FULL)) == [100]
    assert sorted(w for _, w in _by(found, VariantKind.AVATAR)) == [90]
    assert len(found.variants) == expected_count(policy.variants, 100, 90)


def test_a_cmyk_jpeg_gives_rgb_variants() -> None:
    data = encode(photo(640, 480).convert("CMYK"), "JPEG", quality=90)

    found = _render(data)

    assert {_open(v).mode for v in found.variants} == {"RGB"}


def test_an_animated_gif_gives_variants_of_its_first_frame() -> None:
    red, blue = Image.new("RGB", (400, 300), (220, 20, 20)), Image.new("RGB", (400, 300), "blue")
    for frame in (red, blue):  # detail so neither frame is a flat placeholder
        frame.paste(photo(120, 90), (10, 10))
    gif = BytesIO()
    red.save(gif, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)

    found = _render(gif.getvalue())

    (fallback,) = _by(found, VariantKind.FALLBACK).values()
    r, _g, b = _open(fallback).convert("RGB").getpixel((390, 290))  # type: ignore[misc]
    assert r > 150
    assert b < 100
    assert not getattr(_open(found.variants[0]), "is_animated", False)


def test_a_transparent_png_keeps_alpha_in_webp_and_the_jpeg_is_flattened_on_white() -> None:
    image = photo(400, 300).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 100, 300))  # a transparent left band
    found = _render(encode(image, "PNG"))

    webp = _open(_by(found, VariantKind.FULL)[("webp", 320)])
    assert webp.mode == "RGBA"
    assert webp.getpixel((8, 120))[3] == 0  # type: ignore[index]
    (fallback,) = _by(found, VariantKind.FALLBACK).values()
    assert all(channel > 245 for channel in _open(fallback).getpixel((10, 150)))  # type: ignore[union-attr]


def test_blurhash_decodes_to_the_images_aspect() -> None:
    found = _render(photo_bytes(1200, 600, "JPEG"))
    placeholders = found.placeholders

    assert placeholders.aspect_ratio == 2.0
    width = 40
    height = round(width / placeholders.aspect_ratio)
    decoded = blurhash.decode(placeholders.blurhash, width, height)
    assert decoded.size == (width, height)
    size_flag = _BASE83.index(placeholders.blurhash[0])  # (x - 1) + (y - 1) * 9 components
    assert size_flag % 9 + 1 > size_flag // 9 + 1  # more columns than rows: landscape


def test_thumbhash_and_colour_describe_the_image() -> None:
    found = _render(photo_bytes(600, 900, "JPEG"))
    placeholders = found.placeholders

    ratio = thash.thumb_hash_to_approximate_aspect_ratio(
        list(base64.b64decode(placeholders.thumbhash))
    )
    assert ratio == pytest.approx(600 / 900, abs=0.1)
    assert placeholders.dominant_color.startswith("#")
    assert len(placeholders.dominant_color) == 7
    int(placeholders.dominant_color[1:], 16)


def test_the_same_original_renders_the_same_bytes() -> None:
    data = photo_bytes(900, 700, "JPEG")

    first, second = _render(data), _render(data)

    assert [v.sha256 for v in first.variants] == [v.sha256 for v in second.variants]
    assert first.placeholders == second.placeholders


def test_the_set_fingerprint_follows_the_settings_and_is_none_when_off() -> None:
    default = VariantPolicy()

    assert default.fingerprint == VariantPolicy().fingerprint
    assert len(default.fingerprint or "") == 12
    assert VariantPolicy(widths=(128, 640)).fingerprint != default.fingerprint
    assert VariantPolicy(enabled=False).fingerprint is None


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"widths": []}, "at least one width"),
        ({"widths": [320, 128]}, "increasing without repeats"),
        ({"widths": [128, 128]}, "increasing without repeats"),
        ({"widths": [0, 128]}, "greater than or equal to 1"),
        ({"widths": [True]}, "valid integer"),
        ({"widths": [128, 2048]}, "max_side is 1024"),
        ({"formats": []}, "at least one"),
        ({"formats": ["gif"]}, "'webp' or 'avif'"),
        ({"formats": ["webp", "webp"]}, "must not repeat"),
        ({"quality": 0}, "greater than or equal to 1"),
        ({"quality": 101}, "less than or equal to 100"),
        ({"avif_speed": 11}, "less than or equal to 10"),
        ({"avatar": "yes"}, "valid boolean"),
        ({"face_detectoin": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_variant_settings_are_refused_clearly(variants: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ImagePolicy.model_validate({"variants": variants})


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
