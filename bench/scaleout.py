"""Scale-out benchmark: pages per second with 1, 2 and 3 `syncd run` replicas; prints JSON.

`--instances` connector instances (the five vendors in turn) are served by simulators in a
child process, each holding `--users` accounts, answering after `--latency-ms` and limited
to `--rate` requests per second (the vendor's limit; each connector's config says the same).
For each replica count, a fresh PostgreSQL database and that many `syncd run` processes
with `lease.replicas = true` poll every instance continuously (`poll_interval` 0.2 s).
Once every lease is held and every instance has been listed once, the vendors' request
counters are read over `--window` seconds.

* `pages_per_second`: listing pages the vendors answered per second, all instances together.
* `vendor_limit_pages_per_second`: `--instances` x `--rate`: the most the vendors allow.
* `throttled`: 429s the vendors answered in the window; `leases_held`: leases per replica.
* `replica_cpu_seconds`: CPU the replicas used in the window, together;
  `vendor_cpu_seconds`: CPU the simulators' one process used meanwhile (near the window,
  the simulators and not the replicas set the pace).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path

import anyio
import asyncpg
from sqlalchemy.engine import make_url

from bench.database import DEFAULT_POSTGRES, fresh_postgres
from bench.propagate import VENDORS, warnings_to_stderr
from connectors.sim.fleet import simulator_fleet
from syncd.cli.simfleet import fleet_connectors, fleet_environ

POLL_INTERVAL = 0.2
TTL = 6.0
BURST = 2  # the vendors allow what each connector's budget sends at once (its default burst)


def instance_names(instances: int) -> dict[str, str]:
    """Connector name to vendor, the five vendors in turn."""
    return {f"{VENDORS[i % len(VENDORS)]}_{i}": VENDORS[i % len(VENDORS)] for i in range(instances)}


async def serve_vendors(
    pipe: Connection, instances: int, users: int, rate: float, latency_ms: float
) -> None:
    """Serve the simulators; send their connector tables and environment; answer traffic."""
    warnings_to_stderr()
    async with simulator_fleet(instance_names(instances), users=users) as fleet:
        for sim in fleet.simulators.values():
            sim.settings.update({"rate": rate, "burst": BURST, "latency_ms": latency_ms})
        tables = fleet_connectors(fleet, rate=rate, poll_interval=POLL_INTERVAL)
        pipe.send((tables, fleet_environ(fleet)))
        with suppress(EOFError):  # the parent closed its end
            while await anyio.to_thread.run_sync(pipe.recv) == "traffic":
                pipe.send(
                    (
                        time.process_time(),
                        {
                            name: (
                                sum(
                                    n
                                    for (method, _, status), n in sim.stats.requests.items()
                                    if method == "GET" and status == 200
                                ),
                                sim.stats.throttled,
                            )
                            for name, sim in fleet.simulators.items()
                        },
                    )
                )


def vendors_process(
    pipe: Connection, instances: int, users: int, rate: float, latency_ms: float
) -> None:
    """The child process: the simulators until the parent says stop."""
    anyio.run(serve_vendors, pipe, instances, users, rate, latency_ms)


def toml_value(value: object) -> str:
    """A value as TOML: strings, numbers and booleans as JSON writes them; tables inline."""
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def write_config(path: Path, db_url: str, tables: dict[str, dict[str, object]]) -> None:
    """A replica's config: the database, replicas on, a free health port, the connectors."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lines = [
        f"[database]\nurl = {json.dumps(db_url)}",
        f"[lease]\nttl = {TTL}\nreplicas = true",
        f"[health]\nport = {port}",
    ]
    for name, table in tables.items():
        body = "\n".join(f"{key} = {toml_value(value)}" for key, value in table.items())
        lines.append(f"[connectors.{name}]\n{body}")
    path.write_text("\n\n".join(lines) + "\n")


async def leases_held(db_url: str) -> dict[int, int]:
    """How many live leases each holder's process holds."""
    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT holder FROM lease WHERE name <> 'writer' AND expires_at > statement_timestamp()"
        )
        total = await conn.fetchval("SELECT count(*) FROM lease WHERE name <> 'writer'")
    finally:
        await conn.close()
    held: dict[int, int] = {}
    for row in rows:
        pid = int(row["holder"].rsplit(":", 2)[1])
        held[pid] = held.get(pid, 0) + 1
    return held if sum(held.values()) == total and total else {}


async def traffic(pipe: Connection) -> tuple[float, dict[str, tuple[int, int]]]:
    """The vendors' process CPU so far, and each instance's (pages answered, 429s)."""
    pipe.send("traffic")
    answer: tuple[float, dict[str, tuple[int, int]]] = await anyio.to_thread.run_sync(pipe.recv)
    return answer


def stop(process: subprocess.Popen[bytes]) -> None:
    """Wait for a replica told to stop; kill it if it takes more than 30 s."""
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes used so far (from /proc)."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def measure(
    replicas: int,
    pipe: Connection,
    tables: dict[str, dict[str, object]],
    environ: dict[str, str],
    workdir: Path,
    database: str,
    window: float,
) -> dict[str, object]:
    """Run `replicas` replicas on a fresh database; the vendors' traffic over the window."""
    server = os.environ.get("SYNCD_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    db_url = await fresh_postgres(server, f"{database}_{replicas}")
    processes = []
    logs = []
    for index in range(replicas):
        config = workdir / f"replica{replicas}_{index}.toml"
        write_config(config, db_url, tables)
        log = (workdir / f"replica{replicas}_{index}.log").open("w")
        logs.append(log)
        processes.append(
            subprocess.Popen(  # noqa: ASYNC220  (starting it does not block)
                [sys.executable, "-m", "syncd.cli.main", "run", "--config", str(config)],
                env={**os.environ, **environ},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )
    try:
        with anyio.fail_after(120):
            while len(held := await leases_held(db_url)) < replicas:
                for process in processes:
                    if process.poll() is not None:
                        raise SystemExit(f"a replica stopped: see {workdir}")
                await anyio.sleep(0.2)
            while any(pages == 0 for pages, _ in (await traffic(pipe))[1].values()):  # noqa: ASYNC110
                await anyio.sleep(0.2)
        await anyio.sleep(2 * POLL_INTERVAL + 1)  # every instance past its first listing
        (vendor_cpu, before), cpu = await traffic(pipe), cpu_seconds([p.pid for p in processes])
        await anyio.sleep(window)
        (vendor_cpu_after, after) = await traffic(pipe)
        cpu = cpu_seconds([p.pid for p in processes]) - cpu
        held = await leases_held(db_url)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            await anyio.to_thread.run_sync(stop, process)
        for log in logs:
            log.close()
    pages = sum(after[name][0] - before[name][0] for name in after)
    throttled = sum(after[name][1] - before[name][1] for name in after)
    return {
        "pages_per_second": round(pages / window, 1),
        "throttled": throttled,
        "replica_cpu_seconds": round(cpu, 2),
        "vendor_cpu_seconds": round(vendor_cpu_after - vendor_cpu, 2),
        "leases_held": sorted(held.values(), reverse=True),
    }


async def run(
    counts: list[int],
    instances: int,
    users: int,
    rate: float,
    latency_ms: float,
    window: float,
    workdir: Path,
    database: str,
) -> dict[str, object]:
    """Start the vendors' process, measure each replica count in turn, return the figures."""
    context = multiprocessing.get_context("spawn")
    pipe, child_end = context.Pipe()
    child = context.Process(
        target=vendors_process, args=(child_end, instances, users, rate, latency_ms)
    )
    child.start()
    child_end.close()
    try:
        tables, environ = await anyio.to_thread.run_sync(pipe.recv)
        results = {
            str(count): await measure(count, pipe, tables, environ, workdir, database, window)
            for count in counts
        }
    finally:
        pipe.close()
        await anyio.to_thread.run_sync(child.join)
    return {
        "instances": instances,
        "users_per_instance": users,
        "rate_per_instance": rate,
        "latency_ms": latency_ms,
        "window_seconds": window,
        "vendor_limit_pages_per_second": instances * rate,
        "cpus": os.cpu_count(),
        "replicas": results,
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="1,2,3", help="replica counts, comma-separated")
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument(
        "--database-name",
        default="syncd_bench_scaleout",
        help="PostgreSQL databases NAME_1, NAME_2... are dropped and made afresh "
        "(the server: $SYNCD_TEST_POSTGRES_URL, else the local one)",
    )
    args = parser.parse_args()
    try:
        counts = [int(item) for item in args.replicas.split(",")]
    except ValueError:
        parser.error("--replicas: comma-separated whole numbers, such as 1,2,3")
    if not counts or min(counts) < 1 or args.instances < 1 or args.users < 1 or args.window <= 0:
        parser.error("--replicas, --instances and --users must be at least 1; --window above 0")
    warnings_to_stderr()
    with tempfile.TemporaryDirectory(prefix="syncd-scaleout-") as workdir:
        figures = anyio.run(
            run,
            counts,
            args.instances,
            args.users,
            args.rate,
            args.latency_ms,
            args.window,
            Path(workdir),
            args.database_name,
        )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
