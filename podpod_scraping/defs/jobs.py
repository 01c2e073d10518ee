"""The asset job over a range of artists: what UI backfills, the CLI and the sensor run."""

import dagster as dg

from podpod_scraping.defs.assets import artist_images

artist_images_job = dg.define_asset_job(
    name="artist_images_job",
    selection=dg.AssetSelection.assets(artist_images),
    description="Scrape, normalize and publish the images of a range of artist partitions.",
)
