"""One writer per database: `syncd run` and `once` as real processes on one graph."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from connectors.sim.fleet import simulator_fleet
from graph import lease
from graph.db import open_database
from tests.syncd.processes import Processes, start_syncd, stop
from tests.syncd.test_daemon import USED, config_text, free_port
from tests.syncd.test_engine import TOKEN, person, write_feed

TTL = 4.0


@pytest.fixture
async def urls() -> AsyncIterator[dict[str, str]]:
    """Three vendor simulators on loopback, by connector name."""
    async with simulator_fleet(USED, token=TOKEN) as fleet:
        yield fleet.urls


def lease_config(tmp_path: Path, db_url: str, urls: dict[str, str], name: str) -> Path:
    """A config on `db_url` with a short writer lease and a health port of its own."""
    feed = tmp_path / "hr.csv"
    if not feed.exists():
        write_feed(feed, [person(i) for i in range(4)])
    text = config_text(tmp_path / "unused.db", feed, urls, free_port())
    text = text.replace(f'url = "sqlite:///{tmp_path / "unused.db"}"', f'url = "{db_url}"')
    config = tmp_path / f"{name}.toml"
    config.write_text(text + f"\n[lease]\nttl = {TTL}\n")
    return config


def port_of(config: Path) -> int:
    """The health port a config names."""
    line = next(line for line in config.read_text().splitlines() if line.startswith("port ="))
    return int(line.split("=")[1])


async def wait_live(
    config: Path, process: subprocess.Popen[str], seconds: float = 30, path: str = "readyz"
) -> None:
    """Wait for `path` to answer 200 (/livez: it holds the lease; /readyz: it handles signals)."""
    url = f"http://127.0.0.1:{port_of(config)}/{path}"
    async with aiohttp.ClientSession() as client:
        with anyio.fail_after(seconds):
            while True:
                assert process.poll() is None, process.communicate()[1]
                try:
                    async with client.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await anyio.sleep(0.1)


async def live_writer(
    processes: Processes, config: Path, seconds: float = 30, path: str = "readyz"
) -> subprocess.Popen[str]:
    """Start `syncd run` on the config and wait until it answers on `path` (see wait_live)."""
    process = processes.start("run", config)
    await wait_live(config, process, seconds, path)
    return process


async def refused(config: Path, command: str = "run", *args: str) -> str:
    """Run a second writer, which must exit 75 with one line; return that line."""
    process = start_syncd(command, config, *args)
    try:
        _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=60))
    finally:
        stop(process)
    assert process.returncode == 75, stderr
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert "another syncd writes to this database" in line
    return line


async def test_one_writer_takeover_after_kill_and_release_on_sigterm(
    urls: dict[str, str], db_url: str, tmp_path: Path, processes: Processes
) -> None:
    first_config = lease_config(tmp_path, db_url, urls, "first")
    first = await live_writer(processes, first_config)
    line = await refused(lease_config(tmp_path, db_url, urls, "second"))
    assert f"pid {first.pid} since" in line and "expires" in line
    assert "pid" in await refused(first_config, "once")
    # An operator's decisions do not need the lease: they work while the daemon runs.
    approve = processes.start("approve", first_config)
    _, stderr = await anyio.to_thread.run_sync(lambda: approve.communicate(timeout=60))
    assert approve.returncode == 0, stderr

    # kill -9: nobody releases; the lease is taken over once its TTL has run out.
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = time.monotonic()
    db = await open_database(db_url)
    try:
        with pytest.raises(lease.LeaseHeld, match=f"pid {first.pid} since"):
            await lease.acquire(db, lease.WRITER, "early", ttl=TTL)
    finally:
        await db.close()
    await anyio.sleep(max(0.0, TTL + 0.2 - (time.monotonic() - killed)))
    third_config = lease_config(tmp_path, db_url, urls, "third")
    third = await live_writer(processes, third_config)

    # SIGTERM releases at once: the next writer starts without waiting for the TTL.
    third.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(lambda: third.wait(timeout=15)) == 0
    fourth_config = lease_config(tmp_path, db_url, urls, "fourth")
    fourth = await live_writer(processes, fourth_config, seconds=TTL * 5)
    fourth.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(lambda: fourth.wait(timeout=15)) == 0


async def test_a_paused_holder_stops_writing_once_its_lease_is_gone(
    urls: dict[str, str], db_url: str, tmp_path: Path, processes: Processes
) -> None:
    first_config = lease_config(tmp_path, db_url, urls, "first")
    first = await live_writer(processes, first_config)
    first.send_signal(signal.SIGSTOP)
    await anyio.sleep(TTL + 0.5)
    second = None
    if not db_url.startswith("sqlite"):
        # PostgreSQL: a new writer takes over while the old one is frozen. (On SQLite
        # the frozen process may hold the database's one write lock: nobody can.)
        second_config = lease_config(tmp_path, db_url, urls, "second")
        # Only the lease: the paused holder may still hold row locks its listing needs.
        second = await live_writer(processes, second_config, path="livez")
    first.send_signal(signal.SIGCONT)
    _, stderr = await anyio.to_thread.run_sync(lambda: first.communicate(timeout=30))
    assert first.returncode == 75, stderr
    assert "Traceback" not in stderr
    assert "writer lease was lost" in stderr.strip().splitlines()[-1]
    assert second is None or second.poll() is None  # the new holder goes on


async def test_a_holder_that_cannot_reach_its_database_stops(
    urls: dict[str, str], tmp_path: Path, processes: Processes
) -> None:
    path = tmp_path / "graph.db"
    config = lease_config(tmp_path, f"sqlite:///{path}", urls, "first")
    process = await live_writer(processes, config)
    blocker = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # nobody else can write, renewals included
        _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=60))
    finally:
        blocker.close()
    assert process.returncode == 75, stderr
    assert "Traceback" not in stderr
    assert "not renewed within its 4 s TTL" in stderr.strip().splitlines()[-1]
