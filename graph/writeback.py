"""Write what a vendor answered back into the graph, and an operator's link decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.audit import SYNCD
from graph.emails import DEFAULT_POLICY, EmailPolicy, normalize_email
from graph.ingest import prepare
from graph.models import (
    account_table,
    conflict_table,
    event_table,
    person_email_table,
    utcnow,
)
from graph.records import AccountRecord
from graph.sql import dumps, event_row, insert_for, loads

a = account_table
SOURCE = "push"


class LinkError(Exception):
    """A manual link or unlink names something the graph does not hold."""


async def record_account(
    conn: AsyncConnection,
    connector: str,
    record: AccountRecord,
    *,
    person_id: int | None,
    link_method: str = "created_by_push",
    policy: EmailPolicy = DEFAULT_POLICY,
) -> int:
    """Store an account as the vendor returned it, linked to the person it was written for.

    `link_method` is `created_by_push` for an account syncd created, `email` for one a
    lookup found (syncd did not create it, so its link is not trusted). An account someone
    already linked (or deliberately unlinked) keeps that decision.
    """
    item = prepare(record, policy)
    now = utcnow()
    row = await _stored(conn, connector, item.external_id)
    if row is None:
        inserted = (
            await conn.execute(
                insert_for(conn, a)
                .values(
                    connector=connector,
                    external_id=item.external_id,
                    first_seen=now,
                    changed_at=now,
                    **item.columns(),
                    **_link(person_id, link_method, now),
                )
                .on_conflict_do_nothing(index_elements=["connector", "external_id"])
                .returning(a.c.id)
            )
        ).scalar()
        if inserted is not None:
            account_id = int(inserted)
            await conn.execute(
                sa.insert(event_table),
                event_row(
                    SOURCE,
                    "account.created",
                    account_id,
                    now,
                    None,
                    {"person_id": person_id},
                    connector=connector,
                    person_id=person_id,
                ),
            )
            return account_id
        # Another writer (this connector's listing) stored it first: it is a known account.
        row = await _stored(conn, connector, item.external_id)
        if row is None:
            raise RuntimeError(f"account {item.external_id!r} in {connector!r} vanished")
    link = _link(person_id, link_method, now) if row.link_method is None else {}
    account_id = int(row.id)
    changes = {**item.columns(), "changed_at": now} if row.payload_hash != item.payload_hash else {}
    if not changes and not link:
        return account_id
    await conn.execute(
        sa.update(a).where(a.c.id == account_id).values(missing_since=None, **changes, **link)
    )
    await conn.execute(
        sa.insert(event_table),
        event_row(
            SOURCE,
            "account.updated",
            account_id,
            now,
            None,
            {"person_id": link.get("person_id")},
            connector=connector,
            person_id=person_id,
        ),
    )
    return account_id


async def _stored(conn: AsyncConnection, connector: str, external_id: str) -> Any:
    return (
        await conn.execute(
            sa.select(a.c.id, a.c.person_id, a.c.link_method, a.c.payload_hash).where(
                a.c.connector == connector, a.c.external_id == external_id
            )
        )
    ).first()


def _link(person_id: int | None, method: str, now: datetime) -> dict[str, Any]:
    """The columns that link an account to the person it was written for."""
    if person_id is None:
        return {}
    return {"person_id": person_id, "link_method": method, "linked_at": now}


async def mark_deactivated(conn: AsyncConnection, account_id: int) -> None:
    """Note a confirmed deactivation until the next listing tells the whole story."""
    row = (await conn.execute(sa.select(a.c.attributes_json).where(a.c.id == account_id))).first()
    if row is None:
        return
    attributes = loads(row.attributes_json) or {}
    attributes["active"] = False
    now = utcnow()
    await conn.execute(
        sa.update(a)
        .where(a.c.id == account_id)
        .values(status="inactive", attributes_json=dumps(attributes), changed_at=now)
    )
    await conn.execute(
        sa.insert(event_table),
        event_row(SOURCE, "account.deactivated", account_id, now, None, None),
    )


async def _account_id(conn: AsyncConnection, connector: str, external_id: str) -> int:
    found = (
        await conn.execute(
            sa.select(a.c.id).where(a.c.connector == connector, a.c.external_id == external_id)
        )
    ).scalar()
    if found is None:
        raise LinkError(f"no account {external_id!r} is known in connector {connector!r}")
    return int(found)


async def link(
    conn: AsyncConnection,
    connector: str,
    external_id: str,
    email: str,
    policy: EmailPolicy = DEFAULT_POLICY,
    actor: str = SYNCD,
) -> int:
    """Link an account to the person with this email; resolution will not undo it."""
    normalized = normalize_email(email, policy)
    if normalized.email is None:
        raise LinkError(f"{email!r} is not a valid email: {normalized.error}")
    person_id = (
        await conn.execute(
            sa.select(person_email_table.c.person_id).where(
                person_email_table.c.email == normalized.email
            )
        )
    ).scalar()
    if person_id is None:
        raise LinkError("no person has that email")
    account_id = await _account_id(conn, connector, external_id)
    await _set_link(conn, account_id, int(person_id), "account.linked_manually", actor)
    return int(person_id)


async def unlink(
    conn: AsyncConnection, connector: str, external_id: str, actor: str = SYNCD
) -> None:
    """Detach an account from its person; resolution will not link it again."""
    account_id = await _account_id(conn, connector, external_id)
    await _set_link(conn, account_id, None, "account.unlinked", actor)


async def _set_link(
    conn: AsyncConnection, account_id: int, person_id: int | None, kind: str, actor: str
) -> None:
    now = utcnow()
    row = (
        await conn.execute(sa.select(a.c.person_id, a.c.connector).where(a.c.id == account_id))
    ).one()
    old = row.person_id
    await conn.execute(
        sa.update(a)
        .where(a.c.id == account_id)
        .values(person_id=person_id, link_method="manual", linked_at=now)
    )
    # The operator has decided: the account's open conflicts are settled.
    await conn.execute(
        sa.update(conflict_table)
        .where(conflict_table.c.account_id == account_id, conflict_table.c.state == "open")
        .values(state="resolved", resolved_at=now)
    )
    await conn.execute(
        sa.insert(event_table),
        event_row(
            "operator",
            kind,
            account_id,
            now,
            {"person_id": old},
            {"person_id": person_id},
            actor=actor,
            connector=row.connector,
            person_id=person_id if person_id is not None else old,
        ),
    )
