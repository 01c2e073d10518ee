"""What the Dagster UI shows for artist_image's partitions, read through its GraphQL API.

A real ``dagster-webserver`` serves the code location over the same instance the runs
used; the test asks it the partition status counts the UI's partition bar and status
filters are built from. An artist with a current image must read Materialized, an artist
whose last attempt failed must read Failed (even when an older image is still served),
and an artist never given an image must not read Materialized.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg

BIN = Path(sys.executable).parent
STATUSES = """
query {
  assetNodes(assetKeys: [{path: ["artist_image"]}, {path: ["artist_source_image"]}]) {
    assetKey { path }
    assetPartitionStatuses {
      ... on DefaultPartitionStatuses {
        materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return home


@pytest.fixture
def ui_pipeline(
    pipeline_on: Callable[..., AbstractContextManager[Pipeline]], home: Path
) -> Iterator[Pipeline]:
    with pipeline_on(dagster_home=home) as opened:
        yield opened


@pytest.fixture
def webserver(home: Path, tmp_path: Path) -> Iterator[str]:
    """``dagster-webserver`` over the test's instance; its GraphQL endpoint's URL."""
    port = _free_port()
    log = (tmp_path / "webserver.log").open("wb")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen(
        [
            BIN / "dagster-webserver",
            "-m",
            "podpod_scraping.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "dagster-webserver did not start:\n"
                    + (tmp_path / "webserver.log").read_text(errors="replace")[-4000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


def _statuses(url: str) -> dict[str, dict[str, list[str]]]:
    response = httpx.post(url, json={"query": STATUSES}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return {
        "/".join(node["assetKey"]["path"]): node["assetPartitionStatuses"]
        for node in body["data"]["assetNodes"]
    }


def test_ui_partition_statuses_tell_current_failed_and_never_found_artists(
    ui_pipeline: Pipeline, webserver: str
) -> None:
    pipeline = ui_pipeline
    pipeline.add_artist(1, "Current", image=make_jpeg(1))
    pipeline.add_artist(2, "Refresh Fails", image=make_jpeg(2))
    pipeline.add_artist(3, "Never Found", page_status=404)
    pipeline.instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, ["4"])  # never attempted
    assert not pipeline.run(["1", "2", "3"]).success  # a backfill over a failure fails
    pipeline.set_page(2, page_status=404)
    assert not pipeline.run(["2"]).success

    statuses = _statuses(webserver)

    image = statuses["artist_image"]
    assert image["materializedPartitions"] == ["1"]
    assert sorted(image["failedPartitions"]) == ["2", "3"]
    assert sorted(image["unmaterializedPartitions"]) == ["3", "4"]  # never given an image
    assert image["materializingPartitions"] == []
    source = statuses["artist_source_image"]
    assert source["materializedPartitions"] == ["1"]
    assert sorted(source["failedPartitions"]) == ["2", "3"]
