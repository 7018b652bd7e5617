"""Plain account records for graph tests, shaped like connectors.core.records.VendorAccount."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from graph.store import GraphStore


@dataclass(frozen=True)
class Rec:
    """A vendor account record."""

    external_id: str
    email: str | None
    status: str = "active"
    attributes: dict[str, object] = field(default_factory=dict)
    raw: dict[str, object] = field(default_factory=dict)


async def full_listing(store: GraphStore, connector: str, records: list[Rec]) -> None:
    """Ingest a complete listing and finish it."""
    listing = await store.begin_listing(connector)
    await store.ingest(listing, records)
    await store.finish_listing(listing, complete=True)


async def scalar(store: GraphStore, sql: str, **params: object) -> object:
    """One value from a read query."""
    async with store.db.read() as conn:
        return (await conn.execute(sa.text(sql), params)).scalar()
