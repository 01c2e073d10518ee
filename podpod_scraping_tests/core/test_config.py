"""The scraper config's one schema: every mistake is refused with its file, line, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from podpod_scraping.core.config import (
    RefreshPolicy,
    ScraperConfig,
    ScraperConfigError,
    load_scraper_config,
    parse_scraper_config,
)
from podpod_scraping.core.fetching import FetchPolicy
from podpod_scraping.core.images import ImagePolicy

SOURCES = """\
sources:
  - name: site
    page_url: "https://site.example/artists/{slug}"
    selector: "img.artist-image"
"""

#: (section YAML appended to a valid file, expected message); the value sits on line 6.
BAD_VALUES = [
    (
        "fetch:\n  total_timeout: -1\n",
        r":6: fetch\.total_timeout: must be greater than 0 \(got -1\)",
    ),
    ("fetch:\n  read_timeout: -5\n", r":6: fetch\.read_timeout: must be greater than 0 \(got -5\)"),
    ("fetch:\n  connect_timeout: 0\n", r"fetch\.connect_timeout: must be greater than 0"),
    (
        "fetch:\n  read_timeout: .nan\n",
        r"fetch\.read_timeout: must be a finite number \(got \.nan\)",
    ),
    ("fetch:\n  total_timeout: .inf\n", r"fetch\.total_timeout: must be a finite number"),
    (
        "fetch:\n  max_page_bytes: -1\n",
        r"fetch\.max_page_bytes: must be greater than or equal to 1 \(got -1\)",
    ),
    (
        "fetch:\n  max_image_bytes: 0\n",
        r"fetch\.max_image_bytes: must be greater than or equal to 1 \(got 0\)",
    ),
    (
        "fetch:\n  max_redirects: -3\n",
        r"fetch\.max_redirects: must be greater than or equal to 0 \(got -3\)",
    ),
    (
        "fetch:\n  per_host_min_interval: -1\n",
        r"fetch\.per_host_min_interval: must be greater than or equal to 0 \(got -1\)",
    ),
    (
        "fetch:\n  max_attempts: true\n",
        r"fetch\.max_attempts: must be a valid integer \(got true\)",
    ),
    ("fetch:\n  max_attempts: 0\n", r"fetch\.max_attempts: must be greater than or equal to 1"),
    ("fetch:\n  per_host_concurrency: 2.5\n", r"per_host_concurrency: must be a valid integer"),
    (
        "fetch:\n  max_redirects: '3'\n",
        r"fetch\.max_redirects: must be a valid integer \(got '3'\)",
    ),
    ("fetch:\n  obey_robots: 1\n", r"fetch\.obey_robots: must be a valid boolean \(got 1\)"),
    ("fetch:\n  allowed_private_hosts: [localhost]\n", r"exact host:port pairs"),
    (
        "fetch:\n  total_timeout: 3\n",
        r":5: fetch: total_timeout \(3\.0\) must be at least connect_timeout \(5\.0\)",
    ),
    (
        "fetch:\n  totl_timeout: 3\n",
        r":6: fetch\.totl_timeout: unknown key; did you mean 'total_timeout'",
    ),
    (
        "refresh:\n  concurrency: 2.5\n",
        r"refresh\.concurrency: must be a valid integer \(got 2\.5\)",
    ),
    ("refresh:\n  concurrency: 0\n", r"refresh\.concurrency: must be greater than or equal to 1"),
    (
        "refresh:\n  batch_size: 20000\n",
        r"refresh\.batch_size: must be less than or equal to 10000",
    ),
    ("refresh:\n  stale_after_days: true\n", r"refresh\.stale_after_days: must be a valid integer"),
    (
        "images:\n  output_format: png\n",
        r"images\.output_format: must be 'jpeg' or 'webp' \(got png\)",
    ),
    ("images:\n  quality: 101\n", r"images\.quality: must be less than or equal to 100"),
    ("images:\n  max_aspect_ratio: 0.5\n", r"images\.max_aspect_ratio: must be greater than"),
    ("images:\n  max_side: 100\n", r"images: max_side \(100\) must be at least min_width"),
    ("images:\n  placeholder_hashes: [abc]\n", r"placeholder hash 'abc' must be 16 hex digits"),
    ("images:\n  min_widht: 10\n", r"images\.min_widht: unknown key; did you mean 'min_width'"),
    ("fetches:\n  max_attempts: 2\n", r":5: fetches: unknown key; did you mean 'fetch'"),
]


@pytest.mark.parametrize(
    ("section", "message"), BAD_VALUES, ids=[s.splitlines()[-1].strip() for s, _ in BAD_VALUES]
)
def test_bad_value_is_refused_naming_file_line_and_key(section: str, message: str) -> None:
    with pytest.raises(ScraperConfigError, match=message) as error:
        parse_scraper_config(SOURCES + section, origin="scraper.yaml")
    assert str(error.value).startswith("scraper.yaml:")


def test_every_problem_of_a_file_is_listed_with_its_own_line() -> None:
    text = SOURCES + "fetch:\n  total_timeout: -1\n  max_redirects: -3\n"
    with pytest.raises(ScraperConfigError) as error:
        parse_scraper_config(text, origin="scraper.yaml")
    lines = str(error.value).splitlines()
    assert lines[0] == "scraper.yaml: 2 problems:"
    assert lines[1].strip().startswith("scraper.yaml:6: fetch.total_timeout:")
    assert lines[2].strip().startswith("scraper.yaml:7: fetch.max_redirects:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "fetch:\n  max_attempts: 2\n",
            r"scraper\.yaml:1: sources: required: add a 'sources:' list",
        ),
        ("sources: []\n", r"sources: required: add a 'sources:' list with at least one entry"),
        ("", r"expected a mapping with a 'sources' list, got an empty file"),
        ("- a list\n", r"expected a mapping with a 'sources' list, got list"),
        ("sources: [\n", r"not valid YAML"),
    ],
    ids=["no-sources-key", "empty-sources", "empty-file", "not-a-mapping", "bad-yaml"],
)
def test_missing_sources_list_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ScraperConfigError, match=message):
        parse_scraper_config(text, origin="scraper.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SOURCES + "fetch:\n  max_attempts: 2\nfetch:\n  max_attempts: 5\n",
            r"scraper\.yaml:7: fetch: given twice \(first on line 5\)",
        ),
        (
            SOURCES + "fetch:\n  max_attempts: 2\n  max_attempts: 5\n",
            r"scraper\.yaml:7: fetch\.max_attempts: given twice \(first on line 6\)",
        ),
        (
            SOURCES.replace("    selector:", "    selector: img\n    selector:"),
            r"scraper\.yaml:5: sources\[0\]\.selector: given twice \(first on line 4\)",
        ),
    ],
    ids=["section", "key", "source-key"],
)
def test_a_key_given_twice_is_refused_with_both_lines(text: str, message: str) -> None:
    with pytest.raises(ScraperConfigError, match=message):
        parse_scraper_config(text, origin="scraper.yaml")


def test_a_bad_source_entry_is_named_by_index_and_line() -> None:
    text = (
        SOURCES + "  - name: other\n    page_url: 'https://o.example/{artist}'\n    selector: img\n"
    )
    with pytest.raises(ScraperConfigError, match=r":6: sources\[1\]\.page_url: .*\['artist'\]"):
        parse_scraper_config(text, origin="scraper.yaml")


def test_missing_file_names_the_file_and_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        ScraperConfigError, match=r"nope\.yaml does not exist.*PODPOD_SCRAPER_CONFIG"
    ):
        load_scraper_config(missing)


def test_empty_path_says_which_variable_to_set() -> None:
    with pytest.raises(ScraperConfigError, match="set PODPOD_SCRAPER_CONFIG"):
        load_scraper_config("")


def test_a_directory_is_an_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ScraperConfigError, match="cannot read scraper config"):
        load_scraper_config(tmp_path)


def test_defaults_fill_every_section_left_out_or_empty() -> None:
    config = parse_scraper_config(SOURCES + "fetch:\nimages: {}\n")
    assert (config.fetch, config.images, config.refresh) == (
        FetchPolicy(),
        ImagePolicy(),
        RefreshPolicy(),
    )


def test_integers_are_accepted_where_seconds_are_expected() -> None:
    config = parse_scraper_config(
        SOURCES + "fetch:\n  per_host_min_interval: 0\n  total_timeout: 40\n"
    )
    assert config.fetch.per_host_min_interval == 0.0
    assert config.fetch.total_timeout == 40.0


def test_the_loaded_config_is_frozen() -> None:
    config = parse_scraper_config(SOURCES)
    with pytest.raises(ValueError, match="frozen"):
        config.fetch.max_attempts = 9  # type: ignore[misc]


def test_loading_a_file_gives_the_same_config_as_its_text(tmp_path: Path) -> None:
    path = tmp_path / "scraper.yaml"
    path.write_text(SOURCES + "refresh:\n  concurrency: 4\n", encoding="utf-8")
    loaded = load_scraper_config(path)
    assert isinstance(loaded, ScraperConfig)
    assert loaded == parse_scraper_config(path.read_text(encoding="utf-8"))
    assert loaded.refresh.concurrency == 4
