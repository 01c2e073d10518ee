"""Reads and writes of the catalog: artists (read-only), published images, scrape state.

One code path for Postgres (production) and SQLite (embedded default): portable Core
statements, with the dialect's own ``INSERT .. ON CONFLICT`` where an upsert is needed.
Artist ids are ``BIGINT`` in the database and ``str`` everywhere else (they are Dagster
partition keys); a key that is not the canonical decimal form of an id is never found.

Per-artist writes first upsert the artist's ``artist_scrape_state`` row. On Postgres that
row lock serialises concurrent writers of the same artist (two runs, a retry), so the
"unset the old current image, then set the new one" switch can never trip the partial
unique index or leave two current images; SQLite serialises all writers anyway.

Writes are ordered by attempt: the upsert only applies when the attempt is not older
than the one already recorded (``last_attempt_at``), so a slow run that finishes after a
newer one is *superseded*: its image is kept in history, never made current, and the
scrape state never goes back in time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from podpod_scraping.core.backoff import BackoffPolicy
from podpod_scraping.core.config import CatalogColumns
from podpod_scraping.core.identity import Identity, IdentityMethod
from podpod_scraping.core.outcomes import Artist, Outcome
from podpod_scraping.storage.catalog.dialect import dialect_insert
from podpod_scraping.storage.catalog.identities import IdentityRepository
from podpod_scraping.storage.catalog.models import (
    ArtistImageRow,
    ArtistImageVariantRow,
    ArtistRow,
    ArtistScrapeStateRow,
    ExternalBase,
)

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")
#: Rows and selects of any shape (SQLAlchemy 2.1 types them by their column tuple).
AnyRow = sa.Row[*tuple[Any, ...]]
AnySelect = sa.Select[*tuple[Any, ...]]

#: Ids per ``IN (...)`` list: well under SQLite's bound-parameter limit.
_CHUNK = 1000
_BIGINT_MAX = 2**63 - 1
_SUCCESS_OUTCOMES = (Outcome.FOUND.value, Outcome.UNCHANGED.value)

CATEGORY_CURRENT = "current image"
CATEGORY_OBJECT_MISSING = "object missing"
CATEGORY_VARIANTS_MISSING = "variants missing"
CATEGORY_STALE = "stale"
CATEGORY_NEVER_FOUND = "never found"
CATEGORY_NEVER_ATTEMPTED = "never attempted"
FAILED_PREFIX = "failed: "
FIXED_CATEGORIES = (
    CATEGORY_CURRENT,
    CATEGORY_OBJECT_MISSING,
    CATEGORY_VARIANTS_MISSING,
    CATEGORY_STALE,
    CATEGORY_NEVER_ATTEMPTED,
    CATEGORY_NEVER_FOUND,
)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for a catalog URL; the one place where URLs are normalised.

    ``postgresql://`` and ``postgres://`` mean psycopg2 here: SQLAlchemy 2.1 maps the bare
    scheme to psycopg 3, which is not installed (dagster-postgres needs psycopg2).
    Postgres connections are pre-pinged (a failover must not fail a run); SQLite waits up
    to 30 s for a writer in another process instead of failing with "database is locked".
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    options: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # Pre-pinged (a failover must not fail a run). Sized for a run's artists in flight
        # (refresh.concurrency, 32 by default), with the same peak of 40 as a pool of 8
        # plus 32 overflow: an overflow connection is closed when it is returned, so the
        # smaller pool reconnected over and over in a busy run. It grows on demand: a
        # sensor still opens one or two. (No throughput change beyond the benchmark's
        # noise: 16-20 artists/s either way.)
        options |= {"pool_pre_ping": True, "pool_size": 32, "max_overflow": 8}
    elif backend == "sqlite":
        options["connect_args"] = {"timeout": 30}
    options.update(kwargs)
    return sa.create_engine(parsed, **options)


def create_artists_table(engine: Engine) -> None:
    """Create the main API's ``artists`` table if missing: demo and tests only.

    Production never calls this: the main API owns the table and its migrations.
    """
    ExternalBase.metadata.create_all(engine, checkfirst=True)


def insert_artists(engine: Engine, artists: Iterable[tuple[int | str, str]]) -> None:
    """Upsert ``(id, name)`` rows into ``artists``: demo and tests only."""
    now = datetime.now(UTC)
    rows = [
        {"id": int(artist_id), "name": name, "created_at": now, "updated_at": now}
        for artist_id, name in artists
    ]
    if not rows:
        return
    with engine.begin() as connection:
        statement = dialect_insert(connection, ArtistRow)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[ArtistRow.id],
                set_={"name": statement.excluded.name, "updated_at": statement.excluded.updated_at},
            ),
            rows,
        )


@dataclass(frozen=True)
class VariantRecord:
    """One variant whose object is already written."""

    kind: str
    format: str
    width: int
    height: int
    object_name: str
    public_url: str
    content_type: str
    byte_size: int
    sha256: str


@dataclass(frozen=True)
class VariantSetRecord:
    """A complete variant set and the placeholders, recorded with their image."""

    variant_set: str
    variants: tuple[VariantRecord, ...]
    blurhash: str
    thumbhash: str
    dominant_color: str
    aspect_ratio: float
    avatar_method: str | None
    avatar_preview: bytes | None


@dataclass(frozen=True)
class ImageRecord:
    """A published image (object already written) to record as the artist's current one."""

    artist_id: str
    object_name: str
    object_uri: str
    public_url: str
    sha256: str
    width: int
    height: int
    content_type: str
    byte_size: int
    source_name: str
    source_page_url: str
    source_image_url: str
    license: str | None
    attribution: str | None
    scraped_at: datetime
    source_etag: str | None = None
    source_last_modified: str | None = None
    source_sha256: str | None = None
    source_content_type: str | None = None
    source_byte_size: int | None = None
    preview: bytes | None = None
    license_url: str | None = None
    attribution_required: bool | None = None
    identity_namespace: str | None = None
    identity_id: str | None = None
    variants: VariantSetRecord | None = None  # None: keep the set the row has


@dataclass(frozen=True)
class CurrentImage:
    """The image the main API serves for an artist (its ``is_current`` row)."""

    id: int
    artist_id: str
    object_name: str
    object_uri: str
    public_url: str
    sha256: str
    width: int
    height: int
    content_type: str
    byte_size: int
    source_name: str
    source_page_url: str
    source_image_url: str
    license: str | None
    attribution: str | None
    scraped_at: datetime
    source_sha256: str | None = None
    source_content_type: str | None = None
    source_byte_size: int | None = None
    preview: bytes | None = None
    license_url: str | None = None
    attribution_required: bool | None = None
    identity_namespace: str | None = None
    identity_id: str | None = None
    variant_set: str | None = None
    variant_count: int = 0  # variants recorded in ``variant_set``
    blurhash: str | None = None
    thumbhash: str | None = None
    dominant_color: str | None = None
    aspect_ratio: float | None = None
    avatar_method: str | None = None
    avatar_preview: bytes | None = None


@dataclass(frozen=True)
class CatalogArtist:
    """An artist with what the catalog's configured columns say: aliases and ids."""

    artist: Artist
    identities: dict[str, str]  # namespace -> external id, from identity columns


def _names(value: Any) -> list[str]:
    """An alias column's value as names: a text, or a list (Postgres array, JSON)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item is not None]
    return [str(value)]


@dataclass(frozen=True)
class Takedowns:
    """What was taken down for one artist: never fetched (URLs) or shown (hashes) again."""

    image_urls: frozenset[str]
    sha256s: frozenset[str]  # published and original hashes


@dataclass(frozen=True)
class TakenDownImage:
    image: CurrentImage  # the row (no longer current)
    newly: bool  # False when an earlier takedown already covered it
    variant_objects: tuple[str, ...] = ()  # every variant object of the image, any set


@dataclass(frozen=True)
class TakedownRecord:
    """What :meth:`CatalogRepository.take_down` changed."""

    artist_id: str
    images: tuple[TakenDownImage, ...]
    current: CurrentImage | None  # the artist's current image afterwards
    switched: bool  # the current image was taken down (replaced by ``current``, or none)


@dataclass(frozen=True)
class ScrapeState:
    """The last attempt for an artist, its failure backoff and the source's validators."""

    artist_id: str
    last_attempt_at: datetime
    last_outcome: Outcome
    last_reason: str | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    source_image_url: str | None
    source_etag: str | None
    source_last_modified: str | None
    last_batch_id: str | None = None

    def in_backoff(self, now: datetime) -> bool:
        """True while a failed artist must not be tried again."""
        return self.next_attempt_at is not None and self.next_attempt_at > now


@dataclass(frozen=True)
class RecordOutcome:
    """What :meth:`CatalogRepository.record_image` changed."""

    image_id: int
    created: bool  # a new history row was inserted
    switched: bool  # the artist's current image changed
    superseded: bool = False  # a newer attempt was already recorded: kept in history only


def _db_id(key: str) -> int | None:
    """The database id of a partition key, or None when no artist can have it."""
    if not key.isascii() or not key.isdigit():
        return None
    value = int(key)
    if str(value) != key or value > _BIGINT_MAX:
        return None
    return value


def _require_db_id(key: str) -> int:
    value = _db_id(key)
    if value is None:
        raise ValueError(f"artist id {key!r} is not a catalog id (a canonical positive integer)")
    return value


def _db_ids(keys: Collection[str]) -> list[int]:
    return sorted({value for key in keys if (value := _db_id(str(key))) is not None})


def _chunks(values: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _later(column: Any, value: datetime) -> Any:
    """``column`` moved forward to ``value``, never backwards (portable GREATEST)."""
    bound = sa.literal(value, type_=column.type)
    return sa.case((column < bound, bound), else_=column)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


_IMAGE_COLUMNS = (
    ArtistImageRow.id,
    ArtistImageRow.artist_id,
    ArtistImageRow.object_name,
    ArtistImageRow.object_uri,
    ArtistImageRow.public_url,
    ArtistImageRow.sha256,
    ArtistImageRow.width,
    ArtistImageRow.height,
    ArtistImageRow.content_type,
    ArtistImageRow.byte_size,
    ArtistImageRow.source_name,
    ArtistImageRow.source_page_url,
    ArtistImageRow.source_image_url,
    ArtistImageRow.license,
    ArtistImageRow.attribution,
    ArtistImageRow.scraped_at,
    ArtistImageRow.source_sha256,
    ArtistImageRow.source_content_type,
    ArtistImageRow.source_byte_size,
    ArtistImageRow.preview,
    ArtistImageRow.license_url,
    ArtistImageRow.attribution_required,
    ArtistImageRow.identity_namespace,
    ArtistImageRow.identity_id,
    ArtistImageRow.variant_set,
    sa.select(sa.func.count())
    .where(
        ArtistImageVariantRow.image_id == ArtistImageRow.id,
        ArtistImageVariantRow.variant_set == ArtistImageRow.variant_set,
    )
    .correlate(ArtistImageRow)
    .scalar_subquery()
    .label("variant_count"),
    ArtistImageRow.blurhash,
    ArtistImageRow.thumbhash,
    ArtistImageRow.dominant_color,
    ArtistImageRow.aspect_ratio,
    ArtistImageRow.avatar_method,
    ArtistImageRow.avatar_preview,
)

_STATE_COLUMNS = (
    ArtistScrapeStateRow.artist_id,
    ArtistScrapeStateRow.last_attempt_at,
    ArtistScrapeStateRow.last_outcome,
    ArtistScrapeStateRow.last_reason,
    ArtistScrapeStateRow.consecutive_failures,
    ArtistScrapeStateRow.next_attempt_at,
    ArtistScrapeStateRow.last_success_at,
    ArtistScrapeStateRow.source_image_url,
    ArtistScrapeStateRow.source_etag,
    ArtistScrapeStateRow.source_last_modified,
    ArtistScrapeStateRow.last_batch_id,
)


def _newer_provenance(record: ImageRecord) -> dict[str, Any]:
    """Provenance columns set to the record's values where it has them."""
    columns = {
        "license": record.license,
        "attribution": record.attribution,
        "license_url": record.license_url,
        "attribution_required": record.attribution_required,
        "identity_namespace": record.identity_namespace,
        "identity_id": record.identity_id,
    }
    return {
        name: sa.func.coalesce(
            sa.literal(value, type_=getattr(ArtistImageRow, name).type),
            getattr(ArtistImageRow, name),
        )
        for name, value in columns.items()
    }


_IMAGE_FIELDS = tuple(column.key for column in _IMAGE_COLUMNS)


def _lacks_variants(variant_set: str | None) -> Any:
    """The current image has no complete set named ``variant_set`` (false when None)."""
    if variant_set is None:
        return sa.false()
    return ArtistImageRow.variant_set.is_distinct_from(variant_set)


def _current_image(row: AnyRow) -> CurrentImage:
    """An image row (its image columns; a wider select's other columns are ignored)."""
    values = {name: row._mapping[name] for name in _IMAGE_FIELDS}
    values["artist_id"] = str(values["artist_id"])
    return CurrentImage(**values)


def _scrape_state(row: AnyRow) -> ScrapeState:
    values = dict(row._mapping)
    values["artist_id"] = str(values["artist_id"])
    values["last_outcome"] = Outcome(values["last_outcome"])
    return ScrapeState(**values)


class CatalogRepository:
    """The catalog as the scraping service sees it. Thread-safe (one engine, short transactions)."""

    def __init__(self, engine: Engine, *, backoff: BackoffPolicy = BackoffPolicy()) -> None:  # noqa: B008 — frozen, immutable default
        self.engine = engine
        self.backoff = backoff
        self.identity_rows = IdentityRepository(engine)
        self._artist_columns: frozenset[str] | None = None

    # -- reads ---------------------------------------------------------------------------

    def _read_by_ids(
        self,
        ids: Collection[str],
        query: Callable[[Sequence[int]], AnySelect],
    ) -> list[AnyRow]:
        rows: list[AnyRow] = []
        with self.engine.connect() as connection:
            for chunk in _chunks(_db_ids(ids)):
                rows.extend(connection.execute(query(chunk)).all())
        return rows

    def artists(self, ids: Collection[str]) -> dict[str, Artist]:
        """The catalog artists among ``ids``; unknown or malformed ids are absent."""
        rows = self._read_by_ids(
            ids,
            lambda chunk: sa.select(ArtistRow.id, ArtistRow.name).where(ArtistRow.id.in_(chunk)),
        )
        return {str(row.id): Artist(id=str(row.id), name=row.name) for row in rows}

    def artist_column_names(self) -> frozenset[str]:
        """The columns the main API's ``artists`` table has (read once per repository)."""
        if self._artist_columns is None:
            columns = sa.inspect(self.engine).get_columns(ArtistRow.__tablename__)
            self._artist_columns = frozenset(str(column["name"]) for column in columns)
        return self._artist_columns

    def catalog_artists(
        self, ids: Collection[str], columns: CatalogColumns
    ) -> dict[str, CatalogArtist]:
        """The catalog artists among ``ids`` with their aliases and catalog identities.

        Configured columns the table lacks are skipped (the main API may add them later;
        ``config check`` names them). An alias column may hold one name or a list.
        """
        present = self.artist_column_names()
        alias_columns = [name for name in columns.alias_columns if name in present]
        id_columns = {ns: name for ns, name in columns.identity_columns.items() if name in present}
        artists = sa.table(
            ArtistRow.__tablename__,
            *(sa.column(name) for name in {"id", "name", *alias_columns, *id_columns.values()}),
        )
        wanted = [artists.c[name] for name in dict.fromkeys(["id", "name", *alias_columns])]
        wanted += [artists.c[name].label(f"identity:{ns}") for ns, name in id_columns.items()]
        rows = self._read_by_ids(
            ids, lambda chunk: sa.select(*wanted).where(artists.c.id.in_(chunk))
        )
        found: dict[str, CatalogArtist] = {}
        for row in rows:
            values = row._mapping
            aliases = [alias for name in alias_columns for alias in _names(values[name])]
            identities = {
                ns: str(values[f"identity:{ns}"]).strip()
                for ns in id_columns
                if values[f"identity:{ns}"] is not None and str(values[f"identity:{ns}"]).strip()
            }
            key = str(values["id"])
            found[key] = CatalogArtist(
                Artist(id=key, name=values["name"], aliases=tuple(aliases)), identities
            )
        return found

    def identities(self, ids: Collection[str]) -> dict[str, list[Identity]]:
        """Every stored identity of the given artists (pinned, catalog and matched)."""
        stored = self.identity_rows.read(_db_ids(ids))
        return {str(key): value for key, value in stored.items()}

    def record_identities(
        self, artist_id: str, identities: Iterable[Identity], *, at: datetime
    ) -> None:
        """Store identities an attempt resolved; never over a more trusted one."""
        self.identity_rows.record(_require_db_id(artist_id), identities, at=_aware(at, "at"))

    def pin_identity(
        self, artist_id: str, namespace: str, external_id: str, *, at: datetime, by: str | None
    ) -> Identity:
        """A person says who the artist is on ``namespace``: wins over any match."""
        identity = Identity(
            namespace=namespace,
            external_id=external_id,
            method=IdentityMethod.PINNED,
            evidence={"pinned_by": by} if by else {},
            resolved_at=_aware(at, "at"),
        )
        self.identity_rows.record(_require_db_id(artist_id), [identity], at=at)
        return identity

    def unpin_identity(self, artist_id: str, namespace: str) -> bool:
        return self.identity_rows.unpin(_require_db_id(artist_id), namespace)

    def all_artist_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            ids = connection.execute(sa.select(ArtistRow.id).order_by(ArtistRow.id)).scalars()
            return [str(value) for value in ids]

    def current_images(self, ids: Collection[str]) -> dict[str, CurrentImage]:
        rows = self._read_by_ids(
            ids,
            lambda chunk: sa.select(*_IMAGE_COLUMNS).where(
                ArtistImageRow.artist_id.in_(chunk), ArtistImageRow.is_current
            ),
        )
        return {str(row.artist_id): _current_image(row) for row in rows}

    def current_images_to_check(self, limit: int) -> list[CurrentImage]:
        """Up to ``limit`` current images, least recently verified first (never first).

        Repeated calls with :meth:`record_object_checks` walk every current image over
        time, so a lost object is found whatever its age.
        """
        checked = ArtistImageRow.object_checked_at
        query = (
            sa.select(*_IMAGE_COLUMNS)
            .where(ArtistImageRow.is_current)
            .order_by(sa.case((checked.is_(None), 0), else_=1), checked, ArtistImageRow.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_current_image(row) for row in connection.execute(query).all()]

    def record_object_checks(self, missing_by_image_id: dict[int, bool], *, at: datetime) -> None:
        """Record what a check of the store found for each image row (missing or there)."""
        at = _aware(at, "at")
        with self.engine.begin() as connection:
            for missing in (True, False):
                ids = [key for key, value in missing_by_image_id.items() if value is missing]
                for chunk in _chunks(ids):
                    connection.execute(
                        sa.update(ArtistImageRow)
                        .where(ArtistImageRow.id.in_(chunk))
                        .values(object_checked_at=at, object_missing=missing)
                    )

    def missing_object_count(self) -> int:
        """Current images whose object the last check did not find."""
        query = sa.select(sa.func.count()).where(
            ArtistImageRow.is_current, ArtistImageRow.object_missing
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def scrape_states(self, ids: Collection[str]) -> dict[str, ScrapeState]:
        rows = self._read_by_ids(
            ids,
            lambda chunk: sa.select(*_STATE_COLUMNS).where(
                ArtistScrapeStateRow.artist_id.in_(chunk)
            ),
        )
        return {str(row.artist_id): _scrape_state(row) for row in rows}

    # -- writes --------------------------------------------------------------------------

    def _upsert_state(self, connection: Connection, values: dict[str, Any]) -> bool:
        """Insert or overwrite the given state columns unless a newer attempt is recorded.

        Takes the artist's row lock either way (Postgres locks a conflicting row even when
        the ``WHERE`` refuses the update). Returns False when the attempt is superseded.
        """
        state = ArtistScrapeStateRow
        statement = dialect_insert(connection, state).values(values)
        applied = connection.execute(
            statement.on_conflict_do_update(
                index_elements=[state.artist_id],
                set_={key: statement.excluded[key] for key in values if key != "artist_id"},
                where=state.last_attempt_at <= statement.excluded.last_attempt_at,
            ).returning(state.artist_id)
        ).scalar_one_or_none()
        return applied is not None

    def record_image(
        self,
        record: ImageRecord,
        *,
        attempted_at: datetime,
        reason: str | None = None,
        batch_id: str | None = None,
        identities: Sequence[Identity] = (),
    ) -> RecordOutcome:
        """Record a published image as the artist's only current one, in one transaction.

        The same image (same sha256) found again reuses its history row and refreshes
        ``scraped_at`` (never backwards): a rerun never duplicates and never switches.
        An attempt older than the recorded one only adds its history row (``superseded``).
        """
        artist_id = _require_db_id(record.artist_id)
        attempted_at = _aware(attempted_at, "attempted_at")
        with self.engine.begin() as connection:
            self.identity_rows.record(artist_id, identities, at=attempted_at, connection=connection)
            newest = self._upsert_state(
                connection,
                {
                    "artist_id": artist_id,
                    "last_attempt_at": attempted_at,
                    "last_outcome": Outcome.FOUND.value,
                    "last_reason": reason
                    or f"image {record.sha256[:12]} from {record.source_name}",
                    "consecutive_failures": 0,
                    "next_attempt_at": None,
                    "last_success_at": attempted_at,
                    "source_image_url": record.source_image_url,
                    "source_etag": record.source_etag,
                    "source_last_modified": record.source_last_modified,
                    "last_batch_id": batch_id,
                },
            )
            inserted = connection.execute(
                dialect_insert(connection, ArtistImageRow)
                .values(
                    artist_id=artist_id,
                    object_name=record.object_name,
                    object_uri=record.object_uri,
                    public_url=record.public_url,
                    sha256=record.sha256,
                    width=record.width,
                    height=record.height,
                    content_type=record.content_type,
                    byte_size=record.byte_size,
                    source_name=record.source_name,
                    source_page_url=record.source_page_url,
                    source_image_url=record.source_image_url,
                    license=record.license,
                    attribution=record.attribution,
                    scraped_at=record.scraped_at,
                    created_at=datetime.now(UTC),
                    is_current=False,
                    source_sha256=record.source_sha256,
                    source_content_type=record.source_content_type,
                    source_byte_size=record.source_byte_size,
                    preview=record.preview,
                    object_checked_at=datetime.now(UTC),  # it was just written (or found)
                    object_missing=False,
                    license_url=record.license_url,
                    attribution_required=record.attribution_required,
                    identity_namespace=record.identity_namespace,
                    identity_id=record.identity_id,
                )
                .on_conflict_do_nothing(
                    index_elements=[ArtistImageRow.artist_id, ArtistImageRow.sha256]
                )
                .returning(ArtistImageRow.id)
            ).scalar_one_or_none()
            created = inserted is not None
            if inserted is None:
                existing = connection.execute(
                    sa.update(ArtistImageRow)
                    .where(
                        ArtistImageRow.artist_id == artist_id,
                        ArtistImageRow.sha256 == record.sha256,
                    )
                    .values(
                        scraped_at=_later(ArtistImageRow.scraped_at, record.scraped_at),
                        source_sha256=sa.func.coalesce(
                            ArtistImageRow.source_sha256, record.source_sha256
                        ),
                        source_content_type=sa.func.coalesce(
                            ArtistImageRow.source_content_type, record.source_content_type
                        ),
                        source_byte_size=sa.func.coalesce(
                            ArtistImageRow.source_byte_size, record.source_byte_size
                        ),
                        preview=sa.func.coalesce(ArtistImageRow.preview, record.preview),
                        object_checked_at=datetime.now(UTC),  # republished: it is there now
                        object_missing=False,
                        # The newest knowledge of the same bytes' provenance wins.
                        **_newer_provenance(record),
                    )
                    .returning(ArtistImageRow.id, ArtistImageRow.taken_down_at)
                ).one()
                image_id, taken_down_at = existing
                if taken_down_at is not None:
                    # A taken-down image is never current again, whoever finds it.
                    return RecordOutcome(image_id=image_id, created=False, switched=False)
            else:
                image_id = inserted
            if record.variants is not None and record.variants.variants:
                self._record_variants(connection, image_id, record.variants)
            if not newest:
                return RecordOutcome(
                    image_id=image_id, created=created, switched=False, superseded=True
                )
            current_id = connection.execute(
                sa.select(ArtistImageRow.id).where(
                    ArtistImageRow.artist_id == artist_id, ArtistImageRow.is_current
                )
            ).scalar_one_or_none()
            switched = current_id != image_id
            if switched:
                # Unset first: the partial unique index is checked row by row.
                connection.execute(
                    sa.update(ArtistImageRow)
                    .where(ArtistImageRow.artist_id == artist_id, ArtistImageRow.is_current)
                    .values(is_current=False)
                )
                connection.execute(
                    sa.update(ArtistImageRow)
                    .where(ArtistImageRow.id == image_id)
                    .values(is_current=True)
                )
        return RecordOutcome(image_id=image_id, created=created, switched=switched)

    @staticmethod
    def _record_variants(connection: Connection, image_id: int, found: VariantSetRecord) -> None:
        """The set's rows (a rerun adds none), then the image names it as complete."""
        now = datetime.now(UTC)
        # One statement with a list of parameter sets (executemany): compiled once and
        # cached, where a multi-row VALUES clause is compiled anew for every image.
        connection.execute(
            dialect_insert(connection, ArtistImageVariantRow).on_conflict_do_nothing(
                index_elements=[
                    ArtistImageVariantRow.image_id,
                    ArtistImageVariantRow.variant_set,
                    ArtistImageVariantRow.kind,
                    ArtistImageVariantRow.format,
                    ArtistImageVariantRow.width,
                ]
            ),
            [
                {"image_id": image_id, "variant_set": found.variant_set, "created_at": now}
                | dataclasses.asdict(variant)
                for variant in found.variants
            ],
        )
        connection.execute(
            sa.update(ArtistImageRow)
            .where(ArtistImageRow.id == image_id)
            .values(
                variant_set=found.variant_set,
                blurhash=found.blurhash,
                thumbhash=found.thumbhash,
                dominant_color=found.dominant_color,
                aspect_ratio=found.aspect_ratio,
                avatar_method=found.avatar_method,
                avatar_preview=found.avatar_preview,
            )
        )

    def variants(self, image_id: int) -> list[VariantRecord]:
        """The variants of an image's recorded set, as the main API reads them."""
        variant = ArtistImageVariantRow
        query = (
            sa.select(
                variant.kind,
                variant.format,
                variant.width,
                variant.height,
                variant.object_name,
                variant.public_url,
                variant.content_type,
                variant.byte_size,
                variant.sha256,
            )
            .join(ArtistImageRow, ArtistImageRow.id == variant.image_id)
            .where(variant.image_id == image_id, variant.variant_set == ArtistImageRow.variant_set)
            .order_by(variant.kind, variant.format, variant.width)
        )
        with self.engine.connect() as connection:
            return [VariantRecord(**dict(row._mapping)) for row in connection.execute(query)]

    def record_unchanged(
        self,
        artist_id: str,
        *,
        attempted_at: datetime,
        reason: str,
        batch_id: str | None = None,
        identities: Sequence[Identity] = (),
    ) -> bool:
        """A successful check that found nothing new (e.g. HTTP 304): the image is current.

        Resets the failure count and refreshes the current image's ``scraped_at`` (it was
        just verified) so the artist stops being stale. Validators are kept. Returns False
        (and changes nothing) when a newer attempt is already recorded.
        """
        db_id = _require_db_id(artist_id)
        attempted_at = _aware(attempted_at, "attempted_at")
        with self.engine.begin() as connection:
            self.identity_rows.record(db_id, identities, at=attempted_at, connection=connection)
            newest = self._upsert_state(
                connection,
                {
                    "artist_id": db_id,
                    "last_attempt_at": attempted_at,
                    "last_outcome": Outcome.UNCHANGED.value,
                    "last_reason": reason,
                    "consecutive_failures": 0,
                    "next_attempt_at": None,
                    "last_success_at": attempted_at,
                    "last_batch_id": batch_id,
                },
            )
            if not newest:
                return False
            connection.execute(
                sa.update(ArtistImageRow)
                .where(ArtistImageRow.artist_id == db_id, ArtistImageRow.is_current)
                .values(scraped_at=_later(ArtistImageRow.scraped_at, attempted_at))
            )
        return True

    def record_failure(
        self,
        artist_id: str,
        outcome: Outcome,
        reason: str,
        *,
        attempted_at: datetime,
        batch_id: str | None = None,
        identities: Sequence[Identity] = (),
    ) -> ScrapeState | None:
        """Record a failed attempt and schedule the next one; images are never touched.

        Returns the new state, or None (nothing changed) when a newer attempt is recorded.
        """
        if outcome.is_success:
            raise ValueError(f"{outcome.value!r} is a success, not a failure")
        db_id = _require_db_id(artist_id)
        attempted_at = _aware(attempted_at, "attempted_at")
        state = ArtistScrapeStateRow
        with self.engine.begin() as connection:
            self.identity_rows.record(db_id, identities, at=attempted_at, connection=connection)
            statement = dialect_insert(connection, state).values(
                artist_id=db_id,
                last_attempt_at=attempted_at,
                last_outcome=outcome.value,
                last_reason=reason,
                consecutive_failures=1,
                last_batch_id=batch_id,
            )
            failures = connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[state.artist_id],
                    set_={
                        "last_attempt_at": statement.excluded.last_attempt_at,
                        "last_outcome": statement.excluded.last_outcome,
                        "last_reason": statement.excluded.last_reason,
                        "consecutive_failures": state.consecutive_failures + 1,
                        "last_batch_id": statement.excluded.last_batch_id,
                    },
                    where=state.last_attempt_at <= statement.excluded.last_attempt_at,
                ).returning(state.consecutive_failures)
            ).scalar_one_or_none()
            if failures is None:
                return None
            row = connection.execute(
                sa.update(state)
                .where(state.artist_id == db_id)
                .values(next_attempt_at=attempted_at + self.backoff.delay(failures))
                .returning(*_STATE_COLUMNS)
            ).one()
        return _scrape_state(row)

    # -- takedowns -----------------------------------------------------------------------

    def takedowns(self, ids: Collection[str]) -> dict[str, Takedowns]:
        """Per artist, the image URLs and hashes taken down: never fetched or shown again."""
        rows = self._read_by_ids(
            ids,
            lambda chunk: sa.select(
                ArtistImageRow.artist_id,
                ArtistImageRow.source_image_url,
                ArtistImageRow.sha256,
                ArtistImageRow.source_sha256,
            ).where(ArtistImageRow.artist_id.in_(chunk), ArtistImageRow.taken_down_at.is_not(None)),
        )
        urls: dict[str, set[str]] = {}
        hashes: dict[str, set[str]] = {}
        for row in rows:
            key = str(row.artist_id)
            urls.setdefault(key, set()).add(row.source_image_url)
            hashes.setdefault(key, set()).update(h for h in (row.sha256, row.source_sha256) if h)
        return {key: Takedowns(frozenset(urls[key]), frozenset(hashes[key])) for key in urls}

    def take_down(
        self,
        artist_id: str,
        *,
        reason: str,
        at: datetime,
        sha256: str | None = None,
        every: bool = False,
    ) -> TakedownRecord:
        """Mark images taken down (never deleted rows) and switch the current image.

        Which: the image ``sha256`` (published or original hash), every image of the
        artist (``every``), or else the current one (or, when there is none, the images
        already taken down: a repeated takedown); with each, every other row made
        from the same original. If the current image is among them, the newest other
        image that is not taken down (and not found missing) becomes current, or none.
        Idempotent: rows already taken down keep their first reason and time.
        Raises LookupError when no image matches.
        """
        db_id = _require_db_id(artist_id)
        at = _aware(at, "at")
        if not reason.strip():
            raise ValueError("a takedown needs a reason")
        image = ArtistImageRow
        with self.engine.begin() as connection:
            # The artist's state row lock serialises us with a run recording this artist.
            connection.execute(
                sa.select(ArtistScrapeStateRow.artist_id)
                .where(ArtistScrapeStateRow.artist_id == db_id)
                .with_for_update()
            ).all()
            rows = connection.execute(
                sa.select(*_IMAGE_COLUMNS, image.is_current, image.taken_down_at).where(
                    image.artist_id == db_id
                )
            ).all()
            if every:
                seeds = rows
            elif sha256 is not None:
                seeds = [r for r in rows if sha256 in (r.sha256, r.source_sha256)]
            else:
                # The current image; once it is gone, a rerun covers what was taken down
                # (so repeating a takedown re-deletes any object a failure left behind).
                seeds = [r for r in rows if r.is_current] or [
                    r for r in rows if r.taken_down_at is not None
                ]
            if not seeds:
                what = "images" if every else (f"image {sha256}" if sha256 else "current image")
                raise LookupError(f"artist {artist_id} has no {what} to take down")
            originals = {r.source_sha256 for r in seeds if r.source_sha256}
            seed_ids = {r.id for r in seeds}
            targets = [r for r in rows if r.id in seed_ids or r.source_sha256 in originals]
            newly = [r.id for r in targets if r.taken_down_at is None]
            if newly:
                connection.execute(
                    sa.update(image)
                    .where(image.id.in_(newly))
                    .values(taken_down_at=at, takedown_reason=reason.strip(), is_current=False)
                )
            target_ids = {r.id for r in targets}
            variant_objects: dict[int, list[str]] = {}
            for image_id, name in connection.execute(
                sa.select(ArtistImageVariantRow.image_id, ArtistImageVariantRow.object_name)
                .where(ArtistImageVariantRow.image_id.in_(target_ids))
                .order_by(ArtistImageVariantRow.id)
            ):
                variant_objects.setdefault(image_id, []).append(name)
            blocked_urls = {r.source_image_url for r in rows if r.id in target_ids}
            blocked_urls |= {r.source_image_url for r in rows if r.taken_down_at is not None}
            was_current = any(r.is_current for r in targets)
            current: CurrentImage | None = None
            if was_current:
                eligible = [
                    r
                    for r in rows
                    if r.id not in target_ids
                    and r.taken_down_at is None
                    and r.source_image_url not in blocked_urls
                ]
                missing = set(
                    connection.execute(
                        sa.select(image.id).where(image.artist_id == db_id, image.object_missing)
                    ).scalars()
                )
                eligible = [r for r in eligible if r.id not in missing]
                if eligible:
                    chosen = max(eligible, key=lambda r: (r.scraped_at, r.id))
                    connection.execute(
                        sa.update(image).where(image.id == chosen.id).values(is_current=True)
                    )
                    current = _current_image(chosen)
            else:
                current_row = next((r for r in rows if r.is_current), None)
                current = _current_image(current_row) if current_row else None
        return TakedownRecord(
            artist_id=artist_id,
            images=tuple(
                TakenDownImage(
                    image=_current_image(r),
                    newly=r.id in newly,
                    variant_objects=tuple(dict.fromkeys(variant_objects.get(r.id, []))),
                )
                for r in targets
            ),
            current=current,
            switched=was_current,
        )

    # -- selections and reports ----------------------------------------------------------

    @staticmethod
    def _catalog_join() -> AnySelect:
        """Every catalog artist with its current image and scrape state (both optional)."""
        return (
            sa.select()
            .select_from(ArtistRow)
            .outerjoin(
                ArtistImageRow,
                sa.and_(ArtistImageRow.artist_id == ArtistRow.id, ArtistImageRow.is_current),
            )
            .outerjoin(ArtistScrapeStateRow, ArtistScrapeStateRow.artist_id == ArtistRow.id)
        )

    def stale_artist_ids(
        self,
        *,
        now: datetime,
        max_age: timedelta,
        limit: int | None = None,
        variant_set: str | None = None,
    ) -> list[str]:
        """Catalog artists due for a scrape, ordered by id.

        Due = outside any failure backoff (``next_attempt_at`` NULL or passed) AND either
        without a current image (never attempted, or failed), with one scraped more
        than ``max_age`` ago, with one whose object a check found missing, or (when
        ``variant_set`` names the configured policy's set) with one lacking that set. An artist
        with a fresh current image is never due, even if a later refresh failed: it has
        a good image and it is not stale yet.
        """
        now = _aware(now, "now")
        query = (
            self._catalog_join()
            .add_columns(ArtistRow.id)
            .where(
                sa.or_(
                    ArtistScrapeStateRow.next_attempt_at.is_(None),
                    ArtistScrapeStateRow.next_attempt_at <= now,
                ),
                sa.or_(
                    ArtistImageRow.id.is_(None),
                    ArtistImageRow.scraped_at < now - max_age,
                    ArtistImageRow.object_missing,
                    _lacks_variants(variant_set),
                ),
            )
            .order_by(ArtistRow.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [str(value) for value in connection.execute(query).scalars()]

    def never_attempted_artist_ids(self) -> list[str]:
        """Catalog artists without any scrape state (new to this service), ordered by id."""
        query = (
            sa.select(ArtistRow.id)
            .outerjoin(ArtistScrapeStateRow, ArtistScrapeStateRow.artist_id == ArtistRow.id)
            .where(ArtistScrapeStateRow.artist_id.is_(None))
            .order_by(ArtistRow.id)
        )
        with self.engine.connect() as connection:
            return [str(value) for value in connection.execute(query).scalars()]

    def failed_artist_ids(self) -> list[str]:
        """Catalog artists whose last attempt failed (whatever their backoff), ordered by id."""
        query = (
            sa.select(ArtistScrapeStateRow.artist_id)
            .join(ArtistRow, ArtistRow.id == ArtistScrapeStateRow.artist_id)
            .where(ArtistScrapeStateRow.last_outcome.not_in(_SUCCESS_OUTCOMES))
            .order_by(ArtistScrapeStateRow.artist_id)
        )
        with self.engine.connect() as connection:
            return [str(value) for value in connection.execute(query).scalars()]

    def last_outcome_counts(self) -> dict[str, int]:
        """How every attempted catalog artist's last attempt ended, good image or not."""
        query = (
            sa.select(ArtistScrapeStateRow.last_outcome, sa.func.count())
            .join(ArtistRow, ArtistRow.id == ArtistScrapeStateRow.artist_id)
            .group_by(ArtistScrapeStateRow.last_outcome)
            .order_by(sa.func.count().desc(), ArtistScrapeStateRow.last_outcome)
        )
        with self.engine.connect() as connection:
            return {str(outcome): int(count) for outcome, count in connection.execute(query)}

    def coverage(
        self, *, now: datetime, max_age: timedelta, variant_set: str | None = None
    ) -> pd.DataFrame:
        """Artists per category; the categories partition the catalog (counts sum to it).

        - ``object missing``: a current image row whose object the last check did not
          find in the store (the app serves a broken link until the next refresh);
        - ``variants missing``: a current image without the complete variant set named
          ``variant_set`` (the configured policy's; never counted when it is None);
        - ``current image``: a current image scraped within ``max_age``;
        - ``stale``: a current image older than that;
        - ``never attempted``: no image and no attempt yet;
        - ``failed: <outcome>``: no image, and the last attempt failed with that outcome;
        - ``never found``: no image although the last attempt succeeded (only if an image
          row was removed by hand; normally 0).

        The fixed categories are always present (0 when empty), failures only when
        they occur, most frequent first.
        """
        now = _aware(now, "now")
        state = ArtistScrapeStateRow
        category = sa.case(
            (
                sa.and_(ArtistImageRow.id.is_not(None), ArtistImageRow.object_missing),
                sa.literal(CATEGORY_OBJECT_MISSING),
            ),
            (
                sa.and_(ArtistImageRow.id.is_not(None), _lacks_variants(variant_set)),
                sa.literal(CATEGORY_VARIANTS_MISSING),
            ),
            (
                sa.and_(ArtistImageRow.id.is_not(None), ArtistImageRow.scraped_at >= now - max_age),
                sa.literal(CATEGORY_CURRENT),
            ),
            (ArtistImageRow.id.is_not(None), sa.literal(CATEGORY_STALE)),
            (state.artist_id.is_(None), sa.literal(CATEGORY_NEVER_ATTEMPTED)),
            (
                state.last_outcome.not_in(_SUCCESS_OUTCOMES),
                sa.literal(FAILED_PREFIX) + state.last_outcome,
            ),
            else_=sa.literal(CATEGORY_NEVER_FOUND),
        ).label("category")
        per_artist = self._catalog_join().add_columns(category).subquery()
        query = sa.select(per_artist.c.category, sa.func.count().label("artists")).group_by(
            per_artist.c.category
        )
        with self.engine.connect() as connection:
            counts = {str(row.category): int(row.artists) for row in connection.execute(query)}
        failures = sorted(
            ((name, count) for name, count in counts.items() if name not in FIXED_CATEGORIES),
            key=lambda item: (-item[1], item[0]),
        )
        rows = [(name, counts.get(name, 0)) for name in FIXED_CATEGORIES] + failures
        import pandas as pd  # deferred: pandas costs seconds of import in every run worker

        return pd.DataFrame(
            {
                "category": pd.Series([name for name, _ in rows], dtype="object"),
                "artists": pd.Series([count for _, count in rows], dtype="int64"),
            }
        )
