"""How a batch's reports become Dagster events: the one module that decides what the UI shows.

Per artist (partition key = artist id), both entry points (the partitioned assets and
the batch refresh job) emit exactly these:

- an attempt that leaves the artist with a current image (found, or unchanged):
  a materialization of ``artist_source_image`` and one of ``artist_image``;
- a failed attempt: an observation of ``artist_image`` (outcome, reason, and the image
  still served, if any) and no materialization. In a partitioned run the step then
  fails, so Dagster marks exactly those partitions Failed;
- an id that is not a catalog artist: an observation saying so (the step then fails,
  without a retry: no retry makes an unknown id known);
- an attempt superseded by a newer one (another run recorded the artist first): an
  observation saying so, with the image the newer attempt left current;
- a storage failure: nothing (the step fails and its retry does the artist again).

Every event carries the artist's name and the current image's size, URI and preview,
so the latest event of a partition always shows what the app serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import dagster as dg

from podpod_scraping.core.credits import credit_line
from podpod_scraping.core.fetching import redact_url
from podpod_scraping.core.images import jpeg_data_uri
from podpod_scraping.core.refresh import ArtistReport, ArtistStatus, BatchTally, CurrentImage

SOURCE_IMAGE_KEY = dg.AssetKey("artist_source_image")
IMAGE_KEY = dg.AssetKey("artist_image")
#: Failed artists listed in a step's failure message (the rest are in the events).
FAILURES_LISTED = 20


class StorageError(Exception):
    """The object store or the catalog failed for some artists: transient, retried."""


def current_image_metadata(current: CurrentImage | None) -> dict[str, Any]:
    """What the app serves for the artist now: size, URI, preview, provenance."""
    if current is None:
        return {"current_image": "none"}
    metadata: dict[str, Any] = {
        "width": current.width,
        "height": current.height,
        "bytes": current.byte_size,
        "content_type": current.content_type,
        "sha256": current.sha256,
        "object_uri": current.object_uri,
        "public_url": dg.MetadataValue.url(current.public_url),
        "source": current.source_name,
        "source_image_url": dg.MetadataValue.url(redact_url(current.source_image_url)),
        "license": current.license or "unknown",
        "scraped_at": dg.MetadataValue.timestamp(current.scraped_at),
    }
    if current.source_sha256:
        metadata["source_sha256"] = current.source_sha256
    if current.preview_jpeg:
        metadata["preview"] = dg.MetadataValue.md(
            f"![preview]({jpeg_data_uri(current.preview_jpeg)})"
        )
    return metadata | _variant_metadata(current)


def _variant_metadata(current: CurrentImage) -> dict[str, Any]:
    """The variant set: how many, the avatar (preview, crop method), the placeholder colour."""
    if current.variant_set is None:
        return {"variants": 0}
    metadata: dict[str, Any] = {
        "variants": current.variant_count,
        "variant_set": current.variant_set,
        "avatar_method": current.avatar_method or "off",
    }
    if current.dominant_color:
        colour = current.dominant_color
        metadata["placeholder_color"] = dg.MetadataValue.md(
            f"`{colour}` ![{colour}](data:image/svg+xml;utf8,{_swatch(colour)})"
        )
    if current.avatar_preview:
        metadata["avatar_preview"] = dg.MetadataValue.md(
            f"![avatar]({jpeg_data_uri(current.avatar_preview)})"
        )
    return metadata


def _swatch(colour: str) -> str:
    """A 24x24 SVG square of ``colour``, URL-escaped for a Markdown data URI."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='24' height='24'>"
        f"<rect width='24' height='24' fill='{colour}'/></svg>"
    )
    return quote(svg, safe="")


def _attempt_metadata(report: ArtistReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "artist": report.artist_name or "",
        "outcome": report.outcome.value if report.outcome else report.status.value,
        "reason": report.reason,
    }
    if report.page_url:
        metadata["page_url"] = dg.MetadataValue.url(redact_url(report.page_url))
    return metadata | identity_metadata(report)


def identity_metadata(report: ArtistReport) -> dict[str, Any]:
    """Who the artist was found to be (evidence), who it might be (pin one), the credit."""
    metadata: dict[str, Any] = {}
    if report.identities:
        metadata["identities"] = dg.MetadataValue.json(
            [
                {
                    "namespace": i.namespace,
                    "id": i.external_id,
                    "method": i.method.value,
                    "matched_name": i.matched_name,
                    "score": i.score,
                    "disambiguation": i.disambiguation,
                    "evidence": dict(i.evidence),
                }
                for i in report.identities
            ]
        )
    if report.candidates:
        metadata["candidates"] = dg.MetadataValue.md(
            "Several artists match; pin one with `podpod-scraping identity pin "
            f"{report.artist_id} <namespace> <id>`:\n\n| namespace | id | name | "
            "disambiguation |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {c.namespace} | `{c.external_id}` | {c.name} | {c.disambiguation or ''} |"
                for c in report.candidates
            )
        )
    provenance = report.provenance
    if provenance is not None:
        credit = credit_line(provenance)
        if credit:
            metadata["credit"] = credit
        if provenance.license_url:
            metadata["license_url"] = dg.MetadataValue.url(provenance.license_url)
        if provenance.identity_namespace:
            metadata["found_through"] = f"{provenance.identity_namespace}:{provenance.identity_id}"
    return metadata


def source_image_metadata(report: ArtistReport) -> dict[str, Any]:
    """A scraped-original partition: the original found or confirmed, with provenance."""
    metadata = _attempt_metadata(report)
    original = report.original
    if original is not None:
        metadata |= {
            "original_sha256": original.sha256,
            "original_content_type": original.content_type,
            "original_width": original.width,
            "original_height": original.height,
            "original_bytes": original.byte_size,
            "original_uri": original.object_uri,
            "image_url": dg.MetadataValue.url(redact_url(original.image_url)),
        }
    elif report.current is not None and report.current.source_sha256:
        metadata["original_sha256"] = report.current.source_sha256
    return metadata


def image_metadata(report: ArtistReport) -> dict[str, Any]:
    """A published-image partition: the attempt and the image the app serves after it."""
    metadata = _attempt_metadata(report)
    if report.status is ArtistStatus.SUCCEEDED:
        metadata["published"] = "new image" if report.switched else "current image confirmed"
    elif report.status is ArtistStatus.SUPERSEDED:
        metadata["published"] = "superseded by a newer attempt (kept in history only)"
    elif report.current is not None:
        metadata["published"] = "previous image kept"
    return metadata | current_image_metadata(report.current)


def report_events(report: ArtistReport) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    """The events one artist's report adds to the run (see the module docstring)."""
    key = report.artist_id
    if report.status is ArtistStatus.SUCCEEDED:
        return [
            dg.AssetMaterialization(
                asset_key=SOURCE_IMAGE_KEY, partition=key, metadata=source_image_metadata(report)
            ),
            dg.AssetMaterialization(
                asset_key=IMAGE_KEY, partition=key, metadata=image_metadata(report)
            ),
        ]
    if report.status in (
        ArtistStatus.FAILED,
        ArtistStatus.NOT_IN_CATALOG,
        ArtistStatus.SUPERSEDED,
    ):
        return [
            dg.AssetObservation(asset_key=IMAGE_KEY, partition=key, metadata=image_metadata(report))
        ]
    return []  # storage failed (retried), or already recorded by this run's earlier attempt


def batch_verdict(tally: BatchTally) -> Exception | None:
    """How the step ends: retried for storage failures, failed (no retry) for artists.

    Failing the step is what makes Dagster show the failed artists as Failed partitions
    and the run (or backfill) as failed; the artists that succeeded keep their
    materializations. Artist outcomes are not transient for the step: they are retried
    later by the schedule, after their backoff.
    """
    if tally.storage_failed:
        listed = "; ".join(
            f"{r.artist_id}: {r.error}" for r in tally.storage_failed[:FAILURES_LISTED]
        )
        message = f"storing failed for {len(tally.storage_failed)} of {tally.total} artist(s)"
        if any(not r.storage_transient for r in tally.storage_failed):
            return dg.Failure(description=f"{message} (not retried): {listed}", allow_retries=False)
        return StorageError(
            f"{message} (retried; artists already recorded are not redone): {listed}"
        )
    parts: list[str] = []
    if tally.failed:
        listed = "\n".join(
            f"- {r.artist_id} ({r.artist_name}): {r.outcome.value if r.outcome else '?'}: "
            f"{r.reason}"
            for r in tally.failed[:FAILURES_LISTED]
        )
        more = len(tally.failed) - FAILURES_LISTED
        parts.append(
            f"{len(tally.failed)} of {tally.total} artist(s) have no new image from this "
            f"attempt (their previous image, if any, is kept):\n{listed}"
            + (f"\n... and {more} more (see each partition's latest event)" if more > 0 else "")
        )
    if tally.not_in_catalog:
        listed = ", ".join(r.artist_id for r in tally.not_in_catalog[:FAILURES_LISTED])
        parts.append(
            f"{len(tally.not_in_catalog)} of {tally.total} id(s) are not catalog artists: "
            f"{listed}. Check the ids; the partition of a deleted artist is removed by the "
            "catalog sensor on its next tick."
        )
    if parts:
        return dg.Failure(
            description="\n\n".join(parts),
            metadata={
                "failed": len(tally.failed),
                "not_in_catalog": len(tally.not_in_catalog),
                "artists": tally.total,
                "outcomes": dg.MetadataValue.json(tally.by_outcome),
            },
            allow_retries=False,
        )
    return None


def iter_events(reports: Iterator[ArtistReport], tally: BatchTally) -> Iterator[Any]:
    """Events for each report as it arrives, counting them into ``tally``."""
    for report in reports:
        tally.add(report)
        yield from report_events(report)
