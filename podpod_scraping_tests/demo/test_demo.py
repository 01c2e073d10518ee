"""The README's first command: the main job on the embedded default, run twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from podpod_scraping.demo.site import DEMO_ARTISTS

BIN = Path(sys.executable).parent


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "podpod-scraping", "demo", "--dir", str(workdir), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _images(workdir: Path) -> list[Path]:
    """Every object file under artists/: published images and their variants."""
    return sorted(
        p
        for p in (workdir / "images" / "artists").rglob("*")
        if p.is_file() and not p.name.endswith(".json")
    )


def _published(images: list[Path]) -> list[Path]:
    """The published images alone (``artists/<id>/<sha256>.jpg``), not their variants."""
    return [p for p in images if p.parent.parent.name == "artists"]


def test_demo_publishes_images_and_a_second_run_duplicates_nothing(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    db = sqlite3.connect(tmp_path / "catalog.db")
    artists = db.execute("SELECT count(*) FROM artists").fetchone()[0]
    outcomes = dict(
        db.execute("SELECT last_outcome, count(*) FROM artist_scrape_state GROUP BY 1").fetchall()
    )
    rows = db.execute(
        "SELECT artist_id, sha256, object_uri FROM artist_images ORDER BY 1"
    ).fetchall()
    images = _images(tmp_path)
    assert artists >= 20
    assert sum(outcomes.values()) == artists  # every artist got exactly one recorded outcome
    assert outcomes["found"] == len(rows) == len(_published(images))
    assert {"page_not_found", "no_image_on_page"} <= set(outcomes)
    assert set(outcomes) - {"found", "page_not_found", "no_image_on_page"}  # broken images too
    for _artist_id, sha256, uri in rows:
        assert uri.startswith("file://")
        assert uri.endswith(f"{sha256}.jpg")
        assert Path(uri.removeprefix("file://")).is_file()
    assert "object URI" in first.stdout
    with_sets = db.execute(
        "SELECT count(*) FROM artist_images i WHERE i.blurhash IS NOT NULL AND i.avatar_method"
        " IS NOT NULL AND EXISTS (SELECT 1 FROM artist_image_variants v WHERE v.image_id = i.id"
        " AND v.variant_set = i.variant_set)"
    ).fetchone()[0]
    assert with_sets == len(rows)  # every found artist: variants, avatar and placeholders
    assert "variants" in first.stdout
    assert "avatar" in first.stdout

    second = _demo(tmp_path)

    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert (
        db.execute("SELECT artist_id, sha256, object_uri FROM artist_images ORDER BY 1").fetchall()
        == rows
    )
    assert _images(tmp_path) == images


def test_demo_output_has_progress_but_no_debug_lines_or_dagster_warnings(tmp_path: Path) -> None:
    completed = _demo(tmp_path)
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output[-4000:]
    assert f"partitions: refreshing {len(DEMO_ARTISTS)} artist(s)" in output  # own INFO lines
    for noise in (" - DEBUG - ", "BetaWarning", "PreviewWarning", "SupersessionWarning"):
        assert noise not in output, noise
