"""Responsive variants, a square avatar and placeholders for each published image.

- ``artist_image_variants``: one row per encoded variant of an image (``kind`` full,
  avatar or fallback; ``format`` webp, avif or jpeg; its width, height, object, size,
  sha256), grouped by ``variant_set`` (the fingerprint of the policy that rendered it).
  Rows are written in the transaction that makes their image current, after the objects.
- ``artist_images.variant_set``: the complete set the image has (NULL: none yet; the next
  refresh of the artist renders it), with the placeholders and the avatar crop method:
  ``blurhash``, ``thumbhash`` (base64), ``dominant_color`` (``#rrggbb``),
  ``aspect_ratio``, ``avatar_method`` (face, saliency, centre) and ``avatar_preview`` (a
  small JPEG for the Dagster UI).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("artist_images") as batch:
        batch.add_column(sa.Column("variant_set", sa.Text(), nullable=True))
        batch.add_column(sa.Column("blurhash", sa.Text(), nullable=True))
        batch.add_column(sa.Column("thumbhash", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dominant_color", sa.Text(), nullable=True))
        batch.add_column(sa.Column("aspect_ratio", sa.Float(), nullable=True))
        batch.add_column(sa.Column("avatar_method", sa.Text(), nullable=True))
        batch.add_column(sa.Column("avatar_preview", sa.LargeBinary(), nullable=True))
    op.create_table(
        "artist_image_variants",
        sa.Column("id", _BIG_ID, sa.Identity(), nullable=False),
        sa.Column("image_id", _BIG_ID, nullable=False),
        sa.Column("variant_set", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("object_name", sa.Text(), nullable=False),
        sa.Column("public_url", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["artist_images.id"],
            name="fk_artist_image_variants_image_id_artist_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_artist_image_variants"),
        sa.UniqueConstraint(
            "image_id",
            "variant_set",
            "kind",
            "format",
            "width",
            name="uq_artist_image_variants_image_id_variant_set_kind_format_width",
        ),
    )


def downgrade() -> None:
    op.drop_table("artist_image_variants")
    with op.batch_alter_table("artist_images") as batch:
        for column in (
            "avatar_preview",
            "avatar_method",
            "aspect_ratio",
            "dominant_color",
            "thumbhash",
            "blurhash",
            "variant_set",
        ):
            batch.drop_column(column)
