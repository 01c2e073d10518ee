"""What a catalog database error means for a run: retry later, or stop and fix something.

A failover, a dropped connection or a full pool heals; bad credentials, a missing
database, table or column do not, and retrying them only hides the fix for minutes.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc

#: Messages (psycopg2 / SQLite) of faults no retry fixes, with the fix to name.
_PERMANENT = (
    (
        re.compile(r'relation "(?P<name>[^"]+)" does not exist|no such table: (?P<name2>\S+)'),
        "the catalog has no table {name}: run `podpod-scraping db upgrade` for this "
        "service's tables (artist_images, artist_scrape_state); `artists` belongs to the "
        "main API and must exist with columns id and name",
    ),
    (
        re.compile(r'column "?(?P<name>[^" ]+)"? does not exist|no such column: (?P<name2>\S+)'),
        "the catalog has no column {name}: the main API's `artists` table must have id "
        "and name; for this service's tables run `podpod-scraping db upgrade`",
    ),
    (
        re.compile(r"password authentication failed|no password supplied|role \"[^\"]+\""),
        "the catalog refused the credentials: check the user and password in PODPOD_CATALOG_URL",
    ),
    (
        re.compile(r'database "(?P<name>[^"]+)" does not exist|unable to open database file'),
        "the catalog database {name} does not exist: check PODPOD_CATALOG_URL",
    ),
    (
        re.compile(r"permission denied"),
        "the catalog user lacks a privilege: grant SELECT on artists and read/write on "
        "this service's tables",
    ),
)


def is_permanent_catalog_error(error: BaseException) -> str | None:
    """The fix to name when ``error`` cannot heal by retrying, else None (transient)."""
    if not isinstance(error, sa_exc.SQLAlchemyError):
        return None
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return None
    text = str(getattr(error, "orig", None) or error)
    for pattern, fix in _PERMANENT:
        match = pattern.search(text)
        if match:
            name = match.groupdict().get("name") or match.groupdict().get("name2") or ""
            return fix.format(name=name).replace("  ", " ")
    if isinstance(
        error,
        sa_exc.ProgrammingError
        | sa_exc.IntegrityError
        | sa_exc.DataError
        | sa_exc.NotSupportedError
        | sa_exc.ArgumentError
        | sa_exc.NoSuchModuleError,
    ):
        return (
            "a catalog statement was refused: a schema mismatch or a bug, not a fault a retry fixes"
        )
    return None  # OperationalError, InterfaceError, pool TimeoutError: connections come back
