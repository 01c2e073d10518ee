"""The compose stack's processes, as plain processes (no container engine here).

What the ``user-code``, ``webserver`` and ``daemon`` containers run: ``dagster api grpc``
serving the code location, ``dagster-webserver`` and ``dagster-daemon`` loading it over a
``grpc_server`` workspace (deploy/compose/workspace.yaml, host and port swapped for
127.0.0.1), on the compose instance (deploy/compose/dagster.yaml: Postgres storage,
queued runs, pools) without its Docker run launcher. A run is launched, dequeued by the
daemon, executed through the code server and read back through the webserver; a failed
run reaches the webhook receiver as one alert.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from podpod_scraping_tests.fixtures.postgres import PostgresServer
from podpod_scraping_tests.fixtures.processes import (
    free_port,
    instance_env,
    process_group,
    wait_until,
)
from podpod_scraping_tests.fixtures.webhook import WebhookReceiver

pytestmark = pytest.mark.daemon

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
BIN = Path(sys.executable).parent
COVERAGE_JOB = "artist_image_coverage_job"
RUN_STATUS = """
query ($id: ID!) { runOrError(runId: $id) { ... on Run { status jobName } } }
"""
SENSOR_TICKS = """
query {
  sensorOrError(sensorSelector: {repositoryName: "__repository__",
      repositoryLocationName: "podpod_scraping", sensorName: "run_failure_alert_sensor"}) {
    ... on Sensor { sensorState { ticks(limit: 1) { status } } }
  }
}
"""
LOCATIONS = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename } } } } }
"""


@dataclass
class Stack:
    env: dict[str, str]
    workspace: Path
    graphql: str
    logs: list[Path]
    workdir: Path

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            self.graphql, json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def launch(self, run_config: dict[str, Any] | None = None) -> str:
        """``dagster job launch`` over the gRPC workspace; returns the new run's id."""
        config = self.workdir / "run_config.yaml"
        config.write_text(yaml.safe_dump(run_config or {}), encoding="utf-8")
        before = set(self.run_ids())
        subprocess.run(
            [
                BIN / "dagster",
                "job",
                "launch",
                "-j",
                COVERAGE_JOB,
                "-w",
                self.workspace,
                "-c",
                config,
            ],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        [run_id] = set(self.run_ids()) - before
        return run_id

    def run_ids(self) -> list[str]:
        data = self.query("query { runsOrError { ... on Runs { results { runId } } } }")
        return [run["runId"] for run in data["runsOrError"]["results"]]

    def finished_status(self, run_id: str) -> str:
        def finished() -> str | None:
            status = self.query(RUN_STATUS, id=run_id)["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        return wait_until(f"run {run_id} to finish", finished, timeout=240, logs=self.logs)


@pytest.fixture
def stack(
    postgres_server: PostgresServer,
    catalog_url: str,
    webhook: WebhookReceiver,
    tmp_path: Path,
) -> Iterator[Stack]:
    dagster_db = postgres_server.create_database("dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = yaml.safe_load((COMPOSE_DIR / "dagster.yaml").read_text(encoding="utf-8"))
    del instance["run_launcher"]  # no Docker here: the code server launches run processes
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance), encoding="utf-8")
    grpc_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load((COMPOSE_DIR / "workspace.yaml").read_text(encoding="utf-8"))
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=grpc_port)
    workspace_file = tmp_path / "workspace.yaml"
    workspace_file.write_text(yaml.safe_dump(workspace), encoding="utf-8")
    config = tmp_path / "scraper.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {"name": "none", "page_url": "http://127.0.0.1:9/{id}", "selector": "img"}
                ]
            }
        ),
        encoding="utf-8",
    )
    env = instance_env(postgres_server, dagster_db, home) | {
        "PODPOD_CATALOG_URL": catalog_url,
        "PODPOD_OBJECT_STORE_URL": str(tmp_path / "objects"),
        "PODPOD_SCRAPER_CONFIG": str(config),
        "PODPOD_ALERT_WEBHOOK_URL": webhook.url,
        "PODPOD_UI_BASE_URL": f"http://127.0.0.1:{web_port}",
    }
    logs = [tmp_path / name for name in ("grpc.log", "webserver.log", "daemon.log")]
    grpc = [
        BIN / "dagster",
        "api",
        "grpc",
        "-m",
        "podpod_scraping.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(grpc_port),
    ]
    try:
        with process_group(grpc, env=env, log=logs[0], cwd=REPO) as code_server:
            wait_until(
                "the code server's health check",
                lambda: code_server.poll() is None and _grpc_healthy(grpc_port, env),
                timeout=120,
                logs=logs,
            )
            webserver = [
                BIN / "dagster-webserver",
                "-w",
                workspace_file,
                "-h",
                "127.0.0.1",
                "-p",
                str(web_port),
            ]
            with (
                process_group(webserver, env=env, log=logs[1], cwd=REPO),
                process_group(
                    [BIN / "dagster-daemon", "run", "-w", workspace_file],
                    env=env,
                    log=logs[2],
                    cwd=REPO,
                ),
            ):
                wait_until(
                    "the webserver",
                    lambda: _serving(f"http://127.0.0.1:{web_port}/server_info"),
                    timeout=120,
                    logs=logs,
                )
                yield Stack(
                    env=env,
                    workspace=workspace_file,
                    graphql=f"http://127.0.0.1:{web_port}/graphql",
                    logs=logs,
                    workdir=tmp_path,
                )
    finally:
        postgres_server.drop_database(dagster_db)


def _grpc_healthy(port: int, env: dict[str, str]) -> bool:
    check = [BIN / "dagster", "api", "grpc-health-check", "-p", str(port)]
    return subprocess.run(check, env=env, capture_output=True, timeout=60).returncode == 0


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False


def test_grpc_code_server_webserver_and_daemon_run_a_job_and_alert_on_failure(
    stack: Stack, webhook: WebhookReceiver
) -> None:
    [location] = stack.query(LOCATIONS)["workspaceOrError"]["locationEntries"]
    assert location["name"] == "podpod_scraping"
    assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    wait_until(
        "the run-failure sensor's first tick",
        lambda: stack.query(SENSOR_TICKS)["sensorOrError"]["sensorState"]["ticks"],
        timeout=180,
        logs=stack.logs,
    )

    succeeded = stack.launch()

    assert stack.finished_status(succeeded) == "SUCCESS"
    assert webhook.texts() == []

    missing = str(stack.workdir / "no-such-scraper.yaml")
    failed = stack.launch({"resources": {"scraper": {"config": {"config_path": missing}}}})

    assert stack.finished_status(failed) == "FAILURE"
    [text] = webhook.wait_for(1, timeout=180)
    assert f"{COVERAGE_JOB} (run {failed})" in text
    assert "Failed step: artist_image_coverage" in text
    assert f"/runs/{failed}|" in text
    assert "secret-token" not in text
