"""The scraper's configuration file: sources plus fetch, image and refresh policies.

Adding a site, tuning politeness or listing a placeholder hash is configuration, not code.
The file's path comes from the ``PODPOD_SCRAPER_CONFIG`` environment variable through the
Dagster resource; this module only parses and validates. The schema is the models
themselves (``ScraperConfig`` and its sections, see ``core.schema``): the loader, the code
and ``podpod-scraping config check`` share it. Every problem raises
:class:`ScraperConfigError`, naming the file, line, key path and fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from podpod_scraping.core.fetching import FetchPolicy
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.ranking import RankingPolicy
from podpod_scraping.core.schema import (
    FrozenModel,
    NonEmptyStr,
    NonNegativeInt,
    PositiveInt,
    ScraperConfigError,
    load_yaml_model,
)
from podpod_scraping.core.sources import SourceList

__all__ = [
    "CONFIG_ENV",
    "CatalogColumns",
    "IdentityPolicy",
    "RefreshPolicy",
    "ScraperConfig",
    "ScraperConfigError",
    "load_scraper_config",
    "parse_scraper_config",
]

#: The environment variable naming the config file (read by the resource and the CLI).
CONFIG_ENV = "PODPOD_SCRAPER_CONFIG"


class RefreshPolicy(FrozenModel):
    """When an artist is due again, how many artists one run takes, how many at once.

    Every entry point honours these (UI backfills, the CLI, the sensor's and the
    schedule's runs): ``concurrency`` artists are in flight in a run (per-host limits
    of ``fetch`` still bound each site), ``batch_size`` artists make one unattended run.
    ``variant_processes`` worker processes render and upload the variant sets (0: each
    artist's own thread does, on the run process's one GIL; see
    ``storage.variant_sets``). Each worker holds its own image libraries and GCS client
    (about 100 MB).
    """

    stale_after_days: PositiveInt = 30
    batch_size: PositiveInt = Field(default=500, le=10_000)
    concurrency: PositiveInt = Field(default=32, le=256)
    max_storage_failures: PositiveInt = Field(default=5, le=10_000)
    variant_processes: NonNegativeInt = Field(default=2, le=32)


class CatalogColumns(FrozenModel):
    """Which columns of the main API's ``artists`` table carry aliases or external ids.

    Absent columns are fine (the main API may add them later): a configured column the
    table lacks is reported by ``config check`` and ignored by runs.
    """

    alias_columns: tuple[NonEmptyStr, ...] = ()
    #: namespace (``musicbrainz``, ``wikidata``, ``deezer``, ``site:<name>``) -> column
    identity_columns: dict[NonEmptyStr, NonEmptyStr] = Field(default_factory=dict)


class IdentityPolicy(FrozenModel):
    """How long a *matched* identity is trusted before a refresh verifies it again.

    Resolving identities is the expensive part at catalog scale (MusicBrainz allows about
    one request per second), so it happens once per artist and then every
    ``reverify_after_days``; pinned and catalog identities are never re-verified.
    """

    reverify_after_days: PositiveInt = 180


class ScraperConfig(FrozenModel):
    """Everything the scraper needs besides the catalog and the object store."""

    sources: SourceList
    fetch: FetchPolicy = FetchPolicy()
    images: ImagePolicy = ImagePolicy()
    refresh: RefreshPolicy = RefreshPolicy()
    catalog: CatalogColumns = CatalogColumns()
    identity: IdentityPolicy = IdentityPolicy()
    ranking: RankingPolicy = RankingPolicy()

    @field_validator("fetch", "images", "refresh", "catalog", "identity", "ranking", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value  # a section left with every key commented out


def parse_scraper_config(text: str, origin: str = "<string>") -> ScraperConfig:
    """Parse the YAML text of a scraper configuration file."""
    return load_yaml_model(ScraperConfig, text, origin)


def load_scraper_config(path: str | os.PathLike[str]) -> ScraperConfig:
    """Read and validate the configuration file at ``path``."""
    file = Path(path)
    if not str(path).strip():
        raise ScraperConfigError(
            f"no scraper config file given: set {CONFIG_ENV} to the YAML file's path"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScraperConfigError(
            f"scraper config file {file} does not exist: create it (see README, Sources) "
            f"or point {CONFIG_ENV} at the right path"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScraperConfigError(f"cannot read scraper config {file}: {error}") from error
    return parse_scraper_config(text, origin=str(file))
