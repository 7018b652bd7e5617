"""`syncd run` as a real subprocess against the simulators: health, sd_notify, signals."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.sim.base import VendorSimulator
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_engine import SECRETS, SETTINGS, TOKEN, person, write_feed

USED = ("influitive", "partnerize", "appxite")


def free_port() -> int:
    """A loopback port nobody holds right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(db: Path, feed: Path, urls: dict[str, str], port: int) -> str:
    """A TOML config for the daemon."""
    lines = [
        f'[database]\nurl = "sqlite:///{db}"',
        f'[authority]\nhr_feed = "{feed}"\npoll_interval = 0.2',
        f"[health]\nport = {port}",
        "[push]\nbase_delay = 0.05\nmax_delay = 0.2",
    ]
    for name, url in urls.items():
        secrets = ", ".join(f'{key} = "{value}"' for key, value in SECRETS[name].items())
        settings = ", ".join(
            f"{key} = {json.dumps(value)}" for key, value in SETTINGS.get(name, {}).items()
        )
        lines.append(
            f'[connectors.{name}]\nvendor = "{name}"\nbase_url = "{url}"\nrate = 100\n'
            f"poll_interval = 0.3\nstaleness_limit = 1.5\nsecrets = {{ {secrets} }}\n"
            f"settings = {{ {settings} }}\n"
            f'provision = {{ domains = ["corp.example"] }}'
        )
    return "\n\n".join(lines) + "\n"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


async def readyz(client: aiohttp.ClientSession, base: str) -> int:
    """The /readyz status, or 0 while the server is not up."""
    try:
        async with client.get(f"{base}/readyz") as response:
            return response.status
    except aiohttp.ClientError:
        return 0


async def wait_for(client: aiohttp.ClientSession, base: str, status: int, seconds: float) -> None:
    """Poll /readyz until it answers `status`."""
    with anyio.fail_after(seconds):
        while await readyz(client, base) != status:  # noqa: ASYNC110  (another process)
            await anyio.sleep(0.1)


async def test_the_daemon_in_production(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]],
    notify_socket: socket.socket,
    tmp_path: Path,
) -> None:
    running, urls = sims
    running["influitive"].settings.latency_ms = 300  # the first listing takes a moment
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(i) for i in range(6)])
    port = free_port()
    config = tmp_path / "syncd.toml"
    config.write_text(config_text(tmp_path / "syncd.db", feed, urls, port))
    log = (tmp_path / "daemon.log").open("w+")
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "400000"}
    process = start_syncd("run", config, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as client:
            with anyio.fail_after(15):
                while (first := await readyz(client, base)) == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            assert first == 503
            await wait_for(client, base, 200, 20)
            running["influitive"].settings.latency_ms = 0

            # An outage turns readiness 503, and recovery turns it back.
            running["partnerize"].settings.faults.server_error_share = 1.0
            await wait_for(client, base, 503, 15)
            async with client.get(f"{base}/readyz") as response:
                body = await response.json()
            assert body["checks"]["connector:partnerize"]["ok"] is False
            running["partnerize"].settings.faults.server_error_share = 0.0
            await wait_for(client, base, 200, 15)

            async with client.get(f"{base}/metrics") as response:
                metrics = await response.text()
            names = {family.name for family in text_string_to_metric_families(metrics)}
            assert {"syncd_vendor_requests", "syncd_outbox_operations"} <= names
            async with client.get(f"{base}/status") as response:
                status = await response.text()
            async with client.get(f"{base}/livez") as response:
                assert response.status == 200
            for text in (metrics, status, body.__repr__()):
                assert TOKEN not in text and "@corp.example" not in text

        messages = []
        while True:
            try:
                messages.append(notify_socket.recv(4096).decode())
            except BlockingIOError:
                break
        assert any("READY=1" in message for message in messages)
        assert any("WATCHDOG=1" in message for message in messages)

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        stop(process)
    with sqlite3.connect(tmp_path / "syncd.db") as db:
        in_flight = db.execute("SELECT COUNT(*) FROM operation WHERE state = 'in_flight'")
        assert in_flight.fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM operation WHERE state = 'done'").fetchone()[0] > 0
    log.seek(0)
    output = log.read()
    assert TOKEN not in output
    assert "daemon.started" in output


def test_a_bad_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[connectors.x]\nvendor = "influitive"\nrate = -1\n')
    result = subprocess.run(
        [sys.executable, "-m", "syncd.cli.main", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 78
    assert "connectors.x.rate" in result.stderr
