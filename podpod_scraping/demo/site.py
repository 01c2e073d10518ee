"""The bundled demo website: artist pages and generated photos served on 127.0.0.1.

The embedded default has no internet, yet the scrape must fetch something real over
HTTP. This site has one page per demo artist at ``/artists/{slug}`` written the ways
real sites write them (relative and absolute ``src``, ``srcset``, lazy-loading,
og:image or JSON-LD only) and the ways they go wrong (no image, 404 page, truncated or
corrupt image, image 404, tiny image). Images are generated with Pillow and are
byte-identical across starts, so reruns are idempotent; ``image_version`` changes
every image's pixels (same URLs, new ETags) to simulate a site updating its photos.

Run it alone for ``dagster dev``: ``python -m podpod_scraping.demo.site --port 8765``.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import html
import io
import json
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Self
from urllib.parse import quote

import yaml
from PIL import Image, ImageDraw, ImageFont

from podpod_scraping.core.sources import slugify
from podpod_scraping.demo.apis import RecordedApis, api_sources
from podpod_scraping.demo.server import HOST, FixtureServer, Route

__all__ = [
    "DEFAULT_PORT",
    "DEMO_ARTISTS",
    "KINDS",
    "DemoArtist",
    "DemoSite",
    "FixtureServer",
    "Route",
    "demo_image",
    "demo_sources_yaml",
    "main",
]

DEFAULT_PORT = 8765

#: Every kind of page the site serves. ``ok_*`` pages lead to a valid image.
KINDS = (
    "ok_relative",  # <img class="artist-image" src="../images/x.jpg">
    "ok_absolute",  # src is an absolute URL
    "ok_srcset_x",  # srcset with 1x/2x; the 2x one is the full-size image
    "ok_srcset_w",  # srcset with w descriptors
    "ok_lazy",  # data-src, with a 1x1 GIF data: URI in src
    "ok_og_image",  # no img.artist-image; og:image meta only
    "ok_json_ld",  # no img.artist-image; JSON-LD MusicGroup ImageObject only
    "ok_exif",  # JPEG stored landscape with EXIF Orientation=6 (displays portrait)
    "ok_large",  # 1600x1200 JPEG
    "ok_png",
    "ok_webp",
    "no_image",  # page exists, nothing that is an artist image
    "not_found",  # the page itself answers 404
    "broken_image",  # img points at truncated/corrupt JPEG bytes served as image/jpeg
    "missing_image",  # img points at a URL that answers 404
    "tiny",  # a 1x1 or 50x50 image
    "api_commons",  # no page on the site; found through the API-style source (Commons)
)


@dataclass(frozen=True)
class DemoArtist:
    """A fictional artist of the demo catalog and what its page on the demo site does."""

    id: int
    name: str
    kind: str

    @property
    def slug(self) -> str:
        return slugify(self.name)

    @property
    def page_path(self) -> str:
        """Path of the page (unquoted, as the route table keys it)."""
        return f"/artists/{self.slug}"

    @property
    def image_path(self) -> str:
        """Path of the artist's full-size image (unquoted)."""
        return f"/images/{self.slug}.{_FORMATS.get(self.kind, ('jpg', ''))[0]}"

    @property
    def has_valid_image(self) -> bool:
        return self.kind.startswith("ok_")


DEMO_ARTISTS: list[DemoArtist] = [
    DemoArtist(1, "Aurora Vale", "ok_relative"),
    DemoArtist(2, "The Paper Lanterns", "ok_absolute"),
    DemoArtist(3, "Élodie Marchand", "ok_relative"),
    DemoArtist(4, "Salt & Static", "ok_relative"),
    DemoArtist(5, "새벽별", "ok_relative"),
    DemoArtist(6, "Neon Harbor", "ok_srcset_x"),
    DemoArtist(7, "Kite Theory", "ok_srcset_w"),
    DemoArtist(8, "Mira Okafor", "ok_lazy"),
    DemoArtist(9, "Velvet Comet", "ok_og_image"),
    DemoArtist(10, "Juniper & The Owls", "ok_json_ld"),
    DemoArtist(11, "Tomás Rivera Quartet", "ok_exif"),
    DemoArtist(12, "Cold Weather Radio", "ok_large"),
    DemoArtist(13, "Lumen Drift", "ok_png"),
    DemoArtist(14, "Harbor Lights Collective", "ok_webp"),
    DemoArtist(15, "Quiet Machines", "no_image"),
    DemoArtist(16, "Dust Choir", "no_image"),
    DemoArtist(17, "Ghost Signal", "not_found"),
    DemoArtist(18, "Northbound Static", "not_found"),
    DemoArtist(19, "Broken Halo", "broken_image"),
    DemoArtist(20, "Rust & Bone Orchestra", "broken_image"),
    DemoArtist(21, "Missing Persons Bureau", "missing_image"),
    DemoArtist(22, "Hollow Pines", "missing_image"),
    DemoArtist(23, "Pixel Saints", "tiny"),
    DemoArtist(24, "Small Hours", "tiny"),
    DemoArtist(25, "Sora Lune", "api_commons"),
    DemoArtist(26, "Pale Orchard", "api_commons"),
]

# kind → (file extension, Pillow format); everything else is a JPEG.
_FORMATS = {"ok_png": ("png", "PNG"), "ok_webp": ("webp", "WEBP")}
_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_SIZES = {
    "ok_absolute": (500, 400),
    "ok_srcset_x": (640, 640),
    "ok_srcset_w": (1200, 900),
    "ok_lazy": (600, 600),
    "ok_exif": (600, 400),
    "ok_large": (1600, 1200),
    "ok_png": (512, 512),
}
_DEFAULT_SIZE = (480, 480)
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_SPACER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_HTML = {"Content-Type": "text/html; charset=utf-8"}


# --------------------------------------------------------------------------- images


@functools.lru_cache(maxsize=512)
def demo_image(
    seed: int,
    version: int,
    size: tuple[int, int] = _DEFAULT_SIZE,
    fmt: str = "JPEG",
    *,
    label: str = "",
    exif_orientation: int | None = None,
) -> bytes:
    """A deterministic, photo-like picture: a gradient, shapes and the artist's initials.

    Same arguments → same bytes (in one Pillow build); another ``version`` → other pixels.
    """
    rng = random.Random(f"podpod-demo:{seed}:{version}")
    if exif_orientation == 6:
        # Draw the picture upright (portrait), then store it as a camera does: pixels turned
        # a quarter counter-clockwise plus Orientation=6, so a correct reader shows it upright.
        size = (size[1], size[0])
    width, height = size
    hue = [rng.randrange(256) for _ in range(3)]
    down = Image.linear_gradient("L").resize(size)
    across = Image.linear_gradient("L").rotate(90).resize(size)
    image = Image.merge(
        "RGB",
        [
            down.point([(v + hue[0]) % 256 for v in range(256)]),
            across.point([(v + hue[1]) % 256 for v in range(256)]),
            down.point([(255 - v + hue[2]) % 256 for v in range(256)]),
        ],
    )
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(4, min(size) // 20), max(8, min(size) // 4))
        fill = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    if label and min(size) >= 64:
        initials = "".join(word[0] for word in label.split()[:2]).upper() or "?"
        font = ImageFont.load_default(size=max(12, min(size) // 3))
        draw.text((width / 2, height / 2), initials, fill=(255, 255, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options["quality"] = 88
        if exif_orientation is not None:
            if exif_orientation == 6:
                image = image.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = exif_orientation
            options["exif"] = exif.tobytes()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _image_route(data: bytes, fmt: str, version: int) -> Route:
    """A cacheable image response: exact Content-Type, content ETag, Last-Modified."""
    modified = _EPOCH + timedelta(days=version - 1)
    return Route(
        200,
        data,
        {
            "Content-Type": _CONTENT_TYPES[fmt],
            "ETag": f'"{hashlib.sha256(data).hexdigest()[:20]}"',
            "Last-Modified": format_datetime(modified, usegmt=True),
            "Cache-Control": "public, max-age=3600",
        },
    )


def _jpeg_headers(jpeg: bytes) -> bytes:
    """The JPEG up to and including its start-of-scan header, without any scan data."""
    sos = jpeg.index(b"\xff\xda")
    return jpeg[: sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")]


def _artist_images(artist: DemoArtist, version: int) -> dict[str, tuple[bytes, str]]:
    """path → (bytes, format) of every image the artist's page refers to."""
    kind, slug = artist.kind, artist.slug
    if kind in ("not_found", "no_image", "missing_image", "api_commons"):
        return {}
    if kind == "tiny":
        size = (1, 1) if artist.id % 2 else (50, 50)
        return {artist.image_path: (demo_image(artist.id, version, size), "JPEG")}
    if kind == "broken_image":
        whole = demo_image(artist.id, version, _DEFAULT_SIZE, label=artist.name)
        # Cut mid-scan, or cut right after the headers: both identify as a 480x480 JPEG
        # (so a header-only check passes) but have no complete pixel data.
        data = whole[: len(whole) * 3 // 5] if artist.id % 2 else _jpeg_headers(whole)
        return {artist.image_path: (data, "JPEG")}
    ext, fmt = _FORMATS.get(kind, ("jpg", "JPEG"))
    size = _SIZES.get(kind, _DEFAULT_SIZE)
    orientation = 6 if kind == "ok_exif" else None
    images = {
        artist.image_path: (
            demo_image(
                artist.id, version, size, fmt, label=artist.name, exif_orientation=orientation
            ),
            fmt,
        )
    }
    small = {"ok_srcset_x": (320, 320), "ok_srcset_w": (400, 300)}.get(kind)
    if small is not None:
        images[f"/images/{slug}-{small[0]}.{ext}"] = (
            demo_image(artist.id, version, small, fmt, label=artist.name),
            fmt,
        )
    return images


# --------------------------------------------------------------------------- pages


def _page(title: str, body: str, head: str = "") -> bytes:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · podpod demo</title>{head}</head>\n<body>"
        "<header><a href='/'><img class='site-logo' src='/static/logo.png' alt='podpod demo'>"
        f"</a></header>\n<main>{body}</main></body></html>\n"
    ).encode()


def _artist_page(artist: DemoArtist, base_url: str) -> Route:
    name = html.escape(artist.name)
    slug = quote(artist.slug)
    img = quote(artist.image_path)
    alt = f"alt='{name}'"
    heading = f"<h1>{name}</h1>"
    kind = artist.kind
    head = ""
    if kind in ("not_found", "api_commons"):
        return Route(404, _page("Not found", "<h1>No such artist</h1>"), _HTML)
    if kind in ("ok_relative", "broken_image", "missing_image", "tiny"):
        body = f"{heading}<img class='artist-image' src='..{img}' {alt}>"
    elif kind == "ok_absolute":
        body = f"{heading}<img class='artist-image' src='{base_url}{img}' {alt}>"
    elif kind == "ok_srcset_x":
        small = f"/images/{slug}-320.jpg"
        body = (
            f"{heading}<img class='artist-image' src='{small}' srcset='{small} 1x, {img} 2x' {alt}>"
        )
    elif kind == "ok_srcset_w":
        small = f"/images/{slug}-400.jpg"
        body = (
            f"{heading}<picture><img class='artist-image' src='{small}' "
            f"srcset='{small} 400w, {img} 1200w' sizes='(max-width: 600px) 400px, 1200px' "
            f"{alt}></picture>"
        )
    elif kind == "ok_lazy":
        body = (
            f"{heading}<img class='artist-image lazyload' src='{_SPACER_GIF}' "
            f"data-src='{img}' {alt}>"
        )
    elif kind == "ok_og_image":
        head = (
            f"<meta property='og:title' content='{name}'>"
            f"<meta property='og:image' content='{base_url}{img}'>"
        )
        body = f"{heading}<p>Photos coming soon.</p>"
    elif kind == "ok_json_ld":
        data = {
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "WebSite", "name": "podpod demo", "url": f"{base_url}/"},
                {
                    "@type": "MusicGroup",
                    "name": artist.name,
                    "image": {"@type": "ImageObject", "contentUrl": f"{base_url}{img}"},
                },
            ],
        }
        head = f"<script type='application/ld+json'>{json.dumps(data)}</script>"
        body = heading
    elif kind == "no_image":
        empty = "<img class='artist-image' src='' alt=''>" if artist.id % 2 == 0 else ""
        body = f"{heading}<p>No photo yet.</p>{empty}"
    else:  # ok_exif, ok_large, ok_png, ok_webp: the old site's plain relative form
        body = f"{heading}<img class='artist-image' src='..{img}' {alt}>"
    return Route(200, _page(artist.name, body, head), _HTML)


def _index_page() -> Route:
    items = "".join(
        f"<li><a href='{quote(a.page_path)}'>{html.escape(a.name)}</a> <small>{a.kind}</small></li>"
        for a in DEMO_ARTISTS
    )
    return Route(200, _page("Artists", f"<h1>Demo artists</h1><ul>{items}</ul>"), _HTML)


def demo_sources_yaml(base_url: str, *, with_apis: bool = True) -> str:
    """The sources configuration that scrapes this site at ``base_url``: its pages, then
    (``with_apis``) the recorded MusicBrainz, Wikidata/Commons and Deezer APIs it serves."""
    page_url = json.dumps(f"{base_url.rstrip('/')}/artists/{{slug}}")
    apis = ""
    if with_apis:
        entries = yaml.safe_dump(api_sources(base_url), sort_keys=False, allow_unicode=True)
        apis = "".join(f"  {line}\n" for line in entries.splitlines())
    return (
        "# The bundled demo site: python -m podpod_scraping.demo.site --port 8765\n"
        "sources:\n"
        "  - name: demo-site\n"
        f"    page_url: {page_url}\n"
        '    selector: "img.artist-image"\n'
        "    fallbacks: [og:image, twitter:image, json-ld]\n"
        '    license: "CC0-1.0"\n'
        '    attribution: "Generated picture, podpod demo site"\n' + apis
    )


# --------------------------------------------------------------------------- the site


class DemoSite(FixtureServer):
    """The demo website on 127.0.0.1 (a context manager). ``port=0`` picks a free port."""

    def __init__(self, port: int = 0, *, image_version: int = 1, bind: str = HOST) -> None:
        super().__init__(port, bind=bind)
        if image_version < 1:
            raise ValueError("image_version starts at 1")
        self.image_version = image_version

    def start(self) -> Self:
        super().start()
        try:
            self._install_routes()
        except BaseException:
            self.stop()
            raise
        return self

    def set_image_version(self, version: int) -> None:
        """Replace every image's pixels at the same URLs (new ETag and Last-Modified)."""
        if version < 1:
            raise ValueError("image_version starts at 1")
        self.image_version = version
        self._install_images()

    def page_url(self, artist: DemoArtist) -> str:
        return self.url(quote(artist.page_path))

    def image_url(self, artist: DemoArtist) -> str:
        return self.url(quote(artist.image_path))

    def _install_routes(self) -> None:
        self.add_route(
            "/robots.txt",
            body=b"User-agent: *\nAllow: /\n",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        self.set_route("/", _index_page())
        RecordedApis(self).install()  # the API-style sources, under /musicbrainz, /wikidata...
        for artist in DEMO_ARTISTS:
            self.set_route(artist.page_path, _artist_page(artist, self.base_url))
        self._install_images()

    def _install_images(self) -> None:
        version = self.image_version
        logo = demo_image(0, 1, (120, 40), "PNG")
        self.set_route("/static/logo.png", _image_route(logo, "PNG", 1))
        for artist in DEMO_ARTISTS:
            for path, (data, fmt) in _artist_images(artist, version).items():
                self.set_route(path, _image_route(data, fmt, version))


def main(argv: list[str] | None = None) -> None:
    """Serve the demo site on 127.0.0.1 until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve the podpod demo website on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = any free)")
    parser.add_argument("--image-version", type=int, default=1, help="change every image")
    parser.add_argument(
        "--bind",
        default=HOST,
        help="address to listen on (default 127.0.0.1; 0.0.0.0 only inside a container)",
    )
    args = parser.parse_args(argv)
    site = DemoSite(args.port, image_version=args.image_version, bind=args.bind)
    try:
        site.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(
            f"demo site: port {args.port} is already in use; pick another with --port N"
        ) from None
    try:
        print(f"podpod demo site on {site.base_url}/ ({len(DEMO_ARTISTS)} artists); Ctrl-C stops")
        print(f"sources config:\n{demo_sources_yaml(site.base_url)}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping")
    finally:
        site.stop()


if __name__ == "__main__":
    main()
