"""Record each published image's original and preview; remember which batch attempted.

- ``artist_images.source_sha256`` / ``source_content_type`` / ``source_byte_size``: the
  original the published image was normalized from (queryable provenance; the original
  itself is ``sources/<artist>/<source_sha256>.<ext>`` in the object store).
- ``artist_images.preview``: a small JPEG (a few KB) for previews in the Dagster UI,
  so every partition event can show the current image without downloading it.
- ``artist_scrape_state.last_batch_id``: the batch (Dagster run) that recorded the last
  attempt, so a retried step never records the same artist twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artist_images") as batch:
        batch.add_column(sa.Column("source_sha256", sa.CHAR(64), nullable=True))
        batch.add_column(sa.Column("source_content_type", sa.Text(), nullable=True))
        batch.add_column(sa.Column("source_byte_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("preview", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("artist_scrape_state") as batch:
        batch.add_column(sa.Column("last_batch_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artist_scrape_state") as batch:
        batch.drop_column("last_batch_id")
    with op.batch_alter_table("artist_images") as batch:
        batch.drop_column("preview")
        batch.drop_column("source_byte_size")
        batch.drop_column("source_content_type")
        batch.drop_column("source_sha256")
