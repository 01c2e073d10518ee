"""``podpod-scraping config check``: is this deployment able to run, answered in seconds.

A run that starts with a typo in the config, an unmigrated catalog, a missing bucket or a
site whose robots.txt cannot be read fails every artist (or waits out retries for
minutes). These checks ask each dependency once, with short timeouts, and say for each
problem what to fix. They use the same pieces as a run: the config schema, the catalog's
engine and Alembic history, a precondition-guarded write like ``put_immutable``'s, and the
project's Fetcher (so the SSRF guard and ``fetch.allowed_private_hosts`` apply).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from google.api_core.exceptions import Forbidden, GoogleAPIError, NotFound, PreconditionFailed
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from protego import Protego
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from podpod_scraping.core.config import (
    CONFIG_ENV,
    CatalogColumns,
    ScraperConfig,
    load_scraper_config,
)
from podpod_scraping.core.fetching import Fetcher, FetchError, FetchPolicy
from podpod_scraping.core.outcomes import Artist, Outcome, sha256_hex
from podpod_scraping.core.sources import SourceConfig
from podpod_scraping.storage.catalog.migrate import URL_ENV, VERSION_TABLE, alembic_config
from podpod_scraping.storage.catalog.repository import make_engine
from podpod_scraping.storage.objects import LocalObjectStore, ObjectStoreError

OBJECT_STORE_ENV = "PODPOD_OBJECT_STORE_URL"
#: Columns of the main API's ``artists`` table that this service reads.
ARTIST_COLUMNS = ("id", "name")
PROBE_PREFIX = "_probe/"
#: Seconds any one dependency may take to answer (connect, or one request).
TIMEOUT = 5.0
#: A made-up artist that fills the page URL templates (to find each source's site).
_SAMPLE_ARTIST = Artist(id="1", name="config check")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok     ' if self.ok else 'PROBLEM'}  {self.name}: {self.detail}"


def check_config(path: str | None) -> tuple[Check, ScraperConfig | None]:
    """The config file against the schema (the same loader every run uses)."""
    if not path:
        return Check("config", False, f"no file: pass --file or set {CONFIG_ENV}"), None
    try:
        config = load_scraper_config(path)
    except ValueError as error:  # ScraperConfigError, the one config error type
        return Check("config", False, str(error)), None
    names = ", ".join(source.name for source in config.sources)
    return Check("config", True, f"{path}: {len(config.sources)} source(s) ({names})"), config


def check_catalog(
    url: str | None, *, timeout: float = TIMEOUT, columns: CatalogColumns | None = None
) -> list[Check]:
    """Reachable, migrated to head, and the main API's ``artists`` has the columns we read
    (and which of the configured alias and id columns it has)."""
    if not url:
        return [Check("catalog", False, f"no URL: pass --catalog-url or set {URL_ENV}")]
    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        engine = make_engine(url, **_quick_connect(url, timeout))
    except (ArgumentError, ValueError) as error:
        return [Check("catalog", False, f"invalid URL ({error}); fix {URL_ENV}")]
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            checks = [
                Check("catalog", True, f"{shown} answers"),
                _migrations(connection),
                _artists_table(connection),
            ]
            if columns is not None and (columns.alias_columns or columns.identity_columns):
                checks.append(_configured_columns(connection, columns))
            return checks
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return [
            Check(
                "catalog",
                False,
                f"cannot connect to {shown}: {reason}; check {URL_ENV} (host, port, "
                "database, credentials) and that the server is up",
            )
        ]
    finally:
        engine.dispose()


def _quick_connect(url: str, timeout: float) -> dict[str, Any]:
    """Engine options that fail in seconds instead of waiting for a dead server."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "postgresql":
        statement_ms = int(timeout * 1000)
        return {
            "connect_args": {
                "connect_timeout": max(1, int(timeout)),
                "options": f"-c statement_timeout={statement_ms}",
            }
        }
    if backend == "sqlite":
        return {"connect_args": {"timeout": timeout}}
    return {}


def _migrations(connection: sa.Connection) -> Check:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    current = set(context.get_current_heads())
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    fix = f"run `podpod-scraping db upgrade` (with {URL_ENV} set)"
    if current == heads:
        return Check("catalog migrations", True, f"at head ({', '.join(sorted(heads))})")
    if not current:
        return Check("catalog migrations", False, f"not migrated (no {VERSION_TABLE}): {fix}")
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = sorted(current - known)
    if unknown:
        return Check(
            "catalog migrations",
            False,
            f"at revision {', '.join(unknown)}, which this code does not know (a newer "
            "release migrated it): deploy that release",
        )
    return Check(
        "catalog migrations",
        False,
        f"at {', '.join(sorted(current))}, head is {', '.join(sorted(heads))}: {fix}",
    )


def _artists_table(connection: sa.Connection) -> Check:
    inspector = sa.inspect(connection)
    if not inspector.has_table("artists"):
        return Check(
            "catalog artists",
            False,
            "no table 'artists' (the main API owns it): point "
            f"{URL_ENV} at the main API's database",
        )
    columns = {column["name"] for column in inspector.get_columns("artists")}
    missing = [name for name in ARTIST_COLUMNS if name not in columns]
    if missing:
        return Check(
            "catalog artists",
            False,
            f"table 'artists' has no column {', '.join(repr(m) for m in missing)} (it has "
            f"{', '.join(sorted(columns))}); this service reads artists.id and artists.name: "
            "restore the column in the main API's schema or point "
            f"{URL_ENV} at a database that has it",
        )
    return Check("catalog artists", True, f"table 'artists' has {', '.join(ARTIST_COLUMNS)}")


def _configured_columns(connection: sa.Connection, columns: CatalogColumns) -> Check:
    """Absent alias/id columns are fine (ignored), but a person should know which."""
    inspector = sa.inspect(connection)
    if not inspector.has_table("artists"):
        return Check("catalog columns", True, "no table 'artists' yet: nothing to read")
    present = {column["name"] for column in inspector.get_columns("artists")}
    wanted = {f"catalog.alias_columns: {name}": name for name in columns.alias_columns} | {
        f"catalog.identity_columns.{namespace}: {name}": name
        for namespace, name in columns.identity_columns.items()
    }
    absent = [key for key, name in wanted.items() if name not in present]
    if absent:
        return Check(
            "catalog columns",
            True,
            f"artists has no column for {'; '.join(absent)}: ignored until the main API adds it",
        )
    return Check("catalog columns", True, f"artists has {', '.join(sorted(set(wanted.values())))}")


def check_object_store(url: str | None, *, timeout: float = TIMEOUT) -> Check:
    """The store accepts a write-once (precondition-guarded) object, and refuses a second."""
    if not url:
        return Check("object store", False, f"no URL: set {OBJECT_STORE_ENV}")
    parsed = urlparse(url)
    if parsed.scheme == "gs":
        if not parsed.netloc or parsed.path not in ("", "/"):
            return Check("object store", False, f"{url!r} is not gs://<bucket>: fix it")
        return _probe_gcs(parsed.netloc, timeout)
    if parsed.scheme in ("", "file"):
        return _probe_local(Path(parsed.path if parsed.scheme == "file" else url).expanduser())
    return Check(
        "object store", False, f"unsupported URL {url!r}: use gs://<bucket> or a folder path"
    )


def _probe_gcs(bucket_name: str, timeout: float) -> Check:
    uri = f"gs://{bucket_name}"
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex}.txt"
    # No retries: a dead endpoint must answer "problem" in seconds, not after 120 s.
    options: dict[str, Any] = {"timeout": (timeout, timeout), "retry": None}
    try:
        blob = storage.Client().bucket(bucket_name).blob(name)
        blob.upload_from_string(b"podpod-scraping config check\n", if_generation_match=0, **options)
        try:
            blob.upload_from_string(b"again\n", if_generation_match=0, **options)
        except PreconditionFailed:
            pass  # the write-once guard works: publishing never overwrites an object
        else:
            return Check(
                "object store",
                False,
                f"{uri} overwrote {name} despite if_generation_match=0: this store ignores "
                "preconditions, so published images would not be write-once; use real GCS "
                "or an emulator that honours them",
            )
        blob.delete(if_generation_match=blob.generation, **options)
    except NotFound:
        return Check(
            "object store",
            False,
            f"bucket {bucket_name!r} does not exist: create it or fix {OBJECT_STORE_ENV}",
        )
    except Forbidden as error:
        return Check(
            "object store",
            False,
            f"{uri} refused the probe write ({error.message}): grant the service account "
            "roles/storage.objectCreator (and objectViewer) on the bucket",
        )
    except GoogleAuthError as error:
        return Check(
            "object store",
            False,
            f"no usable GCS credentials ({_first_line(error)}): set "
            "GOOGLE_APPLICATION_CREDENTIALS or use Workload Identity",
        )
    except (GoogleAPIError, OSError, ValueError) as error:  # requests' errors are OSErrors
        return Check(
            "object store",
            False,
            f"cannot write to {uri} ({type(error).__name__}: {_first_line(error)}): check "
            "the network path to GCS (STORAGE_EMULATOR_HOST for an emulator)",
        )
    return Check("object store", True, f"{uri} accepted a write-once probe object (removed)")


def _probe_local(root: Path) -> Check:
    data = b"podpod-scraping config check\n"
    store = LocalObjectStore(root)
    try:
        # Content-addressed like every object: the same tiny file whatever the run.
        name = f"{PROBE_PREFIX}{sha256_hex(data)}.txt"
        store.put_immutable(name, data, content_type="text/plain")
    except ObjectStoreError as error:
        return Check(
            "object store",
            False,
            f"cannot write to {store.root} ({error}): create the folder or fix {OBJECT_STORE_ENV}",
        )
    return Check("object store", True, f"{store.root} accepted a write-once probe ({name})")


def check_robots(config: ScraperConfig, *, timeout: float = TIMEOUT) -> Iterator[Check]:
    """Each source's robots.txt is readable through the Fetcher and lets us at its pages."""
    policy = config.fetch.model_copy(
        update={
            "max_attempts": 1,
            "connect_timeout": min(config.fetch.connect_timeout, timeout),
            "read_timeout": min(config.fetch.read_timeout, timeout),
            "total_timeout": min(config.fetch.total_timeout, 2 * timeout),
        }
    )
    with Fetcher(policy) as fetcher:
        for source in config.sources:
            if isinstance(source, SourceConfig):  # API sources do not read robots.txt
                yield _robots_of(source.name, source.entry_url_for(_SAMPLE_ARTIST), fetcher, policy)


def _robots_of(name: str, page: str, fetcher: Fetcher, policy: FetchPolicy) -> Check:
    label = f"robots.txt {name}"
    try:
        robots_url, status, body = fetcher.fetch_robots(page)
    except FetchError as error:
        fix = (
            "add its host:port to fetch.allowed_private_hosts if this private host is meant"
            if error.outcome is Outcome.UNSAFE_URL
            else "check that the site is up and page_url names the right host"
        )
        return Check(label, False, f"cannot read it ({error.outcome.value}: {error.reason}); {fix}")
    if 200 <= status < 300:
        token = policy.user_agent_token
        if not Protego.parse(body.decode("utf-8", errors="replace")).can_fetch(page, token):
            return Check(
                label,
                False,
                f"{robots_url} disallows {page} for {token}: every artist would end "
                "blocked_by_robots; ask the site or drop the source",
            )
        return Check(label, True, f"{robots_url} answered {status} and allows the pages")
    if status == 429 or status >= 500:
        return Check(
            label,
            False,
            f"{robots_url} answered {status}: no page is fetched from the site until it "
            "answers; check the site",
        )
    return Check(label, True, f"{robots_url} answered {status}: no rules, everything allowed")


def run_checks(
    config_path: str | None,
    catalog_url: str | None,
    object_store_url: str | None,
    *,
    timeout: float = TIMEOUT,
    report: Callable[[Check], None] = lambda check: None,
) -> list[Check]:
    """Every check in order, each reported as soon as it is known; robots.txt only when
    the config is valid (it names the sites)."""
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        report(check)

    config_check, config = check_config(config_path)
    add(config_check)
    columns = config.catalog if config is not None else None
    for check in check_catalog(catalog_url, timeout=timeout, columns=columns):
        add(check)
    add(check_object_store(object_store_url, timeout=timeout))
    if config is not None:
        for check in check_robots(config, timeout=timeout):
            add(check)
    return checks


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
