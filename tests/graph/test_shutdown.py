"""A write transaction cancelled midway still ends whole, and leaves no lock behind."""

from __future__ import annotations

import anyio
import sqlalchemy as sa

from graph import outbox
from graph.models import operation_table
from graph.outbox import OperationSpec
from graph.store import GraphStore

# A statement that keeps the database busy for a few seconds.
SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000000)"
    " SELECT count(*) FROM n"
)


async def test_a_cancelled_write_leaves_no_lock_behind(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [OperationSpec("acme", "update", {"title": "CTO"})])
    await outbox.claim(store.db, "acme", 10)
    started = anyio.Event()

    async def slow_write() -> None:
        async with store.db.write() as conn:
            await conn.execute(sa.update(operation_table).values(last_error="half done"))
            started.set()
            # Cancelled here, mid-statement and mid-transaction, as SIGTERM does.
            await conn.execute(sa.text(SLOW))

    with anyio.fail_after(8):
        async with anyio.create_task_group() as group:
            group.start_soon(slow_write)
            await started.wait()
            await anyio.sleep(0.2)
            group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            assert await outbox.recover_in_flight(store.db) == 1
    async with store.db.read() as conn:
        errors = (await conn.execute(sa.select(operation_table.c.last_error))).scalars().all()
    assert errors == ["half done"]  # the transaction ran to its end: whole, never half
