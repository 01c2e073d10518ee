"""Test images made in code with Pillow, so no binary fixture is ever committed."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

SILHOUETTE_GREY = (205, 205, 205)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """The bytes of ``image`` saved as ``fmt`` (a Pillow format name)."""
    out = BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(width: int = 640, height: int = 480) -> Image.Image:
    """A deterministic, detailed RGB image: never flat, never a placeholder."""
    base = (min(width, 512), min(height, 512))  # render small, scale up: fast at any size
    red = Image.linear_gradient("L").resize(base)
    green = Image.radial_gradient("L").resize(base)
    blue = Image.effect_mandelbrot(base, (-2.0, -1.5, 1.0, 1.5), 64)
    image = Image.merge("RGB", (red, green, blue)).resize((width, height))
    draw = ImageDraw.Draw(image)
    for i in range(0, width, max(1, width // 12)):
        draw.line([(i, 0), (width - i, height)], fill=(255 - i % 256, i % 256, 90), width=3)
    return image


def photo_bytes(width: int = 640, height: int = 480, fmt: str = "PNG", **options: Any) -> bytes:
    image = photo(width, height)
    if fmt == "GIF":
        return encode(image.convert("P", palette=Image.Palette.ADAPTIVE), fmt, **options)
    return encode(image, fmt, **options)


def silhouette(size: int = 500) -> Image.Image:
    """A grey 'no photo' avatar: light grey background, darker head and shoulders."""
    image = Image.new("RGB", (size, size), SILHOUETTE_GREY)
    draw = ImageDraw.Draw(image)
    s = size / 500
    draw.ellipse([175 * s, 90 * s, 325 * s, 250 * s], fill=(150, 150, 150))
    draw.ellipse([90 * s, 270 * s, 410 * s, 600 * s], fill=(150, 150, 150))
    return image


def png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose IHDR declares ``width`` x ``height`` grey pixels.

    Its IDAT only holds one row, so a decoder that trusted the header would try to allocate
    width*height bytes; validation must refuse it from the header alone.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def face(size: int = 200) -> Image.Image:
    """A drawn frontal face laid out like the Haar cascade's 24x24 training window (dark
    eyes over lighter cheeks, a bright nose bridge): OpenCV's real detector fires on it."""
    image = Image.new("RGB", (size, size), (60, 70, 80))
    draw = ImageDraw.Draw(image)
    s = size / 24
    draw.ellipse([2 * s, 1 * s, 22 * s, 25 * s], fill=(214, 168, 140))  # the face
    for left in (4, 14):
        draw.rectangle([left * s, 7 * s, (left + 6) * s, 10 * s], fill=(45, 35, 35))  # eye
        draw.rectangle([left * s, 5 * s, (left + 6) * s, 6 * s], fill=(80, 60, 50))  # brow
    draw.rectangle([11 * s, 8 * s, 13 * s, 15 * s], fill=(240, 205, 185))  # nose bridge
    draw.rectangle([8 * s, 18 * s, 16 * s, 19.5 * s], fill=(120, 60, 60))  # mouth
    return image.filter(ImageFilter.GaussianBlur(s / 3))


def band_photo(
    width: int = 1200, height: int = 600, face_size: int = 220
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A landscape photo with a face near its right edge; the face's box ``(x, y, w, h)``."""
    image = photo(width, height)
    x, y = width - face_size - width // 20, (height - face_size) // 3
    image.paste(face(face_size), (x, y))
    return image, (x, y, face_size, face_size)
