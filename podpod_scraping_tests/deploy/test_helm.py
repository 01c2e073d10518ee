"""The Kubernetes deployment, checked offline (no helm binary, no cluster here).

- ``deploy/helm/values.yaml`` against an excerpt of the Dagster chart's values schema,
  whose Kubernetes types (resources, env, volumes, security contexts) resolve to the
  Kubernetes 1.33 definitions shipped by ``kubernetes-validate`` (strict: unknown fields fail);
- the plain manifests (ConfigMap, migrations Job) against Kubernetes 1.33, strictly;
- and that the parts agree: the mounted ConfigMap holds a scraper config this service
  loads, the run pods are sized from the measured RSS, and the limits match dagster.yaml.

Not checked here: that the chart renders these values (``helm template`` needs the chart).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from podpod_scraping.cli import main as cli_main
from podpod_scraping.core.config import load_scraper_config

REPO = Path(__file__).resolve().parents[2]
HELM_DIR = REPO / "deploy" / "helm"
SCHEMAS = Path(__file__).parent / "schemas"
KUBERNETES_VERSION = "1.33.0"
CHART_K8S_REFS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json#/definitions/"
#: The service's process tree with its variant writers (benchmarks/throughput.py).
MEASURED_RSS_MIB = 667 * 1000**2 / 1024**2


def _load(name: str) -> Any:
    return yaml.safe_load((HELM_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _load("values.yaml")


@pytest.fixture(scope="module")
def values_validator() -> jsonschema.Draft7Validator:
    definitions_file = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
        / "_definitions.json"
    )
    definitions = json.loads(definitions_file.read_text(encoding="utf-8"))
    text = (SCHEMAS / "dagster-chart-values.schema.excerpt.json").read_text(encoding="utf-8")
    schema = json.loads(text.replace(CHART_K8S_REFS, f"{definitions['$id']}#/$defs/"))
    registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))
    return jsonschema.Draft7Validator(schema, registry=registry)


def _deployment(values: dict[str, Any]) -> dict[str, Any]:
    [deployment] = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_values_are_valid_against_the_charts_schema(
    values: dict[str, Any], values_validator: jsonschema.Draft7Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in values_validator.iter_errors(values)]

    assert errors == []


def test_the_values_check_rejects_a_misspelt_kubernetes_field(
    values: dict[str, Any], values_validator: jsonschema.Draft7Validator
) -> None:
    broken = json.loads(json.dumps(values))
    _deployment(broken)["resources"]["limit"] = {"memory": "1Gi"}  # "limits"

    assert not values_validator.is_valid(broken)


@pytest.mark.parametrize("manifest", ["scraper-config.yaml", "catalog-migrations-job.yaml"])
def test_plain_manifests_are_valid_kubernetes_objects(manifest: str) -> None:
    kubernetes_validate.validate(_load(manifest), KUBERNETES_VERSION, strict=True)


def test_runs_launch_as_kubernetes_jobs_with_the_deployments_config(
    values: dict[str, Any],
) -> None:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert _deployment(values)["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_run_pods_are_sized_above_the_measured_rss(values: dict[str, Any]) -> None:
    container = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]
    resources = container["resources"]

    assert resources["requests"] == resources["limits"]  # GKE Autopilot's rule
    memory = resources["limits"]["memory"]
    assert memory.endswith("Gi")
    assert float(memory.removesuffix("Gi")) * 1024 >= 2 * MEASURED_RSS_MIB


def test_gcs_access_is_by_workload_identity_not_a_key_file(values: dict[str, Any]) -> None:
    annotations = values["serviceAccount"]["annotations"]
    env_names = {entry["name"] for entry in _deployment(values)["env"]}

    assert annotations["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    assert values["global"]["serviceAccountName"] == values["serviceAccount"]["name"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env_names


def test_the_mounted_configmap_is_a_scraper_config_this_service_loads(
    values: dict[str, Any], tmp_path: Path
) -> None:
    config_map = _load("scraper-config.yaml")
    deployment = _deployment(values)
    [volume] = deployment["volumes"]
    [mount] = deployment["volumeMounts"]
    env = {entry["name"]: entry["value"] for entry in deployment["env"]}
    [file_name] = config_map["data"]
    path = tmp_path / file_name
    path.write_text(config_map["data"][file_name], encoding="utf-8")

    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert mount["name"] == volume["name"]
    assert env["PODPOD_SCRAPER_CONFIG"] == f"{mount['mountPath']}/{file_name}"
    assert load_scraper_config(path).sources  # the service's own loader accepts it


def test_the_migrations_job_runs_the_clis_upgrade_before_install_and_upgrade(
    tmp_path: Path,
) -> None:
    job = _load("catalog-migrations-job.yaml")
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"

    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert command[0] == "podpod-scraping"
    assert cli_main([*command[1:], "--url", catalog]) == 0  # the command exists and migrates


def test_the_chart_gets_the_repos_pool_limit_and_run_retries(values: dict[str, Any]) -> None:
    root = yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))
    retries = values["dagsterDaemon"]["runRetries"]

    assert values["additionalInstanceConfig"]["concurrency"] == root["concurrency"]
    assert retries["enabled"] == root["run_retries"]["enabled"]
    assert retries["maxRetries"] == root["run_retries"]["max_retries"]
    assert retries["retryOnAssetOrOpFailure"] == root["run_retries"]["retry_on_asset_or_op_failure"]
    assert values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] == {}
