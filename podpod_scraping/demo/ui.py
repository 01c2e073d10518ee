"""``make ui``: the demo site and ``dagster dev`` on the embedded default, until Ctrl-C.

The same setup as ``make demo`` (local catalog, local images, Dagster's SQLite storage
under ``.demo``), with the Dagster UI instead of one CLI run. Both ports are checked first,
so a port that is taken is reported with the option that picks another one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
from pathlib import Path

from podpod_scraping.demo.run import DEFAULT_PORT, dagster_cli, prepare, sync_partitions
from podpod_scraping.demo.server import HOST
from podpod_scraping.demo.site import DemoSite

DEFAULT_UI_PORT = 3000


def port_taken(port: int) -> bool:
    """Whether something already listens on (or holds) 127.0.0.1:``port``."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_ports(site_port: int, ui_port: int) -> None:
    """Exit with a message naming the option to change when a port is taken."""
    for port, what, option in (
        (site_port, "the demo site", "--port"),
        (ui_port, "the Dagster UI", "--ui-port"),
    ):
        if port and port_taken(port):
            raise SystemExit(
                f"port {port} on {HOST} is already in use, so {what} cannot start there; "
                f'pick another one with {option} N (make ui ARGS="{option} N")'
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="podpod-scraping ui",
        description="The demo site and the Dagster UI on the embedded default; Ctrl-C stops both.",
    )
    parser.add_argument("--dir", default=".demo", help="working folder (default: .demo)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="demo site port")
    parser.add_argument(
        "--ui-port", type=int, default=DEFAULT_UI_PORT, help="Dagster UI port (default 3000)"
    )
    args = parser.parse_args(argv)
    check_ports(args.port, args.ui_port)
    workdir = Path(args.dir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with DemoSite(port=args.port) as site:
        env = prepare(workdir, site.base_url, site.port)
        keys = sync_partitions(env)
        print(f"demo site {site.base_url}; {len(keys)} artist partitions", flush=True)
        print(f"Dagster UI: http://{HOST}:{args.ui_port} (Ctrl-C stops both)", flush=True)
        command = [*dagster_cli(), "dev", "-m", "podpod_scraping.definitions"]
        command += ["-h", HOST, "-p", str(args.ui_port)]
        # In the working folder: the repo's production dagster.yaml is not this instance.
        # In a session of its own: Ctrl-C reaches it once, from here, however many SIGINTs
        # the terminal and wrappers (`make`, `uv run`) deliver to this process.
        dev = subprocess.Popen(command, env=os.environ | env, cwd=workdir, start_new_session=True)
        try:
            return dev.wait()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the repeats while stopping
            stop_group(dev)
            print("stopped the Dagster UI and the demo site", flush=True)
            return 0
        finally:
            if dev.poll() is None:
                stop_group(dev)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``dagster dev`` and its webserver, daemon and code servers (one process group):
    SIGINT as Ctrl-C would, then SIGTERM, then SIGKILL, each after a grace period."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # a child left behind
        os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    raise SystemExit(main())
