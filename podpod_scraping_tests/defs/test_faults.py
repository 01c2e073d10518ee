"""The fault suite: real services fail mid-run; afterwards every invariant holds.

Each scenario runs the production path (the partitioned assets, as a UI backfill or the
CLI runs them) against its own Postgres cluster, its own GCS emulator (a folder backend,
so it can be killed and restarted on the same port) and a site whose image responses
the test can hold back, so a fault lands at a known point of the run. After each
scenario :func:`invariant_violations` re-checks the catalog and the bucket from scratch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from google.cloud import storage

from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping.defs.recovery import dead_runs, fail_dead_runs
from podpod_scraping.defs.resources import ObjectStoreResource
from podpod_scraping.demo.server import Route
from podpod_scraping.demo.site import FixtureServer
from podpod_scraping.storage.catalog.repository import make_engine
from podpod_scraping_tests.defs.conftest import Pipeline, RunOutcome, make_jpeg, open_pipeline
from podpod_scraping_tests.fixtures.gcs import RestartableEmulator
from podpod_scraping_tests.fixtures.invariants import invariant_violations
from podpod_scraping_tests.fixtures.postgres import PostgresServer, new_catalog, running_postgres
from podpod_scraping_tests.fixtures.processes import wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(420)


class GatedSite(FixtureServer):
    """A fixture site whose gated paths wait (up to a minute) until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gated: set[str] = set()

    def _record(self, path: str, headers: dict[str, str]) -> Route | None:
        route = super()._record(path, headers)
        if path in self.gated:
            self.gate.wait(timeout=60)
        return route


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresServer]:
    """A cluster of this module's own: the scenarios restart it."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def private_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableEmulator]:
    emulator = RestartableEmulator(tmp_path_factory.mktemp("faults-gcs"))
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def site() -> Iterator[GatedSite]:
    server = GatedSite().start()
    try:
        yield server
    finally:
        server.gate.set()
        server.stop()


@pytest.fixture
def catalog_url(private_postgres: PostgresServer) -> Iterator[str]:
    with new_catalog(private_postgres, "faults") as url:
        yield url


@pytest.fixture
def bucket(private_gcs: RestartableEmulator, monkeypatch: pytest.MonkeyPatch) -> storage.Bucket:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", private_gcs.endpoint)
    return private_gcs.emulator.client().create_bucket(f"faults-{uuid.uuid4().hex[:16]}")


@pytest.fixture
def open_faulty_pipeline(
    catalog_url: str, bucket: storage.Bucket, site: GatedSite, tmp_path: Path
) -> Iterator[Callable[[], Pipeline]]:
    """Opens pipelines (each with its own Dagster instance) over the same stores."""
    with contextlib.ExitStack() as stack:

        def opener() -> Pipeline:
            workdir = tmp_path / f"p{uuid.uuid4().hex[:6]}"
            workdir.mkdir()
            pipeline = stack.enter_context(
                open_pipeline(catalog_url=catalog_url, bucket=bucket, site=site, workdir=workdir)
            )
            # One object: seconds. A dead bucket must fail an artist fast.
            pipeline.resources["objects"] = ObjectStoreResource(
                url=f"gs://{bucket.name}", request_timeout_s=2, retry_deadline_s=3
            )
            return pipeline

        yield opener


def gated(pipeline: Pipeline) -> GatedSite:
    assert isinstance(pipeline.site, GatedSite)
    return pipeline.site


def _artists(pipeline: Pipeline, ids: range, *, gated_from: int | None = None) -> list[str]:
    """Catalog artists with pages; images of ids >= ``gated_from`` wait for the gate."""
    site = gated(pipeline)
    for n in ids:
        pipeline.add_artist(n, f"Artist {n}", image=make_jpeg(n))
        if gated_from is not None and n >= gated_from:
            site.gated.add(pipeline.image_path(n))
    return [str(n) for n in ids]


def _current_count(pipeline: Pipeline) -> int:
    with make_engine(pipeline.catalog_url).connect() as connection:
        return int(
            connection.exec_driver_sql(
                "SELECT count(*) FROM artist_images WHERE is_current"
            ).scalar_one()
        )


def _in_thread(target: Callable[[], RunOutcome]) -> tuple[threading.Thread, list[RunOutcome]]:
    results: list[RunOutcome] = []
    thread = threading.Thread(target=lambda: results.append(target()), daemon=True)
    thread.start()
    return thread, results


def _retry_requested(pipeline: Pipeline) -> bool:
    """The step failed and Dagster scheduled its retry (STEP_UP_FOR_RETRY)."""
    for record in pipeline.instance.get_run_records():
        events = pipeline.instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
        )
        if events:
            return True
    return False


def test_gcs_killed_mid_publish_stops_the_batch_and_its_retry_completes_it(
    open_faulty_pipeline: Callable[[], Pipeline],
    private_gcs: RestartableEmulator,
) -> None:
    pipeline = open_faulty_pipeline()
    keys = _artists(pipeline, range(1, 31), gated_from=11)
    run, outcome = _in_thread(lambda: pipeline.run(keys))
    wait_until("the first 10 artists published", lambda: _current_count(pipeline) >= 10)

    private_gcs.kill()
    killed_at = time.monotonic()
    gated(pipeline).gate.set()
    wait_until(
        "the step to stop and ask for a retry", lambda: _retry_requested(pipeline), 90, every=0.05
    )
    stopped_after = time.monotonic() - killed_at
    print(f"GCS killed: the step stopped after {stopped_after:.1f}s")
    private_gcs.start()
    run.join(timeout=300)

    assert outcome, "the run did not end"
    assert outcome[0].success, outcome[0].failure_description()
    assert stopped_after < 45, f"a dead bucket held the step for {stopped_after:.0f}s"
    assert _current_count(pipeline) == 30
    assert all(pipeline.site.hits[pipeline.image_path(n)] == 1 for n in range(1, 11))
    assert invariant_violations(pipeline.catalog_url, pipeline.bucket) == []


def test_postgres_restarted_mid_run_loses_and_duplicates_nothing(
    open_faulty_pipeline: Callable[[], Pipeline], private_postgres: PostgresServer
) -> None:
    pipeline = open_faulty_pipeline()
    keys = _artists(pipeline, range(1, 21), gated_from=9)
    run, outcome = _in_thread(lambda: pipeline.run(keys))
    wait_until("the first 8 artists published", lambda: _current_count(pipeline) >= 8)

    private_postgres.restart()
    gated(pipeline).gate.set()
    run.join(timeout=300)

    assert outcome, "the run did not end"
    assert outcome[0].success, outcome[0].failure_description()
    assert _current_count(pipeline) == 20
    assert invariant_violations(pipeline.catalog_url, pipeline.bucket) == []


def test_two_runs_over_the_same_artists_at_once_leave_one_image_each(
    open_faulty_pipeline: Callable[[], Pipeline],
    private_gcs: RestartableEmulator,
    tmp_path: Path,
) -> None:
    first = open_faulty_pipeline()
    keys = _artists(first, range(1, 11), gated_from=1)
    command, env, _ = cli_run(first, private_gcs.endpoint, tmp_path, keys)
    other = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run, outcome = _in_thread(lambda: first.run(keys))
    site = gated(first)
    wait_until(  # each run has 4 artists in flight: the first ones are fetched twice
        "both runs to wait on the same images",
        lambda: all(site.hits[first.image_path(n)] == 2 for n in range(1, 3)),
        180,
    )

    site.gate.set()
    run.join(timeout=300)
    _, errors = other.communicate(timeout=300)

    assert other.returncode == 0, errors[-3000:]
    assert outcome, "the run did not end"
    assert outcome[0].success, outcome[0].failure_description()
    assert _current_count(first) == 10
    assert all(len(first.rows(n)) == 1 for n in range(1, 11))
    assert invariant_violations(first.catalog_url, first.bucket) == []


def test_an_older_attempt_finishing_after_a_newer_one_is_superseded(
    open_faulty_pipeline: Callable[[], Pipeline],
    private_gcs: RestartableEmulator,
    tmp_path: Path,
) -> None:
    fast = open_faulty_pipeline()
    (key,) = _artists(fast, range(1, 2), gated_from=1)
    old_image = fast.image_path(1)
    command, env, home = cli_run(fast, private_gcs.endpoint, tmp_path, [key])
    slow = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until("the slow run to fetch version 1", lambda: fast.site.hits[old_image] == 1, 180)

    fast.set_page(1, image=make_jpeg(12))  # the site now shows version 2 (a new URL)
    newer = fast.run([key])
    newer_state = fast.state(1)
    gated(fast).gate.set()
    _, errors = slow.communicate(timeout=300)

    assert newer.success, newer.failure_description()
    assert slow.returncode == 0, errors[-3000:]
    rows = fast.rows(1)
    assert len(rows) == 2
    (current,) = [row for row in rows if row["is_current"]]
    assert current["source_image_url"].endswith(fast.image_path(1))  # version 2 stays current
    assert fast.state(1)["last_attempt_at"] == newer_state["last_attempt_at"]
    assert "superseded" in str(_observations(home)[key]["published"].value)
    assert invariant_violations(fast.catalog_url, fast.bucket) == []


def test_a_deleted_current_object_is_republished_by_the_next_refresh_despite_a_304(
    open_faulty_pipeline: Callable[[], Pipeline],
) -> None:
    pipeline = open_faulty_pipeline()
    pipeline.add_artist(1, "Artist 1", image=make_jpeg(1), image_headers={"ETag": '"v1"'})
    assert pipeline.run(["1"]).success
    (row,) = pipeline.rows(1)
    pipeline.bucket.blob(row["object_name"]).delete()

    again = pipeline.run(["1"])

    assert again.success
    headers = pipeline.site.headers[pipeline.image_path(1)]
    assert [h.get("If-None-Match") for h in headers] == [None, '"v1"', None]
    assert pipeline.bucket.get_blob(row["object_name"]) is not None
    assert len(pipeline.rows(1)) == 1
    assert invariant_violations(pipeline.catalog_url, pipeline.bucket) == []


def cli_run(
    pipeline: Pipeline, endpoint: str, workdir: Path, keys: list[str]
) -> tuple[list[Any], dict[str, str], Path]:
    """The README's CLI run over ``keys`` (a range) in its own process, on an instance of
    its own with the repo's run settings (pools, monitoring) on SQLite storage.

    A second run must be a process of its own: two in-process runs in one Python process
    can deadlock in ``logging.config.dictConfig`` (Dagster configures python_logs per
    run), which production never does.
    """
    home = workdir / f"dagster_home_{uuid.uuid4().hex[:6]}"
    home.mkdir()
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))
    settings.pop("storage")
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, keys)
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "PODPOD_CATALOG_URL": pipeline.catalog_url,
        "PODPOD_OBJECT_STORE_URL": f"gs://{pipeline.bucket.name}",
        "PODPOD_SCRAPER_CONFIG": str(pipeline.config_path),
        "STORAGE_EMULATOR_HOST": endpoint,
    }
    command: list[Any] = [
        BIN / "dagster",
        "asset",
        "materialize",
        "-m",
        "podpod_scraping.definitions",
        "--select",
        "artist_source_image,artist_image",
        "--partition-range" if len(keys) > 1 else "--partition",
        f"{keys[0]}...{keys[-1]}" if len(keys) > 1 else keys[0],
    ]
    return command, env, home


def _observations(home: Path) -> dict[str, Any]:
    """Partition → metadata of the artist_image observations of the instance's runs."""
    found: dict[str, Any] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records():
            for event in instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
            ):
                dagster_event = event.dagster_event
                assert dagster_event is not None
                observation = dagster_event.asset_observation_data.asset_observation
                found[str(observation.partition)] = observation.metadata
    return found


def test_a_run_killed_mid_scrape_is_failed_by_recovery_and_a_rerun_completes(
    open_faulty_pipeline: Callable[[], Pipeline],
    private_gcs: RestartableEmulator,
    tmp_path: Path,
) -> None:
    pipeline = open_faulty_pipeline()
    keys = _artists(pipeline, range(1, 21), gated_from=11)
    command, env, home = cli_run(pipeline, private_gcs.endpoint, tmp_path, keys)
    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until("10 artists published", lambda: _current_count(pipeline) >= 10, 180)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        log.close()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.status is dg.DagsterRunStatus.STARTED  # dead, but says not
        wait_until(
            "the dead run to go silent",
            lambda: dead_runs(instance, silent_for=timedelta(seconds=2)),
        )
        failed = fail_dead_runs(instance, silent_for=timedelta(seconds=2))
        assert [run.run_id for run in failed] == [record.dagster_run.run_id]
        dead = instance.get_run_by_id(record.dagster_run.run_id)
        assert dead is not None
        assert dead.status is dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()  # nothing held

    gated(pipeline).gate.set()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)

    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _current_count(pipeline) == 20
    assert all(len(pipeline.rows(n)) == 1 for n in range(1, 21))
    assert invariant_violations(pipeline.catalog_url, pipeline.bucket) == []
