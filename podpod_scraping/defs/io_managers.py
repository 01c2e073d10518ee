"""IO managers: scraped originals to the object store (GCS), publications to object + row.

Both accept an output covering one partition or many (a single-run backfill): the value is
always a mapping ``{artist_id: result}`` and each partition is written on its own, so one
artist's result never depends on another's. A storage failure for some artists is raised
after the others are written: the run fails and its retry rewrites nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import dagster as dg

from podpod_scraping.core.outcomes import ScrapeResult
from podpod_scraping.core.publishing import Publication
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource
from podpod_scraping.storage.catalog.repository import CurrentImage
from podpod_scraping.storage.images import ImagePublisher, SourceImageArchive

T = TypeVar("T")


class StorageError(Exception):
    """Storage failed for some artists; the others in the same output were written."""


def partition_keys(context: dg.OutputContext | dg.InputContext) -> Sequence[str]:
    if not context.has_asset_partitions:
        raise dg.Failure("artist assets are partitioned by artist; run them for partitions")
    return context.asset_partition_keys


def write_each(
    context: dg.OutputContext,
    values: Mapping[str, T],
    write: Callable[[T], object],
    what: str,
) -> None:
    """Write every partition's value; collect failures and raise once at the end."""
    errors: list[str] = []
    for key in partition_keys(context):
        value = values.get(key)
        if value is None:
            continue  # the artist left the catalog; nothing was attempted
        try:
            write(value)
        except Exception as error:
            context.log.error(f"artist {key}: {what} failed: {type(error).__name__}: {error}")
            errors.append(f"{key}: {type(error).__name__}: {error}")
    if errors:
        raise StorageError(f"{what} failed for {len(errors)} artist(s): " + "; ".join(errors[:10]))


class SourceImageIOManager(dg.ConfigurableIOManager):
    """Stores scraped originals and their provenance manifests in the object store."""

    objects: ObjectStoreResource

    def handle_output(self, context: dg.OutputContext, obj: Mapping[str, ScrapeResult]) -> None:
        archive = SourceImageArchive(self.objects.store())
        write_each(context, obj, archive.save, "storing the scraped image")

    def load_input(self, context: dg.InputContext) -> dict[str, ScrapeResult]:
        archive = SourceImageArchive(self.objects.store())
        loaded = {key: archive.load(key) for key in partition_keys(context)}
        return {key: result for key, result in loaded.items() if result is not None}


class CatalogIOManager(dg.ConfigurableIOManager):
    """Publishes normalized images (object, then row in one transaction) in the catalog."""

    catalog: CatalogResource
    objects: ObjectStoreResource

    def handle_output(self, context: dg.OutputContext, obj: Mapping[str, Publication]) -> None:
        publisher = ImagePublisher(self.objects.store(), self.catalog.repository())
        write_each(context, obj, publisher.publish, "publishing")

    def load_input(self, context: dg.InputContext) -> dict[str, CurrentImage]:
        return self.catalog.repository().current_images(partition_keys(context))
