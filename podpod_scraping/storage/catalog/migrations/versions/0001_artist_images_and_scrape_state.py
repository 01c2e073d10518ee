"""Create artist_images and artist_scrape_state.

The main API's ``artists`` table is deliberately absent: we only read it.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types at this revision (models may evolve; migrations must not).
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "artist_images",
        sa.Column("id", BIG_ID, sa.Identity(), nullable=False),
        sa.Column("artist_id", sa.BigInteger(), nullable=False),
        sa.Column("object_name", sa.Text(), nullable=False),
        sa.Column("object_uri", sa.Text(), nullable=False),
        sa.Column("public_url", sa.Text(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("source_page_url", sa.Text(), nullable=False),
        sa.Column("source_image_url", sa.Text(), nullable=False),
        sa.Column("license", sa.Text(), nullable=True),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("scraped_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("is_current", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artist_images"),
        sa.UniqueConstraint("artist_id", "sha256", name="uq_artist_images_artist_id_sha256"),
    )
    op.create_index(
        "uq_artist_images_one_current",
        "artist_images",
        ["artist_id"],
        unique=True,
        postgresql_where=sa.text("is_current"),
        sqlite_where=sa.text("is_current"),
    )
    op.create_index(
        "ix_artist_images_is_current_scraped_at",
        "artist_images",
        ["is_current", "scraped_at"],
    )
    op.create_table(
        "artist_scrape_state",
        sa.Column("artist_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_outcome", sa.Text(), nullable=False),
        sa.Column("last_reason", sa.Text(), nullable=True),
        sa.Column(
            "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("last_success_at", TIMESTAMP, nullable=True),
        sa.Column("source_image_url", sa.Text(), nullable=True),
        sa.Column("source_etag", sa.Text(), nullable=True),
        sa.Column("source_last_modified", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("artist_id", name="pk_artist_scrape_state"),
    )
    op.create_index(
        "ix_artist_scrape_state_next_attempt_at", "artist_scrape_state", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_artist_scrape_state_next_attempt_at", table_name="artist_scrape_state")
    op.drop_table("artist_scrape_state")
    op.drop_index("ix_artist_images_is_current_scraped_at", table_name="artist_images")
    op.drop_index("uq_artist_images_one_current", table_name="artist_images")
    op.drop_table("artist_images")
