"""The hash of each authority row last applied, so an unchanged row need not be applied again."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.bulk import Bulk
from graph.models import authority_row_table, person_table
from graph.sql import IN_CHUNK, chunks, insert_for

r = authority_row_table
p = person_table

# Read through the driver: these return a row for every person the authority describes.
_HASHES = "SELECT row_hash FROM authority_row WHERE source = ?"
_CURRENT = """SELECT r.row_hash, r.person_id, r.version = p.version
  FROM authority_row AS r LEFT JOIN person AS p ON p.id = r.person_id WHERE r.source = ?"""


async def row_hashes(conn: AsyncConnection, source: str) -> set[str]:
    """Every row hash stored for `source`."""
    bulk = await Bulk.on(conn)
    return {row_hash for (row_hash,) in await bulk.fetch(_HASHES, [source])}


async def current_rows(conn: AsyncConnection, source: str) -> tuple[dict[str, int], set[str]]:
    """Hashes whose person is still at the version the row left them (to that person); the rest."""
    current: dict[str, int] = {}
    stale: set[str] = set()
    bulk = await Bulk.on(conn)
    for row_hash, person_id, same in await bulk.fetch(_CURRENT, [source]):
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
