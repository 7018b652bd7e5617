"""What a vendor record may store is bounded, and its raw payload is not stored twice."""

from __future__ import annotations

import orjson

from graph.bounds import (
    MAX_EMAIL_CHARS,
    MAX_ITEMS,
    MAX_RAW_BYTES,
    MAX_STRING_BYTES,
    RAW_OMITTED_KEY,
)
from graph.external_ids import MAX_EXTERNAL_ID
from graph.store import GraphStore
from tests.graph.helpers import Rec, scalar


async def _stored(store: GraphStore, external_id: str) -> tuple[dict[str, object], str]:
    attributes = await scalar(
        store, "SELECT attributes_json FROM account WHERE external_id = :id", id=external_id
    )
    raw = await scalar(
        store, "SELECT raw_json FROM account WHERE external_id = :id", id=external_id
    )
    assert isinstance(attributes, str) and isinstance(raw, str)
    return orjson.loads(attributes), raw


async def test_attribute_values_are_capped(store: GraphStore) -> None:
    deep: object = "d" * 10_000
    for _ in range(50):
        deep = {"in": [deep]}
    record = Rec(
        "1",
        "a@example.com",
        status="s" * 100_000,
        attributes={
            "title": "t" * 1_000_000,
            "display_name": "é" * 3_000,  # two bytes each: cut on a character boundary
            "groups": [f"g{index}" for index in range(10_000)],
            "nested": deep,
            **{f"extra{index}": index for index in range(MAX_ITEMS)},
        },
    )
    listing = await store.begin_listing("acme")
    stats = await store.ingest(listing, [record])
    assert stats.inserted == 1 and stats.rejected == 0
    attributes, _ = await _stored(store, "1")
    assert attributes["title"] == "t" * MAX_STRING_BYTES
    assert attributes["display_name"] == "é" * (MAX_STRING_BYTES // 2)
    assert attributes["groups"] == [f"g{index}" for index in range(MAX_ITEMS)]
    assert len(attributes) == MAX_ITEMS
    bottom = attributes["nested"]
    for _ in range(50):
        assert isinstance(bottom, dict)
        bottom = bottom["in"][0]
    assert bottom == "d" * MAX_STRING_BYTES  # however deep
    status = await scalar(store, "SELECT status FROM account WHERE external_id = '1'")
    assert status == "s" * MAX_STRING_BYTES
    changed = dict(record.attributes, title="t" * 1_000_000 + "u")
    again = await store.ingest(listing, [Rec("1", "a@example.com", attributes=changed)])
    assert again.updated == 1  # the hash covers what the vendor sent, not only what was kept


async def test_an_oversized_email_or_external_id_is_rejected(store: GraphStore) -> None:
    listing = await store.begin_listing("acme")
    local = "a" * MAX_EMAIL_CHARS
    stats = await store.ingest(
        listing,
        [
            Rec("x" * (MAX_EXTERNAL_ID + 1), "a@example.com"),
            Rec("2", f"{local}@example.com"),
            Rec("x" * MAX_EXTERNAL_ID, "b" * 60 + "@example.com"),  # at the limits: kept
        ],
    )
    assert (stats.inserted, stats.rejected) == (1, 2)
    assert stats.rejections[0].endswith(
        f": external id is longer than {MAX_EXTERNAL_ID} characters"
    )
    assert stats.rejections[1] == f"2: email longer than {MAX_EMAIL_CHARS} characters"
    assert all(len(line) < 200 for line in stats.rejections)  # the id is not echoed in full


async def test_the_raw_payload_keeps_only_what_the_row_does_not(store: GraphStore) -> None:
    raw = {
        "id": "7",
        "email": "Ann@Example.com",
        "first_name": "Ann",
        "status": "active",
        "groups": ["a", "b"],
        "login_count": 1,  # equal to True, but not the same value
        "custom_fields": {"shoe_size": "9"},
    }
    attributes = {"email": "Ann@Example.com", "given_name": "Ann", "groups": ["a", "b"]}
    listing = await store.begin_listing("acme")
    await store.ingest(
        listing, [Rec("7", "Ann@Example.com", attributes={**attributes, "active": True}, raw=raw)]
    )
    _, stored_raw = await _stored(store, "7")
    assert orjson.loads(stored_raw) == {"login_count": 1, "custom_fields": {"shoe_size": "9"}}


async def test_the_stored_raw_payload_is_bounded(store: GraphStore) -> None:
    raw = {f"field{index}": "v" * 1_000 for index in range(100)}
    raw["huge"] = "h" * 10_000_000
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec("1", "a@example.com", raw=raw)])
    _, stored_raw = await _stored(store, "1")
    assert len(stored_raw.encode()) <= MAX_RAW_BYTES
    kept = orjson.loads(stored_raw)
    assert kept["field0"] == "v" * 1_000
    assert kept[RAW_OMITTED_KEY] == 101 - (len(kept) - 1)


async def test_a_short_text_of_long_characters_is_capped_in_bytes(store: GraphStore) -> None:
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec("1", "a@example.com", attributes={"title": "😀" * 1_100})])
    attributes, _ = await _stored(store, "1")
    assert attributes["title"] == "😀" * (MAX_STRING_BYTES // 4)
