"""Apply this service's catalog migrations (Alembic, configured in code: no alembic.ini).

``python -m podpod_scraping.storage.catalog.migrate upgrade [--url URL]``; without
``--url`` the URL comes from ``PODPOD_CATALOG_URL``.

The catalog is the main API's database, which very likely has Alembic migrations of its
own: ours keep their revision in a separate table (:data:`VERSION_TABLE`) so the two
histories never collide, and they only ever touch the tables this service owns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from podpod_scraping.storage.catalog.repository import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "podpod_scraping_alembic_version"
URL_ENV = "PODPOD_CATALOG_URL"
#: Serialises concurrent upgrades (two containers starting at once) on Postgres.
_ADVISORY_LOCK_KEY = 0x706F64706F64  # "podpod"


def alembic_config() -> Config:
    """The Alembic config of the catalog migrations, with the scripts inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the catalog at ``url`` to ``revision``; a no-op when already there."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m podpod_scraping.storage.catalog.migrate",
        description="Apply podpod_scraping's catalog migrations.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate the catalog to the latest revision")
    up.add_argument("--url", help=f"catalog SQLAlchemy URL (default: ${URL_ENV})")
    args = parser.parse_args(argv)
    url = args.url or os.environ.get(URL_ENV)
    if not url:
        parser.error(f"no catalog URL: pass --url or set {URL_ENV}")
    upgrade(url)
    print("catalog migrated to head")
    return 0


if __name__ == "__main__":
    sys.exit(main())
