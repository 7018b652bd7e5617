"""The writer lease on both backends: one holder, takeover after expiry, fencing token."""

from __future__ import annotations

import anyio
import pytest
import sqlalchemy as sa

from graph import lease
from graph.db import Database
from graph.store import GraphStore


async def test_a_live_lease_is_refused_naming_its_holder(store: GraphStore) -> None:
    db: Database = store.db
    first = await lease.acquire(db, lease.WRITER, "a", ttl=30)
    assert first.token == 1
    with pytest.raises(lease.LeaseHeld, match=f"pid {first.pid} since") as held:
        await lease.acquire(db, lease.WRITER, "b", ttl=30)
    assert held.value.current.holder == "a"
    assert (await lease.current(db, lease.WRITER)) == first


async def test_an_expired_lease_is_taken_over_with_a_higher_token(store: GraphStore) -> None:
    db = store.db
    first = await lease.acquire(db, lease.WRITER, "a", ttl=1)
    await anyio.sleep(1.1)
    second = await lease.acquire(db, lease.WRITER, "b", ttl=30)
    assert second.holder == "b" and second.token == first.token + 1
    with pytest.raises(lease.LeaseLost):
        await lease.renew(db, first, ttl=30)  # the old holder learns it lost
    assert not await lease.release(db, first)  # and cannot release what is not its own
    renewed = await lease.renew(db, second, ttl=60)
    assert renewed.expires_at > second.expires_at and renewed.token == second.token


async def test_a_released_lease_is_free_at_once_and_the_token_keeps_counting(
    store: GraphStore,
) -> None:
    db = store.db
    first = await lease.acquire(db, lease.WRITER, "a", ttl=30)
    assert await lease.release(db, first)
    second = await lease.acquire(db, lease.WRITER, "b", ttl=30)
    assert second.token == first.token + 1
    # A lease is per name: the scale-out work can hold one per connector.
    other = await lease.acquire(db, "connector:acme", "a", ttl=30)
    assert other.token == 1


async def test_a_holder_frozen_mid_renewal_does_not_hang_a_new_writer(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite waits its busy timeout; PostgreSQL would wait forever on a row lock")
    store = await GraphStore.open(db_url)
    try:
        first = await lease.acquire(store.db, lease.WRITER, "a", ttl=1)
        await anyio.sleep(1.1)
        async with store.db.write() as conn:  # the holder's renewal, stuck before its commit
            await conn.execute(sa.text("SELECT * FROM lease FOR UPDATE"))
            with anyio.fail_after(10), pytest.raises(lease.LeaseHeld, match=f"pid {first.pid}"):
                await lease.acquire(store.db, lease.WRITER, "b", ttl=30)
    finally:
        await store.close()
