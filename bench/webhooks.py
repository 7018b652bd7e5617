"""Vendor-side change → graph, with and without a webhook hint: `syncd run` for real; prints JSON.

An Influitive and a Thought Industries simulator, each seeded with `--users` users, run
beside a `syncd run` process that lists each of them every `--poll` seconds and takes
their webhooks. A user is changed through the simulator's `/_sim/users` (as an admin
would change them in the vendor's UI), and the time until the graph holds the change is
measured:

* `hinted`: the simulators post their webhook; the daemon re-fetches that one user.
* `polled`: the simulators send nothing; each change comes at a random point of the poll
  cycle and waits for the next full listing (on average half the poll interval, plus the
  listing itself).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import sqlalchemy as sa

from bench.database import bench_database
from connectors.sim.fleet import Fleet, simulator_fleet
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from graph.db import Database, open_database
from graph.models import account_table
from syncd.cli.simfleet import fleet_environ, secret_references

# What each vendor's change is: the field at the vendor, and the attribute the graph keeps.
CHANGES = {"influitive": ("title", "title"), "thought_industries": ("firstName", "given_name")}
VIA = {"influitive": "header", "thought_industries": "path"}
SECRETS = {name: f"bench-hook-{name}-0123456789" for name in CHANGES}
TIMEOUT = 120.0  # seconds one change may take to arrive before the run gives up


def inline(table: dict[str, object]) -> str:
    """A TOML inline table of plain values."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in table.items()) + " }"


def config_text(db_url: str, fleet: Fleet, poll: float, rate: float) -> str:
    """The daemon's config: both connectors, their webhook secrets, ports picked by the OS."""
    lines = [
        f"[database]\nurl = {json.dumps(db_url)}",
        "[health]\nport = 0",
        "[webhooks]\nport = 0",
    ]
    for name, member in fleet.items():
        connection = member.connection
        secrets: dict[str, object] = dict(secret_references(name, connection))
        lines.append(
            f'[connectors.{name}]\nvendor = "{member.vendor}"\nbase_url = "{member.url}"\n'
            f"rate = {rate}\npoll_interval = {poll}\n"
            f"secrets = {inline(secrets)}\nsettings = {inline(dict(connection.settings))}\n"
            f'webhook = {{ secret = "env:BENCH_HOOK_{name.upper()}", in = "{VIA[name]}" }}'
        )
    return "\n\n".join(lines) + "\n"


def start(config: Path, environ: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `syncd run` under this interpreter, its log (JSON lines) into `log`."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "syncd.cli.main", "run", "--config", str(config)],
            env={**os.environ, **environ},
            stdout=subprocess.DEVNULL,
            stderr=output,
        )


@asynccontextmanager
async def daemon(config: Path, environ: dict[str, str], log: Path) -> AsyncIterator[dict[str, str]]:
    """Run `syncd run`; yield the URLs it logged (health, webhooks) once it is ready."""
    process = start(config, environ, log)
    try:
        urls: dict[str, str] = {}
        with anyio.fail_after(60):
            while len(urls) < 2:
                if process.poll() is not None:
                    raise SystemExit(f"syncd run exited {process.returncode}: see {log}")
                for line in (await anyio.Path(log).read_text()).splitlines():
                    entry = json.loads(line) if line.startswith("{") else {}
                    if entry.get("event") == "daemon.started":
                        urls["health"] = entry["health"]
                    if entry.get("event") == "webhooks.listening":
                        urls["webhooks"] = entry["url"]
                await anyio.sleep(0.05)
            async with aiohttp.ClientSession() as client:
                while True:
                    async with client.get(f"{urls['health']}/readyz") as answer:
                        if answer.status == 200:
                            break
                    await anyio.sleep(0.1)
        yield urls
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def held(db: Database, name: str, external_id: str, attribute: str) -> object:
    """The attribute as the graph holds it for one account."""
    async with db.read() as conn:
        text = (
            await conn.execute(
                sa.select(account_table.c.attributes_json).where(
                    account_table.c.connector == name, account_table.c.external_id == external_id
                )
            )
        ).scalar_one_or_none()
    return None if text is None else json.loads(text).get(attribute)


async def change_once(
    client: aiohttp.ClientSession, db: Database, fleet: Fleet, name: str, index: int, mark: str
) -> float:
    """Change user `index` at the vendor; seconds until the graph holds the change."""
    field, attribute = CHANGES[name]
    user = {**fleet[name].users()[index], field: mark}
    started = time.monotonic()
    async with client.post(f"{fleet.urls[name]}/_sim/users", json=[user]) as answer:
        answer.raise_for_status()
    key = str(user[fleet[name].simulator.id_key])
    with anyio.fail_after(TIMEOUT):
        while await held(db, name, key, attribute) != mark:  # noqa: ASYNC110
            await anyio.sleep(0.005)
    return time.monotonic() - started


async def phase(
    db: Database, fleet: Fleet, label: str, changes: int, spread: float = 0.0
) -> dict[str, object]:
    """`changes` changes per vendor, each after a random pause of up to `spread` seconds."""
    waits: dict[str, list[float]] = {name: [] for name in CHANGES}
    rng = random.Random(len(label))  # timing jitter, not security

    async def vendor(name: str) -> None:
        async with aiohttp.ClientSession() as client:
            for index in range(changes):
                await anyio.sleep(rng.uniform(0, spread))
                mark = f"{label}-{index}"
                waits[name].append(await change_once(client, db, fleet, name, index, mark))

    async with anyio.create_task_group() as tasks:
        for name in CHANGES:
            tasks.start_soon(vendor, name)
    every = [wait for values in waits.values() for wait in values]
    return {
        "changes": len(every),
        "median_seconds": round(statistics.median(every), 3),
        "max_seconds": round(max(every), 3),
        "by_vendor": {name: [round(wait, 3) for wait in values] for name, values in waits.items()},
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    """Start the vendors and the daemon, measure both phases."""
    users, changes, poll, rate, backend = (
        args.users,
        args.changes,
        args.poll,
        args.rate,
        args.backend,
    )
    db_url = await bench_database(backend, workdir, args.database_name, "SYNCD_BENCH_POSTGRES_URL")
    sims: dict[str, InfluitiveSimulator | ThoughtIndustriesSimulator] = {
        "influitive": InfluitiveSimulator(users=users, webhook_secret=SECRETS["influitive"]),
        "thought_industries": ThoughtIndustriesSimulator(
            users=users, seed=1, webhook_secret=SECRETS["thought_industries"], webhook_via="path"
        ),
    }
    async with simulator_fleet(sims) as fleet:
        config = workdir / "syncd.toml"
        config.write_text(config_text(db_url, fleet, poll, rate))
        environ = fleet_environ(fleet)
        environ.update({f"BENCH_HOOK_{name.upper()}": SECRETS[name] for name in CHANGES})
        db = await open_database(db_url)
        try:
            async with daemon(config, environ, workdir / "daemon.log") as urls:
                for name, sim in sims.items():
                    sim.webhooks.url = f"{urls['webhooks']}/webhooks/{name}"
                hinted = await phase(db, fleet, "hinted", changes)
                for sim in sims.values():
                    sim.webhooks.url = None
                polled = await phase(db, fleet, "polled", max(2, changes // 3), spread=poll)
        finally:
            await db.close()
    hinted_median, polled_median = (float(str(p["median_seconds"])) for p in (hinted, polled))
    return {
        "benchmark": "webhooks",
        "backend": backend,
        "users_per_vendor": users,
        "poll_interval_seconds": poll,
        "rate_per_second": rate,
        "hinted": hinted,
        "polled": polled,
        "speedup_median": round(polled_median / max(hinted_median, 1e-6), 1),
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-name", default="syncd_bench_webhooks")  # dropped, recreated
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-webhooks-") as workdir:
        figures = anyio.run(run, args, Path(workdir))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
