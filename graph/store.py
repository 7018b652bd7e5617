"""GraphStore: the identity graph's whole API, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from graph import ingest, people, queries, resolve
from graph.db import IDLE_LIMIT, Database, open_database
from graph.emails import DEFAULT_POLICY, EmailPolicy
from graph.ingest import FinishResult, IngestStats, Listing, Pages
from graph.people import PeopleStats
from graph.queries import AccountView, ConflictView, ConnectorCounts, PersonView
from graph.records import AccountRecord, PersonRecord
from graph.resolve import ResolveStats


class GraphStore:
    """Ingest listings, resolve them to people, and answer an operator's questions."""

    def __init__(self, db: Database, policy: EmailPolicy = DEFAULT_POLICY) -> None:
        self.db = db
        self.policy = policy

    @classmethod
    async def open(
        cls, url: str, policy: EmailPolicy = DEFAULT_POLICY, *, idle_limit: float = IDLE_LIMIT
    ) -> GraphStore:
        """Open the graph at a database URL (SQLite files are created and upgraded)."""
        return cls(await open_database(url, idle_limit=idle_limit), policy)

    async def close(self) -> None:
        """Release the database connections."""
        await self.db.close()

    async def begin_listing(self, connector: str) -> Listing:
        """Start a full listing of one connector's accounts."""
        return await ingest.begin_listing(self.db, connector)

    async def ingest(self, listing: Listing, records: Iterable[AccountRecord]) -> IngestStats:
        """Write one batch of the listing; unchanged accounts are not written at all."""
        return await ingest.ingest(self.db, listing, records, self.policy)

    async def ingest_pages(self, listing: Listing, pages: Pages) -> IngestStats:
        """Ingest a stream of pages, overlapping preparation with writing."""
        return await ingest.ingest_pages(self.db, listing, pages, self.policy)

    async def finish_listing(
        self,
        listing: Listing,
        *,
        complete: bool,
        max_missing_share: float = 0.25,
        mark_missing: bool = True,
    ) -> FinishResult:
        """Mark unseen accounts missing, only if the listing was complete and plausible."""
        return await ingest.finish_listing(
            self.db,
            listing,
            complete=complete,
            max_missing_share=max_missing_share,
            mark_missing=mark_missing,
        )

    async def resolve(self, connector: str | None = None) -> ResolveStats:
        """Link unlinked accounts to people by email; record conflicts."""
        return await resolve.resolve(self.db, connector)

    async def upsert_people(self, records: Iterable[PersonRecord], source: str) -> PeopleStats:
        """Create or update people from an authority."""
        return await people.upsert_people(self.db, records, source, self.policy)

    async def person(self, email: str) -> PersonView | None:
        """A person by any of their emails, with linked accounts."""
        return await queries.person_by_email(self.db, email, self.policy)

    async def orphans(self, connector: str | None = None, limit: int = 1000) -> list[AccountView]:
        """Live accounts that belong to nobody."""
        return await queries.orphans(self.db, connector, limit)

    async def conflicts(self, limit: int = 1000) -> list[ConflictView]:
        """Open conflicts, oldest first."""
        return await queries.open_conflicts(self.db, limit)

    async def counts(self) -> list[ConnectorCounts]:
        """Totals per connector."""
        return await queries.counts(self.db)
