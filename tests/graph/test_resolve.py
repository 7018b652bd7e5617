"""Resolution of accounts to people, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from graph.audit import verify
from graph.records import PersonRecord
from graph.resolve import resolve_in
from graph.store import GraphStore
from graph.writeback import link
from tests.graph.helpers import Rec, full_listing, scalar


async def test_links_by_normalized_email_and_leaves_orphans(store: GraphStore) -> None:
    await store.upsert_people(
        [PersonRecord(email="ann@example.com", aliases=["a.lee@example.com"])], "hr"
    )
    await full_listing(
        store,
        "acme",
        [Rec("1", " ANN@Example.com"), Rec("2", "stranger@example.com"), Rec("3", "bad email")],
    )
    await full_listing(store, "other", [Rec("9", "A.Lee@example.com")])
    stats = await store.resolve()
    assert stats.linked == 2
    person = await store.person("a.lee@EXAMPLE.com")
    assert person is not None
    assert sorted((acc.connector, acc.external_id, acc.link_method) for acc in person.accounts) == [
        ("acme", "1", "email"),
        ("other", "9", "email"),
    ]
    assert sorted(o.external_id for o in await store.orphans()) == ["2", "3"]
    assert [o.external_id for o in await store.orphans("other")] == []
    assert await scalar(store, "SELECT count(*) FROM event WHERE kind = 'account.linked'") == 2


async def test_resolve_is_idempotent(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com")], "hr")
    await full_listing(store, "acme", [Rec("1", "ann@example.com")])
    assert (await store.resolve()).linked == 1
    again = await store.resolve()
    assert (again.linked, again.new_conflicts) == (0, 0)


async def test_two_accounts_for_one_person_in_one_vendor_is_a_conflict(store: GraphStore) -> None:
    await store.upsert_people(
        [PersonRecord(email="ann@example.com", aliases=["al@example.com"])], "hr"
    )
    await full_listing(store, "acme", [Rec("1", "ann@example.com"), Rec("2", "al@example.com")])
    stats = await store.resolve()
    assert (stats.linked, stats.new_conflicts) == (0, 2)
    conflicts = await store.conflicts()
    assert {c.kind for c in conflicts} == {"second_account"}
    assert {c.account_id for c in conflicts} == {
        await scalar(store, "SELECT id FROM account WHERE external_id = :x", x=x)
        for x in ("1", "2")
    }
    assert await store.orphans() == []  # waiting on a conflict is not being an orphan


async def test_links_and_conflicts_in_one_pass_record_one_event_per_link(
    store: GraphStore,
) -> None:
    await store.upsert_people(
        [
            PersonRecord(email="ann@example.com"),
            PersonRecord(email="bob@example.com", aliases=["b2@example.com"]),
        ],
        "hr",
    )
    records = [Rec("1", "ann@example.com"), Rec("2", "bob@example.com"), Rec("3", "b2@example.com")]
    await full_listing(store, "acme", records)
    stats = await store.resolve("acme")
    assert (stats.linked, stats.new_conflicts) == (1, 2)
    ann = await scalar(store, "SELECT id FROM person WHERE primary_email = 'ann@example.com'")
    account = await scalar(store, "SELECT id FROM account WHERE external_id = '1'")
    async with store.db.read() as conn:
        events = (
            await conn.execute(
                sa.text(
                    "SELECT subject_id, connector, person_id, new_json FROM event"
                    " WHERE kind = 'account.linked'"
                )
            )
        ).all()
        assert (await verify(conn)).broken is None
    assert [tuple(row) for row in events] == [
        (account, "acme", ann, f'{{"person_id":{ann},"method":"email"}}')
    ]
    assert {c.account_id for c in await store.conflicts()} == {
        await scalar(store, "SELECT id FROM account WHERE external_id = :x", x=x) for x in "23"
    }


async def test_resolution_gives_the_transaction_its_jit_setting_back(store: GraphStore) -> None:
    if store.db.is_sqlite:
        pytest.skip("PostgreSQL only")
    await store.upsert_people([PersonRecord(email="ann@example.com")], "hr")
    await full_listing(store, "acme", [Rec("1", "ann@example.com")])
    async with store.db.write() as conn:
        await conn.execute(sa.text("SET LOCAL jit = on"))
        assert (await resolve_in(conn, "acme")).linked == 1
        assert (await conn.execute(sa.text("SHOW jit"))).scalar() == "on"


async def test_account_for_a_person_who_already_has_one_there_is_a_conflict(
    store: GraphStore,
) -> None:
    await store.upsert_people(
        [PersonRecord(email="ann@example.com", aliases=["al@example.com"])], "hr"
    )
    await full_listing(store, "acme", [Rec("1", "ann@example.com")])
    await store.resolve()
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec("1", "ann@example.com"), Rec("2", "al@example.com")])
    await store.finish_listing(listing, complete=True)
    stats = await store.resolve()
    assert (stats.linked, stats.new_conflicts) == (0, 1)
    assert await scalar(store, "SELECT person_id FROM account WHERE external_id = '2'") is None


@pytest.mark.parametrize("scope", [None, "acme"])
async def test_vendor_side_email_change_never_moves_a_link(
    store: GraphStore, scope: str | None
) -> None:
    await store.upsert_people(
        [PersonRecord(email="ann@example.com"), PersonRecord(email="bob@example.com")], "hr"
    )
    await full_listing(store, "acme", [Rec("1", "ann@example.com")])
    await store.resolve(scope)
    ann = await scalar(store, "SELECT person_id FROM account WHERE external_id = '1'")

    await full_listing(store, "acme", [Rec("1", "bob@example.com")])
    stats = await store.resolve(scope)
    assert stats.linked == 0 and stats.new_conflicts == 1
    assert await scalar(store, "SELECT person_id FROM account WHERE external_id = '1'") == ann
    [conflict] = await store.conflicts()
    assert (conflict.kind, conflict.email, conflict.person_id) == (
        "email_drift",
        "bob@example.com",
        ann,
    )
    assert await scalar(store, "SELECT new_json FROM event WHERE kind = 'account.updated'") == (
        '{"email":"bob@example.com"}'
    )
    assert (await store.resolve(scope)).new_conflicts == 0  # reported once, not every cycle


async def test_manual_decisions_are_left_alone(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com")], "hr")
    await full_listing(store, "acme", [Rec("1", "ann@example.com")])
    async with store.db.write() as conn:
        from sqlalchemy import text

        await conn.execute(text("UPDATE account SET link_method = 'unlinked'"))
    assert (await store.resolve()).linked == 0


async def test_missing_accounts_are_not_linked(store: GraphStore) -> None:
    await full_listing(store, "acme", [Rec(str(i), f"u{i}@example.com") for i in range(10)])
    await full_listing(store, "acme", [Rec(str(i), f"u{i}@example.com") for i in range(1, 10)])
    await store.upsert_people([PersonRecord(email="u0@example.com")], "hr")
    assert (await store.resolve()).linked == 0


async def test_counts_per_connector(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com")], "hr")
    await full_listing(store, "acme", [Rec("1", "ann@example.com"), Rec("2", "x@example.com")])
    await full_listing(store, "zeta", [Rec("1", "y@example.com")])
    await store.resolve()
    counts = {c.connector: c for c in await store.counts()}
    assert (counts["acme"].accounts, counts["acme"].linked, counts["acme"].orphans) == (2, 1, 1)
    assert (counts["zeta"].accounts, counts["zeta"].linked, counts["zeta"].orphans) == (1, 0, 1)
    assert counts["acme"].missing == counts["acme"].open_conflicts == 0


async def test_lookalikes_never_link_and_become_conflicts(store: GraphStore) -> None:
    mixed = "p\u0430ypal@corp.example"  # a Cyrillic a among Latin letters
    people = ["ceo@corp.example", "sam@corp.example", "kim@corp.example", "cfo@corp.example"]
    await store.upsert_people(
        [PersonRecord(email=email) for email in [*people, mixed, "straße@corp.example"]], "hr"
    )
    lookalikes = {
        "1": "ｃｅｏ@corp.example",  # fullwidth
        "2": "ſam@corp.example",  # long s
        "3": "\u212aim@corp.example",  # Kelvin sign: NFC makes it a plain K
        "4": "cfo@corp.exa\u034fmple",  # combining grapheme joiner: invalid under IDNA 2008
        "5": mixed,  # the very same address, but mixed scripts never link by themselves
        "6": "STRASSE@corp.example",  # matches nobody exactly, folds onto straße
    }
    records = [Rec(key, email) for key, email in lookalikes.items()]
    await full_listing(store, "acme", [*records, Rec("7", "KIM@corp.example")])
    stats = await store.resolve()
    assert stats.linked == 1  # only the exact kim@
    assert await scalar(store, "SELECT external_id FROM account WHERE person_id IS NOT NULL") == "7"
    conflicts = await store.conflicts()
    assert {c.kind for c in conflicts} == {"lookalike"}
    pairs = set()
    for c in conflicts:
        account = await scalar(
            store, "SELECT external_id FROM account WHERE id = :i", i=c.account_id
        )
        person = await scalar(
            store, "SELECT primary_email FROM person WHERE id = :i", i=c.person_id
        )
        pairs.add((account, person))
    assert pairs == {
        ("1", "ceo@corp.example"),
        ("2", "sam@corp.example"),
        ("3", "kim@corp.example"),
        ("4", "cfo@corp.example"),
        ("5", mixed),
        ("6", "straße@corp.example"),
    }
    assert await store.orphans() == []  # a look-alike waits on its conflict
    again = await store.resolve("acme")
    assert (again.linked, again.new_conflicts) == (0, 0)


async def test_an_operator_link_settles_a_lookalike(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="sam@corp.example")], "hr")
    await full_listing(store, "acme", [Rec("1", "ſam@corp.example")])
    await store.resolve()
    assert [c.kind for c in await store.conflicts()] == ["lookalike"]
    async with store.db.write() as conn:
        await link(conn, "acme", "1", "sam@corp.example")
    assert await store.conflicts() == []
    await store.resolve()
    assert await store.conflicts() == []
    assert await scalar(store, "SELECT link_method FROM account") == "manual"
