"""What the planner reads: people with their linked accounts, orphans, and listing state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.loose import held_by_people, loose_email
from graph.models import (
    account_table,
    conflict_table,
    connector_state_table,
    operation_table,
    person_email_table,
    person_table,
    utcnow,
)
from graph.sql import IN_CHUNK, chunks, insert_for, loads

a = account_table
p = person_table
pe = person_email_table
o = operation_table
_in_open_conflict = sa.exists().where(
    conflict_table.c.account_id == a.c.id, conflict_table.c.state == "open"
)
OPEN_STATES = ("pending", "in_flight", "held")


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """A live account as last listed (or as the vendor last answered)."""

    id: int
    connector: str
    external_id: str
    active: bool
    attributes: dict[str, Any]
    payload_hash: str
    link_method: str | None = None  # email (found by address), manual, created_by_push


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person and their live accounts, one per connector."""

    id: int
    email: str
    authority_id: str | None
    lifecycle: str
    version: int
    names: dict[str, str | None]
    attributes: dict[str, Any]
    accounts: dict[str, LinkedAccount] = field(default_factory=dict)
    source: str = ""  # the authority that last wrote the person


def _account(row: Any) -> LinkedAccount:
    attributes = loads(row.attributes_json) or {}
    active = attributes.get("active")
    return LinkedAccount(
        id=row.id,
        connector=row.connector,
        external_id=row.external_id,
        active=bool(active) if active is not None else row.status == "active",
        attributes=attributes,
        payload_hash=row.payload_hash,
        link_method=row.link_method,
    )


_ACCOUNT_COLUMNS = (
    a.c.id,
    a.c.connector,
    a.c.external_id,
    a.c.status,
    a.c.attributes_json,
    a.c.payload_hash,
    a.c.person_id,
    a.c.link_method,
)


async def people_with_accounts(
    conn: AsyncConnection, person_ids: Collection[int] | None = None, chunk: int = IN_CHUNK
) -> AsyncIterator[list[PersonRow]]:
    """Yield every person (or the ones named) with their live linked accounts, in chunks."""
    async for ids in _id_batches(conn, person_ids, chunk):
        people = {
            row.id: PersonRow(
                id=row.id,
                email=row.primary_email,
                authority_id=row.authority_id,
                lifecycle=row.lifecycle,
                version=row.version,
                names={
                    "given_name": row.given_name,
                    "family_name": row.family_name,
                    "display_name": row.display_name,
                },
                attributes=loads(row.attributes_json) or {},
                source=row.source,
            )
            for row in await conn.execute(sa.select(p).where(p.c.id.in_(ids)).order_by(p.c.id))
        }
        for row in await conn.execute(
            sa.select(*_ACCOUNT_COLUMNS)
            .where(a.c.person_id.in_(ids), a.c.missing_since.is_(None))
            .order_by(a.c.id)
        ):
            # Two linked accounts in one connector is a conflict; plan for the first.
            people[row.person_id].accounts.setdefault(row.connector, _account(row))
        yield list(people.values())


async def _id_batches(
    conn: AsyncConnection, person_ids: Collection[int] | None, chunk: int
) -> AsyncIterator[list[int]]:
    if person_ids is not None:
        for ids in chunks(sorted(person_ids), chunk):
            yield ids
        return
    after = 0
    while True:
        ids = list(
            (
                await conn.execute(
                    sa.select(p.c.id).where(p.c.id > after).order_by(p.c.id).limit(chunk)
                )
            ).scalars()
        )
        if not ids:
            return
        yield ids
        after = ids[-1]


async def live_orphans(conn: AsyncConnection, connector: str) -> list[LinkedAccount]:
    """Live accounts at one connector that belong to no person under any normalization.

    An account in an open conflict is never an orphan: it waits for an operator.
    """
    rows = (
        await conn.execute(
            sa.select(*_ACCOUNT_COLUMNS, a.c.email_raw, a.c.email).where(
                a.c.connector == connector,
                a.c.person_id.is_(None),
                a.c.missing_since.is_(None),
                ~_in_open_conflict,
            )
        )
    ).all()
    keys = {row.id: {loose_email(row.email_raw), loose_email(row.email)} - {None} for row in rows}
    claimed = await held_by_people(conn, {key for found in keys.values() for key in found if key})
    return [_account(row) for row in rows if not keys[row.id] & claimed]


@dataclass(frozen=True, slots=True)
class LeaverAccount:
    """A live account of a leaver: linked to them, or carrying their exact email."""

    account: LinkedAccount
    person_id: int
    person_version: int
    linked: bool  # linked to that person (else unlinked)
    in_conflict: bool


async def leaver_accounts(
    conn: AsyncConnection, connectors: Collection[str], person_ids: Collection[int] | None = None
) -> list[LeaverAccount]:
    """Live accounts of non-active people: linked to them, or unlinked with their exact email.

    An account an operator unlinked is not theirs, whatever its email says.
    """
    extra = (
        _in_open_conflict.label("in_conflict"),
        p.c.id.label("owner"),
        p.c.version.label("owner_version"),
    )
    live = (
        p.c.lifecycle != "active",
        a.c.connector.in_(list(connectors)),
        a.c.missing_since.is_(None),
    )
    linked = sa.select(*_ACCOUNT_COLUMNS, *extra).join(p, p.c.id == a.c.person_id).where(*live)
    by_email = (
        sa.select(*_ACCOUNT_COLUMNS, *extra)
        .join(pe, pe.c.email == a.c.email)
        .join(p, p.c.id == pe.c.person_id)
        .where(
            *live,
            a.c.person_id.is_(None),
            sa.or_(a.c.link_method.is_(None), a.c.link_method != "manual"),
        )
    )
    batches = [None] if person_ids is None else list(chunks(sorted(person_ids), IN_CHUNK))
    found: dict[int, LeaverAccount] = {}
    for ids in batches:
        for query in (linked, by_email):
            scoped = query if ids is None else query.where(p.c.id.in_(ids))
            for row in await conn.execute(scoped.order_by(a.c.id)):
                found.setdefault(
                    row.id,
                    LeaverAccount(
                        account=_account(row),
                        person_id=row.owner,
                        person_version=row.owner_version,
                        linked=row.person_id == row.owner,
                        in_conflict=bool(row.in_conflict),
                    ),
                )
    return list(found.values())


async def on_new_domains(conn: AsyncConnection, new_emails: Mapping[int, str]) -> set[int]:
    """The people (of person id -> new address) whose new domain no known address used.

    Known: an address of someone else at that domain, or one of the person's own others
    (their old address). Everyone else moving in the same pass does not count.
    """
    moving = sorted(new_emails)
    found: set[int] = set()
    for domain in {email.rpartition("@")[2] for email in new_emails.values()}:
        at_domain = pe.c.email.like("%@" + _escape_like(domain), escape="\\")
        others = await conn.execute(
            sa.select(pe.c.id).where(at_domain, pe.c.person_id.not_in(moving)).limit(1)
        )
        if others.first() is not None:
            continue
        own = await conn.execute(
            sa.select(pe.c.person_id, pe.c.email).where(at_domain, pe.c.person_id.in_(moving))
        )
        known = {row.person_id for row in own if row.email != new_emails[row.person_id]}
        found.update(
            person
            for person, email in new_emails.items()
            if email.rpartition("@")[2] == domain and person not in known
        )
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def live_account_count(conn: AsyncConnection, connector: str) -> int:
    """How many accounts the connector's last listings hold."""
    # All less the missing: both counts are read from indexes alone, not from every row.
    every = sa.select(sa.func.count()).select_from(a).where(a.c.connector == connector)
    missing = every.where(a.c.missing_since.is_not(None))
    count = await conn.execute(sa.select(every.scalar_subquery() - missing.scalar_subquery()))
    return int(count.scalar_one())


@dataclass(frozen=True, slots=True)
class ListingState:
    """Whether a connector has been listed, and whether its last listing was complete."""

    listed: bool
    complete: bool


async def hold_listings(conn: AsyncConnection, connectors: Sequence[str]) -> None:
    """Lock the connectors' listing bookkeeping until the caller's transaction ends.

    Every plan that queues takes this lock before it reads whether a connector was listed,
    so an HR change committed while a connector's first listing is planned is seen by one
    of the two: on PostgreSQL they would otherwise run at once, each missing the other.
    (SQLite runs one write transaction at a time already.)
    """
    if conn.dialect.name == "sqlite" or not connectors:
        return
    s = connector_state_table
    names = sorted(set(connectors))  # one order for everyone: no deadlock between planners
    now = utcnow()
    rows = [
        {
            "connector": name,
            "listing_complete": False,
            "page_count": 0,
            "account_count": 0,
            "consecutive_failures": 0,
            "updated_at": now,
        }
        for name in names
    ]
    await conn.execute(insert_for(conn, s).values(rows).on_conflict_do_nothing())
    await conn.execute(
        sa.select(s.c.connector)
        .where(s.c.connector.in_(names))
        .order_by(s.c.connector)
        .with_for_update()
    )


async def listing_state(conn: AsyncConnection, connector: str) -> ListingState:
    """The connector's listing bookkeeping."""
    s = connector_state_table
    row = (
        await conn.execute(
            sa.select(s.c.listing_finished_at, s.c.listing_complete).where(
                s.c.connector == connector
            )
        )
    ).first()
    if row is None or row.listing_finished_at is None:
        return ListingState(listed=False, complete=False)
    return ListingState(listed=True, complete=bool(row.listing_complete))


OperationSignature = tuple[str, str, int | None, int | None, str]


async def open_operations(
    conn: AsyncConnection, connectors: Collection[str]
) -> dict[OperationSignature, str]:
    """(connector, op, account, person, payload) of every unfinished operation, to its state."""
    rows = await conn.execute(
        sa.select(
            o.c.connector, o.c.op, o.c.account_id, o.c.person_id, o.c.payload_json, o.c.state
        ).where(o.c.state.in_(OPEN_STATES), o.c.connector.in_(list(connectors)))
    )
    return {(r.connector, r.op, r.account_id, r.person_id, r.payload_json): r.state for r in rows}


async def learned_rates(conn: AsyncConnection) -> dict[str, float]:
    """The rate each connector's budget had learned when it last saved it."""
    s = connector_state_table
    rows = await conn.execute(
        sa.select(s.c.connector, s.c.learned_rate).where(s.c.learned_rate.is_not(None))
    )
    return {row.connector: float(row.learned_rate) for row in rows}


async def save_learned_rate(conn: AsyncConnection, connector: str, rate: float) -> None:
    """Keep a connector's learned rate for the next start."""
    s = connector_state_table
    await conn.execute(sa.update(s).where(s.c.connector == connector).values(learned_rate=rate))


async def save_listing_problem(conn: AsyncConnection, connector: str, problem: str | None) -> None:
    """Keep why the connector's last listing failed (None: it completed), and the failure run."""
    s = connector_state_table
    failures = s.c.consecutive_failures + 1 if problem else 0
    await conn.execute(
        sa.update(s)
        .where(s.c.connector == connector)
        .values(parked_reason=problem, consecutive_failures=failures)
    )


async def account_emails(conn: AsyncConnection, account_ids: Iterable[int]) -> dict[int, str]:
    """Each account's email as the vendor holds it, for an operator's eyes."""
    found: dict[int, str] = {}
    for batch in chunks(sorted(set(account_ids)), IN_CHUNK):
        rows = await conn.execute(
            sa.select(account_table.c.id, account_table.c.email).where(
                account_table.c.id.in_(batch), account_table.c.email.is_not(None)
            )
        )
        found.update({row.id: row.email for row in rows})
    return found


async def account_person(conn: AsyncConnection, connector: str, external_id: str) -> int | None:
    """The person one vendor account is linked to, if any."""
    return (
        await conn.execute(
            sa.select(account_table.c.person_id).where(
                account_table.c.connector == connector,
                account_table.c.external_id == external_id,
            )
        )
    ).scalar_one_or_none()


async def people_touched(conn: AsyncConnection, connector: str, since: datetime) -> set[int]:
    """People whose accounts at the connector were written, went missing or were (un)linked since.

    An unlinked account counts for the people its email names: a leaver's stray account,
    or the person an operator unlinked it from.
    """
    touched = (
        a.c.connector == connector,
        sa.or_(a.c.changed_at >= since, a.c.missing_since >= since, a.c.linked_at >= since),
    )
    linked = sa.select(a.c.person_id).where(*touched, a.c.person_id.is_not(None))
    by_email = (
        sa.select(pe.c.person_id)
        .join(a, a.c.email == pe.c.email)
        .where(*touched, a.c.person_id.is_(None))
    )
    rows = await conn.execute(sa.union(linked, by_email))
    return {int(row[0]) for row in rows}
