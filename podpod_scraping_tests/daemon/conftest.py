"""The daemon test's Dagster instances are finalized before the next folder's tests."""

import pytest


@pytest.fixture(autouse=True)
def _finalize_instances_between_tests(finalize_dagster_instances: None) -> None:
    """See ``fixtures/dagster.py``."""
