"""An authority's leaver with the daemon running: `apply_people` to the last vendor; prints JSON.

The IdP's path without its HTTP layer: the population arrives through `Engine.apply_people`
(source "scim", as the SCIM server calls it), the five simulators hold an account for
everyone and one cycle links them. Then `syncd run`'s daemon runs in-process, and for each
leaver the clock runs from the transaction that applies the deprovisioned record (and its
plan) until the last vendor that can deactivate (four; Userflow cannot) answers. Nothing
but the commit hook wakes the pushers: the connectors poll once an hour here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from bench.database import bench_database
from bench.propagate import (
    DOMAIN,
    SETUP_RATE,
    VENDORS,
    employee_id,
    hr_row,
    parse_common,
    push_all,
    sim_person,
)
from connectors.sim.fleet import Fleet, simulator_fleet
from graph.records import PersonRecord
from syncd.cli.simfleet import fleet_config, fleet_environ
from syncd.config import Config
from syncd.engine import Engine
from syncd.service.daemon import Daemon

SOURCE, ACTOR = "scim", "idp"
GOAL = 1.0
SETTLE_TIMEOUT = 600.0
CONFIRM_TIMEOUT = 30.0


def idp_record(index: int, lifecycle: str = "active") -> PersonRecord:
    """Person `index` as the IdP describes them (the same person the vendors hold)."""
    row = hr_row(index)
    return PersonRecord(
        email=row["email"],
        authority_id=employee_id(index),
        given_name=row["given_name"],
        family_name=row["family_name"],
        lifecycle=lifecycle,
        attributes={"title": row["title"]},
    )


def deployment(fleet: Fleet, db_url: str, rate: float, poll_interval: float) -> Config:
    """No HR file; the IdP is the authority; the health server on a free port."""
    document = {
        "database": {"url": db_url},
        "health": {"port": 0},
        "guard": {"max_deactivations": 100_000, "max_deactivation_share": 1.0},
        "push": {"base_delay": 0.05, "max_delay": 1.0},
    }
    return fleet_config(
        fleet, document, rate=rate, poll_interval=poll_interval, provision={"domains": [DOMAIN]}
    )


async def settle(
    fleet: Fleet, db_url: str, users: int
) -> tuple[dict[str, list[str]], dict[str, object]]:
    """Seed the vendors, let the IdP provision everyone, link and push: nothing left to do."""
    started = time.perf_counter()
    ids = fleet.seed(sim_person(index) for index in range(users))
    async with Engine.open(deployment(fleet, db_url, SETUP_RATE, 3600), fleet_environ(fleet)) as e:
        async with e.store.db.write() as conn:
            stats = await e.apply_people(conn, [idp_record(i) for i in range(users)], SOURCE, ACTOR)
        for name in e.connectors:
            if not (await e.list_connector(name)).complete:
                raise RuntimeError(f"setup listing of {name} failed")
        await push_all(e)
        left = (await e.replan()).queued
    return ids, {
        "created": stats.created,
        "left_after_cycle": left,
        "seconds": time.perf_counter() - started,
    }


def limit(fleet: Fleet, rate: float | None) -> None:
    """Set every simulator's server-side rate limit (None: unlimited)."""
    for sim in fleet.simulators.values():
        sim.settings.update({"rate": rate, "burst": None})


def active_at(fleet: Fleet, ids: dict[str, list[str]], index: int) -> list[str]:
    """The vendors that can deactivate and still hold person `index` active."""
    found = []
    for name in VENDORS:
        sim = fleet[name].simulator
        if name != "userflow" and sim.view(sim.users[ids[name][index]]).active:
            found.append(name)
    return found


async def leaver(
    daemon: Daemon, fleet: Fleet, ids: dict[str, list[str]], index: int
) -> dict[str, object]:
    """Apply one deprovisioned record; time until no vendor holds them active."""
    assert daemon.engine is not None
    engine = daemon.engine
    await anyio.sleep(1.0)  # the rate budgets refill: the run starts idle
    started = time.perf_counter()
    async with engine.store.db.write() as conn:
        await engine.apply_people(conn, [idp_record(index, "deprovisioned")], SOURCE, ACTOR)
    engine.committed()
    applied = time.perf_counter()
    rates = {name: round(connector.budget.rate, 1) for name, connector in engine.connectors.items()}
    confirmed: dict[str, float] = {}
    with anyio.fail_after(CONFIRM_TIMEOUT):
        while waiting := active_at(fleet, ids, index):
            now = time.perf_counter() - started
            for name in VENDORS:
                if name != "userflow" and name not in waiting:
                    confirmed.setdefault(name, round(now, 3))
            await anyio.sleep(0.002)
    finished = time.perf_counter()
    return {
        "person": index,
        "seconds": round(finished - started, 3),
        "apply_seconds": round(applied - started, 3),
        "confirmed_by_vendor": confirmed,
        "budget_rates": rates,
    }


def listed(daemon: Daemon) -> bool:
    """Whether the daemon has finished its first listing of every connector."""
    health = daemon.health.values()
    return bool(health) and all(item.last_success is not None for item in health)


async def run(
    users: int, runs: int, rate: float, backend: str, database: str, workdir: Path
) -> dict[str, object]:
    """Set up the world, start the daemon, time the leavers."""
    db_url = await bench_database(backend, workdir, database, "SYNCD_TEST_POSTGRES_URL")
    async with simulator_fleet(VENDORS) as fleet:
        limit(fleet, None)
        ids, setup = await settle(fleet, db_url, users)
        limit(fleet, rate)
        config = deployment(fleet, db_url, rate, 3600)
        daemon = Daemon(workdir / "syncd.toml", fleet_environ(fleet))
        measured = []
        async with anyio.create_task_group() as group:
            group.start_soon(daemon.run, config)
            with anyio.fail_after(SETTLE_TIMEOUT):
                while not listed(daemon):  # noqa: ASYNC110  (the daemon's state, polled)
                    await anyio.sleep(0.1)
            for n in range(runs):
                who = users - 1 - n * (users // (runs + 1))
                measured.append(await leaver(daemon, fleet, ids, who))
            daemon.stop()
    median = statistics.median(float(str(item["seconds"])) for item in measured)
    return {
        "backend": backend,
        "users": users,
        "vendors_deactivating": len(VENDORS) - 1,
        "rate": rate,
        "leaver_seconds": round(median, 3),
        "goal": f"< {GOAL:g}",
        "goal_met": median < GOAL,
        "runs": measured,
        "setup": {
            key: round(value, 2) if isinstance(value, float) else value
            for key, value in setup.items()
        },
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="syncd_bench_authority", help="PostgreSQL only")
    args = parse_common(parser, users=5_000)
    with tempfile.TemporaryDirectory(prefix="syncd-authority-leaver-") as workdir:
        figures = anyio.run(
            run, args.users, args.runs, args.rate, args.backend, args.database, Path(workdir)
        )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
