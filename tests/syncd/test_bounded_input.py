"""Input from vendors is bounded: a body past the cap is an incomplete listing."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa

from connectors.sim.base import VendorSimulator
from connectors.sim.fleet import simulator_fleet
from graph.models import account_table
from syncd.cli.simfleet import fleet_config, fleet_environ
from syncd.engine import Engine
from tests.syncd.test_engine import person, write_feed

MiB = 1024 * 1024


@asynccontextmanager
async def hub(db_url: str, feed: Path) -> AsyncIterator[tuple[VendorSimulator, Engine]]:
    """An Influitive hub of 30 advocates and an engine whose connector reads at most 1 MiB."""
    async with simulator_fleet({"hub": "influitive"}, users=30, seed=3) as fleet:
        document = {"database": {"url": db_url}, "authority": {"hr_feed": str(feed)}}
        config = fleet_config(fleet, document, rate=200, max_response_bytes=MiB)
        async with Engine.open(config, fleet_environ(fleet)) as engine:
            yield fleet["hub"].simulator, engine


async def test_a_body_past_the_cap_is_an_incomplete_listing(db_url: str, tmp_path: Path) -> None:
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(0)])
    async with hub(db_url, feed) as (sim, engine):
        first = await engine.list_connector("hub")
        assert first.complete and first.accounts == 30, first.error
        sim.settings.faults.body_bytes = 64 * MiB
        before = sim.stats.to_json()["requests"]
        tracemalloc.start()
        try:
            second = await engine.list_connector("hub")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert not second.complete
        assert second.error == (
            f"ResponseTooLargeError: influitive: GET /contacts -> response larger than {MiB} bytes"
        )
        assert peak < 16 * MiB  # the body was 64 MiB
        assert sim.stats.to_json()["requests"] == before + 1  # never retried
        async with engine.store.db.read() as conn:
            missing = await conn.scalar(
                sa.select(sa.func.count()).where(account_table.c.missing_since.is_not(None))
            )
        assert missing == 0  # an incomplete listing marks nothing missing


async def test_a_record_that_cannot_be_stored_marks_nothing_missing(
    db_url: str, tmp_path: Path
) -> None:
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(0)])
    async with hub(db_url, feed) as (sim, engine):
        first = await engine.list_connector("hub")
        assert first.complete, first.error
        victim = next(iter(sim.users.values()))
        victim["email"] = "a" * 1_000 + "@corp.example"  # too long to be an address
        second = await engine.list_connector("hub")
        # The listing counts (leavers still go) but proves nothing missing.
        assert second.complete
        assert second.error == "1 records could not be stored (see ingest.rejected)"
        async with engine.store.db.read() as conn:
            missing = await conn.scalar(
                sa.select(sa.func.count()).where(account_table.c.missing_since.is_not(None))
            )
        assert missing == 0  # the account is still there; it only could not be read
