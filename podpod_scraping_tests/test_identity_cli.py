"""``podpod-scraping identity show|pin|unpin`` and ``takedown``, on a real catalog and store."""

from __future__ import annotations

from pathlib import Path

import pytest

from podpod_scraping.cli import main
from podpod_scraping.core.fetching import Fetcher, FetchPolicy
from podpod_scraping.core.identity import IdentityMethod
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.refresh import refresh_artists
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.core.sources import SourceConfig
from podpod_scraping.demo.server import FixtureServer
from podpod_scraping.storage.catalog.repository import CatalogRepository, insert_artists
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping.storage.objects import LocalObjectStore
from podpod_scraping_tests.defs.conftest import make_jpeg

MBID = "44444444-4444-4444-4444-444444444444"


@pytest.fixture
def repository(catalog: CatalogRepository) -> CatalogRepository:
    insert_artists(catalog.engine, [(1, "Nell"), (2, "Nell")])
    return catalog


def test_pin_then_show_prints_the_pinned_identity_with_its_evidence(
    repository: CatalogRepository, catalog_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["identity", "pin", "2", "musicbrainz", MBID, "--by", "ops", "--url", catalog_url])
        == 0
    )
    assert main(["identity", "show", "2", "--url", catalog_url]) == 0

    out = capsys.readouterr().out
    assert f"musicbrainz: {MBID} (pinned;" in out
    assert "pinned_by: ops" in out
    assert repository.identities(["2"])["2"][0].method is IdentityMethod.PINNED
    assert "1" not in repository.identities(["1"])  # the other Nell is untouched


def test_unpin_removes_the_pin(
    repository: CatalogRepository, catalog_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["identity", "pin", "1", "musicbrainz", MBID, "--url", catalog_url])

    assert main(["identity", "unpin", "1", "musicbrainz", "--url", catalog_url]) == 0

    assert "unpinned Nell (1) on musicbrainz" in capsys.readouterr().out
    assert repository.identities(["1"]) == {}


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["identity", "pin", "1", "spotify", "x"], 2, "unknown namespace 'spotify'"),
        (["identity", "pin", "1", "site:", "x"], 2, "unknown namespace 'site:'"),
        (["identity", "show", "99"], 1, "artist '99' is not in the catalog"),
        (
            ["takedown", "1", "--reason", "x", "--object-store-url", "/nonexistent"],
            1,
            "no current image",
        ),
    ],
)
def test_mistakes_get_a_clear_message_and_status(
    repository: CatalogRepository,
    catalog_url: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    status: int,
    message: str,
) -> None:
    assert main([*argv, "--url", catalog_url]) == status

    assert message in capsys.readouterr().err


@pytest.fixture
def published(
    repository: CatalogRepository, fixture_server: FixtureServer, tmp_path: Path
) -> tuple[Path, str]:
    """Artist 1 with a current image in a local object store; yields (store root, sha256)."""
    fixture_server.add_route("/i/1.jpg", body=make_jpeg(1), headers={"Content-Type": "image/jpeg"})
    fixture_server.add_route(
        "/artists/1", body='<img class="a" src="/i/1.jpg">', headers={"Content-Type": "text/html"}
    )
    source = SourceConfig(
        name="site", page_url=f"{fixture_server.base_url}/artists/{{id}}", selector="img.a"
    )
    policy = FetchPolicy(
        allowed_private_hosts=frozenset({f"127.0.0.1:{fixture_server.port}"}),
        per_host_min_interval=0.0,
    )
    root = tmp_path / "objects"
    store = CatalogImageStore(LocalObjectStore(root), repository)
    with Fetcher(policy) as fetcher:
        scraper = ArtistImageScraper([source], fetcher, ImagePolicy())
        (report,) = refresh_artists(
            ["1"], store=store, scraper=scraper, images=ImagePolicy(), batch_id="run-1"
        )
    assert report.current is not None
    return root, report.current.sha256


def test_takedown_deletes_the_objects_and_says_what_it_did(
    repository: CatalogRepository,
    catalog_url: str,
    published: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, sha256 = published
    argv = ["takedown", "1", "--reason", "DMCA 123", "--url", catalog_url]
    argv += ["--object-store-url", str(root)]

    assert main(argv) == 0

    out = capsys.readouterr().out
    assert f"{sha256} from " in out
    assert ": taken down" in out
    assert "the artist has no current image now" in out
    assert not (root / "artists" / "1" / f"{sha256}.jpg").exists()
    assert not list((root / "sources" / "1").glob("*.jpg"))
    assert repository.current_images(["1"]) == {}

    assert main(argv) == 0  # idempotent
    assert "already taken down" in capsys.readouterr().out
