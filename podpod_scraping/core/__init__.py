"""Plain-Python core: fetching, sources, images and naming. Never imports Dagster."""
