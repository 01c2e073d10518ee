"""The scraper resource raises one error type for every config problem, so a run can tell
a mistake that cannot heal (fail at once) from a transient fault (retry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podpod_scraping.core.config import ScraperConfigError, load_scraper_config
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource
from podpod_scraping.storage.variant_sets import InlineVariantWriter, ProcessVariantWriter

VALID = "sources:\n  - {name: s, page_url: 'https://s.example/{id}', selector: img}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"missing\.yaml does not exist: .*PODPOD_SCRAPER_CONFIG"),
        ("sources: [\n", r"scraper\.yaml: not valid YAML"),
        ("fetch:\n  max_attempts: 2\n", r"scraper\.yaml:1: sources: required"),
        (
            VALID + "fetch:\n  total_timeout: -1\n",
            r"scraper\.yaml:4: fetch\.total_timeout: must be",
        ),
        (VALID + "refresh:\n  concurrency: 2.5\n", r"scraper\.yaml:4: refresh\.concurrency: must"),
        (
            VALID + "refresh:\n  variant_processes: -1\n",
            r"scraper\.yaml:4: refresh\.variant_processes: must",
        ),
    ],
    ids=["missing-file", "bad-yaml", "no-sources", "bad-value", "bad-type", "bad-processes"],
)
def test_every_config_problem_is_a_scraper_config_error_naming_file_and_key(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / ("missing.yaml" if text is None else "scraper.yaml")
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ScraperConfigError, match=message):
        ScraperResource(config_path=str(path)).load_config()


@pytest.mark.parametrize(
    ("refresh", "writer"),
    [("", ProcessVariantWriter), ("refresh:\n  variant_processes: 0\n", InlineVariantWriter)],
    ids=["default", "zero"],
)
def test_runs_write_variant_sets_through_worker_processes_unless_set_to_zero(
    tmp_path: Path, refresh: str, writer: type
) -> None:
    path = tmp_path / "scraper.yaml"
    path.write_text(VALID + refresh, encoding="utf-8")
    catalog = CatalogResource(url=f"sqlite:///{tmp_path / 'catalog.db'}")
    objects = ObjectStoreResource(url=str(tmp_path / "objects"))

    store = catalog.image_store(objects, load_scraper_config(path))
    try:
        assert isinstance(store.variant_writer, writer)
    finally:
        store.close()
