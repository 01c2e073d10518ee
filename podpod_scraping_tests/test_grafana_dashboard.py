"""The Grafana dashboard (deploy/grafana/) imports: it validates against the vendored JSON
Schema of Grafana's Dashboard kind, holds together as a grid, and queries only metrics the
service pushes."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.core.refresh import ArtistReport, ArtistStatus
from podpod_scraping.core.telemetry import RunTelemetry
from podpod_scraping.defs.metrics import coverage_registry, run_registry

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "podpod-scraping.json"
SCHEMA = GRAFANA / "dashboard.schema.json"
GRID_COLUMNS = 24
#: Series the Pushgateway itself adds to every pushed group.
PUSHGATEWAY_SERIES = {"push_time_seconds", "push_failure_time_seconds"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return _load(DASHBOARD)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = _load(SCHEMA)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels of a collapsed row
    return panels


def _pushed_series() -> set[str]:
    telemetry = RunTelemetry("assets", "run")
    telemetry.observe_request("site:443", 200, 0.1, 100)
    telemetry.add_report(
        ArtistReport("1", ArtistStatus.SUCCEEDED, "n", Outcome.FOUND, "", source_name="s")
    )
    names = set(PUSHGATEWAY_SERIES)
    for registry in (run_registry(telemetry.snapshot()), coverage_registry({"current": 1}, 1.0)):
        for family in registry.collect():
            names.update(sample.name for sample in family.samples)
    return names


def test_the_vendored_schema_is_a_valid_json_schema_that_names_its_source() -> None:
    schema = _load(SCHEMA)
    Draft202012Validator.check_schema(schema)  # raises SchemaError if it is not
    assert "kinds/dashboard/dashboard_kind.cue" in schema["$comment"]


def test_the_dashboard_validates_against_grafanas_dashboard_schema(
    dashboard: dict[str, Any], validator: Draft202012Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(dashboard)]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("panels", 1, "gridPos", "w"), 30),  # wider than the grid
        (("panels", 1, "type"), ""),  # a panel needs a plugin type
        (("graphTooltip",), 3),
    ],
)
def test_the_schema_rejects_a_broken_dashboard(
    dashboard: dict[str, Any], validator: Draft202012Validator, path: tuple[Any, ...], value: Any
) -> None:
    broken = copy.deepcopy(dashboard)
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not validator.is_valid(broken)


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_uses_the_imported_prometheus_data_source(dashboard: dict[str, Any]) -> None:
    inputs = {f"${{{item['name']}}}" for item in dashboard["__inputs"]}
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": source["uid"]}
            assert source["uid"] in inputs


def test_every_query_names_only_series_the_service_pushes(dashboard: dict[str, Any]) -> None:
    pushed = _pushed_series()
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            selectors_dropped = re.sub(r"\{[^}]*\}", "", target["expr"])  # label values
            used = set(re.findall(r"\b(?:podpod|push)_[a-z_]+", selectors_dropped))
            assert used, target["expr"]
            assert used <= pushed, f"{panel['title']}: {used - pushed}"


def test_the_dashboard_shows_coverage_outcomes_requests_and_run_duration(
    dashboard: dict[str, Any],
) -> None:
    expressions = " ".join(
        target["expr"] for panel in _panels(dashboard) for target in panel.get("targets", [])
    )
    for series in (
        "podpod_coverage_artists",
        "podpod_coverage_current_ratio",
        "podpod_artists_attempted_total",
        "podpod_http_requests_total",
        "podpod_run_duration_seconds_sum",
    ):
        assert series in expressions
