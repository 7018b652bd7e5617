"""Leases: who may write, claimed and renewed with single atomic statements (no session state).

Expiry is judged by the database's clock on PostgreSQL, so replicas with skewed clocks agree.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from graph.db import Database
from graph.models import UTCDateTime, lease_table, utcnow
from graph.sql import from_row, insert_for

WRITER = "writer"
AUTHORITY = "authority"
CONNECTOR = "connector:"  # a connector's lease is named this prefix and its name
LOCK_WAIT_MS = 2_000
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # the expiry of a lease row nobody has held
t = lease_table


def steady() -> float:
    """A local clock for lease deadlines that keeps counting while the machine sleeps."""
    if hasattr(time, "CLOCK_BOOTTIME"):  # Linux; elsewhere the monotonic clock
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


def clock(db: Database, ahead: float = 0.0) -> sa.ColumnElement[datetime]:
    """Now plus `ahead` seconds: the database's clock on PostgreSQL, this process's on SQLite."""
    if db.is_sqlite:  # one host: its own clock is the only one
        return sa.literal(utcnow() + timedelta(seconds=ahead), UTCDateTime)
    now = sa.func.statement_timestamp(type_=UTCDateTime)
    return now + sa.literal(timedelta(seconds=ahead), sa.Interval()) if ahead else now


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease row: who holds it, since when, until when, and its fencing token."""

    name: str
    holder: str
    host: str
    pid: int
    token: int
    started_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """The holder in an operator's words (no personal data)."""
        return (
            f"host {self.host} pid {self.pid} since {self.started_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        )


class LeaseHeld(Exception):
    """Someone else holds the lease (or, locked, keeps anyone from claiming it)."""

    def __init__(self, current: Lease, *, locked: bool = False) -> None:
        text = f"the {current.name} lease is held by {current.describe()}"
        if locked:
            text = f"the database is locked by another writer ({text})"
        super().__init__(text)
        self.current = current


class LeaseLost(Exception):
    """The lease is no longer ours: it expired unrenewed or someone took it over."""


def holder_id() -> str:
    """An identity unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _lease(row: Any) -> Lease:
    return from_row(Lease, row)


async def acquire(db: Database, name: str, holder: str, ttl: float) -> Lease:
    """Take the lease if it is free, expired or already ours; else raise LeaseHeld."""
    values = {
        "name": name,
        "holder": holder,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": 1,
        "started_at": clock(db),
        "expires_at": clock(db, ttl),
    }
    try:
        async with db.write() as conn:
            if not db.is_sqlite:
                # A frozen holder may hold the row mid-renewal: wait briefly, not forever.
                await conn.execute(sa.text(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}"))
            insert = insert_for(conn, t).values(values)
            statement = insert.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "holder": insert.excluded.holder,
                    "host": insert.excluded.host,
                    "pid": insert.excluded.pid,
                    "token": t.c.token + 1,
                    "started_at": insert.excluded.started_at,
                    "expires_at": insert.excluded.expires_at,
                },
                # Only an expired lease, or our own, is taken over; a live one is left alone.
                where=sa.or_(t.c.expires_at < insert.excluded.started_at, t.c.holder == holder),
            ).returning(*t.c)
            row = (await conn.execute(statement)).first()
    except DBAPIError:
        # Locked by another writer (SQLite busy, PostgreSQL lock timeout): say who holds it.
        locked = await current(db, name)
        if locked is None:
            raise
        raise LeaseHeld(locked, locked=True) from None
    if row is not None:
        mine = _lease(row)
        if name == WRITER and (shared := await _live_shared(db)) is not None:
            await release(db, mine)  # replicas share the database: this process may not write
            raise LeaseHeld(shared)
        return mine
    held = await current(db, name)
    if held is None:
        raise LeaseLost(f"the {name} lease row vanished while it was claimed")
    raise LeaseHeld(held)


async def _live_shared(db: Database) -> Lease | None:
    """A live lease of the replicas' kind: replicas at work on the same database."""
    shared = sa.or_(t.c.name == AUTHORITY, t.c.name.startswith(CONNECTOR, autoescape=True))
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(t).where(shared, t.c.expires_at >= clock(db)).order_by(t.c.name).limit(1)
            )
        ).first()
    return None if row is None else _lease(row)


async def renew(db: Database, lease: Lease, ttl: float) -> Lease:
    """Push the expiry out by `ttl`, only if the lease is still ours; else raise LeaseLost."""
    renewed = await renew_all(db, {lease.name: lease}, ttl)
    if lease.name not in renewed:
        raise LeaseLost(f"the {lease.name} lease was taken over by another process")
    return renewed[lease.name]


async def release(db: Database, lease: Lease) -> bool:
    """Give the lease up at once, only if it is still ours."""
    # Expire rather than delete the row: the fencing token must keep counting up.
    async with db.write() as conn:
        result = await conn.execute(
            sa.update(t)
            .where(t.c.name == lease.name, t.c.holder == lease.holder, t.c.token == lease.token)
            .values(expires_at=clock(db))
        )
    return bool(result.rowcount)


async def current(db: Database, name: str) -> Lease | None:
    """The lease row as it stands, expired or not."""
    async with db.read() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.name == name))).first()
    return None if row is None else _lease(row)


async def ensure(db: Database, names: Iterable[str]) -> None:
    """A row for each lease name, expired and held by nobody, where none exists yet."""
    rows = [
        {
            "name": n,
            "holder": "",
            "host": "",
            "pid": 0,
            "token": 0,
            "started_at": NEVER,
            "expires_at": NEVER,
        }
        for n in names
    ]
    if rows:
        async with db.write() as conn:
            await conn.execute(insert_for(conn, t).values(rows).on_conflict_do_nothing())


async def expired(db: Database, names: Iterable[str]) -> list[str]:
    """Which of these leases nobody holds now."""
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(t.c.name).where(t.c.name.in_(list(names)), t.c.expires_at < clock(db))
        )
        return sorted(found.scalars())


async def claim(db: Database, name: str, holder: str, ttl: float) -> Lease | None:
    """Take the lease if it has expired, raising its fencing token; None if it is held.

    Never while a single writer (`syncd once`, or a `syncd run` without replicas) holds the
    writer lease on the same database.
    """
    writer = sa.alias(t, "writer")
    lone_writer = sa.exists().where(writer.c.name == WRITER, writer.c.expires_at >= clock(db))
    async with db.write() as conn:
        if not db.is_sqlite:  # a paused holder may hold the row mid-renewal: not forever
            wait = min(LOCK_WAIT_MS, max(int(ttl * 1000 / 3), 1))
            await conn.execute(sa.text(f"SET LOCAL lock_timeout = {wait}"))
        row = (
            await conn.execute(
                sa.update(t)
                .where(t.c.name == name, t.c.expires_at < clock(db), ~lone_writer)
                .values(
                    holder=holder,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    token=t.c.token + 1,
                    started_at=clock(db),
                    expires_at=clock(db, ttl),
                )
                .returning(*t.c)
            )
        ).first()
    return None if row is None else _lease(row)


async def renew_all(db: Database, held: Mapping[str, Lease], ttl: float) -> dict[str, Lease]:
    """Renew every lease held in one statement; those missing from the answer were lost."""
    if not held:
        return {}
    ours = [
        sa.and_(t.c.name == lease.name, t.c.holder == lease.holder, t.c.token == lease.token)
        for lease in held.values()
    ]
    async with db.write() as conn:
        rows = await conn.execute(
            sa.update(t).where(sa.or_(*ours)).values(expires_at=clock(db, ttl)).returning(*t.c)
        )
        return {row.name: _lease(row) for row in rows}


async def listing(db: Database) -> tuple[datetime, list[Lease]]:
    """The database's time now, and every lease row."""
    async with db.read() as conn:
        now = (await conn.execute(sa.select(clock(db)))).scalar_one()
        rows = (await conn.execute(sa.select(t).order_by(t.c.name))).all()
    return now, [_lease(row) for row in rows]
