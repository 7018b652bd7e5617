"""The tamper-evident audit trail: chaining events, verifying the chain, reading it back."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.bulk import Bulk
from graph.models import account_table, event_table, operation_table, person_email_table, utcnow
from graph.sql import event_row, loads

e = event_table
GENESIS = "0" * 64  # the previous hash of the first event
AUDIT_LOCK = 0x7379_6E63_6461  # pg_advisory_xact_lock key for appending to the chain
SYNCD = "syncd"  # the actor of everything the daemon does by itself
# What each event's hash covers, besides the previous event's hash.
CONTENT = (
    "id",
    "seq",
    "at",
    "actor",
    "source",
    "kind",
    "subject",
    "subject_id",
    "connector",
    "person_id",
    "operation_id",
    "outcome",
    "detail",
    "old_json",
    "new_json",
)
VERIFY_BATCH = 5_000
# Events in the order they joined the chain (on PostgreSQL not always their id order).
CHAIN_ORDER = (e.c.seq.asc().nulls_last(), e.c.id)


def _canonical(value: object) -> object:
    """A value as JSON can hold it: times in UTC (SQLite's stored text stays as it is)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


_content = operator.itemgetter(*CONTENT)


def _digest(content: dict[str, object], prev_hash: str) -> str:
    """sha256 over the previous hash and the content as canonical JSON (`graph.sql.dumps`)."""
    text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"\n" + text).hexdigest()


def event_hash(row: Mapping[Any, Any], prev_hash: str) -> str:
    """sha256 over the previous hash and the event's canonical content."""
    return _digest({name: _canonical(row[name]) for name in CONTENT}, prev_hash)


def chain(rows: Iterable[Mapping[Any, Any]], seq: int, prev_hash: str) -> list[dict[str, Any]]:
    """Links for unsealed rows (in id order) after the event numbered `seq` with `prev_hash`."""
    links: list[dict[str, Any]] = []
    times: dict[object, object] = {}  # a batch of events shares a handful of times
    for row in rows:
        seq += 1
        content = dict(zip(CONTENT, _content(row), strict=True))
        content["seq"] = seq
        at = content["at"]
        if at not in times:
            times[at] = _canonical(at)
        content["at"] = times[at]
        digest = _digest(content, prev_hash)
        links.append({"event_id": row["id"], "seq": seq, "hash": digest, "prev_hash": prev_hash})
        prev_hash = digest
    return links


# The chained columns as the driver returns them, so a hash covers exactly what is stored.
_STORED = (*CONTENT, "hash", "prev_hash")  # an event's columns: its content and its link
_SELECT = f"SELECT {', '.join(_STORED)} FROM event"  # noqa: S608 (constants)
_SEAL = "UPDATE event SET seq = ?, hash = ?, prev_hash = ? WHERE id = ?"
# SQLite: after the last id sealed (the seq index, from that id on).
_UNSEALED = "WHERE id > ? AND seq IS NULL ORDER BY id LIMIT ?"
SEAL_BATCH = 20_000
_SEAL_ARRAYS = """UPDATE event SET seq = v.seq, hash = v.hash, prev_hash = v.prev_hash
  FROM unnest(?::integer[], ?::varchar[], ?::varchar[], ?::integer[]) AS v(seq, hash, prev_hash, id)
  WHERE event.id = v.id"""


async def _fetch(bulk: Bulk, where: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
    return [
        dict(zip(_STORED, row, strict=True))
        for row in await bulk.fetch(f"{_SELECT} {where}", params)
    ]


async def _hold_end(conn: AsyncConnection) -> None:
    """Hold the end of the chain until commit (SQLite's writer holds its write lock already)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK)))


async def _chained(bulk: Bulk, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Links for `rows` after the last event of the chain (held with `_hold_end`)."""
    last = await bulk.fetch(
        "SELECT seq, hash FROM event WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
    )
    return chain(rows, *last[0]) if last else chain(rows, 0, GENESIS)


async def _unsealed(bulk: Bulk, postgres: bool, batch: int) -> AsyncIterator[list[dict[str, Any]]]:
    """The events no one has chained yet, in id order, `batch` at a time."""
    if postgres:
        # One scan of the seq index through a cursor: with an id range as well, PostgreSQL's
        # planner can pair it with every old version of the rows sealed before.
        async for found in bulk.cursor(f"{_SELECT} WHERE seq IS NULL ORDER BY id", batch):
            yield [dict(zip(_STORED, row, strict=True)) for row in found]
        return
    after = 0
    while rows := await _fetch(bulk, _UNSEALED, [after, batch]):
        yield rows
        after = rows[-1]["id"]


async def seal(conn: AsyncConnection, batch: int = SEAL_BATCH) -> int:
    """Chain the events this transaction added onto the end of the trail; how many.

    Appends are serialized: SQLite's writer already holds the write lock, PostgreSQL
    takes an advisory lock until commit, so two writers never extend the same end. The
    events are read and chained `batch` at a time, so a large import holds few in memory.
    """
    bulk = await Bulk.on(conn)
    postgres = conn.dialect.name == "postgresql"
    sealed = 0
    async for rows in _unsealed(bulk, postgres, batch):
        if not sealed:
            await _hold_end(conn)
        links = await _chained(bulk, rows)
        columns = [[link[n] for link in links] for n in ("seq", "hash", "prev_hash", "event_id")]
        if postgres:
            await bulk.execute(_SEAL_ARRAYS, columns)  # one statement: row by row is a round trip
        else:
            await bulk.executemany(_SEAL, list(zip(*columns, strict=True)))
        sealed += len(links)
    return sealed


_INSERT = f"INSERT INTO event ({', '.join(_STORED)}) VALUES ({', '.join('?' * len(_STORED))})"  # noqa: S608 (constants)
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('event', 'id')) FROM generate_series(1, ?)"


async def append(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert events (`graph.sql.event_row`) already chained onto the end of the trail.

    No read-back, no update at commit: the end of the chain is held as `seal` holds it
    (SQLite's write lock; PostgreSQL's advisory lock, taken before the end is read).
    """
    if not rows:
        return 0
    bulk = await Bulk.on(conn)
    postgres = conn.dialect.name == "postgresql"
    await _hold_end(conn)
    if postgres:
        ids = [row[0] for row in await bulk.fetch(_NEXT_IDS, [len(rows)])]
    else:
        # The writer holds SQLite's write lock: these are the ids SQLite would give.
        top = (await bulk.fetch("SELECT coalesce(max(id), 0) FROM event"))[0][0]
        ids = list(range(top + 1, top + 1 + len(rows)))
    # The values as the driver will return them, so the hash covers exactly what is stored.
    stored, at, stored_at = [], None, None
    for row, key in zip(rows, ids, strict=True):
        if row["at"] is not at:  # a batch shares one time object
            at, stored_at = row["at"], bulk.time(row["at"])
        stored.append({**row, "id": key, "seq": None, "at": stored_at})
    links = await _chained(bulk, stored)
    records = []
    for row, link in zip(stored, links, strict=True):
        row["seq"] = link["seq"]
        records.append((*_content(row), link["hash"], link["prev_hash"]))
    if postgres:
        await bulk.copy("event", records, columns=_STORED)
    else:
        await bulk.executemany(_INSERT, records)
    return len(records)


@dataclass(frozen=True)
class BrokenLink:
    """The first event at which the chain does not hold, and why."""

    event_id: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" + (f" (#{self.seq} in the chain)" if self.seq else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Verified:
    """The outcome of checking the whole chain."""

    events: int
    broken: BrokenLink | None


async def verify(conn: AsyncConnection) -> Verified:
    """Walk the chain in order, recomputing every hash; name the first broken link."""
    bulk = await Bulk.on(conn)
    prev_hash, expected, checked = GENESIS, 1, 0
    while True:
        rows = await _fetch(bulk, "WHERE seq >= ? ORDER BY seq LIMIT ?", (expected, VERIFY_BATCH))
        for row in rows:
            broken = _check(row, expected, prev_hash)
            if broken is not None:
                return Verified(checked, broken)
            prev_hash, expected, checked = row["hash"], expected + 1, checked + 1
        if len(rows) < VERIFY_BATCH:
            break
    outside = (await conn.execute(sa.select(sa.func.min(e.c.id)).where(e.c.seq.is_(None)))).scalar()
    if outside is not None:
        reason = "not in the chain: added without the audit trail"
        return Verified(checked, BrokenLink(int(outside), None, reason))
    return Verified(checked, None)


def _check(row: Mapping[Any, Any], expected: int, prev_hash: str) -> BrokenLink | None:
    if row["seq"] != expected:
        return BrokenLink(row["id"], row["seq"], f"expected #{expected}: events before it are gone")
    if row["prev_hash"] != prev_hash:
        return BrokenLink(row["id"], row["seq"], "does not follow the event before it")
    if row["hash"] != event_hash(row, prev_hash):
        return BrokenLink(row["id"], row["seq"], "its content was changed after it was recorded")
    return None


async def record_operator_action(
    conn: AsyncConnection,
    actor: str,
    action: str,
    *,
    subject: str = "operation",
    subject_id: int = 0,
    connector: str | None = None,
    person_id: int | None = None,
    operation_id: int | None = None,
    outcome: str = "done",
    detail: str | None = None,
    old: object = None,
    new: object = None,
) -> None:
    """Record what an operator did (approve, reject, retry, cancel, link, ...) and who."""
    await conn.execute(
        sa.insert(e),
        event_row(
            "operator",
            f"operator.{action}",
            subject_id,
            utcnow(),
            old,
            new,
            subject,
            actor=actor,
            connector=connector,
            person_id=person_id,
            operation_id=operation_id,
            outcome=outcome,
            detail=detail,
        ),
    )


async def record_operations(
    conn: AsyncConnection,
    where: sa.ColumnElement[bool],
    outcome: str,
    *,
    actor: str = SYNCD,
    action: str = "push",
    detail: str | None = None,
) -> int:
    """Record one event per operation matching `where`: its payload, and what became of it."""
    o = operation_table
    ops = (
        await conn.execute(
            sa.select(
                o.c.id, o.c.connector, o.c.op, o.c.person_id, o.c.account_id, o.c.payload_json
            )
            .where(where)
            .order_by(o.c.id)
        )
    ).all()
    now = utcnow()
    rows = [
        {
            **event_row(
                "operator" if actor != SYNCD else "push",
                f"operation.{op.op}" if action == "push" else f"operator.{action}",
                op.id,
                now,
                None,
                None,
                "operation",
                actor=actor,
                connector=op.connector,
                person_id=op.person_id,
                operation_id=op.id,
                outcome=outcome,
                detail=detail,
            ),
            "new_json": op.payload_json if action == "push" else None,
        }
        for op in ops
    ]
    if rows:
        await conn.execute(sa.insert(e), rows)
    return len(rows)


async def person_id_for(conn: AsyncConnection, email: str) -> int | None:
    """The person one of whose emails this is (already normalized)."""
    found = (
        await conn.execute(
            sa.select(person_email_table.c.person_id).where(person_email_table.c.email == email)
        )
    ).scalar()
    return None if found is None else int(found)


async def history(conn: AsyncConnection, person_id: int) -> list[dict[str, Any]]:
    """A person's timeline: their own events, their accounts' and their operations'."""
    accounts = sa.select(account_table.c.id).where(account_table.c.person_id == person_id)
    query = (
        sa.select(*e.c, account_table.c.external_id)
        .select_from(
            e.outerjoin(
                account_table,
                sa.and_(e.c.subject == "account", account_table.c.id == e.c.subject_id),
            )
        )
        .where(
            sa.or_(
                e.c.person_id == person_id,
                sa.and_(e.c.subject == "person", e.c.subject_id == person_id),
                sa.and_(e.c.subject == "account", e.c.subject_id.in_(accounts)),
            )
        )
        .order_by(*CHAIN_ORDER)
    )
    return [_plain(row) for row in (await conn.execute(query)).mappings()]


async def events_since(conn: AsyncConnection, since: datetime | None) -> list[dict[str, Any]]:
    """Every event at or after `since` (all when None), in chain order."""
    query = sa.select(*e.c).order_by(*CHAIN_ORDER)
    if since is not None:
        query = query.where(e.c.at >= since)
    return [_plain(row) for row in (await conn.execute(query)).mappings()]


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An event row for people and files: times in UTC, JSON parsed."""

    plain = {str(key): _canonical(value) for key, value in row.items()}
    plain["old"], plain["new"] = loads(row["old_json"]), loads(row["new_json"])
    del plain["old_json"], plain["new_json"]
    return plain
