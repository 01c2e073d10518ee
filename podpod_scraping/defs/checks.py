"""Asset checks: what the main API relies on, verified against the real stores."""

from datetime import UTC, datetime

import dagster as dg

from podpod_scraping.defs.assets import artist_image_coverage
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource

#: Current images verified per evaluation, least recently verified first: with the
#: coverage report hourly, 1,000 per check walks 100,000 artists in about four days.
CHECK_BATCH = 1000


@dg.asset_check(
    asset=artist_image_coverage,
    name="current_images_have_objects",
    description=(
        "Every current-image row points at an object that exists with its sha256 (the API "
        "must never serve a row whose object is missing). Each evaluation verifies the "
        f"{CHECK_BATCH} least recently verified current images, so all are covered over "
        "time; it fails while any current image is known to miss its object."
    ),
)
def current_images_have_objects(
    catalog: CatalogResource, objects: ObjectStoreResource
) -> dg.AssetCheckResult:
    store = objects.store()
    repository = catalog.repository()
    images = repository.current_images_to_check(CHECK_BATCH)
    found: dict[int, bool] = {}
    missing = []
    for image in images:
        info = store.stat(image.object_name)
        lost = info is None or info.sha256 not in (None, image.sha256)
        found[image.id] = lost
        if lost:
            missing.append(image)
    repository.record_object_checks(found, at=datetime.now(UTC))
    known_missing = repository.missing_object_count()
    return dg.AssetCheckResult(
        passed=known_missing == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "checked": len(images),
            "missing_in_this_batch": len(missing),
            "missing_in_total": known_missing,
            "missing_objects": dg.MetadataValue.json(
                [{"artist_id": i.artist_id, "object_uri": i.object_uri} for i in missing[:20]]
            ),
        },
        description=(
            f"{known_missing} current image(s) miss their object; the next refresh of those "
            "artists fetches and republishes them"
            if known_missing
            else None
        ),
    )
