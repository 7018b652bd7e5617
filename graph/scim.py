"""SCIM resources an identity provider provisioned: users, their emails, groups, members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.models import (
    aware,
    person_email_table,
    person_table,
    scim_group,
    scim_group_member,
    scim_user,
    scim_user_email,
    utcnow,
)
from graph.sql import IN_CHUNK, chunks, dumps, loads


@dataclass(frozen=True, slots=True)
class UserEmail:
    """One address of a SCIM user, as the filters see it."""

    value: str
    type: str | None = None
    primary: bool = False


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A stored SCIM resource: its JSON, version and timestamps."""

    id: str
    resource: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


def _stored(row: Any) -> StoredResource:
    return StoredResource(
        row.id, loads(row.resource_json), row.version, aware(row.created_at), aware(row.updated_at)
    )


def _table(kind: str) -> sa.Table:
    return scim_user if kind == "User" else scim_group


async def get_resource(
    conn: AsyncConnection, kind: str, resource_id: str, *, for_update: bool = False
) -> StoredResource | None:
    """The stored User or Group with this id (locked for a write when asked), or None."""
    table = _table(kind)
    query = sa.select(table).where(table.c.id == resource_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _stored(row)


async def list_resources(
    conn: AsyncConnection,
    kind: str,
    where: sa.ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> tuple[int, list[StoredResource]]:
    """The total matching `where` and one page of them, in creation order."""
    table = _table(kind)
    condition = sa.true() if where is None else where
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(table).where(condition))
    ).scalar_one()
    if limit <= 0:
        return total, []
    rows = await conn.execute(
        sa.select(table)
        .where(condition)
        .order_by(table.c.created_at, table.c.id)
        .offset(offset)
        .limit(limit)
    )
    return total, [_stored(row) for row in rows]


async def user_name_taken(conn: AsyncConnection, user_name: str, but: str | None = None) -> bool:
    """True when another user holds this userName (compared case-insensitively)."""
    query = sa.select(scim_user.c.id).where(scim_user.c.user_name_key == user_name.casefold())
    if but is not None:
        query = query.where(scim_user.c.id != but)
    return (await conn.execute(query)).first() is not None


def _user_rows(
    resource: Mapping[str, Any], emails: Sequence[UserEmail]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = {
        "user_name": resource["userName"],
        "user_name_key": str(resource["userName"]).casefold(),
        "external_id": resource.get("externalId"),
        "display_name": resource.get("displayName"),
        "active": resource.get("active") is not False,
    }
    rows = [
        {
            "user_id": resource["id"],
            "value": email.value,
            "value_key": email.value.casefold(),
            "type": email.type,
            "is_primary": email.primary,
        }
        for email in emails
    ]
    return values, rows


def _group_rows(
    resource: Mapping[str, Any], member_ids: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = {"display_name": resource["displayName"], "external_id": resource.get("externalId")}
    rows = [{"group_id": resource["id"], "user_id": user_id} for user_id in sorted(set(member_ids))]
    return values, rows


async def save_resource(
    conn: AsyncConnection,
    kind: str,
    resource: Mapping[str, Any],
    children: Sequence[Any],
    *,
    version: int,
    created_at: datetime | None = None,
) -> StoredResource:
    """Insert (version 1) or replace a User with its emails, or a Group with its member ids."""
    if kind == "User":
        table, child = scim_user, scim_user_email.c.user_id
        values, rows = _user_rows(resource, children)
    else:
        table, child = scim_group, scim_group_member.c.group_id
        values, rows = _group_rows(resource, children)
    resource_id = resource["id"]
    now = utcnow()
    values |= {"resource_json": dumps(resource), "version": version, "updated_at": now}
    if version == 1:
        values |= {"id": resource_id, "created_at": created_at or now}
        await conn.execute(sa.insert(table).values(values))
    else:
        await conn.execute(sa.update(table).where(table.c.id == resource_id).values(values))
        await conn.execute(sa.delete(child.table).where(child == resource_id))
    if rows:
        await conn.execute(sa.insert(child.table), rows)
    return StoredResource(resource_id, dict(resource), version, created_at or now, now)


async def link_people(conn: AsyncConnection, user_ids: Iterable[str]) -> None:
    """Record which graph person each of these SCIM users became."""
    person = (
        sa.select(person_table.c.id)
        .where(person_table.c.authority_id == scim_user.c.id)
        .scalar_subquery()
    )
    for chunk in chunks(sorted(set(user_ids)), IN_CHUNK):
        await conn.execute(
            sa.update(scim_user).where(scim_user.c.id.in_(chunk)).values(person_id=person)
        )


async def _leave_groups(conn: AsyncConnection, user_id: str) -> None:
    """Take a deleted user out of the members each of its groups lists (a new group version)."""
    rows = await conn.execute(
        sa.select(scim_group)
        .join(scim_group_member, scim_group_member.c.group_id == scim_group.c.id)
        .where(scim_group_member.c.user_id == user_id)
    )
    for row in rows.all():
        resource = loads(row.resource_json)
        resource["members"] = [
            member for member in resource.get("members") or () if member.get("value") != user_id
        ]
        if not resource["members"]:
            del resource["members"]
        await conn.execute(
            sa.update(scim_group)
            .where(scim_group.c.id == row.id)
            .values(resource_json=dumps(resource), version=row.version + 1, updated_at=utcnow())
        )


async def delete_resource(conn: AsyncConnection, kind: str, resource_id: str) -> None:
    """Remove the User or Group with its emails and memberships."""
    if kind == "User":
        await conn.execute(
            sa.delete(scim_user_email).where(scim_user_email.c.user_id == resource_id)
        )
        await _leave_groups(conn, resource_id)
        await conn.execute(
            sa.delete(scim_group_member).where(scim_group_member.c.user_id == resource_id)
        )
    else:
        await conn.execute(
            sa.delete(scim_group_member).where(scim_group_member.c.group_id == resource_id)
        )
    table = _table(kind)
    await conn.execute(sa.delete(table).where(table.c.id == resource_id))


async def _in_chunks(
    conn: AsyncConnection, query: sa.Select[Any], column: sa.Column[str], ids: Iterable[str]
) -> list[Any]:
    """The rows of `query` whose column is one of these ids, a bounded IN list at a time."""
    rows: list[Any] = []
    for chunk in chunks(sorted(set(ids)), IN_CHUNK):
        rows += (await conn.execute(query.where(column.in_(chunk)))).all()
    return rows


async def existing_users(conn: AsyncConnection, user_ids: Iterable[str]) -> set[str]:
    """Which of these ids are stored users."""
    rows = await _in_chunks(conn, sa.select(scim_user.c.id), scim_user.c.id, user_ids)
    return {row.id for row in rows}


async def group_names(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each user's groups, as sorted displayNames."""
    wanted = set(user_ids)
    names: dict[str, list[str]] = {user_id: [] for user_id in wanted}
    query = sa.select(scim_group_member.c.user_id, scim_group.c.display_name).join(
        scim_group, scim_group.c.id == scim_group_member.c.group_id
    )
    for row in await _in_chunks(conn, query, scim_group_member.c.user_id, wanted):
        names[row.user_id].append(row.display_name)
    return {user_id: sorted(groups) for user_id, groups in names.items()}


async def users_of(conn: AsyncConnection, user_ids: Iterable[str]) -> list[StoredResource]:
    """The stored users with these ids."""
    rows = await _in_chunks(conn, sa.select(scim_user), scim_user.c.id, user_ids)
    return [_stored(row) for row in rows]


async def vacated_authority_id(conn: AsyncConnection, email: str, source: str) -> str | None:
    """The id of a deleted SCIM user whose deprovisioned person holds this (normalized) email."""
    row = (
        await conn.execute(
            sa.select(person_table.c.authority_id)
            .join(person_email_table, person_email_table.c.person_id == person_table.c.id)
            .where(
                person_email_table.c.email == email,
                person_table.c.source == source,
                person_table.c.lifecycle == "deprovisioned",
                person_table.c.authority_id.is_not(None),
                ~sa.exists().where(scim_user.c.id == person_table.c.authority_id),
            )
        )
    ).first()
    return None if row is None else str(row.authority_id)
