"""The code location through the real Dagster CLI, as the README shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME
from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg

BIN = Path(sys.executable).parent


def _cli_env(pipeline: Pipeline, home: Path, gcs_emulator: Any) -> dict[str, str]:
    return os.environ | {
        "DAGSTER_HOME": str(home),
        "PODPOD_CATALOG_URL": pipeline.catalog_url,
        "PODPOD_OBJECT_STORE_URL": f"gs://{pipeline.bucket.name}",
        "PODPOD_SCRAPER_CONFIG": str(pipeline.config_path),
        "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint,
    }


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def _add_partitions(home: Path, keys: list[str]) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, keys)


def test_definitions_validate(dagster_home: Path) -> None:
    result = subprocess.run(
        [BIN / "dagster", "definitions", "validate", "-m", "podpod_scraping.definitions"],
        env=os.environ | {"DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_cli_materializes_one_artist(
    pipeline: Pipeline, dagster_home: Path, gcs_emulator: Any
) -> None:
    pipeline.add_artist(7, "Jannabi", image=make_jpeg(7))
    _add_partitions(dagster_home, ["7"])

    result = subprocess.run(
        [
            BIN / "dagster",
            "asset",
            "materialize",
            "-m",
            "podpod_scraping.definitions",
            "--select",
            "artist_source_image,artist_image",
            "--partition",
            "7",
        ],
        env=_cli_env(pipeline, dagster_home, gcs_emulator),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = pipeline.rows(7)
    assert len(rows) == 1
    assert pipeline.bucket.blob(rows[0]["object_name"]).exists()


def test_dg_launch_materializes_one_artist(
    pipeline: Pipeline, dagster_home: Path, gcs_emulator: Any
) -> None:
    pipeline.add_artist(8, "Se So Neon", image=make_jpeg(8))
    _add_partitions(dagster_home, ["8"])

    result = subprocess.run(
        [BIN / "dg", "launch", "--assets", "artist_source_image,artist_image", "--partition", "8"],
        cwd=Path(__file__).resolve().parents[2],
        env=_cli_env(pipeline, dagster_home, gcs_emulator),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(pipeline.rows(8)) == 1
