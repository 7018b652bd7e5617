"""Leaver propagation benchmark: the real engine against five vendor simulators; prints JSON.

Five simulated vendors each hold an account for every person in a shared population (the
HR feed lists the same people). The simulators are seeded in-process with vendor-shaped
records, one engine cycle links them and leaves nothing to do, then:

* `leaver_seconds`: one person leaves the feed; from `apply_feed()` until the last vendor
  has answered the deactivation (all connectors pushed concurrently). Userflow has no
  deactivate, so four vendors deactivate.
* `batch_ratio`: with the guards raised, `--batch` people leave at once; the wall time
  over the floor the vendors' rate limits set (the most requests any vendor needs over its
  rate). Each simulator enforces `--rate` requests per second and each connector is
  configured with the same rate.

With `--authority scim` the people are SCIM users an IdP provisioned (bulk-loaded through
the graph), and a running daemon (`Daemon`, polls an hour apart) serves the SCIM listener:

* `scim_leaver_seconds`: an HTTP `PATCH /scim/v2/Users/{id}` with `active: false`; from
  sending it until the last vendor simulator shows the account deactivated (the simulators'
  state read in-process every 5 ms).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import anyio
import structlog

from bench.database import bench_database
from connectors.sim.base import SimPerson
from connectors.sim.fleet import Fleet, simulator_fleet
from graph import scim
from syncd.authority.scim.mapping import ENTERPRISE, SOURCE, person_record, user_emails
from syncd.cli.simfleet import fleet_config, fleet_environ
from syncd.config import Config
from syncd.engine import Engine, FeedResult
from syncd.push import PushStats
from syncd.service.daemon import Daemon

FIELDS = ["employee_id", "email", "given_name", "family_name", "title", "status"]
DOMAIN = "corp.example"
SETUP_RATE = 100_000.0  # client rate while seeding and linking; the simulators are unlimited
LEAVER_RUNS = 3
SCIM_LEAVER_RUNS = 7
BATCH_GOAL = 1.05  # issue 15: 1,000 leavers within 5 % of the rate-limit floor
LEAVER_GOAL = 1.0
SCIM_TOKEN_VARIABLE = "SYNCD_BENCH_SCIM_TOKEN"
SCIM_TOKEN = "bench-scim-token"  # loopback only
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
WATCH_INTERVAL = 0.005  # how often the simulators' state is read while a leaver propagates
WATCH_LIMIT = 30.0  # a leaver not everywhere by then is reported as such
DAEMON_POLL = 3600.0  # the daemon's listings: its first one only, during the measurement

T = TypeVar("T")
VENDORS = ("influitive", "thought_industries", "partnerize", "userflow", "appxite")


# -- the population --------------------------------------------------------------------------


def employee_id(index: int) -> str:
    """The HR id of person `index` (also their Userflow user id)."""
    return f"E{index:06d}"


def hr_row(index: int) -> dict[str, str]:
    """One HR row."""
    return {
        "employee_id": employee_id(index),
        "email": f"person{index}@{DOMAIN}",
        "given_name": f"Given{index}",
        "family_name": f"Family{index}",
        "title": "Engineer",
        "status": "active",
    }


def write_feed(path: Path, indexes: Iterable[int]) -> None:
    """Write the HR export for these people (atomically, as an exporter should)."""
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(hr_row(i) for i in indexes)
    partial.replace(path)


def sim_person(index: int) -> SimPerson:
    """Person `index` as the vendors hold them, matching what the feed asks for."""
    row = hr_row(index)
    return SimPerson(
        index=index,
        employee_id=row["employee_id"],
        email=row["email"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        title=row["title"],
    )


def scim_user(index: int) -> dict[str, Any]:
    """Person `index` as the IdP provisioned them: a SCIM User resource with its id."""
    row = hr_row(index)
    return {
        "schemas": [SCIM_USER, ENTERPRISE],
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "externalId": row["employee_id"],
        "userName": row["email"],
        "name": {"givenName": row["given_name"], "familyName": row["family_name"]},
        "emails": [{"value": row["email"], "type": "work", "primary": True}],
        "title": row["title"],
        "active": True,
        ENTERPRISE: {"employeeNumber": row["employee_id"]},
    }


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    """Running simulators, the HR file and the database."""

    fleet: Fleet
    feed: Path
    db_url: str
    ids: dict[str, list[str]] = field(default_factory=dict)

    authority: str = "hr"

    def config(
        self,
        rate: float,
        *,
        guard: dict[str, Any] | None = None,
        missing_share: float = 0.1,
        poll_interval: float = 300.0,
    ) -> Config:
        """The deployment's config at this client rate: the HR file, or a SCIM listener."""
        document: dict[str, Any] = {
            "database": {"url": self.db_url},
            "guard": guard or {},
            "push": {"base_delay": 0.05, "max_delay": 1.0},
            "health": {"port": 0},
        }
        if self.authority == "scim":
            document["scim"] = {"port": 0, "token": f"env:{SCIM_TOKEN_VARIABLE}"}
        else:
            document["authority"] = {"hr_feed": str(self.feed), "max_missing_share": missing_share}
        return fleet_config(
            self.fleet,
            document,
            rate=rate,
            poll_interval=poll_interval,
            provision={"domains": [DOMAIN]},
        )

    @property
    def env(self) -> dict[str, str]:
        """The environment that holds the simulators' secrets and the SCIM token."""
        return fleet_environ(self.fleet) | {SCIM_TOKEN_VARIABLE: SCIM_TOKEN}

    def deactivated_at(self, index: int) -> list[str]:
        """The vendors where person `index` is no longer active."""
        return [name for name in self.fleet if self.active_count(name, [index]) == 0]

    def seed(self, users: int) -> None:
        """Store every person's account at every vendor, straight into the simulators."""
        self.ids = self.fleet.seed(sim_person(index) for index in range(users))

    def limit(self, rate: float | None) -> None:
        """Set every simulator's server-side rate limit (None: unlimited)."""
        for sim in self.fleet.simulators.values():
            sim.settings.update({"rate": rate, "burst": None})

    def active_count(self, vendor: str, indexes: list[int]) -> int:
        """How many of these people are still active at the vendor."""
        sim = self.fleet[vendor].simulator
        return sum(sim.view(sim.users[self.ids[vendor][i]]).active for i in indexes)

    def traffic(self) -> dict[str, tuple[int, int]]:
        """Every vendor's (requests answered, 429s) so far."""
        return {
            name: (sum(sim.stats.requests.values()), sim.stats.throttled)
            for name, sim in self.fleet.simulators.items()
        }


async def each_connector(engine: Engine, work: Callable[[str], Awaitable[T]]) -> dict[str, T]:
    """Run `work` for every connector concurrently; its results by connector name."""
    results: dict[str, T] = {}

    async def one(name: str) -> None:
        results[name] = await work(name)

    async with anyio.create_task_group() as group:
        for name in engine.connectors:
            group.start_soon(one, name)
    return results


async def push_all(engine: Engine) -> dict[str, PushStats]:
    """Drain every connector's outbox concurrently."""
    return await each_connector(engine, engine.push)


async def provision_scim(engine: Engine, users: int) -> int:
    """Store every person as the SCIM user the IdP provisioned, with their graph person."""
    resources = [scim_user(index) for index in range(users)]
    async with engine.store.db.write() as conn:
        for resource in resources:
            await scim.save_resource(conn, "User", resource, user_emails(resource), version=1)
        records = [person_record(resource, ()) for resource in resources]
        stats = await engine.apply_people(conn, records, SOURCE, "bench")
        await scim.link_people(conn, [resource["id"] for resource in resources])
    return stats.created


async def provision(world: World, engine: Engine, users: int) -> int:
    """Bring the people into the graph through the world's authority; how many were created."""
    if world.authority == "scim":
        return await provision_scim(engine, users)
    write_feed(world.feed, range(users))
    return (await engine.apply_feed()).created


async def settle(world: World, users: int, rate: float) -> dict[str, object]:
    """Seed the vendors and run one full cycle so the graph is linked; report what it did."""
    started = time.perf_counter()
    world.seed(users)
    seeded = time.perf_counter() - started
    world.limit(None)
    guard = {"max_deactivations": 100_000, "max_deactivation_share": 1.0}
    started = time.perf_counter()
    queued: dict[str, int] = {}
    async with Engine.open(world.config(SETUP_RATE, guard=guard), environ=world.env) as engine:
        await engine.recover()
        created = await provision(world, engine, users)
        for name in engine.connectors:
            result = await engine.list_connector(name)
            if not result.complete:
                raise RuntimeError(f"setup listing of {name} failed: {result.error}")
            queued[name] = result.plan.queued
        pushed = await push_all(engine)
        # A second pass shows whether anything is left to do.
        replan = await engine.replan()
        await push_all(engine)
    return {
        "seed_seconds": round(seeded, 2),
        "cycle_seconds": round(time.perf_counter() - started, 2),
        "people_created": created,
        "queued_by_listing": queued,
        "pushed": {name: stats.done for name, stats in pushed.items()},
        "left_after_cycle": replan.queued,
        "rate": rate,
    }


# -- the measurements ------------------------------------------------------------------------


@dataclass
class Removal:
    """What removing people from the feed did: the feed's result, the pushes, the traffic."""

    feed: FeedResult
    pushed: dict[str, PushStats]
    requests: dict[str, int]
    throttled: dict[str, int]
    feed_seconds: float
    push_seconds: float

    @property
    def seconds(self) -> float:
        """From reading the feed until every vendor has answered every push."""
        return self.feed_seconds + self.push_seconds


async def remove(world: World, engine: Engine, remaining: list[int]) -> Removal:
    """Write the feed without the leavers; time the feed and the pushes until all vendors answer."""
    write_feed(world.feed, remaining)
    await anyio.sleep(1.0)  # the rate budgets refill: the run starts idle
    before = world.traffic()
    started = time.perf_counter()
    feed = await engine.apply_feed()
    fed = time.perf_counter()
    pushed = await push_all(engine)
    finished = time.perf_counter()
    after = world.traffic()
    return Removal(
        feed=feed,
        pushed=pushed,
        requests={name: after[name][0] - before[name][0] for name in world.fleet},
        throttled={name: after[name][1] - before[name][1] for name in world.fleet},
        feed_seconds=fed - started,
        push_seconds=finished - fed,
    )


async def leaver(world: World, engine: Engine, present: list[int], who: int) -> dict[str, object]:
    """Remove one person from the feed; time the feed and the pushes until all vendors answer."""
    run = await remove(world, engine, [i for i in present if i != who])
    deactivated = world.deactivated_at(who)
    return {
        "person": who,
        "seconds": round(run.seconds, 3),
        "feed_seconds": round(run.feed_seconds, 3),
        "push_seconds": round(run.push_seconds, 3),
        "deprovisioned": run.feed.deprovisioned,
        "vendors_deactivated": len(deactivated),
        "unsupported": run.feed.plan.unsupported,
        "requests": run.requests,
        "throttled": sum(run.throttled.values()),
        "push_done": sum(stats.done for stats in run.pushed.values()),
        "push_retried": sum(stats.retried for stats in run.pushed.values()),
    }


async def scim_leaver(
    world: World, session: aiohttp.ClientSession, url: str, who: int
) -> dict[str, object]:
    """PATCH one SCIM user inactive; time the answer and until every vendor that can deactivates."""
    body = {"schemas": [SCIM_PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    want = len(world.fleet) - 1  # Userflow has no deactivate
    await anyio.sleep(1.0)  # the rate budgets refill: the run starts idle
    started = time.perf_counter()
    async with session.patch(f"{url}/Users/{scim_user(who)['id']}", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"PATCH answered {response.status}: {await response.text()}")
    answered = time.perf_counter() - started
    with anyio.move_on_after(WATCH_LIMIT):
        while len(world.deactivated_at(who)) < want:  # noqa: ASYNC110  (simulator state)
            await anyio.sleep(WATCH_INTERVAL)
    return {
        "person": who,
        "seconds": round(time.perf_counter() - started, 3),
        "patch_answered_seconds": round(answered, 3),
        "vendors": len(world.deactivated_at(who)),
    }


async def daemon_ready(daemon: Daemon) -> str:
    """Wait until the daemon serves SCIM and each connector has listed once; the SCIM URL."""
    while daemon.scim_url is None or any(  # noqa: ASYNC110  (set by the daemon's tasks)
        health.last_success is None for health in daemon.health.values()
    ):
        await anyio.sleep(0.1)
    return daemon.scim_url


async def scim_leavers(
    world: World, rate: float, leavers: list[int], workdir: Path
) -> list[dict[str, object]]:
    """Run the daemon with its SCIM listener and send each leaver's PATCH in turn."""
    daemon = Daemon(workdir / "syncd.toml", world.env)
    config = world.config(rate, poll_interval=DAEMON_POLL)
    runs: list[dict[str, object]] = []

    async def measure() -> None:
        url = await daemon_ready(daemon)
        headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            for who in leavers:
                runs.append(await scim_leaver(world, session, url, who))
        daemon.stop()

    async with anyio.create_task_group() as group:
        group.start_soon(measure)
        await daemon.run(config)
    return runs


async def batch(
    world: World, engine: Engine, present: list[int], leavers: list[int], rate: float
) -> dict[str, object]:
    """Remove many people at once; time until every vendor has answered every deactivation."""
    gone = set(leavers)
    run = await remove(world, engine, [i for i in present if i not in gone])
    vendors: dict[str, dict[str, object]] = {}
    floors: list[float] = []
    for name in world.fleet:
        needed = run.requests[name] - run.throttled[name]
        floors.append(needed / rate)
        stats = run.pushed.get(name, PushStats())
        vendors[name] = {
            "requests": run.requests[name],
            "throttled": run.throttled[name],
            "requests_per_deactivation": round(needed / len(leavers), 3),
            "floor_seconds": round(needed / rate, 2),
            "still_active": world.active_count(name, leavers),
            "push_done": stats.done,
            "push_retried": stats.retried,
            "push_dead": stats.dead,
        }
    elapsed = run.seconds
    theoretical = max(floors)
    return {
        "leavers": len(leavers),
        "deprovisioned": run.feed.deprovisioned,
        "refused": run.feed.refused,
        "held": run.feed.plan.held,
        "queued": run.feed.plan.queued,
        "batch_seconds": round(elapsed, 2),
        "feed_seconds": round(run.feed_seconds, 2),
        "push_seconds": round(run.push_seconds, 2),
        "theoretical_seconds": round(theoretical, 2),
        "batch_ratio": round(elapsed / theoretical, 3) if theoretical else None,
        "vendors": vendors,
    }


async def run(
    users: int, size: int, rate: float, backend: str, workdir: Path, authority: str, database: str
) -> dict[str, object]:
    """Set up the world, measure, and return the figures."""
    if authority == "hr" and size + LEAVER_RUNS > users:
        raise SystemExit("--batch plus the single leavers must not exceed --users")
    db_url = await bench_database(backend, workdir, database, "SYNCD_TEST_POSTGRES_URL")
    runs = SCIM_LEAVER_RUNS if authority == "scim" else LEAVER_RUNS
    singles = [users - 1 - n * (users // (runs + 1)) for n in range(runs)]
    async with simulator_fleet(VENDORS) as fleet:
        world = World(fleet, workdir / "hr.csv", db_url, authority=authority)
        setup = await settle(world, users, rate)
        world.limit(rate)
        if authority == "scim":
            figures = scim_figures(await scim_leavers(world, rate, singles, workdir))
        else:
            figures = await hr_figures(world, users, size, rate, singles)
    return {
        "backend": backend,
        "authority": authority,
        "users": users,
        "vendors": len(VENDORS),
        "rate": rate,
        **figures,
        "setup": setup,
    }


def scim_figures(runs: list[dict[str, object]]) -> dict[str, object]:
    """The SCIM leavers' median and goal."""
    median = statistics.median(float(str(item["seconds"])) for item in runs)
    answered = statistics.median(float(str(item["patch_answered_seconds"])) for item in runs)
    return {
        "scim_leaver_seconds": round(median, 3),
        "scim_patch_answered_seconds": round(answered, 3),
        "vendors_deactivated": min(int(str(item["vendors"])) for item in runs),
        "goals_met": {"scim_leaver_seconds": median < LEAVER_GOAL},
        "goals": {"scim_leaver_seconds": f"< {LEAVER_GOAL:g}"},
        "scim_leaver_runs": runs,
    }


async def hr_figures(
    world: World, users: int, size: int, rate: float, singles: list[int]
) -> dict[str, object]:
    """HR-file leavers one at a time, then a batch of `size`."""
    present = list(range(users))
    runs = []
    async with Engine.open(world.config(rate), environ=world.env) as engine:
        for who in singles:
            runs.append(await leaver(world, engine, present, who))
            present.remove(who)

    leavers = [i for i in present if i % (len(present) // size or 1) == 0][:size]
    guard = {"max_deactivations": 100_000, "max_deactivation_share": 1.0}
    config = world.config(rate, guard=guard, missing_share=1.0)
    async with Engine.open(config, environ=world.env) as engine:
        mass = await batch(world, engine, present, leavers, rate)

    seconds = [float(str(item["seconds"])) for item in runs]
    median = statistics.median(seconds)
    ratio = mass["batch_ratio"]
    return {
        "leaver_seconds": round(median, 3),
        "vendors_deactivated": min(int(str(item["vendors_deactivated"])) for item in runs),
        "batch_seconds": mass["batch_seconds"],
        "theoretical_seconds": mass["theoretical_seconds"],
        "batch_ratio": ratio,
        "goals_met": {
            "leaver_seconds": median < LEAVER_GOAL,
            "batch_ratio": isinstance(ratio, float) and ratio <= BATCH_GOAL,
        },
        "goals": {"leaver_seconds": f"< {LEAVER_GOAL:g}", "batch_ratio": f"<= {BATCH_GOAL:g}"},
        "leaver_runs": runs,
        "batch": mass,
    }


def database_options(parser: argparse.ArgumentParser, name: str) -> None:
    """Add --backend and --database-name (a PostgreSQL database dropped and recreated)."""
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-name", default=name)


def warnings_to_stderr() -> None:
    """Keep stdout for the JSON; the engine's warnings go to stderr."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--authority", choices=("hr", "scim"), default="hr")
    database_options(parser, "syncd_bench_propagate")
    args = parser.parse_args()
    warnings_to_stderr()
    with tempfile.TemporaryDirectory(prefix="syncd-propagate-") as workdir:
        figures = anyio.run(
            run,
            args.users,
            args.batch,
            args.rate,
            args.backend,
            Path(workdir),
            args.authority,
            args.database_name,
        )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
