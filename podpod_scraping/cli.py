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
    args, rest = parser.parse_known_args(argv)

    if args.command == "db":
        from podpod_scraping.storage.catalog.migrate import upgrade as run_upgrade

        url = args.url or os.environ.get("PODPOD_CATALOG_URL")
        if not url:
            parser.error("give --url or set PODPOD_CATALOG_URL")
        if args.db_command == "seed-demo":
            from podpod_scraping.demo.run import seed_demo_catalog

            print(f"catalog holds {seed_demo_catalog(url)} demo artists")
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
