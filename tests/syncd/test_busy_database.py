"""A busy database is a transient fault: `syncd run` rides it out, `syncd once` ends in one line."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio

from connectors.sim.base import VendorSimulator
from graph.db import SQLITE_BUSY_TIMEOUT_MS
from syncd.service.backstop import SHUTDOWN_BOUND
from syncd.service.daemon import DRAIN_GRACE
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_daemon import USED, config_text, free_port
from tests.syncd.test_engine import person, write_feed

PEOPLE = 30
TIMER_MARGIN = 5.0  # seconds past its deadline the last-resort timer may take to end us
BUSY_WAIT = SQLITE_BUSY_TIMEOUT_MS / 1000


def make_config(tmp_path: Path, urls: dict[str, str], *, rate: int, ttl: float) -> Path:
    """A daemon config on a SQLite file, with a client rate and a lease TTL."""
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(i) for i in range(PEOPLE)])
    text = config_text(tmp_path / "graph.db", feed, urls, free_port())
    config = tmp_path / "syncd.toml"
    config.write_text(text.replace("rate = 100", f"rate = {rate}") + f"\n[lease]\nttl = {ttl}\n")
    return config


def base_url(config: Path) -> str:
    """The health server's address a config names."""
    line = next(line for line in config.read_text().splitlines() if line.startswith("port ="))
    return f"http://127.0.0.1:{int(line.split('=')[1])}"


def states(path: Path) -> dict[str, int]:
    """How many operations are in each state."""
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        try:
            rows = db.execute("SELECT state, COUNT(*) FROM operation GROUP BY state").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
    return {state: count for state, count in rows}


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the SQLite file's write lock from another process's point of view."""
    blocker = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


async def readiness(client: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, object]]:
    """The /readyz status and body, or (0, {}) while it does not answer."""
    try:
        async with client.get(f"{base}/readyz") as response:
            return response.status, await response.json()
    except aiohttp.ClientError:
        return 0, {}


async def wait_ready(config: Path, process: subprocess.Popen[str], log_path: Path) -> None:
    """Wait until the daemon answers /readyz with 200 (failing if it exits first)."""
    async with aiohttp.ClientSession() as client:
        with anyio.fail_after(30):
            while (await readiness(client, base_url(config)))[0] != 200:
                assert process.poll() is None, log_path.read_text()[-3000:]  # noqa: ASYNC240
                await anyio.sleep(0.1)


@dataclass
class Running:
    """A `syncd run` process, its log file and its database file."""

    process: subprocess.Popen[str]
    log: Path
    db: Path

    def tail(self) -> str:
        """The end of the log, for a failed assertion."""
        return self.log.read_text()[-3000:]

    async def ended(self) -> tuple[int, float]:
        """Wait for the process to end: its exit code and how long that took."""
        started = time.monotonic()
        code = await anyio.to_thread.run_sync(lambda: self.process.wait(timeout=60))
        return code, time.monotonic() - started


@asynccontextmanager
async def daemon(config: Path, *, ready: bool = True) -> AsyncIterator[Running]:
    """Run `syncd run` on a config, its log beside it; killed if the test leaves it running."""
    log_path = config.parent / "daemon.log"
    with log_path.open("w") as log:
        process = start_syncd("run", config, stderr=log)
    try:
        if ready:
            await wait_ready(config, process, log_path)
        yield Running(process, log_path, config.parent / "graph.db")
    finally:
        stop(process)


def events(log: Path) -> list[dict[str, object]]:
    """The daemon's JSON log lines."""
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


async def test_a_database_locked_past_the_busy_timeout_is_ridden_out(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    running, urls = sims
    config = make_config(tmp_path, urls, rate=10, ttl=30)
    base = base_url(config)
    async with daemon(config, ready=False) as run, aiohttp.ClientSession() as client:
        # Wait until creates are being pushed (slowly, at 10 per second per vendor).
        with anyio.fail_after(60):
            while states(run.db).get("done", 0) < 1:
                assert run.process.poll() is None, run.tail()
                await anyio.sleep(0.1)
        assert states(run.db).get("pending", 0) + states(run.db).get("in_flight", 0) > 0
        outage: list[dict[str, object]] = []
        with locked(run.db):
            started = time.monotonic()
            # Past the 10 s busy timeout, until a write has hit it (later on a loaded machine).
            while time.monotonic() - started < 12 or (
                not any(_db_locked(body) for body in outage) and time.monotonic() - started < 45
            ):
                status, body = await readiness(client, base)
                if status == 503:
                    outage.append(body)
                await anyio.sleep(0.2)
        # Once the lock is gone, everything queued goes out and the daemon goes on.
        with anyio.fail_after(60):
            while set(now := states(run.db)) != {"done"}:
                assert run.process.poll() is None, run.tail()
                await anyio.sleep(0.2)
        with anyio.fail_after(30):
            while (await readiness(client, base))[0] != 200:
                assert run.process.poll() is None, run.tail()
                await anyio.sleep(0.2)
        assert now["done"] == PEOPLE * len(USED)
        for name in USED:
            assert len(running[name].users) == PEOPLE, name
        assert any(_db_locked(body) for body in outage), outage
        run.process.send_signal(signal.SIGTERM)
        assert (await run.ended())[0] == 0
    log_path = run.log
    logged = [event["event"] for event in events(log_path)]
    assert logged.count("database.unavailable") == 1, logged
    assert logged.count("database.recovered") == 1, logged
    unavailable = next(e for e in events(log_path) if e["event"] == "database.unavailable")
    assert unavailable["error"] == "OperationalError"
    assert "locked" in str(unavailable["reason"])
    assert "SELECT" not in log_path.read_text() and "UPDATE" not in log_path.read_text()


async def test_sigterm_while_a_write_waits_behind_a_lock_ends_within_the_bound(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    _, urls = sims
    config = make_config(tmp_path, urls, rate=100, ttl=60)
    async with daemon(config) as run:
        with locked(run.db):  # held until the process is gone
            await anyio.sleep(2)  # the pollers' next writes now wait behind the lock
            run.process.send_signal(signal.SIGTERM)
            code, elapsed = await run.ended()
    log_path = run.log
    output = log_path.read_text()
    # The last-resort timer ends it at the bound at the latest (a second for the timer itself).
    assert elapsed < SHUTDOWN_BOUND + TIMER_MARGIN, elapsed
    assert code == 75, output[-3000:]
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    logged = [event["event"] for event in events(log_path)]
    # Each write already begun runs to its end (up to a busy wait), so either the shutdown
    # finishes and says what it could not do, or the last-resort timer ends it and says so.
    if "daemon.shutdown_timeout" in logged:
        assert last.startswith("syncd run: shutdown did not finish within 30 s"), last
    else:
        assert last.startswith("syncd: syncd run stopped without putting operations in flight")
        assert "database is locked" in last
        assert "outbox.not_recovered" in logged, logged


async def test_once_behind_a_lock_ends_69_in_one_line_within_the_bound(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    running, urls = sims
    for sim in running.values():
        sim.settings.latency_ms = 200  # the cycle takes a while: the lock lands in the middle
    # The lease outlives the lock's effect, so the busy database, not a lost lease, ends it.
    config = make_config(tmp_path, urls, rate=100, ttl=120)
    db_path = tmp_path / "graph.db"
    process = start_syncd("once", config)
    try:
        with anyio.fail_after(30):
            while not leased_by(db_path, process.pid):
                assert process.poll() is None, process.communicate()[1]
                await anyio.sleep(0.05)
        with locked(db_path):  # held until the command has ended
            started = time.monotonic()
            _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=90))
            elapsed = time.monotonic() - started
    finally:
        stop(process)
    assert process.returncode == 69, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("syncd: database unavailable: database is locked"), stderr
    # One busy wait fails the cycle; from then on the shutdown bound holds.
    assert elapsed < BUSY_WAIT + SHUTDOWN_BOUND + TIMER_MARGIN, elapsed


def _db_locked(body: dict[str, object]) -> bool:
    """Whether a /readyz body says the database is locked."""
    database = body["checks"]["database"]  # type: ignore[index]
    return not database["ok"] and "locked" in database["reason"]  # type: ignore[no-any-return]


def leased_by(path: Path, pid: int) -> bool:
    """Whether the process `pid` holds the writer lease."""
    if not path.exists():
        return False
    with sqlite3.connect(path, timeout=30) as db:
        try:
            row = db.execute("SELECT pid FROM lease WHERE name = 'writer'").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return False
    return row is not None and row[0] == pid


async def test_sigterm_while_a_vendor_is_slow_ends_within_the_drain_grace(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    running, urls = sims
    config = make_config(tmp_path, urls, rate=100, ttl=30)
    async with daemon(config) as run:
        running["influitive"].settings.latency_ms = 60_000  # every request hangs a minute
        write_feed(tmp_path / "hr.csv", [person(i, title="Staff") for i in range(PEOPLE)])
        with anyio.fail_after(30):
            while states(run.db).get("in_flight", 0) == 0:  # noqa: ASYNC110  (stuck at the vendor)
                await anyio.sleep(0.05)
        run.process.send_signal(signal.SIGTERM)
        code, elapsed = await run.ended()
    db_path, log_path = run.db, run.log
    assert code == 0, log_path.read_text()[-3000:]
    assert elapsed < DRAIN_GRACE + 8, elapsed  # the drain grace, then quick clean-up
    assert states(db_path).get("in_flight", 0) == 0  # put back in the queue for the next start
    assert states(db_path).get("pending", 0) > 0


async def test_a_crashed_task_ends_the_daemon_within_the_bound(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    _, urls = sims
    config = make_config(tmp_path, urls, rate=100, ttl=30)
    async with daemon(config) as run:
        with sqlite3.connect(run.db, timeout=30) as db:
            db.execute("DROP TABLE connector_state")  # the next listing cannot be recorded
        code, elapsed = await run.ended()
    log_path = run.log
    output = log_path.read_text()
    assert elapsed < SHUTDOWN_BOUND, elapsed
    assert code == 69, output[-3000:]
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("syncd: database unavailable: no such table")
    crashed = [event for event in events(log_path) if event["event"] == "daemon.task_crashed"]
    assert crashed and str(crashed[0]["task"]).startswith("poll:"), crashed
    assert "database.unavailable" not in output  # a missing table is no outage to wait out
