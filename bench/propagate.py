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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog

from bench.database import bench_database
from connectors.sim.base import SimPerson
from connectors.sim.fleet import Fleet, simulator_fleet
from syncd.cli.simfleet import fleet_config, fleet_environ
from syncd.config import Config
from syncd.engine import Engine, FeedResult
from syncd.push import PushStats

FIELDS = ["employee_id", "email", "given_name", "family_name", "title", "status"]
DOMAIN = "corp.example"
SETUP_RATE = 100_000.0  # client rate while seeding and linking; the simulators are unlimited
LEAVER_RUNS = 3
BATCH_GOAL = 1.10
LEAVER_GOAL = 1.0

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


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    """Running simulators, the HR file and the database."""

    fleet: Fleet
    feed: Path
    db_url: str
    ids: dict[str, list[str]] = field(default_factory=dict)

    def config(
        self, rate: float, *, guard: dict[str, Any] | None = None, missing_share: float = 0.1
    ) -> Config:
        """The deployment's config at this client rate."""
        document = {
            "database": {"url": self.db_url},
            "authority": {"hr_feed": str(self.feed), "max_missing_share": missing_share},
            "guard": guard or {},
            "push": {"base_delay": 0.05, "max_delay": 1.0},
        }
        return fleet_config(self.fleet, document, rate=rate, provision={"domains": [DOMAIN]})

    @property
    def env(self) -> dict[str, str]:
        """The environment that holds the simulators' secrets."""
        return fleet_environ(self.fleet)

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


async def push_all(engine: Engine) -> dict[str, PushStats]:
    """Drain every connector's outbox concurrently."""
    results: dict[str, PushStats] = {}

    async def one(name: str) -> None:
        results[name] = await engine.push(name)

    async with anyio.create_task_group() as group:
        for name in engine.connectors:
            group.start_soon(one, name)
    return results


async def settle(world: World, users: int, rate: float) -> dict[str, object]:
    """Seed the vendors and run one full cycle so the graph is linked; report what it did."""
    started = time.perf_counter()
    world.seed(users)
    seeded = time.perf_counter() - started
    write_feed(world.feed, range(users))
    world.limit(None)
    guard = {"max_deactivations": 100_000, "max_deactivation_share": 1.0}
    started = time.perf_counter()
    queued: dict[str, int] = {}
    async with Engine.open(world.config(SETUP_RATE, guard=guard), environ=world.env) as engine:
        await engine.recover()
        feed = await engine.apply_feed()
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
        "people_created": feed.created,
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
    deactivated = [name for name in world.fleet if world.active_count(name, [who]) == 0]
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


async def run(users: int, size: int, rate: float, backend: str, workdir: Path) -> dict[str, object]:
    """Set up the world, measure, and return the figures."""
    if size + LEAVER_RUNS > users:
        raise SystemExit("--batch plus the single leavers must not exceed --users")
    db_url = await bench_database(
        backend, workdir, "syncd_bench_propagate", "SYNCD_TEST_POSTGRES_URL"
    )
    async with simulator_fleet(VENDORS) as fleet:
        world = World(fleet, workdir / "hr.csv", db_url)
        setup = await settle(world, users, rate)

        world.limit(rate)
        present = list(range(users))
        singles = [users - 1 - n * (users // (LEAVER_RUNS + 1)) for n in range(LEAVER_RUNS)]
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
        "backend": backend,
        "users": users,
        "vendors": len(VENDORS),
        "rate": rate,
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
        "setup": setup,
    }


def parse_common(parser: argparse.ArgumentParser, users: int) -> argparse.Namespace:
    """Add the options every propagation benchmark takes, parse, and send logs to stderr."""
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    # Keep stdout for the JSON; the engine's warnings go to stderr.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    return args


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parse_common(parser, users=10_000)
    with tempfile.TemporaryDirectory(prefix="syncd-propagate-") as workdir:
        figures = anyio.run(run, args.users, args.batch, args.rate, args.backend, Path(workdir))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
