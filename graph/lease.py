"""Leases: who may write, claimed and renewed with single atomic statements (no session state)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from graph.db import Database
from graph.models import lease_table, utcnow
from graph.sql import from_row, insert_for

WRITER = "writer"
LOCK_WAIT_MS = 2_000
t = lease_table


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
    now = utcnow()
    values = {
        "name": name,
        "holder": holder,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": 1,
        "started_at": now,
        "expires_at": now + timedelta(seconds=ttl),
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
        return _lease(row)
    held = await current(db, name)
    if held is None:
        raise LeaseLost(f"the {name} lease row vanished while it was claimed")
    raise LeaseHeld(held)


async def renew(db: Database, lease: Lease, ttl: float) -> Lease:
    """Push the expiry out by `ttl`, only if the lease is still ours; else raise LeaseLost."""
    async with db.write() as conn:
        row = (
            await conn.execute(
                sa.update(t)
                .where(t.c.name == lease.name, t.c.holder == lease.holder, t.c.token == lease.token)
                .values(expires_at=utcnow() + timedelta(seconds=ttl))
                .returning(*t.c)
            )
        ).first()
    if row is None:
        raise LeaseLost(f"the {lease.name} lease was taken over by another process")
    return _lease(row)


async def release(db: Database, lease: Lease) -> bool:
    """Give the lease up at once, only if it is still ours."""
    # Expire rather than delete the row: the fencing token must keep counting up.
    async with db.write() as conn:
        result = await conn.execute(
            sa.update(t)
            .where(t.c.name == lease.name, t.c.holder == lease.holder, t.c.token == lease.token)
            .values(expires_at=utcnow())
        )
    return bool(result.rowcount)


async def current(db: Database, name: str) -> Lease | None:
    """The lease row as it stands, expired or not."""
    async with db.read() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.name == name))).first()
    return None if row is None else _lease(row)
