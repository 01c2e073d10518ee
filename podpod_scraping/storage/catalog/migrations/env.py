"""Alembic environment of the catalog tables this service owns.

Run through :func:`podpod_scraping.storage.catalog.migrate.upgrade`, which passes an open
connection in ``config.attributes["connection"]``. Only tables of
:data:`podpod_scraping.storage.catalog.models.Base` are ours: autogenerate ignores every
other table of the shared database (the main API's ``artists`` and the rest).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from podpod_scraping.storage.catalog.migrate import VERSION_TABLE
from podpod_scraping.storage.catalog.models import Base
from podpod_scraping.storage.catalog.repository import make_engine

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Autogenerate only looks at our own tables, never at the main API's."""
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no catalog connection or sqlalchemy.url given to the migrations")
    engine = make_engine(url)
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
