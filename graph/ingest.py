"""Ingest vendor listings: hash, insert new, update changed, never touch the unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.audit import append
from graph.bounds import bounded_json, cap_string, check_email_length, raw_rest_json
from graph.bulk import Bulk, placeholders
from graph.db import Database
from graph.emails import DEFAULT_POLICY, EmailPolicy, normalize_email
from graph.external_ids import checked_external_id, shown_id
from graph.models import account_table, connector_state_table, event_table, utcnow
from graph.records import AccountRecord
from graph.sql import IN_CHUNK, chunks, event_row, execute_many, insert_for, loads

log = structlog.get_logger("graph.ingest")

WRITE_BATCH = 2_000
ANALYZE_AFTER = 10_000
Pages = AsyncIterable[Iterable[AccountRecord]] | Iterable[Iterable[AccountRecord]]

a = account_table


@dataclass
class Listing:
    """One pass over a connector's accounts; remembers which accounts it saw."""

    connector: str
    started_at: datetime
    # Accounts known before this listing that it saw; those it created are seen by definition.
    seen_known: set[int] = field(default_factory=set)
    listed: int = 0
    inserted: int = 0
    pages: int = 0


@dataclass
class IngestStats:
    """What one ingest call did."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    invalid_emails: int = 0
    rejections: list[str] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        """Account rows written (inserted or updated)."""
        return self.inserted + self.updated

    def add(self, other: IngestStats) -> None:
        """Fold another call's figures into this one."""
        self.received += other.received
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.invalid_emails += other.invalid_emails
        self.rejections.extend(other.rejections)


@dataclass
class FinishResult:
    """What finishing a listing did; `refused` says why nothing was marked missing."""

    complete: bool
    seen: int
    marked_missing: int = 0
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """One account record ready to store: normalized email, content hash.

    `attributes` and `raw` are as received; their stored JSON is bounded (graph.bounds).
    """

    external_id: str
    email_raw: str | None
    email: str | None
    email_error: str | None
    email_loose: str | None
    status: str
    attributes: Mapping[str, object]
    raw: Mapping[str, object]
    payload_hash: str

    @property
    def attributes_json(self) -> str:
        """The attributes as stored: every value bounded."""
        return bounded_json(self.attributes)

    @property
    def raw_json(self) -> str:
        """The raw fields as stored: those the row does not already hold, bounded."""
        held = [*self.attributes.values(), self.email_raw, self.status, self.external_id]
        return raw_rest_json(self.raw, held)

    def columns(self) -> dict[str, Any]:
        """The account columns this record's content sets."""
        return {
            "email_raw": self.email_raw,
            "email": self.email,
            "email_error": self.email_error,
            "email_loose": self.email_loose,
            "status": self.status,
            "attributes_json": self.attributes_json,
            "raw_json": self.raw_json,
            "payload_hash": self.payload_hash,
        }


def _plain(mapping: Mapping[str, object]) -> dict[str, object]:
    return mapping if type(mapping) is dict else dict(mapping)


@dataclass(frozen=True, slots=True)
class Hashed:
    """A record checked and hashed: all a listing needs to find it unchanged."""

    external_id: str
    email_raw: str | None
    status: str
    attributes: Mapping[str, object]
    raw: Mapping[str, object]
    payload_hash: str


def hashed(record: AccountRecord) -> Hashed:
    """Check a record's id and bounds and hash its content (all of it, before any bound)."""
    # One serialization for the hash; the stored JSON is made only for rows that are written.
    attributes, raw = _plain(record.attributes), _plain(record.raw)
    content = orjson.dumps(
        [record.email, record.status, attributes, raw], option=orjson.OPT_SORT_KEYS
    )
    external_id = checked_external_id(record.external_id)
    check_email_length(record.email)
    return Hashed(
        external_id=external_id,
        email_raw=record.email,
        status=cap_string(record.status),
        attributes=attributes,
        raw=raw,
        payload_hash=hashlib.blake2b(content, digest_size=16).hexdigest(),
    )


def finish(item: Hashed, policy: EmailPolicy) -> Prepared:
    """Normalize a hashed record's email: the record ready to store."""
    email = item.email_raw
    normalized = normalize_email(email, policy) if email is not None else None
    return Prepared(
        external_id=item.external_id,
        email_raw=email,
        email=normalized.email if normalized else None,
        email_error=normalized.error if normalized else None,
        email_loose=normalized.loose if normalized else None,
        status=item.status,
        attributes=item.attributes,
        raw=item.raw,
        payload_hash=item.payload_hash,
    )


def prepare(record: AccountRecord, policy: EmailPolicy) -> Prepared:
    """Normalize a record's email and hash its content (all of it, before any bound)."""
    return finish(hashed(record), policy)


def _hash_batch(
    records: Iterable[AccountRecord], policy: EmailPolicy, stats: IngestStats
) -> dict[str, Hashed]:
    """Check and hash a batch; a record that cannot be stored is counted and left out."""
    batch: dict[str, Hashed] = {}
    for record in records:
        stats.received += 1
        try:
            item = hashed(record)
        except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
            stats.rejected += 1
            stats.rejections.append(f"{shown_id(getattr(record, 'external_id', '?'))}: {exc}")
            continue
        replaced = batch.get(item.external_id)
        if replaced is not None:  # a repeated id in one batch: the last one wins
            stats.invalid_emails += finish(replaced, policy).email_error is not None
        batch[item.external_id] = item
    return batch


def _finish_batch(
    batch: Mapping[str, Hashed], policy: EmailPolicy, stats: IngestStats
) -> dict[str, Prepared]:
    """Prepare the records to write; count their invalid emails."""
    prepared = {key: finish(item, policy) for key, item in batch.items()}
    stats.invalid_emails += sum(item.email_error is not None for item in prepared.values())
    return prepared


def _changes(old: Any, new: Prepared) -> tuple[dict[str, object], dict[str, object]]:
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if old.email_raw != new.email_raw:
        before["email"], after["email"] = old.email_raw, new.email_raw
    if old.status != new.status:
        before["status"], after["status"] = old.status, new.status
    old_attrs, new_attrs = loads(old.attributes_json), loads(new.attributes_json)
    for key in sorted(set(old_attrs) | set(new_attrs)):
        if old_attrs.get(key) != new_attrs.get(key):
            before[key], after[key] = old_attrs.get(key), new_attrs.get(key)
    if not before and old.raw_json != new.raw_json:
        before["raw"], after["raw"] = "changed", "changed"
    return before, after


_INSERT_ACCOUNTS = """INSERT INTO account (connector, external_id, email_raw, email, email_error,
  email_loose, status, attributes_json, raw_json, payload_hash, first_seen, changed_at)
  VALUES {rows}
  ON CONFLICT (connector, external_id) DO NOTHING
  RETURNING id"""
_ACCOUNT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Rows per multi-row INSERT: 12 parameters each, well under both drivers' limits.
INSERT_ROWS = 1_000

# What the account table holds of a listing's keys; the ids come as a list or one array.
_EXISTING = """SELECT id, external_id, payload_hash, missing_since, email_error IS NOT NULL
  FROM account WHERE connector = ? AND external_id IN ({ids})"""
_EXISTING_ARRAY = """SELECT id, external_id, payload_hash, missing_since,
  email_error IS NOT NULL FROM account WHERE connector = $1 AND external_id = ANY($2::varchar[])"""

# PostgreSQL: binary COPY into a per-transaction table, then one merge (graph.bulk.Bulk.copy).
_STAGE_ROWS = """DROP TABLE IF EXISTS pg_temp.ingest_row;
  CREATE TEMPORARY TABLE ingest_row (external_id VARCHAR, email_raw VARCHAR, email VARCHAR,
  email_error VARCHAR, email_loose VARCHAR, status VARCHAR, attributes_json VARCHAR,
  raw_json VARCHAR, payload_hash VARCHAR) ON COMMIT DROP"""
_MERGE = """INSERT INTO account (connector, external_id, email_raw, email, email_error,
  email_loose, status, attributes_json, raw_json, payload_hash, first_seen, changed_at)
  SELECT $1, r.*, $2, $2 FROM ingest_row r
  ON CONFLICT (connector, external_id) DO UPDATE SET email_raw = excluded.email_raw,
  email = excluded.email, email_error = excluded.email_error,
  email_loose = excluded.email_loose, status = excluded.status,
  attributes_json = excluded.attributes_json, raw_json = excluded.raw_json,
  payload_hash = excluded.payload_hash, changed_at = excluded.changed_at, missing_since = NULL
  WHERE account.id = ANY($3::integer[]) AND account.payload_hash <> excluded.payload_hash
  RETURNING id, external_id"""


_Keyed = Mapping[str, Hashed | Prepared]  # a chunk's records by external id


@dataclass
class _Stored:
    """A chunk's accounts that the graph already holds, by what the listing does with them."""

    known: set[str] = field(default_factory=set)
    changed: dict[int, str] = field(default_factory=dict)  # account id: the record's key
    reappeared: list[int] = field(default_factory=list)
    # Stored with the record's hash and an invalid email: the record's email is invalid too.
    same_invalid: int = 0

    async def sort(
        self,
        bulk: Bulk,
        listing: Listing,
        items: _Keyed,
        keys: list[str],
        stats: IngestStats,
        skip: Collection[object] = (),
    ) -> None:
        """Sort the stored accounts among `keys` (but `skip`) and mark them seen."""
        existing = await bulk.fetch(
            _EXISTING.format(ids=placeholders(len(keys))), [listing.connector, *keys]
        )
        self.take(listing, items, existing, stats, skip)

    async def sort_all(
        self, bulk: Bulk, listing: Listing, items: _Keyed, stats: IngestStats
    ) -> None:
        """`sort` for every key of `items` at once, the keys as one array (PostgreSQL)."""
        existing = await bulk.fetch(_EXISTING_ARRAY, [listing.connector, list(items)])
        self.take(listing, items, existing, stats)

    def take(
        self,
        listing: Listing,
        items: _Keyed,
        existing: Iterable[tuple[Any, ...]],
        stats: IngestStats,
        skip: Collection[object] = (),
    ) -> None:
        """Sort stored rows (id, external id, hash, missing since, invalid) and mark them seen."""
        for account_id, external_id, payload_hash, missing_since, invalid in existing:
            if account_id in skip:
                continue
            self.known.add(external_id)
            listing.seen_known.add(account_id)
            if payload_hash != items[external_id].payload_hash:
                self.changed[account_id] = external_id
                continue
            self.same_invalid += bool(invalid)
            if missing_since is not None:
                self.reappeared.append(account_id)
            else:
                stats.unchanged += 1

    def rows(self, prepared: Mapping[str, Prepared]) -> dict[int, Prepared]:
        """The changed accounts' records, by account id."""
        return {account_id: prepared[key] for account_id, key in self.changed.items()}


async def _set_aside_unchanged(
    db: Database, listing: Listing, batch: dict[str, Hashed], stats: IngestStats
) -> dict[str, Hashed]:
    """Mark the batch's unchanged accounts seen, compared in a read; return the rest.

    SQLite has one writer: a read waits for none, so listings of unchanged pages never queue
    on each other, on plans or on the pushers; only new, changed and reappeared records go
    on to a write transaction (which compares them again).
    """
    existing: list[tuple[Any, ...]] = []
    async with db.read() as conn:
        bulk = await Bulk.on(conn)
        for keys in chunks(batch, IN_CHUNK):
            sql = _EXISTING.format(ids=placeholders(len(keys)))
            existing.extend(await bulk.fetch(sql, [listing.connector, *keys]))
    rest = dict(batch)
    for account_id, external_id, payload_hash, missing_since, invalid in existing:
        if missing_since is None and payload_hash == batch[external_id].payload_hash:
            listing.seen_known.add(account_id)
            stats.invalid_emails += bool(invalid)
            del rest[external_id]
    unchanged = len(batch) - len(rest)
    listing.listed += unchanged
    stats.unchanged += unchanged
    return rest


def _content(item: Prepared) -> tuple[object, ...]:
    """The account columns a record sets, in the order of `_STAGE_ROWS`."""
    return (
        item.external_id,
        item.email_raw,
        item.email,
        item.email_error,
        item.email_loose,
        item.status,
        item.attributes_json,
        item.raw_json,
        item.payload_hash,
    )


async def _insert(bulk: Bulk, connector: str, items: list[Prepared], at: object) -> list[int]:
    """Ids of the new accounts stored (one that another writer stored first is left out)."""
    created: list[int] = []
    for batch in chunks(items, INSERT_ROWS):
        rows = await bulk.fetch(
            _INSERT_ACCOUNTS.format(rows=", ".join([_ACCOUNT_ROW] * len(batch))),
            [value for item in batch for value in (connector, *_content(item), at, at)],
        )
        created.extend(row[0] for row in rows)
    return created


async def _created(
    bulk: Bulk,
    listing: Listing,
    prepared: dict[str, Prepared],
    new_items: list[Prepared],
    created: list[int],
    now: datetime,
    stored: _Stored,
    stats: IngestStats,
) -> list[dict[str, Any]]:
    """Events for the accounts created; sort those another writer (the pusher) stored first."""
    connector = listing.connector
    stats.inserted += len(created)
    listing.inserted += len(created)
    if len(created) < len(new_items):
        lost = [item.external_id for item in new_items]
        await stored.sort(bulk, listing, prepared, lost, stats, skip=set(created))
    return [
        event_row(connector, "account.created", account_id, now, None, None, connector=connector)
        for account_id in created
    ]


async def _updated_events(
    conn: AsyncConnection, connector: str, changed: Mapping[int, Prepared], now: datetime
) -> list[dict[str, Any]]:
    """An `account.updated` event for each changed account, from its stored values."""
    old_rows = (
        await conn.execute(
            sa.select(a.c.id, a.c.email_raw, a.c.status, a.c.attributes_json, a.c.raw_json).where(
                a.c.id.in_(list(changed))
            )
        )
    ).all()
    events = []
    for old in old_rows:
        before, after = _changes(old, changed[old.id])
        events.append(
            event_row(connector, "account.updated", old.id, now, before, after, connector=connector)
        )
    return events


async def _finish_chunk(
    conn: AsyncConnection,
    listing: Listing,
    stored: _Stored,
    prepared: Mapping[str, Prepared],
    now: datetime,
    stats: IngestStats,
    events: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Update the changed accounts, clear the reappeared ones; every event of the chunk."""
    changed_ids, reappeared = stored.rows(prepared), stored.reappeared
    if changed_ids:
        events.extend(await _updated_events(conn, listing.connector, changed_ids, now))
        await conn.execute(
            sa.update(a)
            .where(a.c.id == sa.bindparam("account_id"))
            .values(
                email_raw=sa.bindparam("email_raw"),
                email=sa.bindparam("email"),
                email_error=sa.bindparam("email_error"),
                email_loose=sa.bindparam("email_loose"),
                status=sa.bindparam("status"),
                attributes_json=sa.bindparam("attributes_json"),
                raw_json=sa.bindparam("raw_json"),
                payload_hash=sa.bindparam("payload_hash"),
                changed_at=now,
                missing_since=None,
            ),
            [
                {"account_id": account_id, **item.columns()}
                for account_id, item in changed_ids.items()
            ],
        )
        stats.updated += len(changed_ids)

    if reappeared:
        await conn.execute(
            sa.update(a).where(a.c.id.in_(reappeared)).values(missing_since=None, changed_at=now)
        )
        events.extend(
            event_row(
                listing.connector,
                "account.reappeared",
                account_id,
                now,
                None,
                None,
                connector=listing.connector,
            )
            for account_id in reappeared
        )
        stats.updated += len(reappeared)
    return events


async def _merge(
    conn: AsyncConnection,
    bulk: Bulk,
    connector: str,
    new_items: list[Prepared],
    stored: _Stored,
    prepared: Mapping[str, Prepared],
    now: datetime,
    stats: IngestStats,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Write new and changed rows by COPY and one merge: ids created, `account.updated` events."""
    changed = stored.rows(prepared)
    # The old values are read before the merge overwrites them.
    events = await _updated_events(conn, connector, changed, now) if changed else []
    await bulk.execute(_STAGE_ROWS)
    await bulk.copy("ingest_row", [_content(item) for item in (*new_items, *changed.values())])
    written = await bulk.fetch(_MERGE, [connector, bulk.time(now), list(changed)])
    stats.updated += len(changed)
    stored.changed = {}
    created = [account_id for account_id, external_id in written if external_id not in stored.known]
    return created, events


async def _write_chunk(
    conn: AsyncConnection,
    listing: Listing,
    batch: Mapping[str, Hashed],
    policy: EmailPolicy,
    now: datetime,
    stats: IngestStats,
    *,
    copy: bool = False,
) -> list[dict[str, Any]]:
    """Compare a chunk with the stored accounts, write the new and changed; their events.

    Only the records to write are prepared (their emails normalized). With `copy`
    (PostgreSQL) every key is looked up at once and the rows go in by `_merge`.
    """
    bulk = await Bulk.on(conn)
    listing.listed += len(batch)
    stored = _Stored()
    if copy:
        await stored.sort_all(bulk, listing, batch, stats)
    else:
        await stored.sort(bulk, listing, batch, list(batch), stats)
    stats.invalid_emails += stored.same_invalid
    changed = set(stored.changed.values())
    to_write = {k: item for k, item in batch.items() if k not in stored.known or k in changed}
    prepared = _finish_batch(to_write, policy, stats)
    new_items = [item for key, item in prepared.items() if key not in stored.known]
    connector = listing.connector
    updated: list[dict[str, Any]] = []
    created: list[int] = []
    if copy and (new_items or stored.changed):
        created, updated = await _merge(
            conn, bulk, connector, new_items, stored, prepared, now, stats
        )
    elif new_items:
        created = await _insert(bulk, connector, new_items, bulk.time(now))
    events = []
    if new_items:
        events = await _created(bulk, listing, prepared, new_items, created, now, stored, stats)
    return await _finish_chunk(conn, listing, stored, prepared, now, stats, [*events, *updated])


async def ingest_account(
    conn: AsyncConnection, connector: str, record: AccountRecord, policy: EmailPolicy
) -> IngestStats:
    """Write one account read on its own, in the caller's transaction; marks nothing missing."""
    stats = IngestStats()
    # A listing of one that is never finished: the bulk path's compare and write, and no
    # account is ever judged missing from it.
    listing = Listing(connector=connector, started_at=utcnow())
    batch = _hash_batch([record], policy, stats)
    if batch:
        events = await _write_chunk(conn, listing, batch, policy, listing.started_at, stats)
        # The caller's transaction goes on: its events are chained when it commits.
        await execute_many(conn, sa.insert(event_table), events)
    _log_rejections(listing, stats)
    return stats


async def begin_listing(db: Database, connector: str) -> Listing:
    """Start a listing and record when it started."""
    listing = Listing(connector=connector, started_at=utcnow())
    async with db.write() as conn:
        await _save_state(conn, connector, listing_started_at=listing.started_at)
    return listing


async def _write(
    db: Database,
    listing: Listing,
    batch: dict[str, Hashed],
    policy: EmailPolicy,
    stats: IngestStats,
) -> None:
    if db.is_sqlite:
        batch = await _set_aside_unchanged(db, listing, batch, stats)
        if not batch:
            return
    now = utcnow()
    async with db.write() as conn:
        if not db.is_sqlite:
            events = await _write_chunk(conn, listing, batch, policy, now, stats, copy=True)
        else:
            events = []
            for keys in chunks(batch, IN_CHUNK):
                chunk = {key: batch[key] for key in keys}
                events.extend(await _write_chunk(conn, listing, chunk, policy, now, stats))
        # Last in the transaction: it holds the end of the audit chain until commit.
        await append(conn, events)


def _log_rejections(listing: Listing, stats: IngestStats) -> None:
    if stats.rejected:
        log.warning(
            "ingest.rejected",
            connector=listing.connector,
            count=stats.rejected,
            first=stats.rejections[0],
        )


async def ingest(
    db: Database,
    listing: Listing,
    records: Iterable[AccountRecord],
    policy: EmailPolicy = DEFAULT_POLICY,
) -> IngestStats:
    """Write one batch of a listing: new rows inserted, changed rows updated, events logged."""
    stats = IngestStats()
    await _write(db, listing, _hash_batch(records, policy, stats), policy, stats)
    listing.pages += 1
    _log_rejections(listing, stats)
    return stats


async def _batches(listing: Listing, pages: Pages, size: int) -> AsyncIterator[list[AccountRecord]]:
    """Regroup pages (vendors send ~100 records) into write batches of about `size`."""
    batch: list[AccountRecord] = []
    async for page in _each(pages):
        listing.pages += 1
        batch.extend(page)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _each(pages: Pages) -> AsyncIterator[Iterable[AccountRecord]]:
    if isinstance(pages, AsyncIterable):
        async for page in pages:
            yield page
    else:
        for page in pages:
            yield page


async def ingest_pages(
    db: Database, listing: Listing, pages: Pages, policy: EmailPolicy = DEFAULT_POLICY
) -> IngestStats:
    """Ingest page after page, preparing the next page while the last one is written."""
    stats = IngestStats()
    send, receive = anyio.create_memory_object_stream[dict[str, Hashed]](1)

    async def writer() -> None:
        async with receive:
            async for batch in receive:
                await _write(db, listing, batch, policy, stats)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        async with send:
            async for batch in _batches(listing, pages, WRITE_BATCH):
                await send.send(_hash_batch(batch, policy, stats))
    _log_rejections(listing, stats)
    return stats


async def finish_listing(
    db: Database,
    listing: Listing,
    *,
    complete: bool,
    max_missing_share: float = 0.25,
    missing_allowance: int = 5,
    mark_missing: bool = True,
) -> FinishResult:
    """Mark accounts the listing did not see as missing, if it was complete and plausible.

    `mark_missing=False` (records were rejected, so unseen is not absent) marks nothing.
    """
    result = FinishResult(complete=complete, seen=listing.listed)
    now = utcnow()
    async with db.write() as conn:
        if complete and mark_missing:
            present = (
                (
                    await conn.execute(
                        sa.select(a.c.id).where(
                            a.c.connector == listing.connector,
                            a.c.missing_since.is_(None),
                            a.c.first_seen < listing.started_at,
                        )
                    )
                )
                .scalars()
                .all()
            )
            missing = [account_id for account_id in present if account_id not in listing.seen_known]
            result.refused = _implausible(
                len(missing), len(present), listing.listed, max_missing_share, missing_allowance
            )
            if result.refused is None:
                for batch in chunks(missing, IN_CHUNK):
                    await conn.execute(
                        sa.update(a).where(a.c.id.in_(batch)).values(missing_since=now)
                    )
                await execute_many(
                    conn,
                    sa.insert(event_table),
                    [
                        event_row(
                            listing.connector,
                            "account.missing",
                            account_id,
                            now,
                            None,
                            None,
                            connector=listing.connector,
                        )
                        for account_id in missing
                    ],
                )
                result.marked_missing = len(missing)
            else:
                log.warning(
                    "listing.shrank",
                    connector=listing.connector,
                    missing=len(missing),
                    present=len(present),
                    reason=result.refused,
                )
        whole = complete and result.refused is None
        await _save_state(
            conn,
            listing.connector,
            listing_finished_at=now,
            listing_complete=whole,
            page_count=listing.pages,
            account_count=listing.listed,
            **({"last_complete_at": now} if whole else {}),
        )
        if listing.inserted >= ANALYZE_AFTER and listing.inserted * 10 >= listing.listed:
            # Fresh statistics after a bulk load; stale ones make resolution plans quadratic.
            await conn.execute(sa.text("ANALYZE account"))
    return result


def _implausible(
    missing: int, present: int, seen: int, max_share: float, allowance: int
) -> str | None:
    if missing == 0:
        return None
    if seen == 0:
        return f"listing was empty but {present} accounts are known"
    if missing > allowance and missing > max_share * present:
        return f"{missing} of {present} accounts would go missing (limit {max_share:.0%})"
    return None


async def _save_state(conn: AsyncConnection, connector: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    statement = insert_for(conn, connector_state_table).values(connector=connector, **values)
    await conn.execute(statement.on_conflict_do_update(index_elements=["connector"], set_=values))
