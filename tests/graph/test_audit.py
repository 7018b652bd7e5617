"""The audit chain: every event is chained, concurrent writers stay linear, tampering shows."""

from __future__ import annotations

from datetime import datetime

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from graph.audit import record_operator_action, seal, verify
from graph.db import async_url
from graph.models import event_table
from graph.people import upsert_people_in
from graph.records import PersonRecord
from graph.store import GraphStore
from tests.conftest import opened_store
from tests.graph.helpers import Rec
from tests.graph.test_db import to


async def _actions(store: GraphStore, count: int, actor: str) -> None:
    for index in range(count):
        async with store.db.write() as conn:
            await record_operator_action(conn, actor, "cancel", operation_id=index)


async def _chain(store: GraphStore) -> list[tuple[int, int, str, str]]:
    async with store.db.read() as conn:
        rows = await conn.execute(
            sa.select(
                event_table.c.id, event_table.c.seq, event_table.c.hash, event_table.c.prev_hash
            ).order_by(event_table.c.seq)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_writers_in_several_processes_extend_one_linear_chain(db_url: str) -> None:
    # Separate stores are separate engines and connections, as separate processes have.
    async with opened_store(db_url) as first, opened_store(db_url) as second:
        async with anyio.create_task_group() as group:
            group.start_soon(_actions, first, 15, "ann")
            group.start_soon(_actions, second, 15, "bob")
        chain = await _chain(first)
        async with first.db.read() as conn:
            result = await verify(conn)
    assert [seq for _, seq, _, _ in chain] == list(range(1, 31))
    assert all(prev == chain[i - 1][2] for i, (_, _, _, prev) in enumerate(chain) if i)
    assert result.events == 30 and result.broken is None


async def test_an_altered_or_deleted_event_is_named(store: GraphStore) -> None:
    await _actions(store, 5, "ann")
    chain = await _chain(store)
    # Tampering goes around syncd: straight SQL, no sealing.
    engine = create_async_engine(store.db.url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(event_table).where(event_table.c.id == chain[2][0]).values(actor="eve")
            )
        async with store.db.read() as conn:
            altered = (await verify(conn)).broken
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(event_table).where(event_table.c.id == chain[2][0]).values(actor="ann")
            )
            await conn.execute(sa.delete(event_table).where(event_table.c.id == chain[1][0]))
        async with store.db.read() as conn:
            deleted = (await verify(conn)).broken
    finally:
        await engine.dispose()
    assert altered is not None and altered.event_id == chain[2][0]
    assert "content was changed" in altered.reason
    assert deleted is not None and deleted.event_id == chain[2][0]
    assert "before it are gone" in deleted.reason


async def test_the_migration_chains_the_events_recorded_before_it(db_url: str) -> None:
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0004"))
            await conn.execute(
                sa.text(
                    "INSERT INTO event (at, source, kind, subject, subject_id) VALUES"
                    " (:at, 'hr', 'person.created', 'person', 1),"
                    " (:at, 'acme', 'account.created', 'account', 7)"
                ),
                {"at": datetime.fromisoformat("2026-01-01 00:00:00+00:00")},
            )
            await conn.run_sync(to("head"))
    finally:
        await engine.dispose()
    async with opened_store(db_url) as store:
        chain = await _chain(store)
        async with store.db.read() as conn:
            result = await verify(conn)
    assert [seq for _, seq, _, _ in chain] == [1, 2]
    assert result.events == 2 and result.broken is None


async def _listing(store: GraphStore, batches: int) -> None:
    listing = await store.begin_listing("acme")
    for batch in range(batches):
        records = [Rec(f"{batch}-{i}", f"u{batch}-{i}@example.com") for i in range(50)]
        await store.ingest(listing, records)
    await store.ingest(listing, [Rec("0-0", "changed@example.com")])


async def test_ingest_chains_its_events_as_it_writes_them_beside_other_writers(
    db_url: str,
) -> None:
    async with opened_store(db_url) as first, opened_store(db_url) as second:
        async with anyio.create_task_group() as group:
            group.start_soon(_listing, first, 10)
            group.start_soon(_actions, second, 15, "bob")
        chain = await _chain(first)
        async with first.db.read() as conn:
            result = await verify(conn)
            kinds = (await conn.execute(sa.select(event_table.c.kind))).scalars().all()
    assert sorted(set(kinds)) == ["account.created", "account.updated", "operator.cancel"]
    assert [seq for _, seq, _, _ in chain] == list(range(1, 500 + 1 + 15 + 1))
    assert result.events == 516 and result.broken is None


async def test_a_large_transaction_is_sealed_a_batch_at_a_time_in_one_chain(
    store: GraphStore,
) -> None:
    await _actions(store, 2, "ann")
    people = [PersonRecord(email=f"p{i}@example.com", authority_id=f"E{i}") for i in range(10)]
    async with store.db.write() as conn:
        await upsert_people_in(conn, people, "hr")
        assert await seal(conn, batch=3) == 10  # four batches: 3, 3, 3 and 1
        assert await seal(conn, batch=3) == 0
    await _actions(store, 1, "bob")
    chain = await _chain(store)
    async with store.db.read() as conn:
        result = await verify(conn)
    assert [seq for _, seq, _, _ in chain] == list(range(1, 14))
    assert [event_id for event_id, _, _, _ in chain] == sorted(e for e, _, _, _ in chain)
    assert result.events == 13 and result.broken is None
