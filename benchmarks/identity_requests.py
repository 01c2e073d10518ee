"""API requests per artist, first run vs refresh, over the recorded-response APIs.

    uv run python -m benchmarks.identity_requests [--artists 1000] [--concurrency 32]

Why: MusicBrainz allows about one request per second and Wikimedia asks for one request
at a time, so at catalog scale the cost that matters is API requests per artist. The
first run resolves identities (a MusicBrainz search per artist; Wikidata and Commons
batched across the artists in flight); the refresh has every identity stored (as the
catalog's identity table gives them) and must cost a few Wikidata/Commons requests per
*batch* of artists, not per artist. Runs ``core.refresh.refresh_artists`` with the real
scraper and Fetcher; image downloads are not API requests and are counted apart.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.identity import ArtistContext, Identity
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.outcomes import Artist, ScrapedImage, ScrapeResult
from podpod_scraping.core.refresh import (
    ArtistReport,
    ArtistTask,
    OriginalImage,
    Publication,
    Recorded,
    RefreshOptions,
    SkippedArtist,
    refresh_artists,
)
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.core.sources import parse_sources
from podpod_scraping.demo.apis import CommonsRecord, RecordedApis, RecordedArtist, api_sources
from podpod_scraping.demo.server import FixtureServer


def synthetic_artists(count: int) -> tuple[tuple[RecordedArtist, ...], dict[str, CommonsRecord]]:
    """``count`` artists known to MusicBrainz and Wikidata, each with one Commons file."""
    artists = tuple(
        RecordedArtist(
            f"Load Artist {n:05d}",
            f"10000000-0000-4000-8000-{n:012d}",
            "Person",
            qid=f"Q{800000 + n}",
            images=((f"Load artist {n:05d}.jpg", "normal"),),
        )
        for n in range(count)
    )
    files = {f"Load artist {n:05d}.jpg": CommonsRecord(400, 400) for n in range(count)}
    return artists, files


@dataclass
class IdentityStore:
    """An in-memory ``ImageStore`` that keeps identities like the catalog's table does."""

    artists: Sequence[RecordedArtist]
    identities: dict[str, dict[str, Identity]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tasks(self, artist_ids: Sequence[str], batch_id: str) -> list[ArtistTask | SkippedArtist]:
        with self.lock:
            return [
                ArtistTask(
                    Artist(key, self.artists[int(key)].name),
                    context=ArtistContext(identities=dict(self.identities.get(key, {}))),
                )
                for key in artist_ids
            ]

    def _keep(self, result: ScrapeResult) -> None:
        with self.lock:
            held = self.identities.setdefault(result.artist_id, {})
            held.update({i.namespace: i for i in result.identities})

    def current_intact(self, task: ArtistTask) -> bool:
        return True

    def read_original(self, task: ArtistTask) -> bytes | None:
        return None

    def archive_original(self, artist_id: str, image: ScrapedImage) -> OriginalImage:
        return OriginalImage(
            image.sha256, image.content_type, image.width, image.height, image.byte_size,
            image.provenance.image_url, f"memory://{artist_id}",
        )  # fmt: skip

    def publish(self, publication: Publication, *, batch_id: str) -> Recorded:
        self._keep(publication.result)
        return Recorded(current=None, switched=True)

    def record_unchanged(
        self, task: ArtistTask, result: ScrapeResult, *, batch_id: str
    ) -> Recorded:
        self._keep(result)
        return Recorded(current=None)

    def record_failure(self, task: ArtistTask, result: ScrapeResult, *, batch_id: str) -> Recorded:
        self._keep(result)
        return Recorded(current=None)


@dataclass(frozen=True)
class RunCost:
    artists: int
    api_requests: int
    image_requests: int
    outcomes: dict[str, int]

    @property
    def per_artist(self) -> float:
        return self.api_requests / self.artists


def measure(count: int, concurrency: int = 32) -> tuple[RunCost, RunCost]:
    """(first run, refresh) over ``count`` synthetic artists."""
    artists, files = synthetic_artists(count)
    store = IdentityStore(artists)
    with FixtureServer() as server:
        apis = RecordedApis(server, artists=artists, files=files).install()
        entries = api_sources(server.base_url)
        sources = parse_sources(_yaml(entries))
        policy = FetchPolicy(
            allowed_private_hosts=frozenset({server.host_port}),
            per_host_min_interval=0.0,
            per_host_concurrency=concurrency,
        )
        costs = []
        for run in ("first", "refresh"):
            server.reset_hits()
            with Fetcher(policy) as fetcher:
                scraper = ArtistImageScraper(sources, fetcher, ImagePolicy())
                reports: list[ArtistReport] = list(
                    refresh_artists(
                        [str(n) for n in range(count)],
                        store=store,
                        scraper=scraper,
                        images=ImagePolicy(),
                        batch_id=run,
                        options=RefreshOptions(concurrency=concurrency),
                    )
                )
            outcomes: dict[str, int] = {}
            for report in reports:
                key = report.outcome.value if report.outcome else report.status.value
                outcomes[key] = outcomes.get(key, 0) + 1
            images = sum(n for path, n in server.hits.items() if "/images/" in path)
            costs.append(RunCost(count, apis.api_requests(), images, outcomes))
    return costs[0], costs[1]


def _yaml(entries: list[dict[str, object]]) -> str:
    # The API manners stay as the recorded servers' config says (no 1 s MusicBrainz wait).
    return yaml.safe_dump({"sources": entries}, allow_unicode=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--artists", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    first, refresh = measure(args.artists, args.concurrency)
    for label, cost in (("first run", first), ("refresh", refresh)):
        print(
            f"{label:9}: {cost.artists} artists, {cost.api_requests} API requests "
            f"({cost.per_artist:.3f} per artist), {cost.image_requests} image downloads, "
            f"outcomes {cost.outcomes}"
        )


if __name__ == "__main__":
    main()
