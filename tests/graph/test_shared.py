"""A person two authorities describe (the HR file and SCIM), on both backends."""

from __future__ import annotations

from dataclasses import replace

from graph.people import active_from, deprovision, people_named
from graph.records import PersonRecord
from graph.store import GraphStore
from tests.graph.helpers import scalar

HR = PersonRecord(email="ann@example.com", authority_id="E1", attributes={"title": "Dev"})
IDP = PersonRecord(email="ann@example.com", authority_id="scim-1", attributes={"dept": "R&D"})


async def test_a_second_authority_links_and_finds_the_person_again_by_its_own_id(
    store: GraphStore,
) -> None:
    await store.upsert_people([HR], "hr")
    linked = await store.upsert_people([IDP], "scim")
    assert (linked.created, linked.updated, linked.rejected) == (0, 1, 0)
    # The IdP moves her address: found by the IdP's id, not made a second person.
    moved = await store.upsert_people([replace(IDP, email="ann.b@example.com")], "scim")
    assert (moved.created, moved.rejected) == (0, 0)
    assert await scalar(store, "SELECT count(*) FROM person") == 1
    assert await scalar(store, "SELECT authority_id FROM person") == "E1"
    ann = await scalar(store, "SELECT id FROM person")
    async with store.db.read() as conn:
        assert await people_named(conn, ["scim-1"], [], "scim") == {ann}
        assert await active_from(conn, "hr") == {ann}  # the IdP wrote her last; HR still counts


async def test_the_most_restrictive_lifecycle_wins_until_its_authority_says_otherwise(
    store: GraphStore,
) -> None:
    await store.upsert_people([HR], "hr")
    await store.upsert_people([replace(IDP, lifecycle="deprovisioned")], "scim")
    await store.upsert_people([HR], "hr")  # the HR file still lists her
    assert await scalar(store, "SELECT lifecycle FROM person") == "deprovisioned"
    await store.upsert_people([IDP], "scim")
    assert await scalar(store, "SELECT lifecycle FROM person") == "active"
    ann = await scalar(store, "SELECT id FROM person")
    assert isinstance(ann, int)
    async with store.db.write() as conn:
        await deprovision(conn, [ann], "hr")  # she left the HR file
    await store.upsert_people([IDP], "scim")
    assert await scalar(store, "SELECT lifecycle FROM person") == "deprovisioned"
    async with store.db.read() as conn:
        assert await active_from(conn, "hr") == set()


async def test_one_authority_claiming_an_email_twice_is_still_rejected(store: GraphStore) -> None:
    await store.upsert_people([IDP], "scim")
    other = PersonRecord(email="ann@example.com", authority_id="scim-2")
    stats = await store.upsert_people([other], "scim")
    assert stats.rejected == 1
    reserved = PersonRecord(email="bo@example.com", attributes={"@sources": {}})
    assert (await store.upsert_people([reserved], "scim")).rejected == 1
