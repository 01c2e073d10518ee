"""The Dagster code location: ``dagster ... -m podpod_scraping.definitions``.

Everything environment-specific comes from environment variables (see ``.env.example``),
resolved by Dagster when a run starts, never at import time.
"""

import dagster as dg

from podpod_scraping.defs.assets import artist_image, artist_image_coverage, artist_source_image
from podpod_scraping.defs.io_managers import CatalogIOManager, SourceImageIOManager
from podpod_scraping.defs.jobs import artist_images_job
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource

catalog = CatalogResource(url=dg.EnvVar("PODPOD_CATALOG_URL"))
objects = ObjectStoreResource(url=dg.EnvVar("PODPOD_OBJECT_STORE_URL"))
scraper = ScraperResource(config_path=dg.EnvVar("PODPOD_SCRAPER_CONFIG"))

defs = dg.Definitions(
    # Steps of a run are sequential (scrape, then publish) and each one works on many artists
    # concurrently in threads: separate step processes would only add seconds of imports.
    executor=dg.in_process_executor,
    assets=[artist_source_image, artist_image, artist_image_coverage],
    jobs=[artist_images_job],
    resources={
        "catalog": catalog,
        "objects": objects,
        "scraper": scraper,
        "source_image_io_manager": SourceImageIOManager(objects=objects),
        "catalog_io_manager": CatalogIOManager(catalog=catalog, objects=objects),
    },
)
