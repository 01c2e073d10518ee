"""Scrape throughput against a slow, polite-limited site: prints numbers, asserts nothing.

    uv run python -m benchmarks.throughput [--artists 1000] [--latency 0.2]
        [--connections 16] [--only a,b,c,n] [--repeat 1] [--refresh] [--keep]

Why: a run's speed is bounded by politeness, not by us. With ``connections`` requests
in flight per host and ``latency`` seconds per request, and 3 requests per artist
(search → redirect, page, image), no scraper can beat
``connections / (3 * latency)`` artists/s. This measures how close each entry point
gets to that bound, and what Dagster costs on top of the plain service:

(a) the plain reference: ``core.refresh.refresh_artists`` built exactly as the Dagster
    step builds it, in a process of its own (no Dagster imported; its own peak RSS);
(b) ``dagster asset materialize --partition-range 1...N``: one run, the CLI process;
(c) the unattended path: a real ``dagster-daemon``, the catalog sensor started, its
    partition-range runs of ``refresh.batch_size`` artists queued and launched;
(n) (a) with ``images.variants.enabled: false``: what rendering and uploading the variant
    sets (``core.variants``) costs the pipeline; ``--only a,n`` prints the comparison.
    ``--repeat 3`` runs (a) and (n) three times, alternating, and prints each pair's ratio
    and the median: on these noisy machines one pair can be 10 % off either way.

Each variant gets a fresh catalog database, a fresh bucket and fresh Dagster storage on
services the benchmark starts itself, all on 127.0.0.1: a throw-away PostgreSQL, the
fake-gcs-server emulator (its folder backend, in tmpfs), and the site of
``benchmarks._throughput_site``.
``--refresh`` runs (a) a second time over the same artists: an unchanged site must cost
no upload and no full image download (304s only).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmarks._throughput_site import BenchSite, SiteCounters
from podpod_scraping.core.config import load_scraper_config
from podpod_scraping.core.fetching import Fetcher
from podpod_scraping.core.refresh import BatchTally, RefreshOptions, refresh_artists
from podpod_scraping.core.scraper import ArtistImageScraper
from podpod_scraping.storage.catalog.repository import CatalogRepository, make_engine
from podpod_scraping.storage.images import CatalogImageStore
from podpod_scraping.storage.objects import GCSObjectStore
from podpod_scraping.storage.variant_sets import ProcessVariantWriter, variant_writer
from podpod_scraping_tests.fixtures.processes import stop_process_group

if TYPE_CHECKING:
    from google.cloud import storage

    from podpod_scraping_tests.fixtures.gcs import GCSEmulator
    from podpod_scraping_tests.fixtures.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: dagster, dagster-daemon
WORKSPACE = REPO / "workspace.yaml"
REQUESTS_PER_ARTIST = 3
#: ``refresh.batch_size`` of the config: one unattended run per this many artists.
DAGSTER_BATCH_SIZE = 500
PLAIN_BATCH_ID = "bench"
#: The refresh pass needs another batch id: the store skips artists its batch already did.
REFRESH_BATCH_ID = "bench-refresh"
ARTISTS_PARTITIONS = "artists"
SENSOR = "artist_catalog_sensor"
VARIANTS = {
    "a": "(a) plain reference, no Dagster",
    "b": "(b) dagster asset materialize",
    "c": "(c) sensor + dagster-daemon",
    "n": "(n) (a) with variants off",
}
_UNFINISHED = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
_SAMPLE_EVERY_S = 0.5
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (field 3 of proc(5) is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_s(fields: Sequence[str]) -> float:
    """User + system CPU seconds of a process from its :func:`_stat_fields`."""
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


# --------------------------------------------------------------------------- results


@dataclass
class VariantResult:
    """One variant's numbers, as the table shows them."""

    key: str
    round_: int = 0  # which --repeat round (0: the first)
    wall_s: float | None = None
    ok: bool = False
    status: str = ""
    peak_rss_mb: float | None = None
    cpu_s: float | None = None  # user + system CPU of the measured process(es)
    writers_cpu_s: float = 0.0  # (a): its variant writer processes' (not in cpu_s)
    site: SiteCounters = field(default_factory=SiteCounters)
    events: int | None = None
    work_s: float | None = None  # the refresh itself (the service call, or the step[s])
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Finished:
    """A subprocess that ended: exit code, wall time, its own peak RSS (``wait4``)."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    launched_at: float  # time.time() at launch, to line up with event timestamps


def _run_measured(
    command: Sequence[str], *, env: Mapping[str, str], log: Path, timeout: float
) -> Finished:
    """Run ``command`` in the repo, output to ``log``; reap it with ``wait4`` for its RSS.

    ``wait4`` gives the child's own peak RSS (``ru_maxrss``), which ``subprocess``
    throws away; polling with WNOHANG keeps a timeout.
    """
    launched_at = time.time()
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Finished(process.returncode, wall, usage.ru_maxrss / 1024, cpu, launched_at)


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# --------------------------------------------------------------------------- services


#: Where the emulator keeps its objects: a memory-backed folder when the machine has one.
_TMPFS = Path("/dev/shm")  # noqa: S108 -- mkdtemp makes a private folder in it


@contextlib.contextmanager
def _gcs_emulator(log_path: Path) -> Iterator[GCSEmulator]:
    """fake-gcs-server on 127.0.0.1 (the test fixture's helpers), always stopped.

    With its folder backend, in tmpfs when there is one: its memory backend scans a
    bucket's objects on every upload (measured: 1.1 ms of emulator CPU per upload into an
    empty bucket, 8.7 ms at 4,000 objects; the folder backend on tmpfs stays at 1.05 ms).
    Variant sets add objects, so that scan charged each set's uploads more than the
    published image's, on the 2 cores the pipeline shares: a cost GCS does not have.
    """
    from podpod_scraping_tests.fixtures.gcs import start_emulator, stop_emulator

    root = Path(
        tempfile.mkdtemp(prefix="podpod-bench-gcs-", dir=_TMPFS if _TMPFS.is_dir() else None)
    )
    try:
        emulator = start_emulator(log_path, root=root)
        if emulator is None:
            raise RuntimeError(f"fake-gcs-server did not start:\n{_tail(log_path)}")
        try:
            yield emulator
        finally:
            stop_emulator(emulator)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables in this process for a while (a DagsterInstance reads its config's)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Bench:
    """Everything the variants share: arguments, running services, the config file."""

    artists: int
    latency: float
    connections: int
    work: Path
    postgres: PostgresServer
    emulator: GCSEmulator
    gcs: storage.Client
    site: BenchSite
    config_path: Path

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in range(1, self.artists + 1)]

    @property
    def bound(self) -> float:
        """The politeness bound in artists/s: no scraper can be faster on this site."""
        return self.connections / (REQUESTS_PER_ARTIST * self.latency)

    def base_env(self) -> dict[str, str]:
        return dict(os.environ) | {
            "STORAGE_EMULATOR_HOST": self.emulator.endpoint,
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }

    def fresh_catalog(self, label: str) -> str:
        """A new, migrated catalog with the N artists; returns its URL."""
        from podpod_scraping.storage.catalog.migrate import upgrade
        from podpod_scraping.storage.catalog.repository import (
            create_artists_table,
            insert_artists,
        )

        url = self.postgres.url(self.postgres.create_database(f"catalog_{label}"))
        upgrade(url)
        engine = make_engine(url)
        try:
            create_artists_table(engine)
            insert_artists(engine, [(i, f"Artist {i}") for i in range(1, self.artists + 1)])
        finally:
            engine.dispose()
        return url

    def fresh_bucket(self, label: str) -> str:
        bucket = self.gcs.create_bucket(f"bench-{label}-{uuid.uuid4().hex[:12]}")
        return str(bucket.name)

    def objects(self, bucket: str) -> dict[str, tuple[int, int]]:
        """Every object of ``bucket``: name → (generation, metageneration)."""
        return {
            str(blob.name): (int(blob.generation or 0), int(blob.metageneration or 0))
            for blob in self.gcs.list_blobs(bucket)
        }

    def query(self, url_or_db: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one query on a database of the benchmark's server (by name or URL)."""
        database = url_or_db.rsplit("/", 1)[-1]
        connection = self.postgres.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def catalog_summary(self, url: str) -> tuple[int, dict[str, int], str]:
        """Artists attempted, their outcomes, and whether every source image was distinct."""
        outcomes = {
            str(outcome): int(count)
            for outcome, count in self.query(
                url, "SELECT last_outcome, count(*) FROM artist_scrape_state GROUP BY 1"
            )
        }
        current, distinct = self.query(
            url,
            "SELECT count(*), count(DISTINCT source_sha256) FROM artist_images WHERE is_current",
        )[0]
        return sum(outcomes.values()), outcomes, f"{distinct}/{current} distinct source images"

    def measure_site(self) -> SiteCounters:
        """Start a counting window on the site; pair with :meth:`site_since`."""
        self.site.reset_peak()
        return self.site.counters()

    def site_since(self, before: SiteCounters) -> SiteCounters:
        return self.site.counters().minus(before)


def _write_config(path: Path, site: BenchSite, connections: int, *, variants: bool = True) -> None:
    """The scraper YAML every variant reads (one file: batch size only matters to b/c)."""
    config = {
        "sources": [
            {
                "name": "bench-site",
                "page_url": f"{site.base_url}/search?q={{name_plus}}",
                "selector": "img.artist-image",
            }
        ],
        "fetch": {
            "allowed_private_hosts": [site.host_port],
            "per_host_concurrency": connections,
            "per_host_min_interval": 0.0,
            "user_agent": "podpod-scraping-bench/1.0 (+bench@example.invalid)",
        },
        "refresh": {"batch_size": DAGSTER_BATCH_SIZE, "concurrency": connections * 2},
        "images": {"variants": {"enabled": variants}},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# --------------------------------------------------------------------------- (a) plain


def _child_plain(args: argparse.Namespace) -> int:
    """The plain reference's process: exactly what ``defs.execution.refresh_step`` builds
    (``defs.resources``), minus Dagster. Writes its numbers as JSON to ``--result``."""
    ready_at = time.time()
    config = load_scraper_config(args.config)
    objects = GCSObjectStore(args.bucket)
    store = CatalogImageStore(
        objects,
        CatalogRepository(make_engine(args.catalog_url)),
        variant_writer=variant_writer(objects, config.refresh.variant_processes),
    )
    ids = [str(i) for i in range(1, args.artists + 1)]
    tally = BatchTally()
    started = time.perf_counter()
    with Fetcher(config.fetch) as fetcher:
        reports = refresh_artists(
            ids,
            store=store,
            scraper=ArtistImageScraper(config.sources, fetcher, config.images),
            images=config.images,
            batch_id=args.batch_id,
            options=RefreshOptions(concurrency=config.refresh.concurrency),
        )
        for report in reports:
            tally.add(report)
    service_s = time.perf_counter() - started
    writers = store.variant_writer  # grandchildren: wait4 does not count their CPU
    writers_cpu_s = (
        sum(_cpu_s(_stat_fields(pid)) for pid in writers.worker_pids)
        if isinstance(writers, ProcessVariantWriter)
        else 0.0
    )
    store.close()
    result = {
        "ready_at": ready_at,
        "service_s": service_s,
        "writers_cpu_s": writers_cpu_s,
        "total": tally.total,
        "by_status": tally.by_status,
        "by_outcome": tally.by_outcome,
        "failed": [f"{r.artist_id}: {r.reason}" for r in tally.failed[:5]],
        "storage_failed": [f"{r.artist_id}: {r.error}" for r in tally.storage_failed[:5]],
        "dagster_imported": "dagster" in sys.modules,
    }
    Path(args.result).write_text(json.dumps(result))
    return 0


def _plain_pass(
    bench: Bench,
    *,
    label: str,
    catalog_url: str,
    bucket: str,
    batch_id: str,
    config_path: Path | None = None,
) -> tuple[Finished, dict[str, Any], SiteCounters]:
    """One run of the plain reference in its own process; returns it, its JSON, its hits."""
    result_path = bench.work / f"{label}.json"
    before = bench.measure_site()
    finished = _run_measured(
        [
            sys.executable,
            "-m",
            "benchmarks.throughput",
            "--_child-plain",
            "--artists",
            str(bench.artists),
            "--catalog-url",
            catalog_url,
            "--bucket",
            bucket,
            "--config",
            str(config_path or bench.config_path),
            "--batch-id",
            batch_id,
            "--result",
            str(result_path),
        ],
        env=bench.base_env(),
        log=bench.work / f"{label}.log",
        timeout=_timeout(bench),
    )
    hits = bench.site_since(before)
    data: dict[str, Any] = {}
    if result_path.exists():
        data = json.loads(result_path.read_text())
    return finished, data, hits


def _timeout(bench: Bench) -> float:
    """Generous: five times the politeness bound's duration plus five minutes."""
    return 300 + 5 * bench.artists / bench.bound


def run_plain(
    bench: Bench,
    *,
    refresh: bool,
    key: str = "a",
    config_path: Path | None = None,
    round_: int = 0,
) -> tuple[VariantResult, list[list[Any]] | None]:
    """(a) (or (n) with its own config), and with ``refresh`` the unchanged second pass."""
    result = VariantResult(key, round_=round_)
    label = f"{key}{round_}" if round_ else key
    catalog_url, bucket = bench.fresh_catalog(label), bench.fresh_bucket(label)
    finished, data, hits = _plain_pass(
        bench,
        label=label,
        catalog_url=catalog_url,
        bucket=bucket,
        batch_id=PLAIN_BATCH_ID,
        config_path=config_path,
    )
    result.wall_s, result.peak_rss_mb, result.site = finished.wall_s, finished.peak_rss_mb, hits
    result.cpu_s = finished.cpu_s
    result.events = 0
    attempted, outcomes, distinct = bench.catalog_summary(catalog_url)
    succeeded = int(data.get("by_status", {}).get("succeeded", 0))
    result.ok = finished.returncode == 0 and succeeded == bench.artists
    result.status = f"exit {finished.returncode}; " + _outcomes(outcomes)
    if data and int(data["total"]) != bench.artists:
        result.status += f"; only {data['total']} reports for {bench.artists} artists"
    if data:
        result.work_s = float(data["service_s"])
        result.writers_cpu_s = float(data["writers_cpu_s"])
        startup = float(data["ready_at"]) - finished.launched_at
        result.details += [
            f"process start + imports {startup:.2f} s, refresh_artists() {result.work_s:.2f} s; "
            f"Dagster imported in the child: {data['dagster_imported']}",
            f"attempted {attempted}/{bench.artists}; {distinct}",
        ]
        for line in data.get("failed", []) + data.get("storage_failed", []):
            result.details.append(f"failed: {line}")
    else:
        result.details.append(f"no result file; log tail:\n{_tail(bench.work / f'{key}.log')}")
    if not refresh:
        return result, None

    before_objects = bench.objects(bucket)
    again, data2, hits2 = _plain_pass(
        bench,
        label="a-refresh",
        catalog_url=catalog_url,
        bucket=bucket,
        batch_id=REFRESH_BATCH_ID,
    )
    after_objects = bench.objects(bucket)
    new = sorted(set(after_objects) - set(before_objects))
    gone = sorted(set(before_objects) - set(after_objects))
    common = set(before_objects) & set(after_objects)
    rewritten = sorted(n for n in common if after_objects[n][0] != before_objects[n][0])
    touched = sorted(n for n in common if after_objects[n][1] != before_objects[n][1])
    rows: list[list[Any]] = [
        ["wall (s)", f"{again.wall_s:.1f}"],
        ["refresh_artists() (s)", f"{float(data2.get('service_s', float('nan'))):.1f}"],
        ["artists/s", f"{bench.artists / again.wall_s:.1f}"],
        ["reports yielded (one per artist)", data2.get("total", f"exit {again.returncode}")],
        ["outcomes", _outcomes(data2.get("by_outcome", {})) or f"exit {again.returncode}"],
        ["objects before / after", f"{len(before_objects)} / {len(after_objects)}"],
        ["new objects (must be 0)", len(new)],
        ["rewritten objects: generation changed (must be 0)", len(rewritten)],
        ["metadata updates: metageneration changed", len(touched)],
        ["deleted objects", len(gone)],
        ["full image downloads: image 200s (must be 0)", hits2.image_200],
        ["image 304s", hits2.image_304],
        ["search + page requests", hits2.search + hits2.page],
        ["requests/artist (robots.txt excluded)", f"{hits2.requests / bench.artists:.2f}"],
        ["max concurrent requests seen by the site", hits2.max_in_flight],
        ["max TCP connections open at once (not limited)", hits2.max_open_connections],
        ["peak RSS (MB)", f"{again.peak_rss_mb:.0f}"],
        ["CPU of the process (s)", f"{again.cpu_s:.1f}"],
    ]
    for name in (new + rewritten)[:5]:
        rows.append(["e.g.", name])
    return result, rows


def _outcomes(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(counts.items()))


# --------------------------------------------------------------------------- Dagster


@dataclass(frozen=True)
class DagsterDeployment:
    """One variant's Dagster home, storage database and environment."""

    home: Path
    database: str
    env: dict[str, str]
    catalog_url: str
    bucket: str


def _deployment(bench: Bench, label: str) -> DagsterDeployment:
    """Fresh catalog, bucket and Dagster storage; the repo's dagster.yaml, as deployed."""
    catalog_url, bucket = bench.fresh_catalog(label), bench.fresh_bucket(label)
    database = bench.postgres.create_database(f"dagster_{label}")
    home = bench.work / f"dagster_home_{label}"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = bench.base_env() | {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": bench.postgres.host,
        "DAGSTER_PG_PORT": str(bench.postgres.port),
        "DAGSTER_PG_USER": bench.postgres.user,
        "DAGSTER_PG_PASSWORD": "unused-trust-auth",
        "DAGSTER_PG_DB": database,
        "PODPOD_CATALOG_URL": catalog_url,
        "PODPOD_OBJECT_STORE_URL": f"gs://{bucket}",
        "PODPOD_SCRAPER_CONFIG": str(bench.config_path),
    }
    return DagsterDeployment(home, database, env, catalog_url, bucket)


@contextlib.contextmanager
def _instance(deployment: DagsterDeployment) -> Iterator[Any]:
    """The deployment's DagsterInstance in this process, disposed and collected after.

    Collected right away: a DagsterInstance finalized later, while another is in use,
    resets a context variable under it (see podpod_scraping_tests/fixtures/dagster.py).
    """
    import dagster as dg

    keys = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")
    with (
        _environ({key: deployment.env[key] for key in (*keys, "DAGSTER_PG_DB")}),
        dg.DagsterInstance.from_config(str(deployment.home)) as instance,
    ):
        yield instance
    gc.collect()


def _events(bench: Bench, deployment: DagsterDeployment) -> tuple[int, str]:
    """Rows of ``event_logs`` written by the variant's runs, in total and by type."""
    rows = bench.query(
        deployment.database,
        "SELECT coalesce(dagster_event_type, 'log message'), count(*) FROM event_logs "
        "WHERE run_id IN (SELECT run_id FROM runs) GROUP BY 1 ORDER BY 2 DESC",
    )
    total = sum(int(count) for _, count in rows)
    top = ", ".join(f"{kind} {int(count)}" for kind, count in rows[:6])
    return total, top


@dataclass(frozen=True)
class RunTimes:
    """One run's life from its event log (wall-clock timestamps)."""

    run_id: str
    status: str
    tags: Mapping[str, str]
    created: float | None
    run_start: float | None
    step_start: float | None
    step_end: float | None
    run_end: float | None


def _run_times(deployment: DagsterDeployment) -> list[RunTimes]:
    """Every run of the deployment, oldest first, with its step's start and end."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
    }
    found: list[RunTimes] = []
    with _instance(deployment) as instance:
        for record in reversed(instance.get_run_records()):
            run = record.dagster_run
            first: dict[str, float] = {}
            last: dict[str, float] = {}
            for entry in instance.all_logs(run.run_id, of_type=kinds):
                event = entry.dagster_event
                if event is None:
                    continue
                name = event.event_type.name  # RUN_START, not its stored PIPELINE_START
                first.setdefault(name, entry.timestamp)
                last[name] = entry.timestamp
            step_end = last.get("STEP_SUCCESS") or last.get("STEP_FAILURE")
            run_end = last.get("RUN_SUCCESS") or last.get("RUN_FAILURE") or record.end_time
            created = record.create_timestamp
            if created.tzinfo is None:  # Dagster's run storage keeps naive UTC
                created = created.replace(tzinfo=UTC)
            found.append(
                RunTimes(
                    run_id=run.run_id,
                    status=run.status.value,
                    tags=dict(run.tags),
                    created=created.timestamp(),
                    run_start=first.get("RUN_START") or record.start_time,
                    step_start=first.get("STEP_START"),
                    step_end=step_end,
                    run_end=run_end,
                )
            )
    return found


def _planned(bench: Bench, deployment: DagsterDeployment) -> dict[str, tuple[float, float, int]]:
    """Per run: first and last ASSET_MATERIALIZATION_PLANNED (epoch s) and their number.

    Dagster writes them while *creating* a run, one per partition and asset when the
    event storage cannot store a partition subset (Postgres in 1.13), so they show
    where a big partition range's time goes before the run even starts.
    """
    rows = bench.query(
        deployment.database,
        "SELECT run_id, extract(epoch FROM min(timestamp)), extract(epoch FROM max(timestamp)), "
        "count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION_PLANNED' "
        "GROUP BY run_id",
    )
    return {str(r[0]): (float(r[1]), float(r[2]), int(r[3])) for r in rows}


def _materializations(bench: Bench, deployment: DagsterDeployment) -> tuple[list[str], int]:
    """Per asset: partitions materialized by the runs, the first ones missing, and how
    many artists lack a materialization of some asset.

    Every found artist must have one materialization of each asset; a shortfall means
    events were lost between the step and the event log.
    """
    rows = bench.query(
        deployment.database,
        "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = "
        "'ASSET_MATERIALIZATION' AND run_id IN (SELECT run_id FROM runs)",
    )
    by_asset: dict[str, list[str]] = {}
    for asset_key, partition in rows:
        by_asset.setdefault(str(asset_key), []).append(str(partition))
    lines = []
    lacking: set[str] = set()
    for asset_key, partitions in sorted(by_asset.items()):
        missing = sorted(set(bench.ids) - set(partitions), key=int)
        lacking.update(missing)
        duplicated = len(partitions) - len(set(partitions))
        lines.append(
            f"{asset_key}: {len(set(partitions))}/{bench.artists} partitions materialized"
            + (f", {duplicated} twice" if duplicated else "")
            + (f"; missing {len(missing)}: {', '.join(missing[:10])}" if missing else "")
        )
    return lines, len(lacking) if by_asset else bench.artists


def _span(start: float | None, end: float | None) -> str:
    return f"{end - start:.1f}" if start is not None and end is not None else "?"


# --------------------------------------------------------------------------- (b) CLI


def run_cli(bench: Bench) -> VariantResult:
    """(b): one ``dagster asset materialize`` run over every partition (the CLI process)."""
    result = VariantResult("b")
    deployment = _deployment(bench, "b")
    added = time.perf_counter()
    with _instance(deployment) as instance:
        instance.add_dynamic_partitions(ARTISTS_PARTITIONS, bench.ids)
    added = time.perf_counter() - added
    log = bench.work / "b.log"
    before = bench.measure_site()
    finished = _run_measured(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "podpod_scraping.definitions",
            "--select",
            "artist_source_image,artist_image",
            "--partition-range",
            f"1...{bench.artists}",
        ],
        env=deployment.env,
        log=log,
        timeout=_timeout(bench),
    )
    result.site = bench.site_since(before)
    result.wall_s, result.peak_rss_mb = finished.wall_s, finished.peak_rss_mb
    result.cpu_s = finished.cpu_s
    attempted, outcomes, distinct = bench.catalog_summary(deployment.catalog_url)
    result.ok = finished.returncode == 0 and outcomes.get("found", 0) == bench.artists
    result.status = f"exit {finished.returncode}; " + _outcomes(outcomes)
    result.events, top = _events(bench, deployment)
    materialized, lacking = _materializations(bench, deployment)
    if lacking:
        result.status += f"; {lacking} artist(s) without materializations"
    result.details += [
        f"adding {bench.artists} dynamic partitions beforehand: {added:.2f} s (not in wall)",
        f"attempted {attempted}/{bench.artists}; {distinct}",
        f"event_logs rows by type: {top}",
        *materialized,
    ]
    runs = _run_times(deployment)
    planned = _planned(bench, deployment)
    for run in runs:
        result.work_s = run.step_end - run.step_start if run.step_start and run.step_end else None
        exit_at = finished.launched_at + finished.wall_s
        first, last, count = planned.get(run.run_id, (None, None, 0))
        result.details.append(
            f"wall split: launch → first of {count} ASSET_MATERIALIZATION_PLANNED "
            f"{_span(finished.launched_at, first)} s (imports, loading the definitions) | "
            f"writing them {_span(first, last)} s | → RUN_START {_span(last, run.run_start)} s "
            f"| RUN_START → STEP_START "
            f"{_span(run.run_start, run.step_start)} s | step {_span(run.step_start, run.step_end)}"
            f" s | step end → run end {_span(run.step_end, run.run_end)} s | run end → exit "
            f"{_span(run.run_end, exit_at)} s  [run {run.status}]"
        )
    if not runs:
        result.details.append("no run was created")
    if finished.returncode != 0:
        result.details.append(f"CLI output (tail):\n{_tail(log)}")
    return result


# --------------------------------------------------------------------------- (c) daemon


class GroupPeaks:
    """Peak RSS of every process of one process group, sampled from /proc.

    The daemon, its code server and the run workers it launches (``dagster api
    execute_run``) share the daemon's process group; each process's ``VmHWM`` is its own
    high-water mark, so sampling every half second loses only the last moments of a
    process's life.
    """

    def __init__(self, pgid: int, interval: float = _SAMPLE_EVERY_S) -> None:
        self._pgid = pgid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.peaks: dict[int, tuple[str, int]] = {}  # pid → (command line, VmHWM kB)
        self.cpu: dict[int, float] = {}  # pid → user + system CPU seconds, last seen

    def __enter__(self) -> GroupPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = _stat_fields(int(entry.name))
                if int(fields[2]) != self._pgid:  # pgrp
                    continue
                self.cpu[int(entry.name)] = _cpu_s(fields)
                hwm = 0
                for line in Path(entry.path, "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
                pid = int(entry.name)
                command = self.peaks.get(pid, ("", 0))[0]
                if not command:
                    raw = Path(entry.path, "cmdline").read_bytes()
                    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                self.peaks[pid] = (command, max(hwm, self.peaks.get(pid, ("", 0))[1]))

    def by_role(self) -> dict[str, list[int]]:
        """Peaks in kB by role. Dagster 1.13's code server starts each run worker as a
        multiprocessing "spawn" child (``spawn_main``), not as ``dagster api execute_run``;
        compute-log capture adds ``tail -F`` and ``watch_orphans.py`` helpers."""
        roles: dict[str, list[int]] = {}
        for command, peak in self.peaks.values():
            if "execute_run" in command or "spawn_main" in command:
                role = "run worker"
            elif "api grpc" in command or "code-server" in command:
                role = "code server"
            elif "dagster-daemon" in command:
                role = "daemon"
            elif (
                "resource_tracker" in command or "tail -F" in command or "watch_orphans" in command
            ):
                role = "helpers (mp resource tracker, log tailers)"
            else:
                role = f"other ({command[:60]})"
            roles.setdefault(role, []).append(peak)
        return roles


def _wait_until(probe: Any, timeout: float, every: float = _SAMPLE_EVERY_S) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if probe():
            return True
        time.sleep(every)
    return False


def run_daemon(bench: Bench) -> VariantResult:
    """(c): the daemon already up; from ``dagster sensor start`` to every artist attempted
    (the catalog's scrape states) and to no run in progress (Dagster's runs)."""
    result = VariantResult("c")
    deployment = _deployment(bench, "c")
    with _instance(deployment) as instance:
        instance.get_runs(limit=1)  # creates the storage schema before anyone polls it
    log = bench.work / "daemon.log"
    expected_runs = math.ceil(bench.artists / DAGSTER_BATCH_SIZE)
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            cwd=REPO,
            env=deployment.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: sampled, then killed as a whole
        )
    try:
        with GroupPeaks(daemon.pid) as peaks:
            daemon_started = time.perf_counter()

            def daemon_ready() -> bool:
                beats = {
                    str(row[0])
                    for row in bench.query(
                        deployment.database, "SELECT daemon_type FROM daemon_heartbeats"
                    )
                }
                return {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= beats or daemon.poll() is not None

            ready = _wait_until(daemon_ready, timeout=180)
            result.details.append(
                f"daemon up (sensor + run queue heartbeats) after "
                f"{time.perf_counter() - daemon_started:.1f} s"
                + ("" if ready else " (timed out waiting; measuring anyway)")
            )
            before = bench.measure_site()
            started_at, started = time.time(), time.perf_counter()
            command = subprocess.run(
                [str(BIN / "dagster"), "sensor", "start", SENSOR, "-w", str(WORKSPACE)],
                cwd=REPO,
                env=deployment.env,
                capture_output=True,
                timeout=300,
                check=False,
            )
            command_s = time.perf_counter() - started
            if command.returncode != 0:
                result.status = f"sensor start exit {command.returncode}"
                result.details.append(command.stderr.decode(errors="replace")[-3000:])
                return result
            attempted_s = idle_s = None
            deadline = started + _timeout(bench) + 120
            while time.perf_counter() < deadline and daemon.poll() is None:
                attempted = bench.query(
                    deployment.catalog_url, "SELECT count(*) FROM artist_scrape_state"
                )[0][0]
                now = time.perf_counter() - started
                if attempted_s is None and attempted >= bench.artists:
                    attempted_s = now
                statuses = [
                    str(row[0])
                    for row in bench.query(deployment.database, "SELECT status FROM runs")
                ]
                finished = len(statuses) >= expected_runs and not any(
                    status in _UNFINISHED for status in statuses
                )
                if attempted_s is not None and finished:
                    idle_s = now
                    break
                time.sleep(_SAMPLE_EVERY_S)
            result.site = bench.site_since(before)
            peaks.sample()
        roles = peaks.by_role()
        cpu = dict(peaks.cpu)
        (bench.work / "daemon-rss.json").write_text(json.dumps(peaks.peaks, indent=1))
    finally:
        stop_process_group(daemon)

    result.wall_s = attempted_s
    attempted, outcomes, distinct = bench.catalog_summary(deployment.catalog_url)
    runs = _run_times(deployment)
    statuses = [run.status for run in runs]
    result.ok = (
        attempted_s is not None
        and idle_s is not None
        and outcomes.get("found", 0) == bench.artists
        and all(status == "SUCCESS" for status in statuses)
    )
    result.status = (
        f"{len(runs)} run(s) {_outcomes({s: statuses.count(s) for s in set(statuses)})}; "
        + _outcomes(outcomes)
    )
    if attempted_s is None:
        result.status = "timed out; " + result.status
    result.events, top = _events(bench, deployment)
    materialized, lacking = _materializations(bench, deployment)
    if lacking:
        result.status += f"; {lacking} artist(s) without materializations"
    if roles:
        result.peak_rss_mb = max(max(values) for values in roles.values()) / 1024
    result.cpu_s = sum(cpu.values())
    steps = [run.step_end - run.step_start for run in runs if run.step_start and run.step_end]
    result.work_s = sum(steps) if steps else None
    result.details += [
        f"`dagster sensor start` itself: {command_s:.1f} s; all attempted after "
        f"{attempted_s if attempted_s is None else round(attempted_s, 1)} s; no run in "
        f"progress after {idle_s if idle_s is None else round(idle_s, 1)} s",
        f"attempted {attempted}/{bench.artists}; {distinct}",
        f"event_logs rows by type: {top}",
        *materialized,
        "peak RSS by process (MB): "
        + "; ".join(
            f"{role} x{len(values)}: {', '.join(f'{kb / 1024:.0f}' for kb in sorted(values)[-4:])}"
            for role, values in sorted(roles.items())
        ),
    ]
    planned = _planned(bench, deployment)
    for run in runs:
        first, last, count = planned.get(run.run_id, (None, None, 0))
        start_tag = run.tags.get("dagster/asset_partition_range_start", "?")
        end_tag = run.tags.get("dagster/asset_partition_range_end", "?")
        step = _span(run.step_start, run.step_end)
        result.details.append(
            f"run {run.run_id[:8]} [{start_tag}...{end_tag}] {run.status}, seconds after "
            f"`sensor start`: created +{_span(started_at, run.created)}, started "
            f"+{_span(started_at, run.run_start)}, step +{_span(started_at, run.step_start)} "
            f"→ +{_span(started_at, run.step_end)} ({step}), "
            f"ended +{_span(started_at, run.run_end)}; its {count} planned events written "
            f"+{_span(started_at, first)} → +{_span(started_at, last)}"
        )
    if not result.ok:
        result.details.append(f"daemon log (tail):\n{_tail(log, 40)}")
    return result


# --------------------------------------------------------------------------- report


def _table(bench: Bench, results: Sequence[VariantResult]) -> str:
    from tabulate import tabulate

    reference = next((r for r in results if r.key == "a" and r.wall_s), None)
    rows = []
    for r in results:
        ratio_base = next(
            (x for x in results if x.key == "a" and x.round_ == r.round_ and x.wall_s), reference
        )
        rate = bench.artists / r.wall_s if r.wall_s else None
        ratio = None
        if rate is not None and ratio_base is not None and ratio_base.wall_s:
            ratio = rate / (bench.artists / ratio_base.wall_s)
        rows.append(
            [
                _label(r, results),
                _fmt(r.wall_s, ".1f"),
                _fmt(r.work_s, ".1f"),
                _fmt(rate, ".1f"),
                _fmt(rate / bench.bound * 100 if rate else None, ".0f"),
                _fmt(ratio, ".2f"),
                _fmt(r.peak_rss_mb, ".0f"),
                _fmt(r.cpu_s, ".0f"),
                f"{r.site.requests / bench.artists:.2f}",
                r.site.max_in_flight,
                r.site.refused,
                _fmt(r.events / bench.artists if r.events is not None else None, ".1f"),
                ("ok: " if r.ok else "NOT OK: ") + r.status,
            ]
        )
    headers = [
        "variant",
        "wall (s)",
        "refresh itself (s)",
        "artists/s",
        "% of bound",
        "vs (a)",
        "peak RSS (MB)",
        "CPU (s)",
        "req/artist",
        "max conc.",
        "refused",
        "events/artist",
        "result",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_report(
    bench: Bench, results: Sequence[VariantResult], refresh_rows: list[list[Any]] | None
) -> None:
    from tabulate import tabulate

    print()
    print(
        f"{bench.artists} artists, {bench.latency:g} s per response, {bench.connections} "
        f"connections per host: politeness bound {bench.bound:.2f} artists/s "
        f"({bench.artists / bench.bound:.1f} s for all)"
    )
    print(_table(bench, results))
    print(
        "wall: (a) child process launch → exit; (b) CLI launch → exit; (c) `dagster sensor "
        "start` → every artist attempted. refresh itself: (a) refresh_artists(); (b) the "
        "step; (c) sum of the runs' steps. req/artist excludes robots.txt (one per "
        "process). peak RSS: (a) the child, (b) the CLI process, (c) max over the daemon's "
        "process group. CPU: user + system seconds of those processes ((c): from daemon start, "
        "including the daemon's own loops). events: event_logs rows of the variant's runs."
    )
    for r in results:
        print(f"\n{_label(r, results)}:")
        s = r.site
        print(
            f"  site: search {s.search}, page {s.page}, image 200 {s.image_200}, image 304 "
            f"{s.image_304}, robots.txt {s.robots}, 404 {s.not_found}, refused {s.refused}; "
            f"max requests in flight {s.max_in_flight}, max TCP connections open at once "
            f"{s.max_open_connections} (not limited)"
        )
        for line in r.details:
            print("  " + line.replace("\n", "\n    "))
    _print_variant_cost(bench, results)
    if refresh_rows is not None:
        print("\n--refresh: (a) again over the same artists, catalog and bucket (site unchanged)")
        print(tabulate(refresh_rows, headers=["", "value"], disable_numparse=True))


def _label(result: VariantResult, results: Sequence[VariantResult]) -> str:
    """The variant's name, with its round when --repeat ran several."""
    repeated = any(r.round_ for r in results)
    return VARIANTS[result.key] + (f" #{result.round_ + 1}" if repeated else "")


def _print_variant_cost(bench: Bench, results: Sequence[VariantResult]) -> None:
    """(a) against (n) per round, then the median change over the rounds."""
    rounds = sorted({r.round_ for r in results})
    changes: list[float] = []
    for round_ in rounds:
        by_key = {r.key: r for r in results if r.round_ == round_}
        on, off = by_key.get("a"), by_key.get("n")
        if on is None or off is None or not on.wall_s or not off.wall_s:
            continue
        rate_on, rate_off = bench.artists / on.wall_s, bench.artists / off.wall_s
        cpu_on, cpu_off = on.cpu_s or 0.0, off.cpu_s or 0.0
        writers = on.writers_cpu_s
        per_artist_ms = 1000 / bench.artists
        changes.append((rate_on / rate_off - 1) * 100)
        print(
            f"\nvariants on vs off{f' (round {round_ + 1})' if len(rounds) > 1 else ''}: "
            f"{rate_on:.1f} vs {rate_off:.1f} artists/s ({changes[-1]:+.1f} %); CPU "
            f"{cpu_on:.1f} + {writers:.1f} in its writers vs {cpu_off:.1f} s "
            f"({(cpu_on + writers - cpu_off) * per_artist_ms:.0f} ms per artist for its set, "
            f"{writers * per_artist_ms:.0f} in the writers)"
        )
    if len(changes) > 1:
        print(
            f"variants on vs off, median of {len(changes)} rounds: "
            f"{statistics.median(changes):+.1f} % (range {min(changes):+.1f} to "
            f"{max(changes):+.1f} %)"
        )


# --------------------------------------------------------------------------- main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--artists", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per response")
    parser.add_argument("--connections", type=int, default=16, help="per-host limit")
    parser.add_argument("--only", default="a,b,c", help="variants to run, e.g. a,c")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of (a) and (n), alternating (a,n only)"
    )
    parser.add_argument("--refresh", action="store_true", help="also time an unchanged pass")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    # The plain reference's own process (see _child_plain).
    parser.add_argument(
        "--_child-plain", dest="child_plain", action="store_true", help=argparse.SUPPRESS
    )
    for name in ("--catalog-url", "--bucket", "--config", "--batch-id", "--result"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.artists < 1 or args.latency <= 0 or not 1 <= args.connections <= 128:
        parser.error("need --artists >= 1, --latency > 0 and 1 <= --connections <= 128")
    if args.repeat < 1:
        parser.error("need --repeat >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.child_plain:
        return _child_plain(args)
    from podpod_scraping_tests.fixtures.postgres import running_postgres

    only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = sorted(set(only) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    work = Path(tempfile.mkdtemp(prefix="podpod-bench-"))
    results: list[VariantResult] = []
    refresh_rows: list[list[Any]] | None = None
    try:
        with (
            running_postgres() as postgres,
            _gcs_emulator(work / "fake-gcs.log") as emulator,
            BenchSite(args.artists, latency=args.latency, connections=args.connections) as site,
            _environ({"STORAGE_EMULATOR_HOST": emulator.endpoint}),
        ):
            config_path = work / "scraper.yaml"
            _write_config(config_path, site, args.connections)
            no_variants = work / "scraper-no-variants.yaml"
            _write_config(no_variants, site, args.connections, variants=False)
            bench = Bench(
                artists=args.artists,
                latency=args.latency,
                connections=args.connections,
                work=work,
                postgres=postgres,
                emulator=emulator,
                gcs=emulator.client(),
                site=site,
                config_path=config_path,
            )
            print(
                f"site {site.base_url}, postgres 127.0.0.1:{postgres.port}, GCS emulator "
                f"{emulator.endpoint}, work folder {work}",
                flush=True,
            )
            runners: dict[str, Callable[[int], tuple[VariantResult, list[list[Any]] | None]]] = {
                "a": lambda r: run_plain(bench, refresh=args.refresh and r == 0, round_=r),
                "b": lambda _: (run_cli(bench), None),
                "c": lambda _: (run_daemon(bench), None),
                "n": lambda r: run_plain(
                    bench, refresh=False, key="n", config_path=no_variants, round_=r
                ),
            }
            schedule = [
                (round_, key)
                for round_ in range(args.repeat)
                for key in VARIANTS
                if key in only and (round_ == 0 or key in "an")
            ]
            for round_, key in schedule:
                suffix = f" (round {round_ + 1} of {args.repeat})" if args.repeat > 1 else ""
                print(f"running {VARIANTS[key]}{suffix} ...", flush=True)
                started, load_before = time.perf_counter(), os.getloadavg()[0]
                result, rows = runners[key](round_)
                result.details.append(
                    f"1-min load average before / after: {load_before:.1f} / "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes "
                    "of the machine compete for them)"
                )
                print(
                    f"  done in {time.perf_counter() - started:.1f} s: "
                    f"{'ok' if result.ok else 'NOT OK'}: {result.status}",
                    flush=True,
                )
                results.append(result)
                refresh_rows = rows if rows is not None else refresh_rows
            _print_report(bench, results, refresh_rows)
    finally:
        if args.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
