"""Replicas sharing leases on one PostgreSQL: claims, takeovers, balance, release, fencing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import pytest
import sqlalchemy as sa

from graph import lease, replicas
from graph.db import Database, open_database, upgrade_database
from graph.models import lease_table
from syncd.service.shares import Shares, fair_share
from syncd.service.writer import Held
from tests.conftest import _fresh_postgres_url

TTL = 1.5
NAMES = [lease.AUTHORITY, *(f"{lease.CONNECTOR}c{i}" for i in range(5))]


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    """A fresh PostgreSQL graph (replicas need PostgreSQL; skipped, saying why, without it)."""
    url = await _fresh_postgres_url()
    await upgrade_database(url)
    opened = await open_database(url)
    try:
        yield opened
    finally:
        await opened.close()


class Recorder:
    """The work a replica runs, as the set of leases whose work is running."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.abandoned: list[str] = []
        self.finished: list[str] = []

    def begin(self, name: str, held: Held) -> None:
        """Start a lease's work."""
        assert name not in self.running
        self.running.add(name)

    def abandon(self, name: str) -> None:
        """Stop at once: the lease moved."""
        self.running.discard(name)
        self.abandoned.append(name)

    async def finish(self, name: str) -> None:
        """Stop, letting writes end."""
        await anyio.sleep(0.05)
        self.running.discard(name)
        self.finished.append(name)


def test_a_replica_holds_at_most_its_fair_share() -> None:
    assert fair_share(31, 1) == 32
    assert fair_share(31, 3) == 12
    assert fair_share(6, 3) == 3
    assert fair_share(6, 0) == 7  # before its first beat a replica counts itself


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110  (the condition is another task's state)
            await anyio.sleep(0.05)


def _disjoint_cover(works: Sequence[Recorder]) -> bool:
    held = [name for work in works for name in work.running]
    return sorted(held) == sorted(NAMES)


async def test_replicas_divide_the_leases_and_take_over_a_dead_ones(db: Database) -> None:
    first, second = Recorder(), Recorder()
    one = Shares(db, NAMES, TTL, "one", first)
    two = Shares(db, NAMES, TTL, "two", second)
    async with anyio.create_task_group() as tasks:
        alone = anyio.CancelScope()

        async def run_first() -> None:
            with alone:
                await one.run()

        tasks.start_soon(run_first)
        await _until(lambda: first.running == set(NAMES))  # alone: it holds everything
        tasks.start_soon(two.run)
        # The second joins: the first gives back what is over its share, the second claims it.
        await _until(lambda: _disjoint_cover([first, second]) and len(first.running) <= 4)
        assert len(second.running) >= 2 and first.finished
        tokens = {name: held.lease.token for name, held in one.held.items()}
        alone.cancel()  # the first dies without a word: its leases run out, then move
        with anyio.fail_after(TTL * 2 + 1):
            await _until(lambda: second.running == set(NAMES))
        _, taken = await lease.listing(db)
        moved = {row.name: row.token for row in taken if row.name in tokens}
        assert all(moved[name] > token for name, token in tokens.items())  # fencing tokens rose
        assert all(not held.valid() for held in one.held.values())
        await two.give_back_all()
        tasks.cancel_scope.cancel()
    now, rows = await lease.listing(db)
    assert all(row.expires_at <= now for row in rows)  # released, not left to run out
    assert [item.id for item in await replicas.live(db, TTL)] == []


async def test_a_lost_lease_stops_its_work_and_fences_writes(db: Database) -> None:
    work = Recorder()
    shares = Shares(db, NAMES, TTL, "one", work)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(shares.run)
        await _until(lambda: work.running == set(NAMES))
        held = shares.held[NAMES[1]]
        assert held.valid() and shares.valid(NAMES[1])
        # Another process takes the row over (as after a long pause of this one).
        async with db.write() as conn:
            await conn.execute(
                sa.update(lease_table)
                .where(lease_table.c.name == NAMES[1])
                .values(holder="thief", token=lease_table.c.token + 1)
            )
        await _until(lambda: NAMES[1] in work.abandoned, TTL)
        assert not held.valid() and not shares.valid(NAMES[1])
        tasks.cancel_scope.cancel()


async def test_leases_run_on_the_database_clock(db: Database) -> None:
    await lease.ensure(db, NAMES)
    got = await lease.claim(db, NAMES[0], "one", 30)
    assert got is not None and got.token == 1
    # Both ends come from the same statement's database time: exactly one TTL apart.
    assert (got.expires_at - got.started_at).total_seconds() == 30
    assert await lease.claim(db, NAMES[0], "two", 30) is None  # held: nobody else claims it
    assert await lease.release(db, got)
    again = await lease.claim(db, NAMES[0], "two", 30)
    assert again is not None and again.token == 2


async def test_a_single_writer_and_replicas_never_write_at_once(db: Database) -> None:
    await lease.ensure(db, NAMES)
    shared = await lease.claim(db, NAMES[0], "replica", 30)
    assert shared is not None
    with pytest.raises(lease.LeaseHeld, match="authority lease is held"):
        await lease.acquire(db, lease.WRITER, "once", 30)
    await lease.release(db, shared)
    writer = await lease.acquire(db, lease.WRITER, "once", 30)
    assert await lease.claim(db, NAMES[0], "replica", 30) is None  # not while it writes
    await lease.release(db, writer)
    assert await lease.claim(db, NAMES[0], "replica", 30) is not None
