"""The outbox, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import pytest
import sqlalchemy as sa

from graph import oplog, outbox
from graph.db import Database
from graph.models import operation_table, utcnow
from graph.outbox import OperationSpec
from graph.store import GraphStore


@asynccontextmanager
async def store_pair(url: str) -> AsyncIterator[tuple[GraphStore, GraphStore]]:
    """Two stores on one database, as two processes would hold them."""
    one, two = await GraphStore.open(url), await GraphStore.open(url)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


def _spec(op: str = "update", title: str = "CTO", basis: str = "v2") -> OperationSpec:
    return OperationSpec("acme", op, {"title": title}, key_basis=basis)


async def test_an_identical_operation_is_queued_once(store: GraphStore) -> None:
    async with store.db.write() as conn:
        assert await outbox.enqueue(conn, [_spec(), _spec()]) == 1
    async with store.db.write() as conn:
        assert await outbox.enqueue(conn, [_spec(), _spec(title="CEO")]) == 1
    assert await outbox.counts_by_state(store.db) == {("acme", "pending"): 2}


async def test_enqueue_rolls_back_with_the_change_that_caused_it(store: GraphStore) -> None:
    try:
        async with store.db.write() as conn:
            await outbox.enqueue(conn, [_spec()])
            raise RuntimeError("the cycle failed")
    except RuntimeError:
        pass
    assert await outbox.counts_by_state(store.db) == {}


async def test_claim_takes_deactivations_first_and_marks_them_in_flight(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec(), _spec("deactivate", basis="v3"), _spec(title="x")])
    claimed = await outbox.claim(store.db, "acme", limit=2)
    assert [op.op for op in claimed] == ["deactivate", "update"]
    assert all(op.state == "in_flight" and op.attempts == 1 for op in claimed)
    assert await outbox.claim(store.db, "other", limit=5) == []
    async with store.db.write() as conn:
        await outbox.complete(conn, claimed[0])
    assert await outbox.counts_by_state(store.db) == {
        ("acme", "done"): 1,
        ("acme", "in_flight"): 1,
        ("acme", "pending"): 1,
    }


async def test_failures_retry_later_then_go_dead(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec()])
    [op] = await outbox.claim(store.db, "acme", limit=1)
    later = utcnow() + timedelta(hours=1)
    assert await outbox.fail(store.db, op, "HTTP 503", retry_at=later, max_attempts=2) == "pending"
    assert await outbox.claim(store.db, "acme", limit=1) == []  # not due yet
    with pytest.raises(outbox.Superseded):  # no longer in flight: its claimer is done with it
        await outbox.fail(store.db, op, "HTTP 503", retry_at=utcnow(), max_attempts=2)
    async with store.db.write() as conn:
        await conn.execute(sa.update(operation_table).values(next_attempt_at=utcnow()))
    [again] = await outbox.claim(store.db, "acme", limit=1)
    assert again.attempts == 2
    assert await outbox.fail(store.db, again, "HTTP 503", retry_at=utcnow(), max_attempts=2) == (
        "dead"
    )
    assert await outbox.counts_by_state(store.db) == {("acme", "dead"): 1}


async def test_in_flight_work_is_recovered_after_a_crash(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec()])
    await outbox.claim(store.db, "acme", limit=1)
    assert await outbox.recover_in_flight(store.db) == 1
    assert [op.attempts for op in await outbox.claim(store.db, "acme", limit=1)] == [2]


async def test_only_the_claim_under_the_current_lease_token_completes(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec(), _spec("deactivate", basis="d")])
    stale = await outbox.claim(store.db, "acme", limit=2, token=1)
    assert {op.lease_token for op in stale} == {1}
    # The lease moved to token 2: what token 1 left in flight goes back, and is claimed again.
    assert await outbox.recover_in_flight(store.db, "acme", except_token=2) == 2
    assert await outbox.recover_in_flight(store.db, "acme", except_token=2) == 0
    current = await outbox.claim(store.db, "acme", limit=2, token=2)
    for op in stale:  # the old claimer wakes: it can neither complete nor fail them
        with pytest.raises(outbox.Superseded):
            async with store.db.write() as conn:
                await outbox.complete(conn, op)
        with pytest.raises(outbox.Superseded):
            await outbox.fail(store.db, op, "HTTP 503", retry_at=utcnow(), max_attempts=5)
    assert await outbox.counts_by_state(store.db) == {("acme", "in_flight"): 2}
    assert await outbox.recover_in_flight(store.db, "acme", only_token=1) == 0
    async with store.db.write() as conn:
        await outbox.complete(conn, current[0])
    assert await outbox.recover_in_flight(store.db, "acme", only_token=2) == 1
    assert await outbox.counts_by_state(store.db) == {("acme", "done"): 1, ("acme", "pending"): 1}


async def test_held_operations_wait_for_approval_or_rejection(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec("deactivate", basis="a")], held=True)
        await outbox.enqueue(conn, [_spec("deactivate", basis="b")], held=True)
    assert await outbox.claim(store.db, "acme", limit=5) == []
    assert len(await outbox.release_held(store.db, approve=True, actor="t", connector="acme")) == 2
    assert len(await outbox.claim(store.db, "acme", limit=5)) == 2
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec("deactivate", basis="c")], held=True)
    assert len(await outbox.release_held(store.db, approve=False, actor="t")) == 1
    assert await outbox.claim(store.db, "acme", limit=5) == []


async def test_concurrent_claimers_never_get_the_same_operation(db_url: str) -> None:
    async with store_pair(db_url) as (one, two):
        async with one.db.write() as conn:
            await outbox.enqueue(conn, [_spec(title=str(i)) for i in range(120)])
        claimed: list[int] = []

        async def claimer(db: Database) -> None:
            while ops := await outbox.claim(db, "acme", limit=7):
                claimed.extend(op.id for op in ops)

        async with anyio.create_task_group() as group:
            for graph in (one, two, one, two):
                group.start_soon(claimer, graph.db)
        assert len(claimed) == 120 and len(set(claimed)) == 120
        assert await outbox.counts_by_state(one.db) == {("acme", "in_flight"): 120}


async def test_retry_and_cancel_act_only_on_the_states_they_name(store: GraphStore) -> None:
    async with store.db.write() as conn:
        await outbox.enqueue(conn, [_spec("create", basis=b) for b in ("a", "b", "c")])
    first, second, third = await outbox.claim(store.db, "acme", limit=3)
    later = utcnow() + timedelta(hours=1)
    state = await outbox.fail(
        store.db, first, "HTTP 422", retry_at=later, max_attempts=1, status=422, message="no"
    )
    assert state == "dead"
    # `second` stays in flight, as if the daemon were pushing it right now.
    assert await outbox.retry_dead(store.db, actor="ann", ids=[first.id, second.id]) == [
        outbox.Changed(first.id, "acme", "create", None)
    ]
    assert await outbox.cancel(store.db, [second.id], actor="ann") == []
    await outbox.fail(store.db, third, "HTTP 422", retry_at=later, max_attempts=1)
    assert [c.id for c in await outbox.cancel(store.db, [first.id, third.id], actor="ann")] == [
        first.id,
        third.id,
    ]
    assert await outbox.counts_by_state(store.db) == {
        ("acme", "cancelled"): 2,
        ("acme", "in_flight"): 1,
    }
    detail = await oplog.operation_detail(store.db, first.id)
    assert detail is not None and detail.finished_at is not None
    assert [(a.outcome, a.status, a.message) for a in detail.attempts] == [
        ("dead", 422, "no"),
        ("retried", None, "by ann"),
        ("cancelled", None, "by ann"),
    ]
