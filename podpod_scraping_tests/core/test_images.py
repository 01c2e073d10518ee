"""Validation and normalization of untrusted image bytes (pure: no network, no files)."""

from __future__ import annotations

import base64
from io import BytesIO

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageStat, features

from podpod_scraping.core.images import (
    ImageInfo,
    ImagePolicy,
    ImageRejected,
    inspect_image,
    normalize_image,
    placeholder_hash,
    thumbnail_data_uri,
)
from podpod_scraping.core.outcomes import Outcome, ScrapeError
from podpod_scraping_tests.core.images_factory import (
    encode,
    photo,
    photo_bytes,
    png_declaring,
    silhouette,
)

POLICY = ImagePolicy()


def rejection(data: bytes, policy: ImagePolicy = POLICY) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(data, policy)
    return caught.value


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --- accepted formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "expected"),
    [
        ("JPEG", ImageInfo("jpeg", "image/jpeg", 640, 480)),
        ("PNG", ImageInfo("png", "image/png", 640, 480)),
        ("GIF", ImageInfo("gif", "image/gif", 640, 480)),
        ("WEBP", ImageInfo("webp", "image/webp", 640, 480)),
    ],
)
def test_allowed_formats_are_identified_from_their_bytes(
    pillow_format: str, expected: ImageInfo
) -> None:
    assert inspect_image(photo_bytes(640, 480, pillow_format), POLICY) == expected


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no native AVIF")
def test_avif_is_accepted_when_pillow_decodes_it_natively() -> None:
    assert inspect_image(photo_bytes(640, 480, "AVIF"), POLICY).content_type == "image/avif"


def test_image_rejected_is_a_scrape_error_with_an_outcome() -> None:
    error = rejection(b"")
    assert isinstance(error, ScrapeError)
    assert error.outcome is Outcome.NOT_AN_IMAGE


# --- not an image -------------------------------------------------------------------------


def test_html_page_served_as_an_image_is_not_an_image() -> None:
    page = b"\xef\xbb\xbf\n  <!DOCTYPE html><html><head><title>404</title></head><body/></html>"
    error = rejection(page)
    assert error.outcome is Outcome.NOT_AN_IMAGE
    assert "HTML" in error.reason


@pytest.mark.parametrize(
    "svg",
    [
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="500" '
        b'height="500"><script>alert(document.cookie)</script><rect width="500" '
        b'height="500"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500"/>',
        '<?xml version="1.0" encoding="UTF-16"?><svg width="500"/>'.encode("utf-16"),
    ],
    ids=["with-script", "bare", "utf-16"],
)
def test_svg_is_refused_explicitly(svg: bytes) -> None:
    error = rejection(svg)
    assert error.outcome is Outcome.NOT_AN_IMAGE
    assert error.reason == "SVG is not accepted"


@pytest.mark.parametrize("pillow_format", ["BMP", "TIFF", "ICO"])
def test_image_formats_outside_the_allow_list_are_refused(pillow_format: str) -> None:
    error = rejection(encode(photo(256, 256), pillow_format))
    assert error.outcome is Outcome.NOT_AN_IMAGE
    assert "not an accepted image format" in error.reason


@pytest.mark.parametrize("data", [b"", b"just some text", bytes(range(256))])
def test_unrecognised_bytes_are_not_an_image(data: bytes) -> None:
    assert rejection(data).outcome is Outcome.NOT_AN_IMAGE


# --- bombs and pixel limits ---------------------------------------------------------------


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any pixel decoding fail loudly, to prove a refusal came from the header."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.usefixtures("no_decoding")
def test_png_bomb_declaring_huge_dimensions_is_refused_before_decoding() -> None:
    bomb = png_declaring(50_000, 50_000)
    assert len(bomb) < 200_000
    error = rejection(bomb)
    assert error.outcome is Outcome.TOO_LARGE
    assert "2500000000 pixels" in error.reason


@pytest.mark.usefixtures("no_decoding")
def test_image_over_the_policy_pixel_limit_is_refused_before_decoding() -> None:
    error = rejection(png_declaring(8000, 6000))
    assert error.outcome is Outcome.TOO_LARGE
    assert error.reason == "image has 48000000 pixels, limit 40000000"


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_limit_still_applies_when_the_policy_allows_more() -> None:
    error = rejection(png_declaring(10_000, 10_000), ImagePolicy(max_pixels=10**9))
    assert error.outcome is Outcome.TOO_LARGE
    assert f"limit {Image.MAX_IMAGE_PIXELS}" in error.reason


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_raised_as_error_is_a_refusal() -> None:
    error = rejection(png_declaring(10_000, 10_000), ImagePolicy(max_pixels=10**9))
    assert error.outcome is Outcome.TOO_LARGE


def test_validation_leaves_pillow_global_settings_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    rejection(png_declaring(50_000, 50_000))
    rejection(photo_bytes(640, 480, "JPEG")[:5000])
    assert before == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- corrupt, small, odd shapes -----------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"progressive": True}], ids=["baseline", "progressive"])
def test_truncated_jpeg_is_invalid(options: dict[str, bool]) -> None:
    whole = photo_bytes(640, 480, "JPEG", **options)
    error = rejection(whole[: len(whole) // 2])
    assert error.outcome is Outcome.INVALID_IMAGE
    assert "truncated" in error.reason


@pytest.mark.parametrize("pillow_format", ["PNG", "GIF", "WEBP"])
def test_truncated_files_of_other_formats_are_invalid(pillow_format: str) -> None:
    whole = photo_bytes(640, 480, pillow_format)
    assert rejection(whole[: len(whole) * 6 // 10]).outcome is Outcome.INVALID_IMAGE


def test_jpeg_missing_only_its_end_marker_is_invalid() -> None:
    assert rejection(photo_bytes(640, 480, "JPEG")[:-2]).outcome is Outcome.INVALID_IMAGE


def test_garbage_after_a_png_signature_is_invalid() -> None:
    assert rejection(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100).outcome is Outcome.INVALID_IMAGE


def test_one_pixel_image_is_too_small() -> None:
    error = rejection(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert error.outcome is Outcome.TOO_SMALL
    assert error.reason == "image is 1x1, minimum 200x200"


def test_absurd_aspect_ratio_is_invalid() -> None:
    error = rejection(photo_bytes(2000, 200, "PNG"))
    assert error.outcome is Outcome.INVALID_IMAGE
    assert error.reason == "aspect ratio 10.0 exceeds 3.0"


# --- placeholders -------------------------------------------------------------------------


def test_placeholder_hash_is_sixteen_hex_digits() -> None:
    value = placeholder_hash(encode(silhouette(), "PNG"))
    assert len(value) == 16
    int(value, 16)


def test_listed_placeholder_is_refused() -> None:
    original = encode(silhouette(), "PNG")
    policy = ImagePolicy(placeholder_hashes=(placeholder_hash(original),))
    error = rejection(original, policy)
    assert error.outcome is Outcome.PLACEHOLDER
    assert "placeholder" in error.reason


def test_resized_and_reencoded_placeholder_is_still_refused() -> None:
    policy = ImagePolicy(placeholder_hashes=(placeholder_hash(encode(silhouette(), "PNG")),))
    variant = encode(silhouette(500).resize((320, 320)), "JPEG", quality=70)
    assert rejection(variant, policy).outcome is Outcome.PLACEHOLDER


def test_placeholder_list_does_not_refuse_a_real_photo() -> None:
    policy = ImagePolicy(placeholder_hashes=(placeholder_hash(encode(silhouette(), "PNG")),))
    assert inspect_image(photo_bytes(500, 500, "JPEG"), policy).width == 500


def test_flat_colour_image_is_a_placeholder() -> None:
    error = rejection(encode(Image.new("RGB", (400, 400), (30, 120, 200)), "JPEG"))
    assert error.outcome is Outcome.PLACEHOLDER
    assert error.reason == "image is a single flat colour"


# --- normalization ------------------------------------------------------------------------


def test_animated_gif_uses_its_first_frame() -> None:
    first = Image.new("RGB", (300, 300), (255, 0, 0))
    first.paste((0, 255, 0), (150, 0, 300, 300))
    second = Image.new("RGB", (300, 300), (0, 0, 255))
    second.paste((255, 255, 0), (150, 0, 300, 300))
    gif = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert getattr(Image.open(BytesIO(gif)), "n_frames", 1) == 2

    out = decoded(normalize_image(gif, POLICY).data)
    assert close(pixel(out, (75, 150)), (255, 0, 0))
    assert close(pixel(out, (225, 150)), (0, 255, 0))


def _oriented_jpeg() -> bytes:
    """400x300 stored pixels, red marker top-left, EXIF orientation 6 (rotate 90 CW)."""
    image = photo(400, 300)
    image.paste((255, 0, 0), (0, 0, 60, 60))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "CameraMaker"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (37.0, 33.0, 59.0),
    }
    return encode(
        image,
        "JPEG",
        exif=exif,
        comment=b"secret comment",
        xmp=b"<x:xmpmeta>secret xmp</x:xmpmeta>",
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )


def test_exif_orientation_is_reported_and_applied() -> None:
    data = _oriented_jpeg()
    assert inspect_image(data, POLICY) == ImageInfo("jpeg", "image/jpeg", 300, 400)

    normalized = normalize_image(data, POLICY)
    out = decoded(normalized.data)
    assert (normalized.width, normalized.height) == out.size == (300, 400)
    assert close(pixel(out, (300 - 30, 30)), (255, 0, 0))  # top-left rotated to top-right
    assert not close(pixel(out, (30, 30)), (255, 0, 0))


def test_all_metadata_is_stripped_from_the_output() -> None:
    data = _oriented_jpeg()
    source = Image.open(BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries GPS

    out_bytes = normalize_image(data, POLICY).data
    out = decoded(out_bytes)
    assert not out.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(out.info)
    for secret in (b"Exif\x00\x00", b"CameraMaker", b"secret", b"xmpmeta"):
        assert secret not in out_bytes


def test_colours_of_an_srgb_tagged_image_survive_dropping_the_profile() -> None:
    source = photo(400, 400)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = decoded(normalize_image(encode(source, "PNG", icc_profile=icc), POLICY).data)
    assert "icc_profile" not in out.info
    for got, want in zip(ImageStat.Stat(out).mean, ImageStat.Stat(source).mean, strict=True):
        assert abs(got - want) < 3


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    source = photo(400, 400)
    normalized = normalize_image(encode(source.convert("CMYK"), "JPEG"), POLICY)
    out = decoded(normalized.data)
    assert out.mode == "RGB"
    for got, want in zip(ImageStat.Stat(out).mean, ImageStat.Stat(source).mean, strict=True):
        assert abs(got - want) < 8


def test_sixteen_bit_greyscale_png_keeps_its_tones() -> None:
    grey = photo(400, 400).convert("L")
    deep = grey.convert("I").point(lambda value: value * 256).convert("I;16")
    out = decoded(normalize_image(encode(deep, "PNG"), POLICY).data)
    assert out.mode == "RGB"
    assert abs(ImageStat.Stat(out.convert("L")).mean[0] - ImageStat.Stat(grey).mean[0]) < 3


def test_large_image_is_downscaled_to_the_maximum_side() -> None:
    normalized = normalize_image(photo_bytes(2000, 1500, "JPEG"), POLICY)
    assert (normalized.width, normalized.height) == (1024, 768)
    assert decoded(normalized.data).size == (1024, 768)


def test_very_large_jpeg_reports_its_full_size_and_is_downscaled() -> None:
    data = photo_bytes(4000, 3000, "JPEG")
    assert inspect_image(data, POLICY).width == 4000
    assert decoded(normalize_image(data, POLICY).data).size == (1024, 768)


def test_small_image_is_never_upscaled() -> None:
    normalized = normalize_image(photo_bytes(640, 480, "PNG"), POLICY)
    assert (normalized.width, normalized.height) == (640, 480)


def test_png_alpha_is_flattened_on_white_in_a_jpeg() -> None:
    image = photo(400, 400).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 200, 400))  # left half fully transparent black
    normalized = normalize_image(encode(image, "PNG"), POLICY)
    out = decoded(normalized.data)
    assert (normalized.content_type, normalized.extension) == ("image/jpeg", "jpg")
    assert out.format == "JPEG"
    assert out.mode == "RGB"
    assert close(pixel(out, (50, 200)), (255, 255, 255), tolerance=3)


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_normalization_is_deterministic(output_format: str) -> None:
    policy = ImagePolicy(output_format="jpeg" if output_format == "jpeg" else "webp")
    data = _oriented_jpeg()
    first = normalize_image(data, policy)
    second = normalize_image(bytes(data), policy)
    assert first.data == second.data
    assert first.sha256 == second.sha256


def test_webp_output() -> None:
    normalized = normalize_image(photo_bytes(2000, 1500, "PNG"), ImagePolicy(output_format="webp"))
    out = decoded(normalized.data)
    assert (normalized.content_type, normalized.extension) == ("image/webp", "webp")
    assert out.format == "WEBP"
    assert out.size == (1024, 768)


def test_normalization_validates_first() -> None:
    with pytest.raises(ImageRejected) as caught:
        normalize_image(b"<html><body>nope</body></html>", POLICY)
    assert caught.value.outcome is Outcome.NOT_AN_IMAGE


# --- preview and policy -------------------------------------------------------------------


def test_thumbnail_is_a_small_jpeg_data_uri() -> None:
    uri = thumbnail_data_uri(photo_bytes(2000, 1500, "JPEG"))
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    assert len(uri) < 12_000
    thumb = decoded(base64.b64decode(uri[len(prefix) :]))
    assert thumb.format == "JPEG"
    assert thumb.size == (96, 72)


@pytest.mark.parametrize(
    "changes",
    [
        {"quality": 0},
        {"output_format": "png"},
        {"placeholder_hashes": ("not-hex-at-all!!",)},
        {"placeholder_hashes": ("abc",)},
        {"max_aspect_ratio": 0.5},
        {"max_side": 100},
    ],
)
def test_invalid_policy_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the config loader catches exactly this
        ImagePolicy(**changes)  # type: ignore[arg-type]
