"""An operator's view of the outbox: operations with their person, account and attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from graph.db import Database
from graph.models import (
    account_table,
    operation_attempt_table,
    operation_table,
    person_email_table,
    person_table,
)
from graph.people import primary_emails
from graph.sql import from_row, loads

o = operation_table
a = operation_attempt_table


@dataclass(frozen=True, slots=True)
class OperationRow:
    """One operation as an operator lists it."""

    id: int
    connector: str
    op: str
    email: str | None  # the person's primary email
    external_id: str | None  # the vendor account's id, once there is one
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    updated_at: datetime
    last_status: int | None  # the vendor's status on the last failed attempt
    last_reason: str | None  # and its reason, or the error when it gave none


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of an operation, or an operator's action on it."""

    at: datetime
    status: int | None
    outcome: str
    message: str | None


@dataclass(frozen=True, slots=True)
class OperationDetail:
    """Everything about one operation."""

    operation: OperationRow
    person_id: int | None
    error_kind: str | None
    payload: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    attempts: list[Attempt]


@dataclass(frozen=True, slots=True)
class Filters:
    """Which operations to list; None: any."""

    states: tuple[str, ...] | None = None
    connector: str | None = None
    person_email: str | None = None  # a normalized email, primary or not
    since: datetime | None = None  # changed at or after


def _last_failure(column: sa.Column[Any]) -> Any:
    """A column of the operation's last failed attempt."""
    return (
        sa.select(column)
        .where(a.c.operation_id == o.c.id, a.c.outcome.in_(("retry", "dead")))
        .order_by(a.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _select() -> sa.Select[Any]:
    return (
        sa.select(
            o,
            person_table.c.primary_email.label("email"),
            account_table.c.external_id,
            _last_failure(a.c.status).label("last_status"),
            _last_failure(a.c.message).label("last_reason"),
        )
        .outerjoin(person_table, person_table.c.id == o.c.person_id)
        .outerjoin(account_table, account_table.c.id == o.c.account_id)
    )


def _row(row: Any) -> OperationRow:
    return from_row(OperationRow, row)


async def list_operations(db: Database, filters: Filters) -> list[OperationRow]:
    """The operations that pass the filters, oldest first."""
    query = _select().order_by(o.c.id)
    if filters.states is not None:
        query = query.where(o.c.state.in_(filters.states))
    if filters.connector is not None:
        query = query.where(o.c.connector == filters.connector)
    if filters.since is not None:
        query = query.where(o.c.updated_at >= filters.since)
    if filters.person_email is not None:
        owner = sa.select(person_email_table.c.person_id).where(
            person_email_table.c.email == filters.person_email
        )
        query = query.where(o.c.person_id.in_(owner.scalar_subquery()))
    async with db.read() as conn:
        return [_row(row) for row in await conn.execute(query)]


async def operation_detail(db: Database, op_id: int) -> OperationDetail | None:
    """One operation with its payload and every attempt, or None if there is no such id."""
    async with db.read() as conn:
        row = (await conn.execute(_select().where(o.c.id == op_id))).first()
        if row is None:
            return None
        attempts = await conn.execute(
            sa.select(a.c.at, a.c.status, a.c.outcome, a.c.message)
            .where(a.c.operation_id == op_id)
            .order_by(a.c.id)
        )
        return OperationDetail(
            operation=_row(row),
            person_id=row.person_id,
            error_kind=row.error_kind,
            payload=loads(row.payload_json),
            created_at=row.created_at,
            finished_at=row.finished_at,
            attempts=[from_row(Attempt, item) for item in attempts],
        )


async def states_of(db: Database, ids: list[int]) -> dict[int, str]:
    """The current state of each of these operations that exists."""
    async with db.read() as conn:
        rows = await conn.execute(sa.select(o.c.id, o.c.state).where(o.c.id.in_(ids)))
        return {row.id: row.state for row in rows}


async def person_ids_for(db: Database, email: str) -> list[int]:
    """The people who hold this normalized email (none or one)."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(person_email_table.c.person_id).where(person_email_table.c.email == email)
        )
        return [int(value) for value in rows.scalars()]


async def primary_emails_of(db: Database, person_ids: list[int]) -> dict[int, str]:
    """Each of these people's primary email."""
    async with db.read() as conn:
        return await primary_emails(conn, person_ids)
