"""The job that refreshes artists' images: scrape and publish, many artists per run."""

import dagster as dg

from podpod_scraping.defs.assets import artist_image, artist_source_image
from podpod_scraping.defs.partitions import artist_partitions

artist_images_job = dg.define_asset_job(
    name="artist_images_job",
    selection=dg.AssetSelection.assets(artist_source_image, artist_image),
    partitions_def=artist_partitions,
    description="Scrape, normalize and publish the images of the requested artists.",
)
