"""A listing and a pusher storing the same new account at once, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
import sqlalchemy as sa

from graph.emails import DEFAULT_POLICY
from graph.ingest import IngestStats, prepare
from graph.models import account_table, utcnow
from graph.records import PersonRecord
from graph.store import GraphStore
from graph.writeback import record_account
from tests.conftest import opened_store
from tests.graph.helpers import Rec, scalar

HELD = 0.5  # long enough for the other writer to reach its insert and wait on ours


@pytest.fixture
async def other(db_url: str) -> AsyncIterator[GraphStore]:
    """A second store on the same database, as the daemon's other task or process holds."""
    async with opened_store(db_url) as graph:
        yield graph


async def test_a_listing_that_loses_the_race_counts_the_account_as_seen(
    store: GraphStore, other: GraphStore
) -> None:
    await store.upsert_people([PersonRecord("a@corp.example")], "hr")
    person_id = await scalar(store, "SELECT id FROM person")
    assert isinstance(person_id, int)
    record = Rec("7", "a@corp.example", attributes={"title": "listed"})
    listing = await other.begin_listing("acme")
    stats: list[IngestStats] = []

    async def ingest() -> None:
        stats.append(await other.ingest(listing, [record]))

    async with anyio.create_task_group() as group, store.db.write() as conn:
        pushed = await record_account(conn, "acme", Rec("7", "a@corp.example"), person_id=person_id)
        group.start_soon(ingest)
        await anyio.sleep(HELD)  # the listing waits on the pusher's uncommitted row
    assert stats[0].inserted == 0 and stats[0].updated == 1  # the listing's newer content
    assert pushed in listing.seen_known
    assert await scalar(store, "SELECT count(*) FROM account") == 1
    assert await scalar(store, "SELECT person_id FROM account") == person_id  # link kept
    assert await scalar(store, "SELECT link_method FROM account") == "created_by_push"
    assert await scalar(store, "SELECT count(*) FROM event WHERE kind = 'account.created'") == 1


@pytest.mark.parametrize("decided", [None, "manual"])
async def test_a_pusher_that_loses_the_race_keeps_the_link_decision(
    store: GraphStore, other: GraphStore, decided: str | None
) -> None:
    await store.upsert_people([PersonRecord("a@corp.example")], "hr")
    person_id = await scalar(store, "SELECT id FROM person")
    assert isinstance(person_id, int)
    ids: list[int] = []

    async def push() -> None:
        async with other.db.write() as conn:
            pushed = Rec("7", "a@corp.example")
            ids.append(await record_account(conn, "acme", pushed, person_id=person_id))

    async with anyio.create_task_group() as group, store.db.write() as conn:
        # Another writer (the listing) has stored the account and not yet committed;
        # with "manual", an operator's unlink is already recorded on it.
        now = utcnow()
        listed = prepare(Rec("7", "a@corp.example", attributes={"title": "x"}), DEFAULT_POLICY)
        await conn.execute(
            sa.insert(account_table),
            {"connector": "acme", "external_id": "7", "first_seen": now, "changed_at": now}
            | listed.columns()
            | {"link_method": decided},
        )
        group.start_soon(push)
        await anyio.sleep(HELD)
    assert await scalar(store, "SELECT count(*) FROM account") == 1
    assert await scalar(store, "SELECT id FROM account") == ids[0]
    if decided is None:
        assert await scalar(store, "SELECT person_id FROM account") == person_id
        assert await scalar(store, "SELECT link_method FROM account") == "created_by_push"
    else:
        assert await scalar(store, "SELECT person_id FROM account") is None
        assert await scalar(store, "SELECT link_method FROM account") == "manual"
