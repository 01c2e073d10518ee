"""The Dagster code location: ``dagster ... -m podpod_scraping.definitions``.

Everything environment-specific comes from environment variables (see ``.env.example``):
resources resolve theirs when a run starts; the schedule's cron and timezone are read when
Dagster loads the code location, never at import time.
"""

import dagster as dg

from podpod_scraping.defs.alerts import (
    AlertsResource,
    coverage_alert_sensor,
    run_failure_alert_sensor,
)
from podpod_scraping.defs.assets import artist_image_coverage, artist_images
from podpod_scraping.defs.batching import artist_refresh_job, artist_retry_failed_job
from podpod_scraping.defs.checks import current_images_have_objects
from podpod_scraping.defs.jobs import artist_images_job
from podpod_scraping.defs.metrics import PUSHGATEWAY_URL_ENV, MetricsResource
from podpod_scraping.defs.recovery import build_dead_run_sensor, dead_after
from podpod_scraping.defs.resources import CatalogResource, ObjectStoreResource, ScraperResource
from podpod_scraping.defs.schedules import (
    DEFAULT_REFRESH_CRON,
    DEFAULT_REFRESH_TIMEZONE,
    build_refresh_schedule,
    coverage_job,
    coverage_schedule,
)
from podpod_scraping.defs.sensors import artist_catalog_sensor


@dg.definitions
def defs() -> dg.Definitions:
    catalog = CatalogResource(url=dg.EnvVar("PODPOD_CATALOG_URL"))
    objects = ObjectStoreResource(url=dg.EnvVar("PODPOD_OBJECT_STORE_URL"))
    scraper = ScraperResource(config_path=dg.EnvVar("PODPOD_SCRAPER_CONFIG"))
    # Metrics are optional: an unset variable means no push (an EnvVar must be set to resolve).
    pushgateway = dg.EnvVar(PUSHGATEWAY_URL_ENV)
    metrics = MetricsResource(pushgateway_url=pushgateway if pushgateway.get_value() else None)
    refresh_schedule = build_refresh_schedule(
        cron=dg.EnvVar("PODPOD_REFRESH_CRON").get_value(DEFAULT_REFRESH_CRON)
        or DEFAULT_REFRESH_CRON,
        timezone=dg.EnvVar("PODPOD_REFRESH_TIMEZONE").get_value(DEFAULT_REFRESH_TIMEZONE)
        or DEFAULT_REFRESH_TIMEZONE,
    )
    dead_run_sensor = build_dead_run_sensor(
        dead_after(dg.EnvVar("PODPOD_DEAD_RUN_AFTER_MINUTES").get_value(None))
    )
    alerts = AlertsResource(
        webhook_url=_env_if_set("PODPOD_ALERT_WEBHOOK_URL", ""),
        ui_base_url=_env_if_set("PODPOD_UI_BASE_URL", "http://127.0.0.1:3000"),
    )
    return dg.Definitions(
        assets=[artist_images, artist_image_coverage],
        asset_checks=[current_images_have_objects],
        jobs=[artist_images_job, artist_refresh_job, artist_retry_failed_job, coverage_job],
        sensors=[
            artist_catalog_sensor,
            dead_run_sensor,
            run_failure_alert_sensor,
            coverage_alert_sensor,
        ],
        schedules=[refresh_schedule, coverage_schedule],
        # One step per run, over many artists in threads: a step process of its own would
        # only add seconds of imports per run.
        executor=dg.in_process_executor,
        resources={
            "catalog": catalog,
            "objects": objects,
            "scraper": scraper,
            "metrics": metrics,
            "alerts": alerts,
        },
    )


def _env_if_set(name: str, default: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set (so the UI shows its name, never its
    value), else ``default``: optional settings such as the alert webhook stay off unset."""
    return dg.EnvVar(name) if dg.EnvVar(name).get_value() else default
