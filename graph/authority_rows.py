"""The hash of each authority row last applied, so an unchanged row need not be applied again."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.models import authority_row_table, person_table
from graph.sql import IN_CHUNK, chunks, insert_for

r = authority_row_table
p = person_table


async def row_hashes(conn: AsyncConnection, source: str) -> set[str]:
    """Every row hash stored for `source`."""
    rows = await conn.execute(sa.select(r.c.row_hash).where(r.c.source == source))
    return set(rows.scalars())


async def current_rows(conn: AsyncConnection, source: str) -> tuple[dict[str, int], set[str]]:
    """Hashes whose person is still at the version the row left them (to that person); the rest."""
    current: dict[str, int] = {}
    stale: set[str] = set()
    rows = await conn.execute(
        sa.select(r.c.row_hash, r.c.person_id, r.c.version == p.c.version)
        .select_from(r.outerjoin(p, p.c.id == r.c.person_id))
        .where(r.c.source == source)
    )
    for row_hash, person_id, same in rows:
        if same and person_id is not None:
            current[row_hash] = person_id
        else:
            stale.add(row_hash)
    return current, stale


async def save_rows(
    conn: AsyncConnection, source: str, drop: Collection[str], applied: Mapping[str, int]
) -> None:
    """Forget the `drop` hashes; store each applied row's hash with its person's version now."""
    for hashes in chunks(sorted(drop), IN_CHUNK):
        await conn.execute(sa.delete(r).where(r.c.source == source, r.c.row_hash.in_(hashes)))
    versions: dict[int, int] = {}
    for ids in chunks(sorted(set(applied.values())), IN_CHUNK):
        rows = await conn.execute(sa.select(p.c.id, p.c.version).where(p.c.id.in_(ids)))
        versions.update((row.id, row.version) for row in rows)
    values = [
        {"source": source, "row_hash": row_hash, "person_id": pid, "version": versions[pid]}
        for row_hash, pid in applied.items()
        if pid in versions
    ]
    for batch in chunks(values, IN_CHUNK):
        statement = insert_for(conn, r)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["source", "row_hash"],
                set_={
                    "person_id": statement.excluded.person_id,
                    "version": statement.excluded.version,
                },
            ),
            batch,
        )
