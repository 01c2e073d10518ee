"""Asset checks: what the main API relies on, verified against the real stores."""

import dagster as dg

from podpod_scraping.defs.assets import artist_image_coverage
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource

#: Current images checked per evaluation: the most recently published ones.
CHECK_SAMPLE = 200


@dg.asset_check(
    asset=artist_image_coverage,
    name="current_images_have_objects",
    description=(
        "The most recently published current-image rows point at objects that exist "
        "(the API must never serve a row whose object is missing)."
    ),
)
def current_images_have_objects(
    catalog: CatalogResource, objects: ObjectStoreResource
) -> dg.AssetCheckResult:
    store = objects.store()
    images = catalog.repository().latest_current_images(CHECK_SAMPLE)
    missing = [image for image in images if not store.exists(image.object_name)]
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "checked": len(images),
            "missing": len(missing),
            "missing_objects": dg.MetadataValue.json(
                [{"artist_id": i.artist_id, "object_uri": i.object_uri} for i in missing[:20]]
            ),
        },
    )
