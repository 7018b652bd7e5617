"""No-change cycle benchmark: the real engine lists five vendor simulators; prints JSON.

Five simulated vendors (`--latency-ms` per request, no rate limit) each hold an account
for every person in the HR feed. The simulators run in a child process, as remote vendors
would, so that serving pages costs the measured process nothing; the child also sets the
world up (seeds the vendors, runs one cycle that links everything and pushes what it
planned). The benchmark's own process then opens a fresh engine, plans everyone once and
lists everything once, as a daemon's start and first poll would, and times one cycle in
which nothing changed: every connector listed concurrently, as the daemon's pollers do,
each followed by what the engine does after a listing (resolve, plan).

* `no_change_seconds`: the wall time of that cycle.
* `page_bound_seconds`: what its pages alone cost: the most pages any connector listed
  times the latency (connectors list in parallel).
* `no_change_ratio`: the first over the second; `peak_rss_mb`: the peak RSS of the
  engine's process (the simulators' process is not counted).
* `cpu_seconds`: the CPU the engine's process used in that cycle (all its threads): on a
  shared machine a steadier figure than the wall time.
* `simulator_cpu_seconds`: the CPU the simulators' process used meanwhile: near the wall
  time, the vendors (one Python process for all five) and not the engine set the pace.
* `listing_only_seconds`: the same listings again, every connector's pages fetched and
  mapped concurrently with nothing stored or planned: the floor the HTTP round trips set
  (at 5 ms a bare aiohttp client already needs about 1.2 x the latency per page on one
  machine), so `over_listing_ratio`, the cycle over it, is what the engine itself adds.
* `start_pass_seconds`: the daemon's full pass at its start (everyone against every
  connector, once); `first_poll_seconds`: the cycle after it (listings plan only who
  changed since the pass).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from contextlib import aclosing, suppress
from multiprocessing.connection import Connection
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


async def listing_only(engine: Engine) -> float:
    """List every connector concurrently, storing nothing; return the wall time."""

    async def drain(name: str) -> None:
        async with aclosing(engine.connectors[name].list_pages()) as pages:
            async for _ in pages:
                pass

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for name in engine.connectors:
            tasks.start_soon(drain, name)
    return time.perf_counter() - started


async def serve_world(
    pipe: Connection, people: int, latency_ms: float, backend: str, workdir: Path, database: str
) -> None:
    """Set the world up, send its config, then serve the vendors and answer traffic queries."""
    warnings_to_stderr()
    db_url = await bench_database(backend, workdir, database, "SYNCD_TEST_POSTGRES_URL")
    async with simulator_fleet(VENDORS) as fleet:
        world = World(fleet, workdir / "hr.csv", db_url)
        setup = await settle(world, people, SETUP_RATE)
        for sim in fleet.simulators.values():
            sim.settings.update({"rate": None, "burst": None, "latency_ms": latency_ms})
        pipe.send((world.config(SETUP_RATE), world.env, setup))
        with suppress(EOFError):  # the parent closed its end: it stopped, maybe on an error
            while await anyio.to_thread.run_sync(pipe.recv) == "traffic":
                pipe.send((world.traffic(), time.process_time()))


def world_process(
    pipe: Connection, people: int, latency_ms: float, backend: str, workdir: Path, database: str
) -> None:
    """The child process: the simulators (and the setup) until the parent says stop."""
    anyio.run(serve_world, pipe, people, latency_ms, backend, workdir, database)


async def traffic(pipe: Connection) -> tuple[dict[str, tuple[int, int]], float]:
    """Every vendor's (requests answered, 429s) so far, and the simulators' process CPU."""
    pipe.send("traffic")
    answer: tuple[dict[str, tuple[int, int]], float] = await anyio.to_thread.run_sync(pipe.recv)
    return answer


async def run(
    people: int, latency_ms: float, backend: str, workdir: Path, database: str
) -> dict[str, object]:
    """Start the world's process, time one no-change cycle, and return the figures."""
    pipe, child_end = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=world_process,
        args=(child_end, people, latency_ms, backend, workdir, database),
    )
    child.start()
    child_end.close()  # the child's death then ends `recv` with EOFError instead of a hang
    try:
        config, environ, setup = await anyio.to_thread.run_sync(pipe.recv)
        async with Engine.open(config, environ=environ) as engine:
            started_pass = time.perf_counter()
            await engine.replan(start=True)  # what a daemon does at its start
            start_pass = time.perf_counter() - started_pass
            await cycle(engine)  # the daemon's first poll after a start
            first_poll = time.perf_counter() - started_pass - start_pass
            before, sim_cpu = await traffic(pipe)
            started, cpu = time.perf_counter(), time.process_time()
            results = await cycle(engine)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            after, sim_cpu_after = await traffic(pipe)
            floor = await listing_only(engine)
    finally:
        pipe.close()  # the child stops serving, also when this process failed
        await anyio.to_thread.run_sync(child.join)
    pages = {name: after[name][0] - before[name][0] for name in after}
    bound = max(pages.values()) * latency_ms / 1000
    return {
        "people": people,
        "backend": backend,
        "no_change_seconds": round(elapsed, 3),
        "page_bound_seconds": round(bound, 3),
        "cpu_seconds": round(cpu, 3),
        "simulator_cpu_seconds": round(sim_cpu_after - sim_cpu, 3),
        "no_change_ratio": round(elapsed / bound, 3) if bound else None,
        "listing_only_seconds": round(floor, 3),
        "over_listing_ratio": round(elapsed / floor, 3),
        "start_pass_seconds": round(start_pass, 3),
        "first_poll_seconds": round(first_poll, 3),
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
