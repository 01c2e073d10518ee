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
