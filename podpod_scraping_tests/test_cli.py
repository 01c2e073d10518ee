"""``podpod-scraping`` commands: ``placeholder-hash`` (from a 'no photo' image to a config
entry) and ``config check`` (every config mistake found in seconds, naming the fix)."""

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
from podpod_scraping.demo.site import DEMO_ARTISTS, FixtureServer
from podpod_scraping.storage.catalog.migrate import upgrade
from podpod_scraping.storage.catalog.repository import create_artists_table, make_engine
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


# --------------------------------------------------------------------------- config check

#: The mistakes of issue 8 (item 5), each appended to a valid file, and what must be said.
CONFIG_MISTAKES = [
    ("fetch:\n  total_timeout: -1\n", "fetch.total_timeout: must be greater than 0 (got -1)"),
    ("fetch:\n  read_timeout: -5\n", "fetch.read_timeout: must be greater than 0 (got -5)"),
    ("fetch:\n  max_page_bytes: -1\n", "fetch.max_page_bytes: must be greater than or equal to 1"),
    ("fetch:\n  max_redirects: -3\n", "fetch.max_redirects: must be greater than or equal to 0"),
    (
        "fetch:\n  per_host_min_interval: -1\n",
        "fetch.per_host_min_interval: must be greater than or equal to 0",
    ),
    ("fetch:\n  max_image_bytes: 0\n", "fetch.max_image_bytes: must be greater than or equal to 1"),
    ("fetch:\n  connect_timeout: .nan\n", "fetch.connect_timeout: must be a finite number"),
    ("fetch:\n  total_timeout: .NaN\n", "fetch.total_timeout: must be a finite number"),
    ("fetch:\n  max_attempts: true\n", "fetch.max_attempts: must be a valid integer (got true)"),
    ("refresh:\n  concurrency: 2.5\n", "refresh.concurrency: must be a valid integer (got 2.5)"),
    (
        "fetch:\n  per_host_concurrency: 2.5\n",
        "fetch.per_host_concurrency: must be a valid integer",
    ),
]


@pytest.fixture
def deployment(tmp_path: Path, fixture_server: FixtureServer) -> list[str]:
    """``config check`` arguments for a good catalog (SQLite) and store (a folder)."""
    fixture_server.add_route("/robots.txt", body="User-agent: *\nAllow: /\n")
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(catalog)
    engine = make_engine(catalog)
    create_artists_table(engine)
    engine.dispose()
    return ["--catalog-url", catalog, "--object-store-url", str(tmp_path / "images")]


@pytest.fixture
def good_config(tmp_path: Path, fixture_server: FixtureServer) -> str:
    return (
        f"sources:\n  - name: site\n    page_url: '{fixture_server.url('/a/{id}')}'\n"
        "    selector: img\n"
        f"fetch:\n  allowed_private_hosts: ['{fixture_server.host_port}']\n"
    )


def _config_check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["config", "check", *args])
    return status, capsys.readouterr().out


def test_config_check_passes_a_good_setup(
    tmp_path: Path, good_config: str, deployment: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scraper.yaml"
    path.write_text(good_config, encoding="utf-8")
    status, out = _config_check(["--file", str(path), *deployment], capsys)
    assert status == 0, out
    assert out.splitlines()[-1] == "all checks passed"
    assert all(line.startswith("ok ") for line in out.splitlines()[:-1])


@pytest.mark.parametrize(
    ("section", "message"),
    CONFIG_MISTAKES,
    ids=[s.splitlines()[-1].strip() for s, _ in CONFIG_MISTAKES],
)
def test_config_check_fails_each_config_mistake_naming_key_and_line(
    tmp_path: Path,
    good_config: str,
    deployment: list[str],
    capsys: pytest.CaptureFixture[str],
    section: str,
    message: str,
) -> None:
    path = tmp_path / "scraper.yaml"
    # good_config ends in its fetch section: a fetch key joins it, refresh follows it.
    path.write_text(good_config + section.removeprefix("fetch:\n"), encoding="utf-8")
    status, out = _config_check(["--file", str(path), *deployment], capsys)
    assert status == 1
    (line,) = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert line.startswith(f"PROBLEM  config: {path}:")
    assert message in line


def test_config_check_fails_a_file_without_sources(
    tmp_path: Path, deployment: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scraper.yaml"
    path.write_text("fetch:\n  max_attempts: 2\n", encoding="utf-8")
    status, out = _config_check(["--file", str(path), *deployment], capsys)
    assert status == 1
    assert "sources: required: add a 'sources:' list" in out


def test_config_check_reads_the_file_named_by_the_variable_and_fails_when_missing(
    tmp_path: Path,
    deployment: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODPOD_SCRAPER_CONFIG", str(tmp_path / "nope.yaml"))
    status, out = _config_check(deployment, capsys)
    assert status == 1
    assert f"PROBLEM  config: scraper config file {tmp_path / 'nope.yaml'} does not exist" in out
    assert out.splitlines()[-1] == "1 problem(s)"


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
