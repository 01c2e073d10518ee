"""Runs' metrics on a real Pushgateway and their JSON log lines, through both entry points.

The fixture site has known outcomes: two artists with a photo (``found``), one page that
404s (``page_not_found``) and one page without an image (``no_image_on_page``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import text

from podpod_scraping.definitions import defs
from podpod_scraping.defs.assets import artist_image_coverage
from podpod_scraping.defs.metrics import (
    PUSHGATEWAY_URL_ENV,
    MetricsResource,
    coverage_registry,
    write_json_lines,
)
from podpod_scraping.storage.catalog.repository import make_engine
from podpod_scraping_tests.defs.conftest import Pipeline, RunOutcome, make_jpeg
from podpod_scraping_tests.fixtures.pushgateway import Pushgateway, labels

SOURCE = "fixture-site"
KEYS = ["1", "2", "3", "4"]
EXPECTED_OUTCOMES = {"found": 2, "page_not_found": 1, "no_image_on_page": 1}


def _known_site(pipeline: Pipeline) -> None:
    pipeline.add_artist(1, "Alpha", image=make_jpeg(1))
    pipeline.add_artist(2, "Beta", image=make_jpeg(2))
    pipeline.add_artist(3, "Gamma", page_status=404)
    pipeline.add_artist(4, "Delta")  # a page without any image


def _push_to(pipeline: Pipeline, gateway_url: str) -> None:
    pipeline.resources["metrics"] = MetricsResource(pushgateway_url=gateway_url)


def _run_logs(pipeline: Pipeline, outcome: RunOutcome) -> list[Any]:
    return [
        entry
        for entry in pipeline.instance.all_logs(outcome.result.run_id)
        if entry.dagster_event is None
    ]


def _json_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.fixture
def known_run(
    pipeline: Pipeline, pushgateway: Pushgateway, capfd: pytest.CaptureFixture[str]
) -> tuple[Pipeline, RunOutcome, str]:
    """One run over the known site, pushing to the Pushgateway; its stdout."""
    _known_site(pipeline)
    _push_to(pipeline, pushgateway.url)
    outcome = pipeline.run(KEYS)
    return pipeline, outcome, capfd.readouterr().out


def test_pushgateway_holds_exactly_the_runs_outcome_counts(
    known_run: tuple[Pipeline, RunOutcome, str], pushgateway: Pushgateway
) -> None:
    pipeline, _, _ = known_run
    assert pushgateway.samples("podpod_artists_attempted_total") == {
        labels(entry_point=pipeline.entry, outcome=outcome, source=SOURCE): float(count)
        for outcome, count in EXPECTED_OUTCOMES.items()
    }


def test_pushgateway_holds_requests_by_host_and_status_class(
    known_run: tuple[Pipeline, RunOutcome, str], pushgateway: Pushgateway
) -> None:
    pipeline, _, _ = known_run
    host = f"127.0.0.1:{pipeline.site.port}"
    # 2xx: three pages and two images; 4xx: the 404 page and robots.txt (none on the site)
    expected = {
        labels(entry_point=pipeline.entry, host=host, status_class="2xx"): 5.0,
        labels(entry_point=pipeline.entry, host=host, status_class="4xx"): 2.0,
    }
    assert pushgateway.samples("podpod_http_requests_total") == expected
    assert pipeline.site.total_hits == 7
    latency_counts = pushgateway.samples("podpod_fetch_duration_seconds_count")
    assert latency_counts == {labels(entry_point=pipeline.entry, host=host): 7.0}


def test_pushgateway_holds_the_bytes_published_and_one_run_duration(
    known_run: tuple[Pipeline, RunOutcome, str], pushgateway: Pushgateway
) -> None:
    pipeline, _, _ = known_run
    with make_engine(pipeline.catalog_url).connect() as connection:
        published = connection.execute(
            text("SELECT sum(byte_size) FROM artist_images WHERE is_current")
        ).scalar_one()
    key = labels(entry_point=pipeline.entry)
    assert pushgateway.samples("podpod_published_bytes_total") == {key: float(published)}
    downloaded = pushgateway.samples("podpod_downloaded_bytes_total")[key]
    assert downloaded >= len(make_jpeg(1)) + len(make_jpeg(2))
    assert pushgateway.samples("podpod_run_duration_seconds_count") == {key: 1.0}


def test_summary_line_parses_and_matches_the_runs_outcomes(
    known_run: tuple[Pipeline, RunOutcome, str],
) -> None:
    pipeline, outcome, stdout = known_run
    (summary,) = [line for line in _json_lines(stdout) if line["event"] == "podpod_run_summary"]
    assert summary["outcomes"] == EXPECTED_OUTCOMES
    assert summary["artists"] == 4
    assert summary["failed"] == 2
    assert summary["requests"] == 7
    assert summary["entry_point"] == pipeline.entry
    assert summary["run_id"] == outcome.result.run_id
    assert summary["duration_seconds"] > 0


def test_summary_and_failure_lines_are_on_the_dagster_log_too(
    known_run: tuple[Pipeline, RunOutcome, str],
) -> None:
    pipeline, outcome, stdout = known_run
    logged = _json_lines("\n".join(entry.user_message for entry in _run_logs(pipeline, outcome)))
    printed = _json_lines(stdout)
    assert logged == printed
    failures = {line["artist_id"]: line for line in logged if line["event"] != "podpod_run_summary"}
    assert {key: line["outcome"] for key, line in failures.items()} == {
        "3": "page_not_found",
        "4": "no_image_on_page",
    }
    assert failures["3"]["source"] == SOURCE
    assert failures["3"]["reason"]


def test_failure_lines_carry_no_userinfo_and_no_query_string(
    pipeline: Pipeline, capfd: pytest.CaptureFixture[str]
) -> None:
    pipeline.add_artist(1, "Alpha")
    signed = f"http://robot:hunter2@127.0.0.1:{pipeline.site.port}/missing.jpg?X-Signature=s3cr3t"
    pipeline.set_image_src(1, signed)
    pipeline.run(["1"])
    (failure,) = [
        line
        for line in _json_lines(capfd.readouterr().out)
        if line["event"] != "podpod_run_summary"
    ]
    line = json.dumps(failure)
    assert failure["artist_id"] == "1"
    for secret in ("hunter2", "robot", "s3cr3t", "X-Signature"):
        assert secret not in line


def test_run_succeeds_and_warns_once_when_the_pushgateway_is_stopped(
    pipeline: Pipeline, pushgateway: Pushgateway
) -> None:
    pipeline.add_artist(1, "Alpha", image=make_jpeg(1))
    _push_to(pipeline, pushgateway.url)
    pushgateway.stop()
    outcome = pipeline.run(["1"])
    assert outcome.success
    warnings = [
        entry.user_message
        for entry in _run_logs(pipeline, outcome)
        if entry.level >= 30  # logging.WARNING
    ]
    assert len(warnings) == 1
    assert "metrics not pushed" in warnings[0]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers (a hung Pushgateway)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_hung_pushgateway_delays_the_push_by_at_most_the_timeout(silent_server: str) -> None:
    warnings: list[str] = []

    class Log:
        def warning(self, message: str) -> None:
            warnings.append(message)

    metrics = MetricsResource(pushgateway_url=silent_server, timeout_seconds=0.5)
    started = time.monotonic()
    pushed = metrics.push(coverage_registry({"current": 1}, 1.0), {"report": "t"}, Log())
    assert not pushed
    assert time.monotonic() - started < 0.5 + 0.3
    assert len(warnings) == 1


def test_no_push_and_no_warning_when_no_pushgateway_is_configured() -> None:
    warnings: list[str] = []

    class Log:
        def warning(self, message: str) -> None:
            warnings.append(message)

    assert not MetricsResource().push(coverage_registry({}, 0.0), {"report": "t"}, Log())
    assert warnings == []


def test_coverage_report_pushes_its_gauges(pipeline: Pipeline, pushgateway: Pushgateway) -> None:
    _known_site(pipeline)
    pipeline.run(KEYS)
    _push_to(pipeline, pushgateway.url)
    dg.materialize(
        [artist_image_coverage], instance=pipeline.instance, resources=pipeline.resources
    )
    report = labels(report="coverage")
    assert pushgateway.samples("podpod_coverage_artists") == {
        report | labels(category="current"): 2.0,
        report | labels(category="object_missing"): 0.0,
        report | labels(category="variants_missing"): 0.0,
        report | labels(category="stale"): 0.0,
        report | labels(category="never_attempted"): 0.0,
        report | labels(category="never_found"): 0.0,
        report | labels(category="failed"): 2.0,
    }
    assert pushgateway.samples("podpod_coverage_current_ratio") == {report: 0.5}


def test_coverage_metadata_is_numeric_so_dagster_plots_it(pipeline: Pipeline) -> None:
    _known_site(pipeline)
    pipeline.run(KEYS)
    result = dg.materialize(
        [artist_image_coverage], instance=pipeline.instance, resources=pipeline.resources
    )
    (materialization,) = result.asset_materializations_for_node("artist_image_coverage")
    metadata = materialization.metadata
    assert isinstance(metadata["current_share"], dg.FloatMetadataValue)
    assert metadata["current_share"].value == 0.5
    counts = {
        key: value.value
        for key, value in metadata.items()
        if isinstance(value, dg.IntMetadataValue)
    }
    assert counts == {
        "artists": 4,
        "artists_current": 2,
        "artists_object_missing": 0,
        "artists_variants_missing": 0,
        "artists_stale": 0,
        "artists_never_attempted": 0,
        "artists_never_found": 0,
        "artists_failed": 2,
    }


def _metrics_resource() -> MetricsResource:
    resource = (defs().resources or {})["metrics"]
    assert isinstance(resource, MetricsResource)
    return resource


def test_the_code_location_pushes_nothing_when_the_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PUSHGATEWAY_URL_ENV, raising=False)
    assert _metrics_resource().pushgateway_url is None


def test_the_code_location_resolves_the_pushgateway_from_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_URL_ENV, "http://127.0.0.1:9091")
    url = _metrics_resource().pushgateway_url
    assert isinstance(url, dg.EnvVar)  # resolved when a run starts, not baked in
    assert url.get_value() == "http://127.0.0.1:9091"


def test_failure_lines_share_dagster_log_events_but_each_has_its_stdout_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    events: list[str] = []

    class Log:
        def info(self, message: str) -> None:
            events.append(message)

    failures = [{"event": "podpod_artist_failed", "artist_id": str(i)} for i in range(120)]
    write_json_lines(Log(), [{"event": "podpod_run_summary"}, *failures])
    printed = _json_lines(capsys.readouterr().out)
    assert len(printed) == 121
    assert len(events) == 1 + 3  # the summary alone, then 120 lines in events of 50
    assert _json_lines("\n".join(events)) == printed
