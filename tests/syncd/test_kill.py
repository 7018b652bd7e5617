"""kill -9 at random points of a bulk push to five vendors: no hire lost, none made twice."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import anyio

from connectors.sim.fleet import simulator_fleet
from tests.syncd.test_cli_engine import syncd
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import ENV, TOKEN, VENDOR_NAMES, person, write_feed

HIRES = 150
TRIALS = 10
EXISTING = 150  # users the vendors already hold: a lookup by listing is a scan of pages
LEASE_TTL = 1.0
SETTLE_SECONDS = 60.0  # how long the final runs may take to deliver retried operations


async def test_kill_9_mid_push_loses_no_hire_and_makes_none_twice(tmp_path: Path) -> None:
    seed = int(os.environ.get("SYNCD_KILL_SEED", time.time_ns() % 1_000_000))
    chance = random.Random(seed)
    async with simulator_fleet(VENDOR_NAMES, users=EXISTING, seed=seed, token=TOKEN) as fleet:
        sims, urls = fleet.simulators, fleet.urls
        for sim in sims.values():
            sim.settings.latency_ms = 40  # writes take a while, so kills land mid-push
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(HIRES)])
        config = tmp_path / "syncd.toml"
        # A killed run keeps the writer lease until its TTL runs out: keep that short.
        text = config_text(tmp_path / "g.db", feed, urls, free_port())
        config.write_text(text + f"\n[lease]\nttl = {LEASE_TTL}\n")
        killed = 0
        for _ in range(TRIALS):
            process = subprocess.Popen(  # noqa: ASYNC220  (starting it does not block)
                [sys.executable, "-m", "syncd.cli.main", "once", "--config", str(config)],
                env={**os.environ, **ENV},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await anyio.sleep(chance.uniform(0.7, 1.8))
            process.kill()
            killed += await anyio.to_thread.run_sync(process.wait) == -9  # not done already
            await anyio.sleep(LEASE_TTL + 0.2)  # the killed run's lease runs out
        assert killed >= TRIALS // 2, f"only {killed} runs were still working when killed"
        wanted = sorted(f"person{i}@corp.example" for i in range(HIRES))
        hires = set(wanted)
        for sim in sims.values():
            sim.settings.latency_ms = 0
        # An operation that failed while others wrote is retried after its backoff (2 s, 4 s,
        # 8 s... with jitter): keep running `once` until every hire arrived or a minute passed.
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            final = await syncd("once", "--config", str(config))
            held = {
                name: sorted(e for view in fleet[name].views() if (e := str(view.email)) in hires)
                for name in fleet
            }
            if all(emails == wanted for emails in held.values()) or time.monotonic() > deadline:
                break
            await anyio.sleep(0.5)
        for name, emails in held.items():
            assert emails == wanted, f"{name} (seed {seed}): {final.stderr[-2000:]}"
