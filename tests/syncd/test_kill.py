"""kill -9 at random points of a bulk push to five vendors: no hire lost, none made twice."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from connectors.sim import serve
from tests.syncd.test_cli_engine import syncd
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import ENV, SIMS, person, write_feed

HIRES = 150
TRIALS = 10
EXISTING = 150  # users the vendors already hold: a lookup by listing is a scan of pages
LEASE_TTL = 1.0


def email_of(user: dict[str, Any]) -> str:
    """A vendor user's email, whatever the vendor calls the field."""
    email = user.get("email") or user.get("Email") or (user.get("attributes") or {}).get("email")
    return str(email).lower()


async def test_kill_9_mid_push_loses_no_hire_and_makes_none_twice(tmp_path: Path) -> None:
    seed = int(os.environ.get("SYNCD_KILL_SEED", time.time_ns() % 1_000_000))
    chance = random.Random(seed)
    sims = {name: make() for name, make in SIMS.items()}
    for sim in sims.values():
        sim.settings.latency_ms = 40  # writes take a while, so kills land mid-push
        for index in range(EXISTING):
            sim.add_user(sim.seed_user(index, chance))
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(sim)) for name, sim in sims.items()}
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(HIRES)])
        config = tmp_path / "syncd.toml"
        # A killed run keeps the writer lease until its TTL runs out: keep that short.
        text = config_text(tmp_path / "g.db", feed, urls, free_port())
        config.write_text(text + f"\n[lease]\nttl = {LEASE_TTL}\n")
        killed = 0
        for _ in range(TRIALS):
            process = subprocess.Popen(  # noqa: ASYNC220  (starting it does not block)
                [sys.executable, "-m", "syncd.cli", "once", "--config", str(config)],
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
        for _ in range(4):  # a lookup that failed while others wrote is retried, with backoff
            final = await syncd("once", "--config", str(config))
            held = {
                name: sorted(e for e in map(email_of, sim.users.values()) if e in hires)
                for name, sim in sims.items()
            }
            if all(emails == wanted for emails in held.values()):
                break
            await anyio.sleep(0.3)
        for name, emails in held.items():
            assert emails == wanted, f"{name} (seed {seed}): {final.stderr[-2000:]}"
