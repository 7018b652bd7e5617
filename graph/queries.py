"""The read-side questions an operator asks of the graph."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from graph.db import Database
from graph.emails import DEFAULT_POLICY, EmailPolicy, normalize_email
from graph.models import (
    account_table,
    conflict_table,
    connector_state_table,
    person_email_table,
    person_table,
)
from graph.sql import from_row, loads

a = account_table
c = conflict_table
p = person_table
pe = person_email_table
s = connector_state_table


@dataclass(frozen=True, slots=True)
class AccountView:
    """One vendor account as the graph holds it."""

    id: int
    connector: str
    external_id: str
    email: str | None
    email_error: str | None
    status: str
    attributes: dict[str, Any]
    missing_since: datetime | None
    person_id: int | None
    link_method: str | None
    first_seen: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person with every email and every linked account."""

    id: int
    authority_id: str | None
    primary_email: str
    emails: list[str]
    given_name: str | None
    family_name: str | None
    display_name: str | None
    lifecycle: str
    attributes: dict[str, Any]
    version: int
    accounts: list[AccountView]


@dataclass(frozen=True, slots=True)
class ConflictView:
    """An open question for a person to settle."""

    id: int
    kind: str
    connector: str | None
    email: str | None
    person_id: int | None
    account_id: int | None
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConnectorCounts:
    """Per-connector totals."""

    connector: str
    accounts: int
    linked: int
    orphans: int
    missing: int
    open_conflicts: int


@dataclass(frozen=True, slots=True)
class ListingView:
    """A connector's last listing as the graph recorded it, and why it failed if it did."""

    connector: str
    finished_at: datetime | None
    complete: bool
    last_complete_at: datetime | None
    accounts: int
    learned_rate: float | None
    problem: str | None
    consecutive_failures: int


_ACCOUNT_COLUMNS = (
    a.c.id,
    a.c.connector,
    a.c.external_id,
    a.c.email,
    a.c.email_error,
    a.c.status,
    a.c.attributes_json,
    a.c.missing_since,
    a.c.person_id,
    a.c.link_method,
    a.c.first_seen,
    a.c.changed_at,
)

_open_conflict = sa.exists().where(c.c.account_id == a.c.id, c.c.state == "open")
_is_orphan = sa.and_(a.c.person_id.is_(None), a.c.missing_since.is_(None), ~_open_conflict)


def _account(row: Any) -> AccountView:
    return from_row(AccountView, row, attributes=loads(row.attributes_json))


async def person_by_email(
    db: Database, email: str, policy: EmailPolicy = DEFAULT_POLICY
) -> PersonView | None:
    """The person who holds this email (any of theirs), with their accounts."""
    normalized = normalize_email(email, policy).email
    if normalized is None:
        return None
    async with db.read() as conn:
        person = (
            await conn.execute(
                sa.select(p).join(pe, pe.c.person_id == p.c.id).where(pe.c.email == normalized)
            )
        ).first()
        if person is None:
            return None
        emails = (
            (
                await conn.execute(
                    sa.select(pe.c.email)
                    .where(pe.c.person_id == person.id)
                    .order_by(pe.c.is_primary.desc(), pe.c.email)
                )
            )
            .scalars()
            .all()
        )
        accounts = (
            await conn.execute(
                sa.select(*_ACCOUNT_COLUMNS)
                .where(a.c.person_id == person.id)
                .order_by(a.c.connector, a.c.external_id)
            )
        ).all()
    return from_row(
        PersonView,
        person,
        emails=list(emails),
        attributes=loads(person.attributes_json),
        accounts=[_account(row) for row in accounts],
    )


async def orphans(
    db: Database, connector: str | None = None, limit: int = 1000
) -> list[AccountView]:
    """Live accounts that belong to no person and are not waiting on a conflict."""
    query = sa.select(*_ACCOUNT_COLUMNS).where(_is_orphan)
    if connector is not None:
        query = query.where(a.c.connector == connector)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(a.c.id).limit(limit))).all()
    return [_account(row) for row in rows]


async def open_conflicts(db: Database, limit: int = 1000) -> list[ConflictView]:
    """Conflicts nobody has settled yet, oldest first."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(c).where(c.c.state == "open").order_by(c.c.id).limit(limit)
            )
        ).all()
    return [from_row(ConflictView, row, detail=loads(row.detail_json)) for row in rows]


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def counts(db: Database) -> list[ConnectorCounts]:
    """Accounts, links, orphans, missing and open conflicts per connector."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    a.c.connector,
                    sa.func.count().label("accounts"),
                    _count(a.c.person_id.is_not(None)).label("linked"),
                    _count(_is_orphan).label("orphans"),
                    _count(a.c.missing_since.is_not(None)).label("missing"),
                )
                .group_by(a.c.connector)
                .order_by(a.c.connector)
            )
        ).all()
        conflicts: dict[str, int] = {
            connector: count
            for connector, count in await conn.execute(
                sa.select(c.c.connector, sa.func.count())
                .where(c.c.state == "open", c.c.connector.is_not(None))
                .group_by(c.c.connector)
            )
        }
    return [
        ConnectorCounts(
            connector=row.connector,
            accounts=row.accounts,
            linked=int(row.linked),
            orphans=int(row.orphans),
            missing=int(row.missing),
            open_conflicts=conflicts.get(row.connector, 0),
        )
        for row in rows
    ]


async def people_by_lifecycle(db: Database) -> dict[str, int]:
    """How many people are in each lifecycle state."""
    async with db.read() as conn:
        rows = await conn.execute(sa.select(p.c.lifecycle, sa.func.count()).group_by(p.c.lifecycle))
        return {lifecycle: count for lifecycle, count in rows}


async def open_conflict_count(db: Database) -> int:
    """How many conflicts are open, whether or not they name a connector."""
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(c).where(c.c.state == "open")
        )
    return int(count or 0)


async def listings(db: Database) -> dict[str, ListingView]:
    """Each connector's last listing: when, complete or not, accounts, learned rate, problem."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(s))).all()
    return {
        row.connector: ListingView(
            connector=row.connector,
            finished_at=row.listing_finished_at,
            complete=bool(row.listing_complete),
            last_complete_at=row.last_complete_at,
            accounts=row.account_count,
            learned_rate=row.learned_rate,
            problem=row.parked_reason,
            consecutive_failures=row.consecutive_failures,
        )
        for row in rows
    }
