"""What variant sets cost: CPU per artist and bytes per variant. Prints numbers, asserts nothing.

    uv run python -m benchmarks.variants [--large 6] [--repeat 3]

For each image (the demo site's found artists, then ``--large`` generated 4000x3000
JPEGs, half of them with a face), the CPU milliseconds (``time.process_time``: every
thread of the process, so AVIF's encoder threads count) of:

- decode: validation + draft decoding, as today's pipeline already does it;
- today: the one published JPEG (``normalize_decoded``);
- variants: everything :func:`podpod_scraping.core.variants.render_variants` does with the
  default policy, as the pipeline calls it (WebP at every width, today's JPEG as the
  fallback, the face/saliency avatar at every width, BlurHash, ThumbHash, dominant
  colour); ``+avif``: the same with AVIF too.

Then the bytes of each variant against today's single JPEG, and the avatar list the app
shows most: 20 artists at 128 px against today's 20 full images. Run it alone: other
processes competing for the 2 cores inflate every number.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TypeVar

from PIL import Image

from podpod_scraping.core.images import (
    DecodedImage,
    ImagePolicy,
    NormalizedImage,
    decode_image,
    normalize_decoded,
)
from podpod_scraping.core.variants import (
    VariantKind,
    VariantPolicy,
    VariantSet,
    published_fallback,
    render_variants,
)
from podpod_scraping.demo.site import DEMO_ARTISTS, _artist_images
from podpod_scraping_tests.core.images_factory import band_photo, photo

T = TypeVar("T")
POLICY = ImagePolicy()
WITH_AVIF = ImagePolicy.model_validate({"variants": {"formats": ["webp", "avif"]}})
AVATAR_LIST = 20


@dataclass
class Measured:
    name: str
    size: tuple[int, int]
    decode_ms: float
    today_ms: float
    variants_ms: float
    avif_ms: float
    today_bytes: int
    found: VariantSet


def _cpu_ms(action: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median CPU milliseconds of ``repeat`` calls, and the last result."""
    times: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        started = time.process_time()
        result = action()
        times.append((time.process_time() - started) * 1000)
    assert result is not None
    return statistics.median(times), result


def _render(decoded: DecodedImage, today: NormalizedImage, policy: VariantPolicy) -> VariantSet:
    """As the pipeline renders: today's published JPEG is the set's JPEG fallback."""
    info = decoded.info
    return render_variants(
        decoded.variant_source,
        policy,
        width=info.width,
        height=info.height,
        fallback=published_fallback(today.data, today.width, today.height),
    )


def measure(name: str, data: bytes, repeat: int) -> Measured:
    decode_ms, decoded = _cpu_ms(lambda: decode_image(data, POLICY), repeat)
    today_ms, today = _cpu_ms(lambda: normalize_decoded(decoded, POLICY), repeat)
    variants_ms, found = _cpu_ms(lambda: _render(decoded, today, POLICY.variants), repeat)
    avif_ms, _ = _cpu_ms(lambda: _render(decoded, today, WITH_AVIF.variants), repeat)
    return Measured(
        name,
        (decoded.info.width, decoded.info.height),
        decode_ms,
        today_ms,
        variants_ms,
        avif_ms,
        len(today.data),
        found,
    )


def demo_images() -> list[tuple[str, bytes]]:
    """The original bytes of every demo artist that `make demo` finds an image for."""
    images: list[tuple[str, bytes]] = []
    for artist in DEMO_ARTISTS:
        if not artist.has_valid_image:
            continue
        data, _ = _artist_images(artist, 1)[artist.image_path]
        images.append((artist.name, data))
    return images


def large_photos(count: int) -> list[tuple[str, bytes]]:
    """``count`` 4000x3000 camera-like JPEGs (detail + sensor noise); every other one with a
    face off-centre, so the avatar exercises the detector's hit and miss paths."""
    photos: list[tuple[str, bytes]] = []
    for index in range(count):
        if index % 2:
            image, _ = band_photo(4000, 3000, face_size=700 + 40 * index)
        else:
            image = photo(4000, 3000).rotate(index * 7, expand=False)
        noise = Image.effect_noise((4000, 3000), 24).convert("RGB")
        image = Image.blend(image, noise, 0.12)
        out = BytesIO()
        image.save(out, "JPEG", quality=90)
        photos.append(
            (f"photo-{index + 1} 4000x3000{' face' if index % 2 else ''}", out.getvalue())
        )
    return photos


def _report(rows: Sequence[Measured]) -> None:
    from tabulate import tabulate

    table = []
    for row in rows:
        by = {(v.kind, v.width): v for v in row.found.variants if v.format in ("webp", "jpeg")}
        full = " ".join(
            f"{v.width}:{v.byte_size / 1024:.1f}"
            for (kind, _), v in sorted(by.items(), key=lambda item: item[0][1])
            if kind is VariantKind.FULL
        )
        avatar = by.get((VariantKind.AVATAR, 128))
        fallback = next(v for v in row.found.variants if v.kind is VariantKind.FALLBACK)
        table.append(
            [
                row.name[:28],
                f"{row.size[0]}x{row.size[1]}",
                f"{row.decode_ms:.0f}",
                f"{row.today_ms:.0f}",
                f"{row.variants_ms:.0f}",
                f"{row.avif_ms:.0f}",
                len(row.found.variants),
                row.found.avatar_method,
                f"{row.today_bytes / 1024:.1f}",
                full,
                f"{fallback.byte_size / 1024:.1f}",
                f"{avatar.byte_size / 1024:.2f}" if avatar else "-",
            ]
        )
    headers = [
        "image",
        "original",
        "decode ms",
        "today ms",
        "variants ms",
        "+avif ms",
        "variants",
        "avatar",
        "today KB",
        "WebP width:KB",
        "JPEG fb KB",
        "avatar 128 KB",
    ]
    print(tabulate(table, headers=headers, disable_numparse=True))


def _summary(label: str, rows: Sequence[Measured]) -> None:
    if not rows:
        return
    print(
        f"{label}: {len(rows)} images; CPU ms per artist, median: decode "
        f"{statistics.median(r.decode_ms for r in rows):.0f}, today's JPEG "
        f"{statistics.median(r.today_ms for r in rows):.0f}, all variants + hashes + avatar "
        f"{statistics.median(r.variants_ms for r in rows):.0f} (max "
        f"{max(r.variants_ms for r in rows):.0f}), with AVIF too "
        f"{statistics.median(r.avif_ms for r in rows):.0f}; decode + today + variants "
        f"{statistics.median(r.decode_ms + r.today_ms + r.variants_ms for r in rows):.0f}"
    )


def _avatar_list(rows: Sequence[Measured]) -> None:
    chosen = [rows[i % len(rows)] for i in range(AVATAR_LIST)]
    avatars = 0
    for row in chosen:
        avatars += next(
            v.byte_size
            for v in row.found.variants
            if v.kind is VariantKind.AVATAR and v.width == 128 and v.format == "webp"
        )
    full = sum(row.today_bytes for row in chosen)
    print(
        f"avatar list of {AVATAR_LIST} artists: {avatars / 1024:.1f} KB of 128 px WebP avatars vs "
        f"{full / 1024:.1f} KB of today's full JPEGs = {avatars / full * 100:.1f} %"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--large", type=int, default=6, help="4000x3000 photos to generate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    demo = demo_images()
    large = large_photos(args.large)
    measure(*demo[0], repeat=1)  # warm-up: the face cascade loads once per thread
    demo_rows = [measure(name, data, args.repeat) for name, data in demo]
    large_rows = [measure(name, data, args.repeat) for name, data in large]
    print(f"policy: {POLICY.variants.model_dump()}")
    _report([*demo_rows, *large_rows])
    print()
    _summary("demo images", demo_rows)
    _summary("4000x3000 photos", large_rows)
    _avatar_list(demo_rows)
    _avatar_list([*demo_rows, *large_rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
