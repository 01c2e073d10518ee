"""``podpod-scraping``: operator commands that are not Dagster runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podpod-scraping")
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="catalog database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply this service's migrations")
    upgrade.add_argument("--url", help="catalog URL (default: $PODPOD_CATALOG_URL)")
    seed = db_commands.add_parser(
        "seed-demo",
        help="local stacks only: create an artists table with the demo site's artists",
    )
    seed.add_argument("--url", help="catalog URL (default: $PODPOD_CATALOG_URL)")
    seed.add_argument(
        "--api-cases",
        action="store_true",
        help="also the artists of every recorded API case (ids 1001-1017, see README)",
    )
    runs = commands.add_parser("runs", help="Dagster run maintenance")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    fail_dead = runs_commands.add_parser(
        "fail-dead",
        help="mark STARTED runs that logged nothing for a while as failed; free their slots",
        description=(
            "A run killed hard stays STARTED and holds the scrape pool, so later runs wait "
            "behind it. This marks such runs failed (the dead_run_sensor does the same "
            "every minute under the daemon). Uses the instance at $DAGSTER_HOME."
        ),
    )
    fail_dead.add_argument(
        "--silent-for-minutes",
        type=float,
        default=10.0,
        help="a STARTED run without any event for this long is dead (default 10)",
    )
    fail_dead.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    commands.add_parser("demo", help="run the pipeline on the embedded default", add_help=False)
    commands.add_parser(
        "ui", help="the demo site and the Dagster UI on the embedded default", add_help=False
    )
    hashes = commands.add_parser(
        "placeholder-hash",
        help="print the perceptual hash of 'no photo' images, for images.placeholder_hashes",
        description=(
            "Print one YAML list item per image: paste the lines under "
            "images.placeholder_hashes in the scraper config so that resized or re-encoded "
            "copies of these images are refused as placeholders."
        ),
    )
    hashes.add_argument("files", nargs="+", type=Path, metavar="FILE", help="an image file")
    config = commands.add_parser("config", help="scraper config commands")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check",
        help="validate the config file and check the catalog, object store and sites",
        description=(
            "Validate the scraper config with the schema every run uses, then check in "
            "seconds that the catalog is reachable and migrated, that the object store "
            "accepts a write-once probe, and that each source's robots.txt is readable. "
            "One line per check; exit status 1 on any problem."
        ),
    )
    check.add_argument("--file", help="scraper YAML file (default: $PODPOD_SCRAPER_CONFIG)")
    check.add_argument("--catalog-url", help="catalog URL (default: $PODPOD_CATALOG_URL)")
    check.add_argument(
        "--object-store-url", help="gs://<bucket> or a folder (default: $PODPOD_OBJECT_STORE_URL)"
    )
    _add_identity_commands(commands)
    args, rest = parser.parse_known_args(argv)

    if args.command == "db":
        from podpod_scraping.storage.catalog.migrate import upgrade as run_upgrade

        url = args.url or os.environ.get("PODPOD_CATALOG_URL")
        if not url:
            parser.error("give --url or set PODPOD_CATALOG_URL")
        if args.db_command == "seed-demo":
            from podpod_scraping.demo.run import seed_demo_catalog

            count = seed_demo_catalog(url, api_cases=args.api_cases)
            print(f"catalog holds {count} demo artists")
            return 0
        run_upgrade(url)
        print("catalog migrated to head")
        return 0
    if args.command == "runs":
        return _fail_dead_runs(args.silent_for_minutes, dry_run=args.dry_run)
    if args.command == "config":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _config_check(args.file, args.catalog_url, args.object_store_url)
    if args.command in ("identity", "takedown"):
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        url = args.url or os.environ.get("PODPOD_CATALOG_URL")
        if not url:
            parser.error("give --url or set PODPOD_CATALOG_URL")
        if args.command == "takedown":
            return _takedown(args, url)
        return _identity(args, url)
    if args.command == "placeholder-hash":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _placeholder_hashes(args.files)
    if args.command == "demo":
        from podpod_scraping.demo.run import main as demo_main

        return demo_main(rest)
    if args.command == "ui":
        from podpod_scraping.demo.ui import main as ui_main

        return ui_main(rest)
    return 2


def _add_identity_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    identity = commands.add_parser(
        "identity",
        help="who an artist is on MusicBrainz, Wikidata, Deezer or a site: show, pin, unpin",
        description=(
            "A pinned identity wins over the catalog's columns and over any name match: "
            "pin one when an artist's outcome is ambiguous_identity (the candidates are in "
            "the partition's metadata) or when a match is wrong. The next refresh uses it."
        ),
    )
    identity_commands = identity.add_subparsers(dest="identity_command", required=True)
    show = identity_commands.add_parser("show", help="every identity of an artist, with evidence")
    pin = identity_commands.add_parser("pin", help="say who the artist is on a namespace")
    unpin = identity_commands.add_parser("unpin", help="drop a pinned identity")
    for sub in (show, pin, unpin):
        sub.add_argument("artist", help="the artist's catalog id (its partition key)")
    for sub in (pin, unpin):
        sub.add_argument("namespace", help="musicbrainz, wikidata, deezer, or site:<source name>")
    pin.add_argument("external_id", help="the id on that namespace (an MBID, a Q-id, ...)")
    pin.add_argument("--by", help="who pins it (recorded as evidence)")
    takedown = commands.add_parser(
        "takedown",
        help="remove an artist's published image for good (objects deleted, rows kept)",
        description=(
            "Deletes the image's published object and archived original, marks its rows "
            "taken down with the reason and time, switches the artist's current image to "
            "the next one not taken down (or none), and never fetches that image URL "
            "again for the artist. Without --image: the current image. Idempotent."
        ),
    )
    takedown.add_argument("artist", help="the artist's catalog id (its partition key)")
    which = takedown.add_mutually_exclusive_group()
    which.add_argument("--image", metavar="SHA256", help="the image (published or original hash)")
    which.add_argument("--all", action="store_true", help="every image of the artist")
    takedown.add_argument("--reason", required=True, help="why (recorded on the rows)")
    takedown.add_argument(
        "--object-store-url", help="gs://<bucket> or a folder (default: $PODPOD_OBJECT_STORE_URL)"
    )
    for sub in (show, pin, unpin, takedown):
        sub.add_argument("--url", help="catalog URL (default: $PODPOD_CATALOG_URL)")


def _identity(args: argparse.Namespace, url: str) -> int:
    """``identity show|pin|unpin``: print what the catalog knows, or change a pin."""
    from datetime import UTC, datetime

    from podpod_scraping.core.identity import SITE_PREFIX
    from podpod_scraping.storage.catalog.repository import CatalogRepository, make_engine

    repository = CatalogRepository(make_engine(url))
    artist = repository.artists([args.artist]).get(args.artist)
    if artist is None:
        print(f"artist {args.artist!r} is not in the catalog", file=sys.stderr)
        return 1
    if args.identity_command in ("pin", "unpin"):
        namespace = args.namespace.strip()
        if namespace not in ("musicbrainz", "wikidata", "deezer") and not (
            namespace.startswith(SITE_PREFIX) and len(namespace) > len(SITE_PREFIX)
        ):
            print(
                f"unknown namespace {namespace!r}: use musicbrainz, wikidata, deezer or "
                "site:<source name>",
                file=sys.stderr,
            )
            return 2
        if args.identity_command == "pin":
            external_id = args.external_id.strip()
            if not external_id:
                print("the external id is empty", file=sys.stderr)
                return 2
            repository.pin_identity(
                args.artist, namespace, external_id, at=datetime.now(UTC), by=args.by
            )
            print(f"pinned {artist.name} ({args.artist}) to {namespace} {external_id}")
            return 0
        if repository.unpin_identity(args.artist, namespace):
            print(f"unpinned {artist.name} ({args.artist}) on {namespace}")
        else:
            print(f"{artist.name} ({args.artist}) had no pinned identity on {namespace}")
        return 0
    identities = repository.identities([args.artist]).get(args.artist, [])
    print(f"{artist.name} ({args.artist})")
    if not identities:
        print("  no identity yet (the next refresh resolves one by strict name match)")
    for identity in identities:
        details = [f"{identity.method.value}"]
        if identity.matched_name:
            details.append(f"matched {identity.matched_name!r}")
        if identity.score is not None:
            details.append(f"score {identity.score:g}")
        if identity.disambiguation:
            details.append(identity.disambiguation)
        if identity.resolved_at:
            details.append(f"at {identity.resolved_at:%Y-%m-%d %H:%M}Z")
        print(f"  {identity.namespace}: {identity.external_id} ({'; '.join(details)})")
        for key, value in sorted(identity.evidence.items()):
            print(f"      {key}: {value}")
    return 0


def _takedown(args: argparse.Namespace, url: str) -> int:
    """``takedown``: one service call (``CatalogImageStore.take_down``), then a summary."""
    from podpod_scraping.core.refresh import StoreError
    from podpod_scraping.defs.resources import ObjectStoreResource
    from podpod_scraping.storage.catalog.repository import CatalogRepository, make_engine
    from podpod_scraping.storage.images import CatalogImageStore

    store_url = args.object_store_url or os.environ.get("PODPOD_OBJECT_STORE_URL")
    if not store_url:
        print("give --object-store-url or set PODPOD_OBJECT_STORE_URL", file=sys.stderr)
        return 2
    if not args.reason.strip():
        print("--reason must say why", file=sys.stderr)
        return 2
    store = CatalogImageStore(
        ObjectStoreResource(url=store_url).store(), CatalogRepository(make_engine(url))
    )
    try:
        report = store.take_down(args.artist, reason=args.reason, sha256=args.image, every=args.all)
    except LookupError as error:
        print(str(error.args[0]), file=sys.stderr)
        return 1
    except StoreError as error:
        hint = "run the same command again" if error.transient else "fix it, then run it again"
        print(f"takedown incomplete: {error} ({hint}; it is idempotent)", file=sys.stderr)
        return 1
    for taken in report.record.images:
        state = "taken down" if taken.newly else "already taken down"
        print(f"{taken.image.sha256} from {taken.image.source_image_url}: {state}")
    for name in report.deleted_objects:
        print(f"deleted {store.objects.uri(name)}")
    current = report.record.current
    if report.record.switched:
        print(
            f"current image now {current.sha256} ({current.source_name})"
            if current
            else "the artist has no current image now"
        )
    return 0


def _fail_dead_runs(minutes: float, *, dry_run: bool) -> int:
    """Print each dead run (and fail it unless ``dry_run``)."""
    from datetime import timedelta

    import dagster as dg

    from podpod_scraping.defs.recovery import dead_runs, fail_dead_runs

    if minutes < 0:
        print("--silent-for-minutes must be >= 0", file=sys.stderr)
        return 2
    silent_for = timedelta(minutes=minutes)
    with dg.DagsterInstance.get() as instance:
        found = (
            dead_runs(instance, silent_for=silent_for)
            if dry_run
            else fail_dead_runs(instance, silent_for=silent_for)
        )
    verb = "dead" if dry_run else "marked failed"
    for run in found:
        print(f"{run.run_id} {run.job_name}: silent for {run.silent_for_s:.0f}s: {verb}")
    print(f"{len(found)} run(s) {verb}")
    return 0


def _config_check(file: str | None, catalog_url: str | None, store_url: str | None) -> int:
    """Print one line per check as it completes; 1 if any found a problem."""
    from podpod_scraping.storage.preflight import run_checks

    checks = run_checks(
        file or os.environ.get("PODPOD_SCRAPER_CONFIG"),
        catalog_url or os.environ.get("PODPOD_CATALOG_URL"),
        store_url or os.environ.get("PODPOD_OBJECT_STORE_URL"),
        report=lambda check: print(check.line(), flush=True),
    )
    problems = sum(not check.ok for check in checks)
    print(f"{problems} problem(s)" if problems else "all checks passed")
    return 1 if problems else 0


def _placeholder_hashes(files: list[Path]) -> int:
    """Print ``- "<hash>"  # <file>`` per image (quoted: an all-digit hash is not a number)."""
    from podpod_scraping.core.images import placeholder_hash
    from podpod_scraping.core.outcomes import ScrapeError

    status = 0
    for file in files:
        try:
            value = placeholder_hash(file.read_bytes())
        except OSError as error:
            print(f"{file}: cannot read: {error.strerror or error}", file=sys.stderr)
            status = 1
        except ScrapeError as error:
            print(f"{file}: {error.reason}", file=sys.stderr)
            status = 1
        else:
            print(f'- "{value}"  # {file.name}')
    return status


if __name__ == "__main__":
    sys.exit(main())
