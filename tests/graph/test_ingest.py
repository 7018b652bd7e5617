"""Ingest and listings, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from graph.emails import DEFAULT_POLICY
from graph.ingest import hashed, prepare
from graph.linked import live_account_count
from graph.store import GraphStore
from graph.writeback import record_account
from tests.graph.helpers import Rec, full_listing, scalar


async def test_first_ingest_inserts_and_logs_an_event_per_account(store: GraphStore) -> None:
    listing = await store.begin_listing("acme")
    stats = await store.ingest(listing, [Rec(str(i), f"u{i}@example.com") for i in range(50)])
    assert (stats.received, stats.inserted, stats.updated, stats.unchanged) == (50, 50, 0, 0)
    assert await scalar(store, "SELECT count(*) FROM account WHERE connector = 'acme'") == 50
    assert await scalar(store, "SELECT count(*) FROM event WHERE kind = 'account.created'") == 50


async def test_unchanged_accounts_are_not_written(store: GraphStore) -> None:
    records = [Rec(str(i), f"u{i}@example.com", attributes={"title": "x"}) for i in range(20)]
    await full_listing(store, "acme", records)
    before = await scalar(store, "SELECT max(changed_at) FROM account")
    events = await scalar(store, "SELECT count(*) FROM event")

    listing = await store.begin_listing("acme")
    stats = await store.ingest(listing, records)
    assert stats.rows_written == 0 and stats.unchanged == 20
    assert await scalar(store, "SELECT max(changed_at) FROM account") == before
    assert await scalar(store, "SELECT count(*) FROM event") == events


async def test_changed_account_is_updated_with_a_diff_event(store: GraphStore) -> None:
    await full_listing(
        store, "acme", [Rec("1", "a@example.com", attributes={"title": "Dev", "locale": "en"})]
    )
    listing = await store.begin_listing("acme")
    stats = await store.ingest(
        listing, [Rec("1", "a@example.com", attributes={"title": "CTO", "locale": "en"})]
    )
    assert (stats.updated, stats.inserted) == (1, 0)
    old = await scalar(store, "SELECT old_json FROM event WHERE kind = 'account.updated'")
    new = await scalar(store, "SELECT new_json FROM event WHERE kind = 'account.updated'")
    assert (old, new) == ('{"title":"Dev"}', '{"title":"CTO"}')
    assert (
        await scalar(store, "SELECT attributes_json FROM account")
        == '{"locale":"en","title":"CTO"}'
    )


async def test_raw_only_change_counts_as_a_change(store: GraphStore) -> None:
    await full_listing(store, "acme", [Rec("1", "a@example.com", raw={"x": 1})])
    listing = await store.begin_listing("acme")
    assert (await store.ingest(listing, [Rec("1", "a@example.com", raw={"x": 2})])).updated == 1


async def test_same_external_id_in_two_connectors_is_two_accounts(store: GraphStore) -> None:
    await full_listing(store, "one", [Rec("1", "a@example.com")])
    await full_listing(store, "two", [Rec("1", "a@example.com")])
    assert await scalar(store, "SELECT count(*) FROM account") == 2


async def test_bad_records_are_reported_and_the_rest_ingested(store: GraphStore) -> None:
    listing = await store.begin_listing("acme")
    stats = await store.ingest(
        listing,
        [
            Rec("1", "not an email"),
            Rec("2", "b@example.com", attributes={"x": {1, 2}}),  # a set is not JSON
            Rec("3", None),
            Rec("4", "d@example.com"),
            Rec("4", "d2@example.com"),  # repeated id: the last one wins
        ],
    )
    assert (stats.inserted, stats.rejected, stats.invalid_emails) == (3, 1, 1)
    assert stats.rejections[0].startswith("2: ")
    assert await scalar(store, "SELECT email_error FROM account WHERE external_id = '1'") == (
        "must contain exactly one @"
    )
    assert (
        await scalar(store, "SELECT email FROM account WHERE external_id = '4'") == "d2@example.com"
    )


async def test_complete_listing_marks_unseen_accounts_missing(store: GraphStore) -> None:
    await full_listing(store, "acme", [Rec(str(i), f"u{i}@example.com") for i in range(10)])
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec(str(i), f"u{i}@example.com") for i in range(1, 10)])
    result = await store.finish_listing(listing, complete=True)
    assert (result.marked_missing, result.refused) == (1, None)
    assert (
        await scalar(store, "SELECT external_id FROM account WHERE missing_since IS NOT NULL")
        == "0"
    )
    assert await scalar(store, "SELECT count(*) FROM event WHERE kind = 'account.missing'") == 1
    assert await scalar(store, "SELECT listing_complete FROM connector_state") in (True, 1)
    await full_listing(store, "other", [Rec(str(i), f"u{i}@example.com") for i in range(3)])
    async with store.db.read() as conn:  # what the removal guard weighs a removal against
        assert await live_account_count(conn, "acme") == 9
        assert await live_account_count(conn, "other") == 3
        assert await live_account_count(conn, "nobody") == 0


async def test_incomplete_listing_marks_nothing(store: GraphStore) -> None:
    await full_listing(store, "acme", [Rec(str(i), f"u{i}@example.com") for i in range(10)])
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec("1", "u1@example.com")])
    result = await store.finish_listing(listing, complete=False)
    assert result.marked_missing == 0
    assert await scalar(store, "SELECT count(*) FROM account WHERE missing_since IS NOT NULL") == 0
    assert await scalar(store, "SELECT listing_complete FROM connector_state") in (False, 0)


@pytest.mark.parametrize("kept", [0, 50])
async def test_listing_that_shrank_too_far_marks_nothing(store: GraphStore, kept: int) -> None:
    await full_listing(store, "acme", [Rec(str(i), f"u{i}@example.com") for i in range(100)])
    listing = await store.begin_listing("acme")
    await store.ingest(listing, [Rec(str(i), f"u{i}@example.com") for i in range(kept)])
    result = await store.finish_listing(listing, complete=True)
    assert result.marked_missing == 0 and result.refused is not None
    assert await scalar(store, "SELECT count(*) FROM account WHERE missing_since IS NOT NULL") == 0


async def test_missing_account_that_comes_back_is_live_again(store: GraphStore) -> None:
    records = [Rec(str(i), f"u{i}@example.com") for i in range(10)]
    await full_listing(store, "acme", records)
    await full_listing(store, "acme", records[1:])
    listing = await store.begin_listing("acme")
    stats = await store.ingest(listing, records)
    assert stats.updated == 1
    assert await scalar(store, "SELECT count(*) FROM account WHERE missing_since IS NOT NULL") == 0
    assert await scalar(store, "SELECT count(*) FROM event WHERE kind = 'account.reappeared'") == 1


async def test_pages_stream_in_and_regroup(store: GraphStore) -> None:
    async def pages():  # type: ignore[no-untyped-def]
        for start in range(0, 12_000, 100):
            yield [Rec(str(i), f"u{i}@example.com") for i in range(start, start + 100)]

    listing = await store.begin_listing("acme")
    stats = await store.ingest_pages(listing, pages())
    assert (stats.received, stats.inserted) == (12_000, 12_000)
    assert listing.pages == 120
    result = await store.finish_listing(listing, complete=True)
    assert (result.seen, result.marked_missing) == (12_000, 0)

    listing = await store.begin_listing("acme")
    again = await store.ingest_pages(listing, [[Rec("1", "u1@example.com")]] * 2)
    assert again.unchanged == 1  # a repeated record in a listing counts once


async def test_ids_that_cannot_name_one_account_are_rejected(store: GraphStore) -> None:
    bad = ["", ".", "..", " .. ", "a/b", "a\\b", "x?y", "x#y", "5%", "tab\there", "x" * 257]
    listing = await store.begin_listing("acme")
    stats = await store.ingest(
        listing,
        [Rec(external_id, f"u{i}@example.com") for i, external_id in enumerate(bad)]
        + [Rec("ok-1", "ok@example.com"), Rec("x" * 256, "long@example.com")],
    )
    assert (stats.inserted, stats.rejected) == (2, len(bad))
    assert all(len(line) < 200 for line in stats.rejections)  # a hostile id is not logged whole
    assert await scalar(store, "SELECT COUNT(*) FROM account") == 2


async def test_a_vendor_answer_with_an_unusable_id_is_not_recorded(store: GraphStore) -> None:
    async with store.db.write() as conn:
        with pytest.raises(ValueError, match="external id"):
            await record_account(conn, "acme", Rec("..", "a@example.com"), person_id=None)
    assert await scalar(store, "SELECT COUNT(*) FROM account") == 0


async def test_one_batch_of_every_kind_writes_only_what_changed(store: GraphStore) -> None:
    kept = [Rec(str(i), f"u{i}@example.com", attributes={"title": "x"}) for i in range(6)]
    await full_listing(store, "acme", kept)
    await full_listing(store, "acme", kept[1:])  # "0" goes missing
    changed_at = await scalar(store, "SELECT changed_at FROM account WHERE external_id = '5'")
    events = await scalar(store, "SELECT count(*) FROM event")
    listing = await store.begin_listing("acme")
    stats = await store.ingest(
        listing,
        [
            kept[0],  # comes back
            Rec("1", "u1@example.com", attributes={"title": "y"}),  # attribute change
            Rec("2", "new2@example.com", attributes={"title": "x"}),  # email change
            Rec("3", "u3@example.com", status="suspended", attributes={"title": "x"}),
            kept[4],
            kept[5],
            Rec("6", "u6@example.com"),  # new
            Rec("7", "u7@example.com", attributes={"x": {1}}),  # rejected
        ],
    )
    assert (stats.received, stats.inserted, stats.updated) == (8, 1, 4)
    assert (stats.unchanged, stats.rejected) == (2, 1)
    assert len(listing.seen_known) == 6 and listing.listed == 7
    assert await scalar(store, "SELECT count(*) FROM event") == events + 5
    async with store.db.read() as conn:
        diffs = set(
            (await conn.execute(sa.text("SELECT kind, old_json, new_json FROM event"))).all()
        )
    assert ("account.updated", '{"title":"x"}', '{"title":"y"}') in diffs
    assert (
        "account.updated",
        '{"email":"u2@example.com"}',
        '{"email":"new2@example.com"}',
    ) in diffs
    assert ("account.updated", '{"status":"active"}', '{"status":"suspended"}') in diffs
    assert await scalar(store, "SELECT email FROM account WHERE external_id = '2'") == (
        "new2@example.com"
    )
    assert await scalar(store, "SELECT count(*) FROM account WHERE missing_since IS NULL") == 7
    assert await scalar(store, "SELECT count(*) FROM account") == 7
    assert (
        await scalar(store, "SELECT changed_at FROM account WHERE external_id = '5'") == changed_at
    )
    assert (await store.finish_listing(listing, complete=True)).marked_missing == 0


def test_the_content_hash_of_a_known_record_is_pinned() -> None:
    # Stored hashes must keep matching: a different digest would rewrite every account.
    record = Rec(
        "42",
        "Ada@Corp.Example",
        attributes={"title": "Engineer", "given_name": "Ada"},
        raw={"id": 42, "x": [1, "b"], "name": "Ada Lövelace"},
    )
    assert prepare(record, DEFAULT_POLICY).payload_hash == "35b38e22536f850ce920b032ec020332"
    assert hashed(record).payload_hash == "35b38e22536f850ce920b032ec020332"


async def test_an_unchanged_listing_is_counted_as_the_first_was(store: GraphStore) -> None:
    records = [
        Rec("1", "not an email"),
        Rec("2", "b@example.com", attributes={"x": {1, 2}}),  # a set is not JSON
        Rec("3", None),
        Rec("4", "bad@@example.com"),  # replaced by the next record, its email still counted
        Rec("4", "d@example.com"),
        Rec("5", "e@example.com", status="suspended"),
        Rec("..", "dots@example.com"),  # an id that cannot name one account
        Rec("6", "x" * 400 + "@example.com"),  # too long to be real
    ]
    counts = []
    for ingest in ("ingest", "ingest", "ingest_pages"):
        listing = await store.begin_listing("acme")
        if ingest == "ingest":
            stats = await store.ingest(listing, records)
        else:
            stats = await store.ingest_pages(listing, [records[:3], records[3:]])
        await store.finish_listing(listing, complete=True)
        counts.append(
            (
                stats.received,
                stats.rejected,
                stats.invalid_emails,
                stats.inserted + stats.unchanged,
                [line.split(":")[0] for line in stats.rejections],
                len(listing.seen_known) + listing.inserted,
                listing.listed,
            )
        )
    assert counts[0] == (8, 3, 2, 4, ["2", "..", "6"], 4, 4)
    assert counts[1] == counts[0] == counts[2]
