"""``podpod-scraping``: operator commands that are not Dagster runs."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podpod-scraping")
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="catalog database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply this service's migrations")
    upgrade.add_argument("--url", help="catalog URL (default: $PODPOD_CATALOG_URL)")
    commands.add_parser("demo", help="run the pipeline on the embedded default", add_help=False)
    args, rest = parser.parse_known_args(argv)

    if args.command == "db":
        from podpod_scraping.storage.catalog.migrate import upgrade as run_upgrade

        url = args.url or os.environ.get("PODPOD_CATALOG_URL")
        if not url:
            parser.error("give --url or set PODPOD_CATALOG_URL")
        run_upgrade(url)
        print("catalog migrated to head")
        return 0
    if args.command == "demo":
        from podpod_scraping.demo.run import main as demo_main

        return demo_main(rest)
    return 2


if __name__ == "__main__":
    sys.exit(main())
