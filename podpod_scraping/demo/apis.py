"""Recorded-response API servers: MusicBrainz, Wikidata, Commons and Deezer on 127.0.0.1.

No test and no demo touches the internet, yet the API sources must run their whole path
(URL encoding, the Fetcher, JSON shapes, errors). These handlers answer like the real APIs,
with hand-written records in the APIs' real shapes (from their documentation), under path
prefixes of one local server: point a source's ``base_url`` at ``<server>/musicbrainz``,
``<server>/wikidata``, ``<server>/commons`` or ``<server>/deezer``.

The records cover the cases a real catalog meets: two artists of one name, a Korean name
with an English alias, names needing URL encoding, a non-free file, a deprecated image
statement, Deezer's placeholder and quota error, a MusicBrainz 503 with Retry-After, and
answers that are not what a client expects (malformed JSON, an HTML page, a wrong shape).
Ids are made up (never a real person's MBID or item).
"""

from __future__ import annotations

import functools
import io
import json
import re
import threading
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote

from PIL import Image, ImageDraw

from podpod_scraping.core.matching import name_key
from podpod_scraping.demo.server import FixtureServer, Route

#: Path prefixes of each API on the server (``base_url`` = server URL + prefix).
PREFIXES = {
    "musicbrainz": "/musicbrainz",
    "wikidata": "/wikidata",
    "commons": "/commons",
    "deezer": "/deezer",
}
_JSON = {"Content-Type": "application/json; charset=utf-8"}
_DEEZER_PICTURE = "/deezer/images/artist/{hash}/1000x1000-000000-80-0-0.jpg"


@dataclass(frozen=True)
class CommonsRecord:
    """A Commons file: its size and licence metadata (``extmetadata``)."""

    width: int
    height: int
    license: str = "CC BY-SA 4.0"
    license_url: str = "https://creativecommons.org/licenses/by-sa/4.0"
    artist_html: str = '<a href="//commons.wikimedia.org/wiki/User:Jane_Doe">Jane Doe</a>'
    non_free: bool = False
    mime: str = "image/jpeg"


@dataclass(frozen=True)
class RecordedArtist:
    """One artist as the four APIs know it (``None``: that API does not know it)."""

    name: str
    mbid: str | None = None
    mb_type: str = "Group"
    aliases: tuple[str, ...] = ()
    disambiguation: str = ""
    qid: str | None = None
    #: P18 statements: (file name, rank)
    images: tuple[tuple[str, str], ...] = ()
    deezer_id: int | None = None
    nb_fan: int = 1000
    deezer_placeholder: bool = False


def _mbid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


ARTISTS: tuple[RecordedArtist, ...] = (
    RecordedArtist(
        "IU",
        _mbid(1),
        "Person",
        ("아이유", "이지은"),
        "South Korean singer-songwriter",
        "Q900001",
        (("IU at a concert 2022.jpg", "normal"),),
        5001,
        900_000,
    ),
    RecordedArtist("Nirvana", _mbid(2), "Group", (), "US rock band", "Q900002",
                   (("Nirvana US band.jpg", "normal"),), 5002, 800_000),
    RecordedArtist("Nirvana", _mbid(3), "Group", (), "1960s UK band", "Q900003",
                   (("Nirvana UK band.jpg", "normal"),), 5003, 2_000),
    RecordedArtist("AC/DC", _mbid(4), "Group", (), "", "Q900004",
                   (("AC DC live.jpg", "normal"),), 5004),
    RecordedArtist("Guns N' Roses", _mbid(5), "Group", (), "", "Q900005",
                   (("Guns N' Roses 2017.jpg", "normal"),), 5005),
    RecordedArtist("Sigur Rós", _mbid(6), "Group", (), "", "Q900006",
                   (("Sigur Rós on stage.jpg", "normal"),), 5006),
    RecordedArtist("?&#%", _mbid(7), "Group", (), "punctuation band", "Q900007",
                   (("Punctuation_band_portrait.jpg", "normal"),)),
    RecordedArtist("🦄 Unicorn", _mbid(8), "Person", (), "", "Q900008",
                   (("Unicorn singer.png", "normal"),)),
    RecordedArtist("Closed Circle", _mbid(9), "Group", (), "", "Q900009",
                   (("Closed Circle promo.jpg", "normal"),)),
    RecordedArtist(
        "Old Photo Band",
        _mbid(10),
        "Group",
        (),
        "",
        "Q900010",
        (("Old Photo Band 1970.jpg", "deprecated"), ("Old Photo Band 2020.jpg", "normal")),
    ),
    RecordedArtist("Silhouette Singer", deezer_id=5011, deezer_placeholder=True),
    RecordedArtist("Quota Queen", deezer_id=5012),
    RecordedArtist("Busy Signal", _mbid(13), "Person", (), "", "Q900013",
                   (("Busy Signal portrait.jpg", "normal"),)),
    RecordedArtist("Sora Lune", _mbid(14), "Person", (), "demo singer", "Q900014",
                   (("Sora Lune 2024.jpg", "preferred"), ("Sora Lune old.jpg", "normal"))),
    RecordedArtist("Pale Orchard", _mbid(15), "Group", (), "demo band", "Q900015",
                   (("Pale Orchard band.jpg", "normal"),)),
)  # fmt: skip

_CC = "https://creativecommons.org/"
FILES: dict[str, CommonsRecord] = {
    "IU at a concert 2022.jpg": CommonsRecord(1200, 1600),
    "Nirvana US band.jpg": CommonsRecord(1000, 1000),
    "Nirvana UK band.jpg": CommonsRecord(900, 900),
    "AC DC live.jpg": CommonsRecord(1600, 1200, "CC BY 2.0", _CC + "licenses/by/2.0"),
    "Guns N' Roses 2017.jpg": CommonsRecord(1400, 1400),
    "Sigur Rós on stage.jpg": CommonsRecord(1100, 1300),
    "Punctuation band portrait.jpg": CommonsRecord(
        800, 1000, "CC0", _CC + "publicdomain/zero/1.0/", "Unknown"
    ),
    "Unicorn singer.png": CommonsRecord(700, 700, mime="image/png"),
    "Closed Circle promo.jpg": CommonsRecord(
        1000, 1000, "Copyrighted", "", "Label Inc.", non_free=True
    ),
    "Old Photo Band 1970.jpg": CommonsRecord(2000, 2000),
    "Old Photo Band 2020.jpg": CommonsRecord(800, 800),
    "Busy Signal portrait.jpg": CommonsRecord(900, 1200),
    "Sora Lune 2024.jpg": CommonsRecord(1000, 1200),
    "Sora Lune old.jpg": CommonsRecord(1600, 1600),
    "Pale Orchard band.jpg": CommonsRecord(1000, 1000, "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0"),
}  # fmt: skip

#: MusicBrainz search queries answered badly (recorded failures), by the searched name.
BAD_MUSICBRAINZ = {
    "Broken Json": Route(200, b'{"artists": [{"id": ', _JSON),
    "Html Error": Route(
        200,
        b"<!doctype html><h1>Service temporarily unavailable</h1>",
        {"Content-Type": "text/html"},
    ),
    "Odd Shape": Route(200, b'{"artists": "none today"}', _JSON),
}
#: Names MusicBrainz answers 503 (Retry-After: 1) the first time they are searched.
BUSY_ONCE = frozenset({"Busy Signal"})

#: Catalog artists (id, name) covering every recorded case, for one backfill over them
#: (``podpod-scraping db seed-demo --api-cases``); ids stay clear of the demo site's.
CASE_ARTISTS: tuple[tuple[int, str], ...] = (
    (1001, "아이유"),  # Korean name; MusicBrainz lists it as an alias of "IU"
    (1002, "Nirvana"),  # two equally good artists: ambiguous until one is pinned
    (1003, "Nirvana"),
    (1004, "AC/DC"),
    (1005, "Guns N' Roses"),
    (1006, "Sigur Rós"),
    (1007, "?&#%"),
    (1008, "🦄 Unicorn"),
    (1009, "Closed Circle"),  # its only Commons file is non-free
    (1010, "Old Photo Band"),  # a deprecated P18 beside a normal one
    (1011, "Silhouette Singer"),  # Deezer's grey placeholder
    (1012, "Quota Queen"),  # Deezer's quota error (HTTP 200 with an error object)
    (1013, "Busy Signal"),  # MusicBrainz 503 with Retry-After, then an answer
    (1014, "Broken Json"),
    (1015, "Html Error"),
    (1016, "Odd Shape"),
    (1017, "Nobody Knows Me"),  # no source knows this name
)


@functools.lru_cache(maxsize=128)
def picture(seed: str, width: int, height: int, fmt: str = "JPEG") -> bytes:
    """A deterministic picture of ``width`` x ``height`` (a gradient and a disc)."""
    tint = sum(seed.encode()) % 200
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.eval(image, lambda v: (v + tint) % 256)
    draw = ImageDraw.Draw(image)
    r = min(width, height) // 4
    draw.ellipse(
        [width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r], fill=(tint, 90, 160)
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    return Route(
        status, json.dumps(data, ensure_ascii=False).encode(), {**_JSON, **(headers or {})}
    )


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


@dataclass
class RecordedApis:
    """The four APIs' handlers on ``server`` (request counts stay in ``server.hits``)."""

    server: FixtureServer
    artists: tuple[RecordedArtist, ...] = ARTISTS
    files: dict[str, CommonsRecord] = field(default_factory=lambda: dict(FILES))
    #: Deezer answers its quota error for these names (HTTP 200 with an error object).
    deezer_quota: frozenset[str] = frozenset({"Quota Queen"})
    _busy_seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> RecordedApis:
        for name, prefix in PREFIXES.items():
            self.server.set_handler(prefix + "/", getattr(self, f"_{name}"))
        return self

    def base_url(self, api: str) -> str:
        return self.server.base_url + PREFIXES[api]

    def api_requests(self) -> int:
        """Requests the APIs answered (image downloads not counted)."""
        return sum(
            count
            for path, count in self.server.hits.items()
            if path.startswith(tuple(PREFIXES.values())) and "/images/" not in path
        )

    # -- MusicBrainz

    def _musicbrainz(self, path: str, query: dict[str, list[str]]) -> Route | None:
        if path == "/musicbrainz/ws/2/artist":
            return self._mb_search(_one(query, "query"))
        match = re.fullmatch(r"/musicbrainz/ws/2/artist/([0-9a-f-]{36})", path)
        if match:
            return self._mb_lookup(match.group(1))
        return None

    def _mb_search(self, lucene: str) -> Route:
        name = re.sub(r"\\(.)", r"\1", lucene.strip().removeprefix('"').removesuffix('"'))
        if name in BAD_MUSICBRAINZ:
            return BAD_MUSICBRAINZ[name]
        with self._lock:
            if name in BUSY_ONCE and name not in self._busy_seen:
                self._busy_seen.add(name)
                return Route(503, b"<html>Rate limited</html>", {"Retry-After": "1"})
        wanted = name_key(name)
        found = []
        for artist in self.artists:
            if artist.mbid is None:
                continue
            names = [artist.name, *artist.aliases]
            if wanted in (name_key(n) for n in names):
                score = 100
            elif any(wanted in name_key(n) for n in names):
                score = 62  # MusicBrainz also lists partial matches, lower
            else:
                continue
            found.append(self._mb_artist(artist) | {"score": score})
        found.sort(key=lambda a: -a["score"])
        return _json(
            {
                "created": "2026-12-01T00:00:00.000Z",
                "count": len(found),
                "offset": 0,
                "artists": found,
            }
        )

    @staticmethod
    def _mb_artist(artist: RecordedArtist) -> dict[str, object]:
        return {
            "id": artist.mbid,
            "type": artist.mb_type,
            "type-id": "e431f5f6-b5d2-343d-8b36-72607fffb74b",
            "name": artist.name,
            "sort-name": artist.name,
            "disambiguation": artist.disambiguation,
            "aliases": [
                {"sort-name": a, "name": a, "locale": None, "type": "Artist name", "primary": None}
                for a in artist.aliases
            ],
            "tags": [],
        }

    def _mb_lookup(self, mbid: str) -> Route:
        for artist in self.artists:
            if artist.mbid == mbid:
                relations = []
                if artist.qid:
                    relations.append(
                        {
                            "type": "wikidata",
                            "type-id": "689870a4-a1e4-4912-b17f-7b2664215698",
                            "direction": "forward",
                            "url": {
                                "id": "1",
                                "resource": f"https://www.wikidata.org/wiki/{artist.qid}",
                            },
                        }
                    )
                return _json(self._mb_artist(artist) | {"relations": relations})
        return _json(
            {
                "error": "Not Found",
                "help": "For usage, please see: https://musicbrainz.org/development/mmd",
            },
            404,
        )

    # -- Wikidata

    def _wikidata(self, path: str, query: dict[str, list[str]]) -> Route | None:
        if path != "/wikidata/w/api.php":
            return None
        action = _one(query, "action")
        if action == "query" and _one(query, "list") == "search":
            wanted = set(re.findall(r"P434=([0-9a-f-]{36})", _one(query, "srsearch")))
            hits = [
                {
                    "ns": 0,
                    "title": a.qid,
                    "pageid": int(a.qid[1:]),
                    "snippet": "",
                    "timestamp": "2026-01-01T00:00:00Z",
                }
                for a in self.artists
                if a.qid and a.mbid in wanted
            ]
            return _json(
                {
                    "batchcomplete": "",
                    "query": {"searchinfo": {"totalhits": len(hits)}, "search": hits},
                }
            )
        if action == "wbgetentities":
            ids = [i for i in _one(query, "ids").split("|") if i]
            if len(ids) > 50:
                return _json(
                    {
                        "error": {
                            "code": "toomanyvalues",
                            "info": 'Too many values for parameter "ids". The limit is 50.',
                        }
                    }
                )
            return _json({"entities": {qid: self._entity(qid) for qid in ids}, "success": 1})
        return _json(
            {
                "error": {
                    "code": "badvalue",
                    "info": f'Unrecognized value for parameter "action": {action}.',
                }
            }
        )

    def _entity(self, qid: str) -> dict[str, object]:
        for artist in self.artists:
            if artist.qid == qid:
                claims: dict[str, list[dict[str, object]]] = {
                    "P434": [_statement(qid, "P434", artist.mbid or "", "external-id", "normal")],
                    "P18": [_statement(qid, "P18", f, "commonsMedia", r) for f, r in artist.images],
                }
                return {"type": "item", "id": qid, "claims": claims}
        return {"id": qid, "missing": ""}

    # -- Commons

    def _commons(self, path: str, query: dict[str, list[str]]) -> Route | None:
        if path.startswith("/commons/images/"):
            return self._commons_image(path)
        if path != "/commons/w/api.php" or _one(query, "prop") != "imageinfo":
            return None
        width = int(_one(query, "iiurlwidth") or 0)
        titles = [t for t in _one(query, "titles").split("|") if t]
        normalized = [
            {"fromencoded": False, "from": t, "to": t.replace("_", " ")} for t in titles if "_" in t
        ]
        pages = []
        for index, title in enumerate(t.replace("_", " ") for t in titles):
            record = self.files.get(title.removeprefix("File:"))
            if record is None:
                pages.append({"ns": 6, "title": title, "missing": True, "known": False})
                continue
            pages.append(
                {"pageid": 700000 + index, "ns": 6, "title": title, "imagerepository": "local",
                 "imageinfo": [self._imageinfo(title.removeprefix("File:"), record, width)]}
            )  # fmt: skip
        query_part: dict[str, object] = {"pages": pages}
        if normalized:
            query_part["normalized"] = normalized
        return _json({"batchcomplete": True, "query": query_part})

    def _imageinfo(self, name: str, record: CommonsRecord, width: int) -> dict[str, object]:
        file = quote(name.replace(" ", "_"))
        base = self.server.base_url + "/commons/images"
        info: dict[str, object] = {
            "size": record.width * record.height // 4,
            "width": record.width,
            "height": record.height,
            "url": f"{base}/{file}",
            "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{file}",
            "descriptionshorturl": "https://commons.wikimedia.org/w/index.php?curid=1",
            "sha1": "0" * 40,
            "mime": record.mime,
            "extmetadata": {
                "LicenseShortName": _meta(record.license),
                "LicenseUrl": _meta(record.license_url),
                "UsageTerms": _meta(f"Creative Commons {record.license}"),
                "AttributionRequired": _meta("false" if record.license == "CC0" else "true"),
                "Artist": _meta(record.artist_html),
                "Credit": _meta('<span class="int-own-work">Own work</span>'),
            },
        }
        if record.non_free:
            info["extmetadata"]["NonFree"] = _meta("true")  # type: ignore[index]
        if width and width < record.width:
            thumb_height = round(record.height * width / record.width)
            info |= {
                "thumburl": f"{base}/thumb/{file}/{width}px-{file}",
                "thumbwidth": width,
                "thumbheight": thumb_height,
            }
        return info

    def _commons_image(self, path: str) -> Route | None:
        thumb = re.fullmatch(r"/commons/images/thumb/([^/]+)/(\d+)px-[^/]+", path)
        name = (thumb.group(1) if thumb else path.rsplit("/", 1)[-1]).replace("_", " ")
        record = self.files.get(name)
        if record is None:
            return None
        width = int(thumb.group(2)) if thumb else record.width
        height = round(record.height * width / record.width)
        fmt = "PNG" if record.mime == "image/png" else "JPEG"
        return Route(
            200,
            picture(name, width, height, fmt),
            {"Content-Type": record.mime, "ETag": f'"{name}-{width}"'},
        )

    # -- Deezer

    def _deezer(self, path: str, query: dict[str, list[str]]) -> Route | None:
        if path.startswith("/deezer/images/artist/"):
            return Route(200, picture(path, 1000, 1000), {"Content-Type": "image/jpeg"})
        if path == "/deezer/search/artist":
            wanted = name_key(_one(query, "q"))
            if any(name_key(n) == wanted for n in self.deezer_quota):
                return _json(
                    {"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}
                )
            data = [
                self._deezer_artist(a)
                for a in self.artists
                if a.deezer_id is not None and wanted and wanted in name_key(a.name)
            ]
            return _json({"data": data, "total": len(data)})
        match = re.fullmatch(r"/deezer/artist/(\d+)", path)
        if match:
            for artist in self.artists:
                if artist.deezer_id == int(match.group(1)):
                    return _json(self._deezer_artist(artist))
            return _json({"error": {"type": "DataException", "message": "no data", "code": 800}})
        return None

    def _deezer_artist(self, artist: RecordedArtist) -> dict[str, object]:
        digest = "" if artist.deezer_placeholder else f"{artist.deezer_id:032x}"
        pictures = {
            f"picture_{size}": self.server.base_url
            + _DEEZER_PICTURE.format(hash=digest).replace("1000x1000", px)
            for size, px in (
                ("small", "56x56"),
                ("medium", "250x250"),
                ("big", "500x500"),
                ("xl", "1000x1000"),
            )
        }
        return {
            "id": artist.deezer_id,
            "name": artist.name,
            "link": f"https://www.deezer.com/artist/{artist.deezer_id}",
            "picture": f"https://api.deezer.com/artist/{artist.deezer_id}/image",
            **pictures,
            "nb_album": 12,
            "nb_fan": artist.nb_fan,
            "radio": True,
            "tracklist": f"https://api.deezer.com/artist/{artist.deezer_id}/top?limit=50",
            "type": "artist",
        }


def _meta(value: str) -> dict[str, str]:
    """One ``extmetadata`` entry as Commons writes it."""
    return {"value": value, "source": "commons-desc-page", "hidden": ""}


def _statement(qid: str, prop: str, value: str, datatype: str, rank: str) -> dict[str, object]:
    return {
        "mainsnak": {
            "snaktype": "value",
            "property": prop,
            "datavalue": {"value": value, "type": "string"},
            "datatype": datatype,
        },
        "type": "statement",
        "id": f"{qid}${prop}-{zlib.crc32(value.encode()):08x}",
        "rank": rank,
    }


def api_sources(server_url: str) -> list[dict[str, object]]:
    """Source entries (YAML-ready) for the recorded APIs of a server at ``server_url``."""
    base = server_url.rstrip("/")
    ua = "podpod-scraping-demo/0.1 (+https://github.com/podpod/podpod_scraping)"
    return [
        {
            "kind": "wikidata_commons",
            "name": "wikimedia-commons",
            "base_url": base + PREFIXES["wikidata"],
            "commons_url": base + PREFIXES["commons"],
            "user_agent": ua,
            "concurrency": 4,  # the demo site's own limit: one local host serves them all
        },
        {
            "kind": "musicbrainz",
            "name": "musicbrainz",
            "base_url": base + PREFIXES["musicbrainz"],
            "user_agent": ua,
            "min_interval": 0.0,
        },
        {
            "kind": "deezer",
            "name": "deezer",
            "base_url": base + PREFIXES["deezer"],
            "min_interval": 0.0,
        },
    ]
