"""The embedded default, end to end: demo site → local catalog → Dagster CLI → local images.

No server to install, no credentials, no internet: the catalog is a SQLite file, the object
store a local folder, Dagster's storage a local DAGSTER_HOME, and the "web" is the bundled
demo site on 127.0.0.1. The same code paths as production run; only endpoints differ.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from tabulate import tabulate

from podpod_scraping.demo.site import DEMO_ARTISTS, DemoSite, demo_sources_yaml
from podpod_scraping.storage.catalog.migrate import upgrade
from podpod_scraping.storage.catalog.repository import (
    CatalogRepository,
    create_artists_table,
    insert_artists,
    make_engine,
)

DEFAULT_PORT = 8765
ASSETS = "artist_source_image,artist_image"

DAGSTER_YAML = """\
# Embedded default: Dagster's SQLite storage under this folder. See the repo's dagster.yaml
# for production (Postgres storage, queued runs).
telemetry:
  enabled: false
"""


def demo_paths(workdir: Path) -> dict[str, Path]:
    return {
        "dagster_home": workdir / "dagster_home",
        "catalog": workdir / "catalog.db",
        "images": workdir / "images",
        "config": workdir / "scraper.yaml",
    }


def write_scraper_config(path: Path, base_url: str, port: int) -> None:
    """The demo's scraper config: the bundled site's sources, loopback explicitly allowed."""
    config = yaml.safe_load(demo_sources_yaml(base_url))
    config["fetch"] = {
        # Private addresses are refused by default; the demo site is the one exception.
        "allowed_private_hosts": [f"127.0.0.1:{port}"],
        "per_host_concurrency": 4,
        "per_host_min_interval": 0.0,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def demo_environment(workdir: Path) -> dict[str, str]:
    """The environment variables that point the code location at the embedded default."""
    paths = demo_paths(workdir)
    return {
        "DAGSTER_HOME": str(paths["dagster_home"].resolve()),
        "PODPOD_CATALOG_URL": f"sqlite:///{paths['catalog'].resolve()}",
        "PODPOD_OBJECT_STORE_URL": str(paths["images"].resolve()),
        "PODPOD_SCRAPER_CONFIG": str(paths["config"].resolve()),
    }


def prepare(workdir: Path, base_url: str, port: int) -> dict[str, str]:
    """Create (or re-use) the DAGSTER_HOME, catalog and config of the embedded default."""
    paths = demo_paths(workdir)
    paths["dagster_home"].mkdir(parents=True, exist_ok=True)
    paths["images"].mkdir(parents=True, exist_ok=True)
    (paths["dagster_home"] / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    write_scraper_config(paths["config"], base_url, port)
    env = demo_environment(workdir)
    with (workdir / "demo.env").open("w", encoding="utf-8") as file:
        file.writelines(f"{key}={value}\n" for key, value in env.items())
    upgrade(env["PODPOD_CATALOG_URL"])
    seed_demo_catalog(env["PODPOD_CATALOG_URL"])
    return env


def seed_demo_catalog(url: str, *, api_cases: bool = False) -> int:
    """Give a local catalog the main API's ``artists`` table with the demo artists (the
    compose stack's local profile does the same), and with ``api_cases`` the artists of
    every recorded API case (``demo.apis.CASE_ARTISTS``); returns how many there are."""
    from podpod_scraping.demo.apis import CASE_ARTISTS

    engine = make_engine(url)
    try:
        create_artists_table(engine)
        insert_artists(engine, [(artist.id, artist.name) for artist in DEMO_ARTISTS])
        if api_cases:
            insert_artists(engine, CASE_ARTISTS)
        return len(CatalogRepository(engine).all_artist_ids())
    finally:
        engine.dispose()


def sync_partitions(env: dict[str, str]) -> list[str]:
    """Add every catalog artist as a partition (what the catalog sensor does in production)."""
    from dagster import DagsterInstance

    from podpod_scraping.defs.partitions import ARTISTS_PARTITION_NAME

    engine = make_engine(env["PODPOD_CATALOG_URL"])
    ids = CatalogRepository(engine).all_artist_ids()
    engine.dispose()
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            existing = set(instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
            missing = [key for key in ids if key not in existing]
            if missing:
                instance.add_dynamic_partitions(ARTISTS_PARTITION_NAME, missing)
            return list(instance.get_dynamic_partitions(ARTISTS_PARTITION_NAME))
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


#: Run config that prints the run's log at INFO: Dagster's console logger prints every event
#: (four per artist) at DEBUG otherwise, drowning the progress lines. The event log, which
#: the UI shows, keeps everything.
QUIET_RUN_CONFIG = '{"loggers": {"console": {"config": {"log_level": "INFO"}}}}'


def dagster_cli() -> list[str]:
    """The ``dagster`` CLI of this environment, without beta/preview/superseded warnings."""
    return [sys.executable, "-m", "podpod_scraping.demo.quiet_dagster"]


def materialize(env: dict[str, str], partition_keys: list[str]) -> None:
    """Run the real ``dagster asset materialize`` CLI: one run over every artist partition.

    The demo site has broken artists on purpose, so the scrape run ends failed (Dagster
    marks those partitions Failed): that is expected as long as every artist was
    attempted. Anything else (a crash before the artists were recorded) is an error.
    """
    full_env = os.environ | env
    base = [*dagster_cli(), "asset", "materialize", "-m", "podpod_scraping.definitions"]
    base += ["--config-json", QUIET_RUN_CONFIG]
    commands = [
        [
            *base,
            "--select",
            ASSETS,
            "--partition-range",
            f"{partition_keys[0]}...{partition_keys[-1]}",
        ],
        [*base, "--select", "artist_image_coverage"],
    ]
    for index, command in enumerate(commands):
        print("$ dagster", shlex.join(command[len(dagster_cli()) :]), flush=True)
        completed = subprocess.run(command, env=full_env, check=False)
        if completed.returncode == 0:
            continue
        missing = unattempted(env, partition_keys) if index == 0 else partition_keys
        if missing:
            raise SystemExit(
                f"the run failed before artists {missing[:10]} were attempted "
                f"(exit status {completed.returncode}); see the output above"
            )
        print(
            "\nThe run ended failed because some demo artists have no usable image "
            "(on purpose): Dagster shows them as Failed partitions. Every artist was "
            "attempted; the table below has each outcome.\n",
            flush=True,
        )


def unattempted(env: dict[str, str], partition_keys: list[str]) -> list[str]:
    """Partition keys whose artist has no recorded attempt in the catalog."""
    engine = make_engine(env["PODPOD_CATALOG_URL"])
    try:
        states = CatalogRepository(engine).scrape_states(partition_keys)
    finally:
        engine.dispose()
    return [key for key in partition_keys if key not in states]


def summary(env: dict[str, str]) -> str:
    """A per-artist table: artist, outcome, image size, variants, avatar crop, object URI."""
    engine = make_engine(env["PODPOD_CATALOG_URL"])
    repository = CatalogRepository(engine)
    ids = repository.all_artist_ids()
    artists = repository.artists(ids)
    current = repository.current_images(ids)
    states = repository.scrape_states(ids)
    engine.dispose()
    rows = []
    for key in ids:
        image = current.get(key)
        state = states.get(key)
        rows.append(
            [
                key,
                artists[key].name,
                state.last_outcome if state else "never attempted",
                f"{image.width}x{image.height}, {image.byte_size:,} B" if image else "-",
                image.variant_count if image else "-",
                (image.avatar_method or "-") if image else "-",
                image.dominant_color or "-" if image else "-",
                f"{image.license or '?'} ({image.source_name})" if image else "-",
                image.object_uri if image else (state.last_reason if state else "-"),
            ]
        )
    headers = ["id", "artist", "outcome", "image", "variants", "avatar", "colour"]
    return tabulate(rows, headers=[*headers, "licence (source)", "object URI / reason"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the pipeline on the embedded default.")
    parser.add_argument("--dir", default=".demo", help="working folder (default: .demo)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="demo site port")
    args = parser.parse_args(argv)
    workdir = Path(args.dir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with DemoSite(port=args.port) as site:
        port = site.port
        env = prepare(workdir, site.base_url, port)
        keys = sync_partitions(env)
        print(f"demo site {site.base_url}; {len(keys)} artist partitions", flush=True)
        materialize(env, keys)
    print()
    print(summary(env))
    images = demo_paths(workdir)["images"] / "artists"
    count = sum(1 for p in images.rglob("*") if p.is_file() and not p.name.endswith(".json"))
    print(f"\n{count} published image and variant file(s) under {images}")
    print(
        "The UI on the same setup: `make ui` (Ctrl-C stops it), or by hand:\n"
        f"  uv run python -m podpod_scraping.demo.site --port {port} &\n"
        f"  set -a; . {workdir / 'demo.env'}; set +a\n"
        "  uv run dagster dev -m podpod_scraping.definitions"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
