"""Replica heartbeats: which `syncd run` processes share the leases now."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from graph.db import Database
from graph.lease import clock
from graph.models import replica_table
from graph.sql import from_row, insert_for

r = replica_table
FORGET_AFTER = 10  # lease TTLs after which a silent replica's row is deleted


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica as its last heartbeat left it."""

    id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


async def beat(db: Database, replica: str, ttl: float) -> int:
    """Say this replica is alive; forget long-silent ones; how many are live (seen in a TTL)."""
    async with db.write() as conn:
        insert = insert_for(conn, r).values(
            id=replica,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=clock(db),
            seen_at=clock(db),
        )
        await conn.execute(
            insert.on_conflict_do_update(index_elements=["id"], set_={"seen_at": clock(db)})
        )
        await conn.execute(sa.delete(r).where(r.c.seen_at < clock(db, -FORGET_AFTER * ttl)))
        live = await conn.execute(
            sa.select(sa.func.count()).select_from(r).where(r.c.seen_at >= clock(db, -ttl))
        )
        return int(live.scalar_one())


async def leave(db: Database, replica: str) -> None:
    """This replica stops: the others count without it at once."""
    async with db.write() as conn:
        await conn.execute(sa.delete(r).where(r.c.id == replica))


async def live(db: Database, ttl: float) -> list[Replica]:
    """The replicas seen within one TTL, oldest first."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(r).where(r.c.seen_at >= clock(db, -ttl)).order_by(r.c.started_at, r.c.id)
        )
        return [from_row(Replica, row) for row in rows]
