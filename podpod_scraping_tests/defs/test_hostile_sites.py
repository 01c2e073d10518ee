"""Hostile and broken web sites, end to end through the Dagster pipeline.

One scenario for the whole module (two real runs keep the suite fast): every case's artist
first gets a GOOD current image through a real run, then its page is switched to the
hostile case and ONE run covers every case at once. Each test then checks one thing for
every case: the recorded outcome and reason (scrape state and the partition's Dagster
metadata), that the good image survived (same row, same object, same generation), and,
for SSRF cases, that the secret server behind the allow-list was never reached.

Servers: the artist pages live on a route-table server (``ScriptedFixtureServer``); the
streaming and redirecting attacks are the fetcher tests' hostile sites (``hostile.py``),
allow-listed in the scraper YAML like any configured site; the "secret" listeners stand
for what an SSRF would reach and are never allow-listed. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from PIL import Image

from podpod_scraping.core.images import ImagePolicy, normalize_image, placeholder_hash
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.defs.assets import artist_image_coverage
from podpod_scraping.demo.site import Route
from podpod_scraping_tests.core.fetching.hostile import (
    HostileSite,
    SecretServers,
    SiteRunner,
    start_secret_servers,
    stop_secret_servers,
)
from podpod_scraping_tests.core.images_factory import encode, png_declaring, silhouette
from podpod_scraping_tests.defs.conftest import (
    ENTRY_POINTS,
    Pipeline,
    RunOutcome,
    ScriptedFixtureServer,
    make_jpeg,
    standalone_pipeline,
)
from podpod_scraping_tests.fixtures.gcs import GCSEmulator
from podpod_scraping_tests.fixtures.postgres import PostgresServer

#: Every limit small, so the slow cases cost a few seconds of real time in total:
#: the trickle is cut at ``total_timeout``, 429 waits its ``Retry-After: 1`` once, 503
#: waits at most ``backoff_base``.
FETCH_SETTINGS: dict[str, Any] = {
    "total_timeout": 3.0,
    "connect_timeout": 1.0,
    "read_timeout": 2.0,
    "max_attempts": 2,
    "backoff_base": 0.05,
    "backoff_max": 0.1,
    "max_page_bytes": 200_000,
    "max_image_bytes": 1_000_000,
    "per_host_concurrency": 4,
    "per_host_min_interval": 0.0,
}
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
    b"<script>fetch('http://169.254.169.254/')</script><rect width='400' height='400'/></svg>"
)
HTML_PAGE = b"<!doctype html><html><head><title>Oops</title></head><body>Sorry</body></html>"
GOOD_ETAG_LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"


@dataclass
class World:
    """The running servers a case's page can point at."""

    pipeline: Pipeline
    server: ScriptedFixtureServer  # artist pages and static images (allow-listed)
    hostile: HostileSite  # streaming/redirecting attacks (allow-listed)
    trickle: HostileSite  # its own host: a trickle holds a connection slot for seconds
    secret: SecretServers  # never allow-listed: must see zero connections
    closed_port: int  # allow-listed, nobody listening


Setup = Callable[[World, int], None]


@dataclass(frozen=True)
class Case:
    """One hostile case: how the artist's page is switched, and what must be recorded."""

    name: str
    outcome: Outcome
    reason: str  # a fragment of the recorded reason that names the problem
    setup: Setup
    ssrf: bool = False


def _src(url: str) -> Setup:
    """The page's image ``src`` becomes ``url`` (as written, e.g. ``file://``)."""

    def setup(world: World, artist_id: int) -> None:
        world.pipeline.set_image_src(artist_id, url)

    return setup


def _hostile_src(path: str, *, own_host: bool = False) -> Setup:
    """The page's image ``src`` becomes a route of the hostile site (or its own-host copy)."""

    def setup(world: World, artist_id: int) -> None:
        site = world.trickle if own_host else world.hostile
        world.pipeline.set_image_src(artist_id, site.url(path))

    return setup


def _serve(body: bytes, content_type: str = "image/jpeg") -> Setup:
    def setup(world: World, artist_id: int) -> None:
        world.pipeline.set_page(artist_id, image_body=body, image_content_type=content_type)

    return setup


def _localhost_to_secret(world: World, artist_id: int) -> None:
    # `localhost` resolves (via /etc/hosts) to loopback; only 127.0.0.1:<site> is allowed.
    world.pipeline.set_image_src(
        artist_id, f"http://localhost:{world.secret.port}/computeMetadata/v1/token"
    )


def _page_to_metadata(world: World, artist_id: int) -> None:
    world.pipeline.redirect_page(
        artist_id, "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/"
    )


def _data_url(world: World, artist_id: int) -> None:
    inline = base64.b64encode(make_jpeg(artist_id)).decode("ascii")
    world.pipeline.set_image_src(artist_id, f"data:image/jpeg;base64,{inline}")


def _closed_port(world: World, artist_id: int) -> None:
    world.pipeline.set_image_src(artist_id, f"http://127.0.0.1:{world.closed_port}/photo.jpg")


def _robots_disallow(world: World, artist_id: int) -> None:
    world.server.add_route(
        "/robots.txt",
        body=f"User-agent: *\nDisallow: /artists/{artist_id}$\n",
        headers={"Content-Type": "text/plain"},
    )


def _unavailable_then_ok(world: World, artist_id: int) -> None:
    world.pipeline.set_page(artist_id, image=make_jpeg(200 + artist_id))
    world.server.script(world.pipeline.image_path(artist_id), [Route(503, b"busy")])


def _unchanged(world: World, artist_id: int) -> None:
    """Nothing changes: the image URL answers 304 to the validators of the first run."""


def _no_image(world: World, artist_id: int) -> None:
    world.pipeline.set_page(artist_id)


def _page_gone(world: World, artist_id: int) -> None:
    world.pipeline.set_page(artist_id, page_status=404)


CASES: list[Case] = [
    Case(
        "redirect_to_non_allow_listed_address",
        Outcome.UNSAFE_URL,
        "loopback address",
        _hostile_src("/redirect-to-secret"),
        ssrf=True,
    ),
    Case(
        "page_redirect_to_metadata_server",
        Outcome.UNSAFE_URL,
        "refused 169.254.169.254: link-local (cloud metadata)",
        _page_to_metadata,
        ssrf=True,
    ),
    Case(
        "host_name_resolving_to_loopback",
        Outcome.UNSAFE_URL,
        "refused localhost (",
        _localhost_to_secret,
        ssrf=True,
    ),
    Case("redirect_loop", Outcome.FETCH_ERROR, "too many redirects", _hostile_src("/loop-a")),
    Case(
        "file_url_in_src",
        Outcome.UNSAFE_URL,
        "only http and https URLs are fetched, not 'file'",
        _src("file:///etc/passwd"),
        ssrf=True,
    ),
    Case(
        "data_url_in_src",
        Outcome.NO_IMAGE,
        "(only data: URLs, which are never fetched)",
        _data_url,
    ),
    Case(
        "trickling_server",
        Outcome.TIMEOUT,
        "still sending after 3 s",
        _hostile_src("/trickle", own_host=True),
    ),
    Case(
        "endless_body",
        Outcome.TOO_LARGE,
        "image is larger than 1000000 bytes",
        _hostile_src("/endless"),
    ),
    Case(
        "body_longer_than_content_length",
        Outcome.NOT_AN_IMAGE,
        "starting with b'bbbbbbbb' is not an image",
        _hostile_src("/lying-length"),
    ),
    Case(
        "content_length_too_large",
        Outcome.TOO_LARGE,
        "Content-Length 1000000000000",
        _hostile_src("/huge-length"),
    ),
    Case("gzip_bomb", Outcome.TOO_LARGE, "image is larger than", _hostile_src("/gzip-bomb")),
    Case(
        "png_decompression_bomb",
        Outcome.TOO_LARGE,
        "2500000000 pixels",
        _serve(png_declaring(50_000, 50_000), "image/png"),
    ),
    Case(
        "truncated_jpeg",
        Outcome.INVALID_IMAGE,
        "corrupt or truncated jpeg",
        _serve(make_jpeg(9)[:3000]),
    ),
    Case(
        "html_served_as_image_jpeg",
        Outcome.NOT_AN_IMAGE,
        "HTML page is not an image",
        _serve(HTML_PAGE),
    ),
    Case(
        "svg_with_script",
        Outcome.NOT_AN_IMAGE,
        "SVG is not accepted",
        _serve(SVG_WITH_SCRIPT, "image/svg+xml"),
    ),
    Case(
        "one_pixel_image",
        Outcome.TOO_SMALL,
        "image is 1x1, minimum 200x200",
        _serve(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), "image/png"),
    ),
    Case(
        "placeholder_image",
        Outcome.PLACEHOLDER,
        "matches known placeholder",
        # A re-encoded, resized copy of the listed silhouette.
        _serve(encode(silhouette(500).resize((320, 320)), "JPEG", quality=70)),
    ),
    Case("robots_txt_disallow", Outcome.BLOCKED_BY_ROBOTS, "disallows", _robots_disallow),
    Case(
        "429_with_retry_after",
        Outcome.RATE_LIMITED,
        "answered 429 (2 attempts)",
        _hostile_src("/always-429"),
    ),
    Case("503_then_200", Outcome.FOUND, "fixture-site", _unavailable_then_ok),
    Case(
        "unchanged_answers_304", Outcome.UNCHANGED, "unchanged since last fetch (304)", _unchanged
    ),
    Case("page_not_found", Outcome.PAGE_NOT_FOUND, "page answered 404", _page_gone),
    Case("no_image_on_page", Outcome.NO_IMAGE, "no image on", _no_image),
    Case(
        "image_url_answers_404",
        Outcome.NO_IMAGE,
        "image URL answered 404",
        _src("/images/removed.jpg"),
    ),
    Case("network_error", Outcome.NETWORK_ERROR, "Connection refused", _closed_port),
]
ARTIST_IDS = {case.name: number for number, case in enumerate(CASES, start=1)}
GOOD_ARTIST = len(CASES) + 1  # refreshed with a new photo in the hostile run: found
# Artists whose FIRST attempt meets a hostile page: no good image to keep, so the coverage
# report counts them under their failure outcome.
NEVER_IMAGED: dict[int, tuple[Setup, Outcome]] = {
    GOOD_ARTIST + 1: (_src("file:///etc/shadow"), Outcome.UNSAFE_URL),
    GOOD_ARTIST + 2: (_hostile_src("/redirect-to-secret"), Outcome.UNSAFE_URL),
    GOOD_ARTIST + 3: (_page_gone, Outcome.PAGE_NOT_FOUND),
    GOOD_ARTIST + 4: (
        _serve(encode(Image.new("RGB", (1, 1)), "PNG"), "image/png"),
        Outcome.TOO_SMALL,
    ),
}
FAILURES = [case for case in CASES if not case.outcome.is_success]


def _case_ids(case: Case) -> str:
    return case.name


@dataclass
class Scenario:
    """Both runs, and what was recorded between them."""

    world: World
    first: RunOutcome
    second: RunOutcome
    rows_before: dict[int, list[dict[str, Any]]]
    generations_before: dict[str, int]
    page_hits_before: dict[str, int]
    metadata: dict[str, dict[str, Any]]  # artist_image's metadata in the hostile run, per key

    @property
    def pipeline(self) -> Pipeline:
        return self.world.pipeline


def _good_image_headers(artist_id: int) -> dict[str, str]:
    return {"ETag": f'"photo-{artist_id}-v1"', "Last-Modified": GOOD_ETAG_LAST_MODIFIED}


def _generations(pipeline: Pipeline) -> dict[str, int]:
    """Every object in the bucket (originals and published images; nothing is replaced)."""
    return {name: int(blob.generation or 0) for name, blob in pipeline.blobs(prefix="").items()}


def _closed_loopback_port() -> int:
    with socket.socket() as probe:  # bound then closed: nobody listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module", params=ENTRY_POINTS)
def scenario(
    postgres_server: PostgresServer,
    gcs_emulator: GCSEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Scenario]:
    """The whole scenario once per entry point: the asset range run and the batch job."""
    secret = start_secret_servers()
    runner = SiteRunner(secret)
    server = ScriptedFixtureServer().start()
    try:
        hostile, trickle = runner.start(), runner.start()
        with standalone_pipeline(
            postgres_server,
            gcs_emulator,
            server,
            tmp_path_factory.mktemp("hostile"),
            concurrency=8,
            entry=request.param,
        ) as pipeline:
            world = World(pipeline, server, hostile, trickle, secret, _closed_loopback_port())
            pipeline.configure(
                fetch=FETCH_SETTINGS,
                allow_hosts=[
                    hostile.host_port,
                    trickle.host_port,
                    f"127.0.0.1:{world.closed_port}",
                ],
                images={"placeholder_hashes": [placeholder_hash(encode(silhouette(), "PNG"))]},
            )
            yield _play(world)
    finally:
        server.stop()
        runner.stop_all()
        stop_secret_servers(secret)


def _play(world: World) -> Scenario:
    pipeline = world.pipeline
    for name, artist_id in [*ARTIST_IDS.items(), ("Good Artist", GOOD_ARTIST)]:
        pipeline.add_artist(
            artist_id,
            name,
            image=make_jpeg(artist_id),
            image_headers=_good_image_headers(artist_id),
        )
    first = pipeline.run([str(a) for a in range(1, GOOD_ARTIST + 1)])
    assert first.success
    assert {pipeline.state(a)["last_outcome"] for a in range(1, GOOD_ARTIST + 1)} == {"found"}
    rows_before = {a: pipeline.rows(a) for a in range(1, GOOD_ARTIST + 1)}
    generations_before = _generations(pipeline)

    for case in CASES:
        case.setup(world, ARTIST_IDS[case.name])
    pipeline.set_page(GOOD_ARTIST, image=make_jpeg(GOOD_ARTIST + 100))
    for artist_id, (setup, _outcome) in NEVER_IMAGED.items():
        pipeline.add_artist(artist_id, f"Newcomer {artist_id}")
        setup(world, artist_id)
    page_hits_before = dict(world.server.hits)

    second = pipeline.run([str(a) for a in range(1, max(NEVER_IMAGED) + 1)])
    metadata = {
        key: dict(value) for key, value in (second.materialized() | second.observed()).items()
    }
    return Scenario(
        world, first, second, rows_before, generations_before, page_hits_before, metadata
    )


# --------------------------------------------------------------------------- every case


def test_one_run_mixing_every_case_with_a_good_artist_records_every_outcome(
    scenario: Scenario,
) -> None:
    """No artist's failure stops another; each partition gets exactly one event; the run
    fails (failed artists exist) and only artists with a current image are materialized."""
    assert not scenario.second.success
    materialized, observed = scenario.second.materialized(), scenario.second.observed()
    assert not set(materialized) & set(observed)
    assert sorted({*materialized, *observed}, key=int) == [
        str(a) for a in range(1, max(NEVER_IMAGED) + 1)
    ]
    successes = {str(ARTIST_IDS[c.name]) for c in CASES if c.outcome.is_success}
    assert set(materialized) == successes | {str(GOOD_ARTIST)}
    recorded = {
        a: scenario.pipeline.state(a)["last_outcome"] for a in range(1, max(NEVER_IMAGED) + 1)
    }
    expected = {ARTIST_IDS[case.name]: case.outcome.value for case in CASES}
    expected[GOOD_ARTIST] = Outcome.FOUND.value
    expected |= {a: outcome.value for a, (_setup, outcome) in NEVER_IMAGED.items()}
    assert recorded == expected


@pytest.mark.parametrize("case", CASES, ids=_case_ids)
def test_outcome_and_reason_are_recorded_in_the_scrape_state(
    scenario: Scenario, case: Case
) -> None:
    state = scenario.pipeline.state(ARTIST_IDS[case.name])
    assert state["last_outcome"] == case.outcome.value, state["last_reason"]
    assert case.reason in state["last_reason"]


@pytest.mark.parametrize("case", CASES, ids=_case_ids)
def test_outcome_and_reason_are_the_partitions_dagster_metadata(
    scenario: Scenario, case: Case
) -> None:
    artist_id = ARTIST_IDS[case.name]
    metadata = scenario.metadata[str(artist_id)]
    assert metadata["outcome"].value == case.outcome.value
    assert case.reason in metadata["reason"].value
    assert metadata["reason"].value.startswith("fixture-site: ")  # which source said so


@pytest.mark.parametrize("case", FAILURES, ids=_case_ids)
def test_failure_keeps_the_good_current_image_row_and_object(
    scenario: Scenario, case: Case
) -> None:
    artist_id = ARTIST_IDS[case.name]
    rows = scenario.pipeline.rows(artist_id)
    assert rows == scenario.rows_before[artist_id]  # byte for byte, scraped_at included
    (current,) = rows
    assert current["is_current"]
    blob = scenario.pipeline.bucket.get_blob(current["object_name"])
    assert blob is not None
    assert blob.generation == scenario.generations_before[current["object_name"]]
    event = scenario.metadata[str(artist_id)]
    assert event["published"].value == "previous image kept"
    assert event["object_uri"].value == current["object_uri"]  # what the app still serves
    state = scenario.pipeline.state(artist_id)
    assert state["consecutive_failures"] == 1
    assert state["next_attempt_at"] is not None


@pytest.mark.parametrize("case", [c for c in CASES if c.ssrf], ids=_case_ids)
def test_ssrf_case_never_reaches_the_secret_server(scenario: Scenario, case: Case) -> None:
    assert scenario.pipeline.state(ARTIST_IDS[case.name])["last_outcome"] == "unsafe_url"
    assert scenario.world.secret.hits == 0


def test_no_object_is_written_or_rewritten_for_any_failure(scenario: Scenario) -> None:
    after = _generations(scenario.pipeline)
    new = set(after) - set(scenario.generations_before)
    published = {GOOD_ARTIST, ARTIST_IDS["503_then_200"]}
    # a new original (sources/) and a new published image with its variants (artists/) for
    # each, nothing else
    assert sorted({tuple(name.split("/")[:2]) for name in new}) == sorted(
        (prefix, str(a)) for a in published for prefix in ("artists", "sources")
    )
    assert {name: after[name] for name in scenario.generations_before} == (
        scenario.generations_before
    )


# --------------------------------------------------------------------------- case details


def test_robots_disallowed_page_is_never_requested(scenario: Scenario) -> None:
    path = f"/artists/{ARTIST_IDS['robots_txt_disallow']}"
    assert scenario.world.server.hits[path] == scenario.page_hits_before[path]
    assert scenario.world.server.hits["/robots.txt"] >= 1


def test_429_is_retried_once_after_retry_after_then_recorded(scenario: Scenario) -> None:
    assert scenario.world.hostile.hits["/always-429"] == FETCH_SETTINGS["max_attempts"]


def test_trickling_server_is_not_retried_after_the_deadline(scenario: Scenario) -> None:
    assert scenario.world.trickle.hits["/trickle"] == 1


def test_503_then_200_publishes_the_image_served_on_the_retry(scenario: Scenario) -> None:
    artist_id = ARTIST_IDS["503_then_200"]
    pipeline = scenario.pipeline
    assert scenario.world.server.hits[pipeline.image_path(artist_id)] == 2
    (old,) = scenario.rows_before[artist_id]
    rows = pipeline.rows(artist_id)
    assert [row["sha256"] for row in rows] == [
        old["sha256"],
        normalize_image(make_jpeg(200 + artist_id), ImagePolicy()).sha256,
    ]
    assert [row["is_current"] for row in rows] == [False, True]
    assert pipeline.bucket.get_blob(old["object_name"]) is not None
    assert pipeline.bucket.get_blob(rows[1]["object_name"]) is not None


def test_unchanged_image_keeps_its_row_and_object(scenario: Scenario) -> None:
    artist_id = ARTIST_IDS["unchanged_answers_304"]
    pipeline = scenario.pipeline
    (before,) = scenario.rows_before[artist_id]
    (after,) = pipeline.rows(artist_id)
    identity = ("id", "sha256", "object_name", "object_uri", "is_current", "byte_size")
    assert {k: after[k] for k in identity} == {k: before[k] for k in identity}
    assert after["scraped_at"] > before["scraped_at"]  # verified just now: not stale
    sent = pipeline.site.headers[pipeline.image_path(artist_id)][-1]
    assert sent["If-None-Match"] == f'"photo-{artist_id}-v1"'
    assert pipeline.state(artist_id)["consecutive_failures"] == 0


def test_good_artist_in_the_same_run_gets_its_new_image(scenario: Scenario) -> None:
    pipeline = scenario.pipeline
    rows = pipeline.rows(GOOD_ARTIST)
    assert [row["is_current"] for row in rows] == [False, True]
    assert scenario.metadata[str(GOOD_ARTIST)]["outcome"].value == "found"
    assert str(scenario.metadata[str(GOOD_ARTIST)]["object_uri"].value).endswith(
        f"{rows[1]['sha256']}.jpg"
    )


# --------------------------------------------------------------------------- coverage


def test_coverage_counts_failure_outcomes_and_kept_images(scenario: Scenario) -> None:
    coverage = scenario.pipeline.repository.coverage(
        now=datetime.now(UTC), max_age=timedelta(days=30)
    )
    counts = dict(zip(coverage["category"], coverage["artists"], strict=True))
    assert counts == {
        # every hostile case kept its good image; the good artist has a new one
        "current image": GOOD_ARTIST,
        "object missing": 0,
        "variants missing": 0,
        "stale": 0,
        "never attempted": 0,
        "never found": 0,
        "failed: unsafe_url": 2,
        "failed: page_not_found": 1,
        "failed: too_small": 1,
    }


def test_coverage_asset_reports_the_failure_outcomes(scenario: Scenario) -> None:
    result = dg.materialize(
        [artist_image_coverage],
        instance=scenario.pipeline.instance,
        resources=scenario.pipeline.resources,
    )
    (materialization,) = result.asset_materializations_for_node("artist_image_coverage")
    report = str(materialization.metadata["coverage"].value)
    assert "failed: unsafe_url" in report
    assert "failed: too_small" in report
    assert materialization.metadata["artists"].value == max(NEVER_IMAGED)


def test_coverage_asset_counts_every_last_attempt_outcome(scenario: Scenario) -> None:
    result = dg.materialize(
        [artist_image_coverage],
        instance=scenario.pipeline.instance,
        resources=scenario.pipeline.resources,
    )
    (materialization,) = result.asset_materializations_for_node("artist_image_coverage")
    table = str(materialization.metadata["last_attempt_outcomes"].value)
    for case in CASES:
        assert f"| {case.outcome.value} |" in table, case.name
