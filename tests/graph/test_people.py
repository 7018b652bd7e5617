"""People from an authority, on both backends."""

from __future__ import annotations

from graph.records import PersonRecord
from graph.store import GraphStore
from tests.graph.helpers import scalar


async def test_create_then_update_bumps_version_and_logs_the_diff(store: GraphStore) -> None:
    stats = await store.upsert_people(
        [PersonRecord(email="Ann@Example.com", given_name="Ann", attributes={"title": "Dev"})], "hr"
    )
    assert (stats.created, stats.updated) == (1, 0)
    again = await store.upsert_people(
        [PersonRecord(email="ann@example.com", given_name="Ann", attributes={"title": "Dev"})], "hr"
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    changed = await store.upsert_people(
        [PersonRecord(email="ann@example.com", given_name="Ann", attributes={"title": "CTO"})], "hr"
    )
    assert changed.updated == 1
    person = await store.person("ann@example.com")
    assert person is not None
    assert (person.version, person.attributes, person.primary_email) == (
        2,
        {"title": "CTO"},
        "ann@example.com",
    )
    assert await scalar(store, "SELECT new_json FROM event WHERE kind = 'person.updated'") == (
        '{"attributes":{"title":"CTO"}}'
    )


async def test_lifecycle_changes(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com")], "hr")
    await store.upsert_people(
        [PersonRecord(email="ann@example.com", lifecycle="deprovisioned")], "hr"
    )
    person = await store.person("ann@example.com")
    assert person is not None and person.lifecycle == "deprovisioned"


async def test_email_change_by_authority_id_keeps_the_person(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@old.example.com", authority_id="E1")], "hr")
    before = await store.person("ann@old.example.com")
    await store.upsert_people([PersonRecord(email="ann@new.example.com", authority_id="E1")], "hr")
    after = await store.person("ann@new.example.com")
    assert before is not None and after is not None and after.id == before.id
    assert after.primary_email == "ann@new.example.com"
    assert after.emails == ["ann@new.example.com", "ann@old.example.com"]
    assert await scalar(store, "SELECT count(*) FROM person") == 1


async def test_an_email_two_people_claim_is_a_conflict(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com", authority_id="E1")], "hr")
    stats = await store.upsert_people(
        [PersonRecord(email="bob@example.com", authority_id="E2", aliases=["ann@example.com"])],
        "hr",
    )
    assert (stats.created, stats.conflicts) == (1, 1)
    [conflict] = await store.conflicts()
    assert (conflict.kind, conflict.email) == ("email_claimed_twice", "ann@example.com")
    ann = await store.person("ann@example.com")
    assert ann is not None and ann.authority_id == "E1"


async def test_invalid_rows_are_rejected_with_their_line_and_the_rest_apply(
    store: GraphStore,
) -> None:
    stats = await store.upsert_people(
        [
            PersonRecord(email="ann@example.com"),
            PersonRecord(email="not-an-email"),
            PersonRecord(email="bob@example.com", lifecycle="retired"),
            PersonRecord(email="cy@example.com", aliases=["bad alias"]),
            PersonRecord(email="ANN@example.com"),
        ],
        "hr",
    )
    assert (stats.received, stats.created, stats.rejected) == (5, 1, 4)
    assert stats.rejections[0] == "record 2: invalid email: must contain exactly one @"
    assert stats.rejections[1].startswith("record 3: lifecycle must be one of")
    assert stats.rejections[2].startswith("record 4: alias skipped")
    # Two rows for one new person: neither is taken blindly.
    assert stats.rejections[3:] == [
        "record 1: the same person appears twice",
        "record 5: the same person appears twice",
    ]
    assert await scalar(store, "SELECT count(*) FROM person") == 1


async def test_large_feed_streams_in_chunks(store: GraphStore) -> None:
    people = (PersonRecord(email=f"p{i}@example.com", authority_id=f"E{i}") for i in range(2500))
    stats = await store.upsert_people(people, "hr")
    assert stats.created == 2500
    assert await scalar(store, "SELECT count(*) FROM person_email") == 2500


async def test_an_address_held_under_another_authority_id_is_not_taken(store: GraphStore) -> None:
    await store.upsert_people([PersonRecord(email="ann@example.com", authority_id="E1")], "hr")
    stats = await store.upsert_people(
        [PersonRecord(email="ann@example.com", authority_id="E2")], "hr"
    )
    assert (stats.created, stats.updated, stats.rejected) == (0, 0, 1)
    assert [c.kind for c in await store.conflicts()] == ["email_claimed_twice"]
    person = await store.person("ann@example.com")
    assert person is not None and person.authority_id == "E1"
