"""No-change cycle benchmark: the real engine lists five vendor simulators; prints JSON.

Five simulated vendors (`--latency-ms` per request, no rate limit) each hold an account
for every person in the HR feed. One cycle links everything and pushes what it planned,
the engine lists everything once more as a daemon's first poll would, then one cycle in
which nothing changed is timed: every connector listed concurrently, as the daemon's
pollers do, each followed by what the engine does after a listing (resolve, plan).

* `no_change_seconds`: the wall time of that cycle.
* `page_bound_seconds`: what its pages alone cost: the most pages any connector listed
  times the latency (connectors list in parallel).
* `no_change_ratio`: the first over the second; `peak_rss_mb`: the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import anyio

from bench.database import bench_database
from bench.propagate import (
    SETUP_RATE,
    VENDORS,
    World,
    database_options,
    each_connector,
    settle,
    warnings_to_stderr,
)
from connectors.sim.fleet import simulator_fleet
from syncd.engine import Engine, ListingResult

GOAL = 1.2


async def cycle(engine: Engine) -> dict[str, ListingResult]:
    """List every connector concurrently, each followed by the engine's planning."""
    return await each_connector(engine, engine.list_connector)


async def run(
    people: int, latency_ms: float, backend: str, workdir: Path, database: str
) -> dict[str, object]:
    """Set up the world, time one no-change cycle, and return the figures."""
    db_url = await bench_database(backend, workdir, database, "SYNCD_TEST_POSTGRES_URL")
    async with simulator_fleet(VENDORS) as fleet:
        world = World(fleet, workdir / "hr.csv", db_url)
        setup = await settle(world, people, SETUP_RATE)
        for sim in fleet.simulators.values():
            sim.settings.update({"rate": None, "burst": None, "latency_ms": latency_ms})
        async with Engine.open(world.config(SETUP_RATE), environ=world.env) as engine:
            await cycle(engine)  # the daemon's first poll after a start
            before = world.traffic()
            started = time.perf_counter()
            results = await cycle(engine)
            elapsed = time.perf_counter() - started
            after = world.traffic()
    pages = {name: after[name][0] - before[name][0] for name in fleet}
    bound = max(pages.values()) * latency_ms / 1000
    return {
        "people": people,
        "backend": backend,
        "no_change_seconds": round(elapsed, 3),
        "page_bound_seconds": round(bound, 3),
        "no_change_ratio": round(elapsed / bound, 3) if bound else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goal_ratio": GOAL,
        "pages": pages,
        "queued": {name: result.plan.queued for name, result in results.items()},
        "listing_seconds": {name: round(result.seconds, 3) for name, result in results.items()},
        "complete": all(result.complete for result in results.values()),
        "setup": setup,
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    database_options(parser, "syncd_bench_cycle")
    args = parser.parse_args()
    warnings_to_stderr()
    with tempfile.TemporaryDirectory(prefix="syncd-cycle-") as workdir:
        figures = anyio.run(
            run, args.people, args.latency_ms, args.backend, Path(workdir), args.database_name
        )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
