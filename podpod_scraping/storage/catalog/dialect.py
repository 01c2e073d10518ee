"""The one dialect switch of the catalog's upserts (Postgres in production, SQLite embedded)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def dialect_insert(connection: Connection, table: Any) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(
        f"catalog upserts are implemented for postgresql and sqlite, not {name}"
    )
