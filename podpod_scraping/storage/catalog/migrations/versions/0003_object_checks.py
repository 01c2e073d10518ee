"""Remember when each published image's object was last seen in the store, and if missing.

- ``artist_images.object_checked_at``: when the object was last verified (written by a
  publication, or checked by the ``current_images_have_objects`` check, which walks
  every current image over time, oldest check first);
- ``artist_images.object_missing``: the last check found no object (or other bytes).
  The coverage report counts such artists apart, and the next refresh republishes them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artist_images") as batch:
        batch.add_column(sa.Column("object_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("object_missing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_artist_images_is_current_object_checked_at",
        "artist_images",
        ["is_current", "object_checked_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_artist_images_is_current_object_checked_at", table_name="artist_images")
    with op.batch_alter_table("artist_images") as batch:
        batch.drop_column("object_missing")
        batch.drop_column("object_checked_at")
