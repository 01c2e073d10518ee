"""Reads and writes of ``artist_identities``: who each artist is on external namespaces.

Trust decides what a write may replace: a ``pinned`` identity (a person said so) is
never replaced by a ``catalog`` or ``matched`` one, a ``catalog`` one never by a match;
equal trust replaces (a newer match, a changed catalog column). Unpinning deletes the
pinned row only, so the next refresh resolves the artist again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from podpod_scraping.core.identity import METHOD_TRUST, Identity, IdentityMethod
from podpod_scraping.storage.catalog.dialect import dialect_insert
from podpod_scraping.storage.catalog.models import ArtistIdentityRow

_COLUMNS = (
    ArtistIdentityRow.artist_id,
    ArtistIdentityRow.namespace,
    ArtistIdentityRow.external_id,
    ArtistIdentityRow.method,
    ArtistIdentityRow.matched_name,
    ArtistIdentityRow.score,
    ArtistIdentityRow.disambiguation,
    ArtistIdentityRow.evidence,
    ArtistIdentityRow.resolved_at,
)


def _trust(column: Any) -> Any:
    """The SQL expression of :data:`METHOD_TRUST` for a ``method`` column."""
    return sa.case(
        {method.value: trust for method, trust in METHOD_TRUST.items()}, value=column, else_=-1
    )


def _identity(row: Any) -> Identity:
    return Identity(
        namespace=row.namespace,
        external_id=row.external_id,
        method=IdentityMethod(row.method),
        matched_name=row.matched_name,
        score=row.score,
        disambiguation=row.disambiguation,
        evidence=dict(row.evidence or {}),
        resolved_at=row.resolved_at,
    )


def _values(artist_id: int, identity: Identity, at: datetime) -> dict[str, Any]:
    resolved_at = identity.resolved_at or at
    if resolved_at.tzinfo is None:
        raise ValueError(f"resolved_at must be timezone-aware, got {resolved_at!r}")
    return {
        "artist_id": artist_id,
        "namespace": identity.namespace,
        "external_id": identity.external_id,
        "method": identity.method.value,
        "matched_name": identity.matched_name,
        "score": identity.score,
        "disambiguation": identity.disambiguation,
        "evidence": dict(identity.evidence) or None,
        "resolved_at": resolved_at.astimezone(UTC),
    }


class IdentityRepository:
    """``artist_identities`` over one engine; artist ids are database ids (ints)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self, artist_ids: Collection[int]) -> dict[int, list[Identity]]:
        """Every stored identity of the given artists, by namespace order."""
        found: dict[int, list[Identity]] = {}
        ids = sorted(set(artist_ids))
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 1000):
                query = (
                    sa.select(*_COLUMNS)
                    .where(ArtistIdentityRow.artist_id.in_(ids[start : start + 1000]))
                    .order_by(ArtistIdentityRow.artist_id, ArtistIdentityRow.namespace)
                )
                for row in connection.execute(query):
                    found.setdefault(row.artist_id, []).append(_identity(row))
        return found

    def record(
        self,
        artist_id: int,
        identities: Iterable[Identity],
        *,
        at: datetime,
        connection: Connection | None = None,
    ) -> None:
        """Upsert identities; one never replaces a more trusted one on its namespace."""
        rows = [_values(artist_id, identity, at) for identity in identities]
        if not rows:
            return
        if connection is None:
            with self.engine.begin() as own:
                self._upsert(own, rows)
        else:
            self._upsert(connection, rows)

    @staticmethod
    def _upsert(connection: Connection, rows: list[dict[str, Any]]) -> None:
        table = ArtistIdentityRow
        for row in rows:
            statement = dialect_insert(connection, table).values(row)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[table.artist_id, table.namespace],
                    set_={key: statement.excluded[key] for key in row if key != "artist_id"},
                    where=_trust(statement.excluded.method) >= _trust(table.method),
                )
            )

    def unpin(self, artist_id: int, namespace: str) -> bool:
        """Delete the artist's pinned identity on ``namespace``; False when none was pinned."""
        with self.engine.begin() as connection:
            deleted = connection.execute(
                sa.delete(ArtistIdentityRow)
                .where(
                    ArtistIdentityRow.artist_id == artist_id,
                    ArtistIdentityRow.namespace == namespace,
                    ArtistIdentityRow.method == IdentityMethod.PINNED.value,
                )
                .returning(ArtistIdentityRow.id)
            ).all()
        return bool(deleted)
