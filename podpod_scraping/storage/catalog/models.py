"""SQLAlchemy models of the catalog: the main API's ``artists`` and the tables we own.

Two metadata collections on purpose:

- :class:`Base` holds ``artist_images``, ``artist_scrape_state`` and
  ``artist_identities``: this service owns
  them and creates them with its Alembic migrations.
- :class:`ExternalBase` holds ``artists``: the main API owns it. We only read it, so our
  migrations never create or alter it in production; the demo and tests create it with
  :func:`podpod_scraping.storage.catalog.repository.create_artists_table`.

``artist_images.artist_id`` has no foreign key to ``artists``: we do not own that table,
and a constraint on it would couple the main API's deletes and migrations to ours. An
artist removed from the catalog simply stops being selected (every query joins from
``artists``); its history rows stay for audit.

The same models run on Postgres (production) and SQLite (embedded default), so types
are portable: ``BIGINT`` ids become ``INTEGER`` on SQLite (its only auto-increment
type) and timestamps go through :class:`UTCDateTime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: BIGINT on Postgres; INTEGER on SQLite, where only ``INTEGER PRIMARY KEY`` auto-increments.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A ``timestamptz`` that is always a timezone-aware UTC ``datetime`` in Python.

    Naive datetimes are refused on the way in (they are a bug: whose local time?).
    SQLite has no time zones and stores what it is given as text, so values are
    converted to UTC and stored naive there, and read back as UTC. Postgres returns
    the session's zone; values are normalised to UTC so both backends compare equal.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: catalog timestamps must be aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExternalBase(DeclarativeBase):
    """Tables owned by the main API: never in this service's migrations."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """Tables owned by this service: created and evolved by its Alembic migrations."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ArtistRow(ExternalBase):
    """The main API's artist catalog (read-only for us)."""

    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, server_default=sa.func.current_timestamp()
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, server_default=sa.func.current_timestamp()
    )


class ArtistImageRow(Base):
    """Every image ever published for an artist; ``is_current`` marks the one served.

    ``(artist_id, sha256)`` is unique so a rerun that finds the same image reuses its row,
    and a partial unique index allows at most one current row per artist. Provenance
    (source, page and image URL, the identity it came through, licence and attribution)
    is what the main API prints as the credit line. A taken-down row keeps its history
    (``taken_down_at``, ``takedown_reason``); it is never current again and its image
    URL is never fetched again for that artist.
    """

    __tablename__ = "artist_images"

    id: Mapped[int] = mapped_column(BigId, sa.Identity(), primary_key=True)
    artist_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    object_name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    object_uri: Mapped[str] = mapped_column(sa.Text, nullable=False)
    public_url: Mapped[str] = mapped_column(sa.Text, nullable=False)
    sha256: Mapped[str] = mapped_column(sa.CHAR(64), nullable=False)
    width: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    height: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(sa.Text, nullable=False)
    byte_size: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    source_name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_page_url: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_image_url: Mapped[str] = mapped_column(sa.Text, nullable=False)
    license: Mapped[str | None] = mapped_column(sa.Text)
    attribution: Mapped[str | None] = mapped_column(sa.Text)
    scraped_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    is_current: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    source_sha256: Mapped[str | None] = mapped_column(sa.CHAR(64))
    source_content_type: Mapped[str | None] = mapped_column(sa.Text)
    source_byte_size: Mapped[int | None] = mapped_column(sa.Integer)
    preview: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    object_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    object_missing: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, server_default=sa.false()
    )
    license_url: Mapped[str | None] = mapped_column(sa.Text)
    attribution_required: Mapped[bool | None] = mapped_column(sa.Boolean)
    identity_namespace: Mapped[str | None] = mapped_column(sa.Text)
    identity_id: Mapped[str | None] = mapped_column(sa.Text)
    taken_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    takedown_reason: Mapped[str | None] = mapped_column(sa.Text)
    # The complete variant set (``artist_image_variants.variant_set``) and placeholders.
    variant_set: Mapped[str | None] = mapped_column(sa.Text)
    blurhash: Mapped[str | None] = mapped_column(sa.Text)
    thumbhash: Mapped[str | None] = mapped_column(sa.Text)
    dominant_color: Mapped[str | None] = mapped_column(sa.Text)
    aspect_ratio: Mapped[float | None] = mapped_column(sa.Float)
    avatar_method: Mapped[str | None] = mapped_column(sa.Text)
    avatar_preview: Mapped[bytes | None] = mapped_column(sa.LargeBinary)

    __table_args__ = (
        sa.UniqueConstraint("artist_id", "sha256"),
        sa.Index(
            "uq_artist_images_one_current",
            "artist_id",
            unique=True,
            postgresql_where=sa.text("is_current"),
            sqlite_where=sa.text("is_current"),
        ),
        sa.Index("ix_artist_images_is_current_scraped_at", "is_current", "scraped_at"),
        sa.Index(
            "ix_artist_images_is_current_object_checked_at", "is_current", "object_checked_at"
        ),
    )


class ArtistImageVariantRow(Base):
    """One encoded variant of a published image: what a ``srcset`` entry needs.

    Written in the transaction that records its image (after its object); a set is only
    used once its image's ``variant_set`` names it, so a set is never seen half-written.
    """

    __tablename__ = "artist_image_variants"

    id: Mapped[int] = mapped_column(BigId, sa.Identity(), primary_key=True)
    image_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("artist_images.id", ondelete="CASCADE"), nullable=False
    )
    variant_set: Mapped[str] = mapped_column(sa.Text, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)  # full, avatar, fallback
    format: Mapped[str] = mapped_column(sa.Text, nullable=False)  # webp, avif, jpeg
    width: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    height: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    object_name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    public_url: Mapped[str] = mapped_column(sa.Text, nullable=False)
    content_type: Mapped[str] = mapped_column(sa.Text, nullable=False)
    byte_size: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(sa.CHAR(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("image_id", "variant_set", "kind", "format", "width"),)


class ArtistScrapeStateRow(Base):
    """The last attempt per artist: outcome, failure backoff and the source's validators."""

    __tablename__ = "artist_scrape_state"

    artist_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_outcome: Mapped[str] = mapped_column(sa.Text, nullable=False)
    last_reason: Mapped[str | None] = mapped_column(sa.Text)
    consecutive_failures: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, server_default=sa.text("0")
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_image_url: Mapped[str | None] = mapped_column(sa.Text)
    source_etag: Mapped[str | None] = mapped_column(sa.Text)
    source_last_modified: Mapped[str | None] = mapped_column(sa.Text)
    last_batch_id: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_artist_scrape_state_next_attempt_at", "next_attempt_at"),)


class ArtistIdentityRow(Base):
    """Each artist's id on an external namespace, how it was obtained, and the evidence.

    One row per ``(artist_id, namespace)``: ``method`` is ``pinned`` (a person; always
    wins), ``catalog`` (a configured column of ``artists``) or ``matched`` (a strict name
    match, re-verified after ``identity.reverify_after_days``).
    """

    __tablename__ = "artist_identities"

    id: Mapped[int] = mapped_column(BigId, sa.Identity(), primary_key=True)
    artist_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    namespace: Mapped[str] = mapped_column(sa.Text, nullable=False)
    external_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    method: Mapped[str] = mapped_column(sa.Text, nullable=False)
    matched_name: Mapped[str | None] = mapped_column(sa.Text)
    score: Mapped[float | None] = mapped_column(sa.Float)
    disambiguation: Mapped[str | None] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint("artist_id", "namespace"),
        sa.CheckConstraint("method IN ('pinned', 'catalog', 'matched')", name="method"),
        sa.Index("ix_artist_identities_namespace_external_id", "namespace", "external_id"),
    )
