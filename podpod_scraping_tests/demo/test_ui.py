"""``make ui`` (``podpod-scraping ui``): a taken port names its option; Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podpod_scraping.demo.ui import main, port_taken
from podpod_scraping_tests.fixtures.processes import free_port, wait_until

BIN = Path(sys.executable).parent


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_taken_ui_port_says_to_pick_another_with_ui_port(held_port: int, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--dir", str(tmp_path), "--port", str(free_port()), "--ui-port", str(held_port)])

    message = str(stopped.value)
    assert f"port {held_port} on 127.0.0.1 is already in use" in message
    assert "the Dagster UI" in message
    assert "--ui-port N" in message
    assert not (tmp_path / "catalog.db").exists()  # checked before anything starts


def test_a_taken_demo_site_port_says_to_pick_another_with_port(
    held_port: int, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--dir", str(tmp_path), "--port", str(held_port), "--ui-port", str(free_port())])

    assert "the demo site" in str(stopped.value)
    assert "pick another one with --port N" in str(stopped.value)


def test_ui_serves_dagster_and_the_demo_site_until_ctrl_c_stops_both(tmp_path: Path) -> None:
    ui_port = free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                BIN / "podpod-scraping",
                "ui",
                "--dir",
                tmp_path / "demo",
                "--port",
                "0",
                "--ui-port",
                str(ui_port),
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        site = wait_until(
            "the demo site's address",
            lambda: re.search(r"demo site http://127\.0\.0\.1:(\d+)", log.read_text()),
            timeout=120,
            logs=[log],
        )
        site_port = int(site.group(1))
        wait_until(
            "the Dagster UI",
            lambda: _serving(f"http://127.0.0.1:{ui_port}/server_info"),
            timeout=180,
            logs=[log],
        )
        assert _serving(f"http://127.0.0.1:{site_port}/")

        # Ctrl-C: the terminal signals the whole group, and `uv run` (make ui) forwards it
        # once more to its child.
        os.killpg(process.pid, signal.SIGINT)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "stopped the Dagster UI and the demo site" in output
    assert not port_taken(ui_port)
    assert not port_taken(site_port)
    assert not _group_alive(process.pid)
    assert not _dagster_dev_left(tmp_path / "demo")
    assert "BetaWarning" not in output
    assert "PreviewWarning" not in output


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _dagster_dev_left(workdir: Path) -> bool:
    """Whether a process still runs in ``workdir`` (dagster dev runs in its own group)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(proc, "cwd").resolve() == workdir.resolve():
                    return True
            except OSError:
                continue
    return False


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False
