"""Identities on external namespaces, printable provenance, and takedowns.

- ``artist_identities``: one row per artist and namespace (``musicbrainz``,
  ``wikidata``, ``deezer``, ``site:<name>``) with how it was obtained (``pinned``,
  ``catalog``, ``matched``) and the match evidence;
- ``artist_images`` gains the provenance the main API prints as a credit line
  (``license_url``, ``attribution_required``, ``identity_namespace``, ``identity_id``)
  and the takedown record (``taken_down_at``, ``takedown_reason``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artist_identities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            primary_key=True,
        ),
        sa.Column("artist_id", sa.BigInteger(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("matched_name", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("disambiguation", sa.Text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artist_identities"),
        sa.UniqueConstraint(
            "artist_id", "namespace", name="uq_artist_identities_artist_id_namespace"
        ),
        sa.CheckConstraint(
            "method IN ('pinned', 'catalog', 'matched')", name="ck_artist_identities_method"
        ),
    )
    op.create_index(
        "ix_artist_identities_namespace_external_id",
        "artist_identities",
        ["namespace", "external_id"],
    )
    with op.batch_alter_table("artist_images") as batch:
        batch.add_column(sa.Column("license_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attribution_required", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("identity_namespace", sa.Text(), nullable=True))
        batch.add_column(sa.Column("identity_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("taken_down_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("takedown_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artist_images") as batch:
        for column in (
            "takedown_reason",
            "taken_down_at",
            "identity_id",
            "identity_namespace",
            "attribution_required",
            "license_url",
        ):
            batch.drop_column(column)
    op.drop_index("ix_artist_identities_namespace_external_id", table_name="artist_identities")
    op.drop_table("artist_identities")
