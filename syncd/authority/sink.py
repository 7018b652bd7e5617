"""What an authority hands the engine: people, inside the transaction that stores them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from graph.people import PeopleStats
from graph.records import PersonRecord


class PeopleSink(Protocol):
    """Where an authority's changes go: the graph, the plan and the pushers."""

    async def apply_people(
        self, conn: AsyncConnection, records: Sequence[PersonRecord], source: str, actor: str
    ) -> PeopleStats:
        """Upsert the people (a leaver is deprovisioned) and plan, in the caller's transaction."""
        ...

    def committed(self) -> None:
        """The transaction that applied people committed: wake the pushers."""
        ...
