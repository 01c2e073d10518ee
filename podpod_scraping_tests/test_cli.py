"""``podpod-scraping placeholder-hash``: from a 'no photo' image to a config entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from podpod_scraping.cli import main
from podpod_scraping.core.config import parse_scraper_config
from podpod_scraping.core.images import ImageRejected, inspect_image, placeholder_hash
from podpod_scraping.core.outcomes import Outcome
from podpod_scraping.demo.site import DEMO_ARTISTS
from podpod_scraping_tests.core.images_factory import encode, photo_bytes, silhouette

BIN = Path(sys.executable).parent
SOURCES = "sources:\n  - {name: s, page_url: 'https://s.example/{id}', selector: img}\n"


@pytest.fixture
def placeholder_file(tmp_path: Path) -> Path:
    path = tmp_path / "deezer-silhouette.png"
    path.write_bytes(encode(silhouette(), "PNG"))
    return path


def test_prints_the_hash_validation_computes_as_a_yaml_list_item(
    placeholder_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["placeholder-hash", str(placeholder_file)]) == 0

    out = capsys.readouterr().out
    assert out == (
        f'- "{placeholder_hash(placeholder_file.read_bytes())}"  # deezer-silhouette.png\n'
    )


def test_printed_lines_pasted_into_the_config_refuse_a_reencoded_copy(
    placeholder_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-placeholder.jpg"
    other.write_bytes(encode(silhouette(300).rotate(90), "JPEG"))
    assert main(["placeholder-hash", str(placeholder_file), str(other)]) == 0
    items = capsys.readouterr().out

    entries = "".join(f"    {line}\n" for line in items.splitlines())
    config = parse_scraper_config(f"{SOURCES}images:\n  placeholder_hashes:\n{entries}")

    assert len(config.images.placeholder_hashes) == 2
    copy = encode(silhouette(500).resize((320, 320)), "JPEG", quality=70)
    with pytest.raises(ImageRejected) as refused:
        inspect_image(copy, config.images)
    assert refused.value.outcome is Outcome.PLACEHOLDER
    assert inspect_image(photo_bytes(500, 500, "JPEG"), config.images).width == 500


def test_a_file_that_is_not_an_image_is_named_and_fails_the_command(
    placeholder_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>no photo</body></html>")
    missing = tmp_path / "missing.png"

    status = main(["placeholder-hash", str(page), str(missing), str(placeholder_file)])

    captured = capsys.readouterr()
    assert status == 1
    assert f"{page}: HTML page is not an image" in captured.err
    assert f"{missing}: cannot read" in captured.err
    assert yaml.safe_load(captured.out) == [placeholder_hash(placeholder_file.read_bytes())]


def test_console_script_runs_the_command(placeholder_file: Path) -> None:
    done = subprocess.run(
        [BIN / "podpod-scraping", "placeholder-hash", str(placeholder_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('- "')


def test_db_seed_demo_gives_a_migrated_catalog_the_demo_artists_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    assert main(["db", "upgrade", "--url", url]) == 0

    assert main(["db", "seed-demo", "--url", url]) == 0
    assert main(["db", "seed-demo", "--url", url]) == 0  # again: nothing duplicated

    assert capsys.readouterr().out.splitlines()[-1] == (
        f"catalog holds {len(DEMO_ARTISTS)} demo artists"
    )
