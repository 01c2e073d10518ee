"""The scraper's configuration file: sources plus fetch and image policies, in one YAML file.

Adding a site, tuning politeness or listing a placeholder hash is configuration, not code.
The file's path comes from the ``PODPOD_SCRAPER_CONFIG`` environment variable through the
Dagster resource; this module only parses and validates.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from podpod_scraping.core.fetching import FetchPolicy
from podpod_scraping.core.images import ImagePolicy
from podpod_scraping.core.sources import SourceConfig, parse_sources


class ScraperConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True)
class RefreshPolicy:
    """When an artist is due again, how many artists one run takes, how many at once.

    Every entry point honours these (UI backfills, the CLI, the sensor's and the
    schedule's runs): ``concurrency`` artists are in flight in a run (per-host limits
    of ``fetch`` still bound each site), ``batch_size`` artists make one unattended run.
    """

    stale_after_days: int = 30
    batch_size: int = 500
    concurrency: int = 32
    max_storage_failures: int = 5

    def __post_init__(self) -> None:
        if self.stale_after_days < 1:
            raise ValueError("stale_after_days must be at least 1")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be between 1 and 10000")
        if not 1 <= self.concurrency <= 256:
            raise ValueError("concurrency must be between 1 and 256")
        if not 1 <= self.max_storage_failures <= 10_000:
            raise ValueError("max_storage_failures must be between 1 and 10000")


@dataclass(frozen=True)
class ScraperConfig:
    """Everything the scraper needs besides the catalog and the object store."""

    sources: tuple[SourceConfig, ...]
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    images: ImagePolicy = field(default_factory=ImagePolicy)
    refresh: RefreshPolicy = field(default_factory=RefreshPolicy)


_TOP_LEVEL = {"sources", "fetch", "images", "refresh"}


def _policy(cls: type[Any], raw: Any, section: str, origin: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ScraperConfigError(f"{origin}: '{section}' must be a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ScraperConfigError(
            f"{origin}: unknown {section} setting(s) {unknown}; known: {sorted(known)}"
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if isinstance(default, frozenset | tuple):
            if not isinstance(value, list):
                raise ScraperConfigError(f"{origin}: {section}.{name} must be a list")
            value = type(default)(str(v) for v in value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ScraperConfigError(f"{origin}: {section}.{name} must be true or false")
        elif isinstance(default, int | float) and not isinstance(value, int | float):
            raise ScraperConfigError(f"{origin}: {section}.{name} must be a number")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ScraperConfigError(f"{origin}: {section}.{name} must be a string")
        values[name] = value
    try:
        return dataclasses.replace(cls(), **values)
    except (TypeError, ValueError) as error:
        raise ScraperConfigError(f"{origin}: invalid {section} settings: {error}") from error


def parse_scraper_config(text: str, origin: str = "<string>") -> ScraperConfig:
    """Parse the YAML text of a scraper configuration file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScraperConfigError(f"{origin}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ScraperConfigError(f"{origin}: expected a mapping with a 'sources' list")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ScraperConfigError(f"{origin}: unknown top-level key(s) {unknown}")
    sources = parse_sources(yaml.safe_dump({"sources": data.get("sources")}), origin=origin)
    return ScraperConfig(
        sources=tuple(sources),
        fetch=_policy(FetchPolicy, data.get("fetch"), "fetch", origin),
        images=_policy(ImagePolicy, data.get("images"), "images", origin),
        refresh=_policy(RefreshPolicy, data.get("refresh"), "refresh", origin),
    )


def load_scraper_config(path: str | os.PathLike[str]) -> ScraperConfig:
    """Read and validate the configuration file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ScraperConfigError(f"cannot read scraper config {file}: {error}") from error
    return parse_scraper_config(text, origin=str(file))
