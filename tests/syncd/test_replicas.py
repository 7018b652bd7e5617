"""Three `syncd run` replicas on one PostgreSQL: kill -9, SIGSTOP, and nothing pushed twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import asyncpg
from sqlalchemy.engine import make_url

from connectors.sim.fleet import Fleet, simulator_fleet
from graph.db import upgrade_database
from tests.conftest import _fresh_postgres_url
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import TOKEN, VENDOR_NAMES, person, write_feed

PEOPLE = 2_000
KILLS = 20
TTL = 3.0
# A lease expires at most TTL after its holder died (sooner if it was last renewed earlier);
# the others look for expired leases every tenth of the TTL. One second more is for a busy
# machine (three replicas, five simulators and PostgreSQL on two cores).
TAKEOVER_BOUND = 1.1 * TTL + 1.0
SETTLE_SECONDS = 420.0
TITLED = ("influitive", "userflow", "appxite")  # the vendors that keep a title
DEACTIVATING = ("influitive", "thought_industries", "partnerize", "appxite")


async def _database() -> str:
    url = await _fresh_postgres_url()  # skips, saying why, without PostgreSQL
    await upgrade_database(url)
    return url


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Replica:
    """One `syncd run` process and the config it was started with."""

    config: Path
    log: Path
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start it (again), its stderr appended to its log."""
        with self.log.open("a") as sink:
            self.process = start_syncd("run", self.config, stderr=sink)

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.process is not None
        return self.process.pid


def _replica_configs(
    tmp_path: Path, url: str, feed: Path, fleet: Fleet, count: int
) -> list[Replica]:
    """`count` replicas with one config each, alike but for the health port."""
    made = []
    for index in range(count):
        text = config_text(tmp_path / "unused.db", feed, fleet.urls, free_port())
        text = text.replace(f'url = "sqlite:///{tmp_path / "unused.db"}"', f'url = "{url}"')
        text += (
            f"\n[lease]\nttl = {TTL}\nreplicas = true\n"
            "\n[guard]\nmax_deactivations = 100000\nmax_deactivation_share = 1.0\n"
        )
        config = tmp_path / f"replica{index}.toml"
        config.write_text(text)
        made.append(Replica(config, tmp_path / f"replica{index}.log"))
    return made


async def _holders(url: str) -> dict[str, int | None]:
    """Each shared lease and the pid of its live holder (None: expired)."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT name, holder, expires_at > statement_timestamp() AS live FROM lease "
            "WHERE name <> 'writer'"
        )
    finally:
        await conn.close()
    return {
        row["name"]: int(row["holder"].rsplit(":", 2)[1]) if row["live"] else None for row in rows
    }


async def _all_held(url: str, pids: Sequence[int], within: float, *, shared: bool = False) -> float:
    """Seconds until every lease is held by one of `pids` (`shared`: each holds some).

    Fails past `within` seconds.
    """
    started = time.monotonic()
    names = {"authority", *(f"connector:{name}" for name in VENDOR_NAMES)}
    while True:
        holders = await _holders(url)
        held = set(holders) == names and all(pid in pids for pid in holders.values())
        if held and (not shared or set(holders.values()) == set(pids)):
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"leases not all held by {pids}: {holders}"
        await anyio.sleep(0.1)


def _problems(fleet: Fleet, rows: Sequence[dict[str, str]]) -> list[str]:
    """How the vendors differ from the HR file: duplicates, missing hires, stale titles, leavers."""
    problems = []
    for name in VENDOR_NAMES:
        views = fleet[name].views()
        counts = Counter((view.email or "").casefold() for view in views)
        problems += [f"{name}: {email} held {n} times" for email, n in counts.items() if n > 1]
        by_email = {(view.email or "").casefold(): view for view in views}
        for row in rows:
            view = by_email.get(row["email"])
            if view is None:
                problems.append(f"{name}: {row['email']} missing")
            elif row["status"] == "active" and not view.active:
                problems.append(f"{name}: {row['email']} not active")
            elif row["status"] != "active" and view.active and name in DEACTIVATING:
                problems.append(f"{name}: leaver {row['email']} still active")
            elif row["status"] == "active" and name in TITLED and view.title != row["title"]:
                problems.append(f"{name}: {row['email']} title {view.title!r}")
    return problems


async def _settled(fleet: Fleet, rows: Sequence[dict[str, str]]) -> list[str]:
    """Wait until the vendors match the HR file (or the time runs out); what still differs."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (problems := _problems(fleet, rows)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(1.0)
    return problems


def _titled(index: int, row: dict[str, str]) -> dict[str, str]:
    """Every seventh person is promoted."""
    return {**row, "title": "Staff Engineer"} if index % 7 == 0 else row


def _leaving(index: int, row: dict[str, str]) -> dict[str, str]:
    """Every eleventh person (from the second on) leaves."""
    return {**row, "status": "terminated"} if index % 11 == 1 else row


def _duplicates(fleet: Fleet) -> dict[str, int]:
    return {name: fleet[name].simulator.stats.duplicate_writes() for name in VENDOR_NAMES}


def _tails(replicas: Sequence[Replica]) -> str:
    return "\n".join(f"--- {r.log.name}\n{r.log.read_text()[-3000:]}" for r in replicas)


@asynccontextmanager
async def _running(replicas: Sequence[Replica]) -> AsyncIterator[None]:
    for replica in replicas:
        replica.start()
    try:
        yield
    finally:
        for replica in replicas:
            if replica.process is not None:
                if replica.process.poll() is None:
                    os.kill(replica.pid, signal.SIGCONT)
                stop(replica.process)


async def test_three_replicas_share_the_work_and_survive_kill_9(tmp_path: Path) -> None:
    url = await _database()
    seed = int(os.environ.get("SYNCD_KILL_SEED", time.time_ns() % 1_000_000))
    chance = random.Random(seed)
    async with simulator_fleet(VENDOR_NAMES, token=TOKEN, seed=seed) as fleet:
        for sim in fleet.simulators.values():
            sim.settings.latency_ms = 5
        feed = tmp_path / "hr.csv"
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(feed, rows)
        replicas = _replica_configs(tmp_path, url, feed, fleet, 3)
        # The HR file changes while replicas die: titles, then leavers, then new hires.
        changes: dict[int, Callable[[list[dict[str, str]]], list[dict[str, str]]]] = {
            5: lambda now: [_titled(i, r) for i, r in enumerate(now)],
            10: lambda now: [_leaving(i, r) for i, r in enumerate(now)],
            15: lambda now: now + [person(PEOPLE + i) for i in range(200)],
        }
        async with _running(replicas):
            await _all_held(url, [r.pid for r in replicas], within=30)
            takeovers = []
            for kill in range(KILLS):
                await anyio.sleep(chance.uniform(0.3, 2.5))
                if kill in changes:
                    rows = changes[kill](rows)
                    write_feed(feed, rows)
                victim = replicas[chance.randrange(len(replicas))]
                assert victim.process is not None and victim.process.poll() is None, _tails(
                    replicas
                )
                victim.process.kill()
                await anyio.to_thread.run_sync(victim.process.wait)
                survivors = [r.pid for r in replicas if r is not victim]
                takeovers.append(await _all_held(url, survivors, within=TAKEOVER_BOUND))
                victim.start()
            problems = await _settled(fleet, rows)
            assert not problems, f"seed {seed}: {problems[:10]}\n{_tails(replicas)}"
            assert _duplicates(fleet) == dict.fromkeys(VENDOR_NAMES, 0), f"seed {seed}"
            # Some kills landed mid-push: a new holder found writes left in flight.
            assert any("outbox.recovered" in replica.log.read_text() for replica in replicas)
            print(f"takeovers after kill -9 (s): {sorted(round(t, 2) for t in takeovers)}")
            assert max(takeovers) <= TAKEOVER_BOUND
            for replica in replicas:  # and each stops cleanly, giving its leases back
                assert replica.process is not None
                replica.process.send_signal(signal.SIGTERM)
            for replica in replicas:
                assert replica.process is not None
                code = await anyio.to_thread.run_sync(replica.process.wait)
                assert code == 0, _tails(replicas)
            assert set((await _holders(url)).values()) == {None}


async def test_a_replica_paused_past_its_ttl_writes_nothing_after_waking(tmp_path: Path) -> None:
    url = await _database()
    async with simulator_fleet(VENDOR_NAMES, token=TOKEN) as fleet:
        for sim in fleet.simulators.values():
            sim.settings.latency_ms = 30  # writes take a while, so the pause lands mid-push
        feed = tmp_path / "hr.csv"
        rows = [person(i) for i in range(400)]
        write_feed(feed, rows)
        first, second = _replica_configs(tmp_path, url, feed, fleet, 2)
        async with _running([first]):
            await _all_held(url, [first.pid], within=30)
            while sum(len(fleet[n].simulator.stats.writes) for n in VENDOR_NAMES) < 50:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            os.kill(first.pid, signal.SIGSTOP)
            async with _running([second]):
                await _all_held(url, [second.pid], within=TAKEOVER_BOUND + 2)
                for sim in fleet.simulators.values():
                    sim.settings.latency_ms = 0
                problems = await _settled(fleet, rows)
                assert not problems, f"{problems[:10]}\n{_tails([first, second])}"
                woke = time.time()
                os.kill(first.pid, signal.SIGCONT)
                await anyio.sleep(3 * TTL)  # it wakes, finds its leases gone, rejoins
                late = [
                    (name, write)
                    for name in VENDOR_NAMES
                    for write in fleet[name].simulator.stats.writes
                    if float(write["at"]) > woke  # type: ignore[arg-type]
                ]
                assert late == [], _tails([first, second])
                assert _duplicates(fleet) == dict.fromkeys(VENDOR_NAMES, 0)
                assert first.process is not None and first.process.poll() is None
                assert "lease.lost" in first.log.read_text()


def _port(config: Path) -> int:
    line = next(line for line in config.read_text().splitlines() if line.startswith("port ="))
    return int(line.split("=")[1])


async def _get(client: aiohttp.ClientSession, replica: Replica, path: str) -> tuple[int, str]:
    async with client.get(f"http://127.0.0.1:{_port(replica.config)}/{path}") as response:
        return response.status, await response.text()


async def test_each_replica_serves_its_health_and_a_sigterm_moves_work_at_once(
    tmp_path: Path,
) -> None:
    url = await _database()
    async with simulator_fleet(VENDOR_NAMES, token=TOKEN) as fleet:
        feed = tmp_path / "hr.csv"
        rows = [person(i) for i in range(20)]
        write_feed(feed, rows)
        replicas = _replica_configs(tmp_path, url, feed, fleet, 2)
        async with _running(replicas), aiohttp.ClientSession() as client:
            await _all_held(url, [r.pid for r in replicas], within=30)
            assert not await _settled(fleet, rows)
            with anyio.fail_after(30):  # each is ready: it holds its share or stands by
                for replica in replicas:
                    while (await _get(client, replica, "readyz"))[0] != 200:  # noqa: ASYNC110
                        await anyio.sleep(0.1)
            await _all_held(url, [r.pid for r in replicas], within=30, shared=True)  # balanced
            ids = set()
            for replica in replicas:
                status = json.loads((await _get(client, replica, "status"))[1])
                ids.add(status["replica"])
                assert str(replica.pid) in status["replica"]
                assert len(status["replicas"]) == 2
                assert set(status["leases"]) == {
                    "authority",
                    *(f"connector:{name}" for name in VENDOR_NAMES),
                }
                here = {
                    n for n, item in status["leases"].items() if item["holder"] == status["replica"]
                }
                assert set(status["connectors"]) == {
                    name.removeprefix("connector:") for name in here if name != "authority"
                }
                metrics = (await _get(client, replica, "metrics"))[1]
                samples = [line for line in metrics.splitlines() if line and line[0] != "#"]
                label = f'replica="{status["replica"]}"'
                assert samples and all(label in line for line in samples)
            holders = {item["holder"] for item in status["leases"].values()}
            assert holders <= ids and len(holders) == 2  # both work
            first, second = replicas
            assert first.process is not None
            first.process.send_signal(signal.SIGTERM)
            assert await anyio.to_thread.run_sync(first.process.wait) == 0
            # Given back, not left to run out: the other holds everything within one round.
            assert await _all_held(url, [second.pid], within=TTL) < TTL
