"""The compose stack, checked without a container engine (none runs on these machines).

The file must be valid against the Compose Specification's JSON schema, and its parts must
agree with each other: every service has a health check (one-shots say why not), the code
server waits for the migrations, the workspace points at the code server, and the run
launcher's network, volume and variables exist in the stack.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
SCHEMAS = Path(__file__).parent / "schemas"
ONE_SHOTS = {"scraper-config", "migrations", "demo-catalog"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def instance_config() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "dagster.yaml").read_text(encoding="utf-8"))


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))

    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_the_schema_check_rejects_a_broken_compose_file(compose: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    broken = {**compose, "services": {"user-code": {"depends_on": {"x": {"condition": 1}}}}}

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOTS:
            assert check == {"disable": True}, name
            assert service["restart"] == "no", name
        else:
            assert check.get("test"), f"{name} has no health check"


def test_the_code_server_waits_for_migrations_and_config(compose: dict[str, Any]) -> None:
    depends = compose["services"]["user-code"]["depends_on"]

    assert depends["migrations"] == {"condition": "service_completed_successfully"}
    assert depends["scraper-config"] == {"condition": "service_completed_successfully"}
    assert compose["services"]["migrations"]["command"] == ["podpod-scraping", "db", "upgrade"]


def test_webserver_and_daemon_wait_for_a_healthy_code_server(compose: dict[str, Any]) -> None:
    for name in ("webserver", "daemon"):
        depends = compose["services"][name]["depends_on"]
        assert depends["user-code"] == {"condition": "service_healthy"}, name


def test_emulator_and_demo_site_are_only_in_the_local_profile(compose: dict[str, Any]) -> None:
    profiled = {name for name, s in compose["services"].items() if s.get("profiles")}

    assert profiled == {"gcs", "demo-site", "demo-catalog"}
    for name in profiled:
        assert compose["services"][name]["profiles"] == ["local"]


def test_the_workspace_points_at_the_code_servers_grpc_port(compose: dict[str, Any]) -> None:
    workspace = yaml.safe_load((COMPOSE_DIR / "workspace.yaml").read_text(encoding="utf-8"))
    [entry] = workspace["load_from"]
    command = compose["services"]["user-code"]["command"]

    assert entry["grpc_server"]["host"] == "user-code"
    assert command[:3] == ["dagster", "api", "grpc"]
    assert str(entry["grpc_server"]["port"]) == command[command.index("-p") + 1]


def test_run_containers_get_the_stacks_network_config_volume_and_variables(
    compose: dict[str, Any], instance_config: dict[str, Any]
) -> None:
    launcher = instance_config["run_launcher"]
    config = launcher["config"]
    [mount] = config["container_kwargs"]["volumes"]
    volume, target, mode = mount.split(":")
    environment = compose["x-podpod-env"]

    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert config["network"] == compose["networks"]["default"]["name"]
    assert volume == compose["volumes"]["scraper-config"]["name"]
    assert environment["PODPOD_SCRAPER_CONFIG"].startswith(target + "/")
    assert mode == "ro"
    assert set(config["env_vars"]) <= set(environment)


def test_every_variable_the_code_location_reads_is_passed_to_run_containers(
    instance_config: dict[str, Any],
) -> None:
    source = (REPO / "podpod_scraping" / "definitions.py").read_text(encoding="utf-8")
    names = set(re.findall(r'(?:EnvVar|_env_if_set)\("([A-Z_]+)"', source))
    names -= {"PODPOD_REFRESH_CRON", "PODPOD_REFRESH_TIMEZONE"}  # read by the code server

    assert names <= set(instance_config["run_launcher"]["config"]["env_vars"])


def test_the_local_scraper_config_reaches_the_demo_site_by_service_name(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "scraper.local.yaml").read_text(encoding="utf-8"))
    command = compose["services"]["demo-site"]["command"]
    port = command[command.index("--port") + 1]

    assert config["sources"][0]["page_url"].startswith(f"http://demo-site:{port}/")
    assert config["fetch"]["allowed_private_hosts"] == [f"demo-site:{port}"]


def test_the_compose_instance_keeps_the_repos_limits_and_retries(
    instance_config: dict[str, Any],
) -> None:
    root = yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))

    for key in ("storage", "run_coordinator", "concurrency", "run_retries"):
        assert instance_config[key] == root[key], key
