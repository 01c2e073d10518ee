-- Local stack only: the catalog database next to Dagster's own (POSTGRES_DB=dagster).
-- In production PODPOD_CATALOG_URL points at the main API's database instead.
CREATE DATABASE podpod;
