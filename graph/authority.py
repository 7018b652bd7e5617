"""The authority's state: the last feed applied, a refusal, and an operator's approval."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.audit import SYNCD, record_operator_action
from graph.models import authority_state_table, event_table, person_table, utcnow
from graph.sql import insert_for

a = authority_state_table
e = event_table
p = person_table


@dataclass(frozen=True)
class AuthorityState:
    """One authority source's row; every field None until a feed was seen."""

    source: str
    applied_digest: str | None = None
    applied_at: datetime | None = None
    refused_reason: str | None = None
    refused_since: datetime | None = None
    refused_digest: str | None = None
    refused_count: int | None = None
    approved_digest: str | None = None


async def authority_state(conn: AsyncConnection, source: str) -> AuthorityState:
    """The source's state (an empty one if nothing was recorded)."""
    row = (await conn.execute(sa.select(a).where(a.c.source == source))).first()
    if row is None:
        return AuthorityState(source)
    return AuthorityState(
        source,
        row.applied_digest,
        row.applied_at,
        row.refused_reason,
        row.refused_since,
        row.refused_digest,
        row.refused_count,
        row.approved_digest,
    )


async def _save(conn: AsyncConnection, source: str, values: dict[str, Any]) -> None:
    values = {**values, "updated_at": utcnow()}
    statement = insert_for(conn, a).values(source=source, **values)
    await conn.execute(statement.on_conflict_do_update(index_elements=["source"], set_=values))


async def save_refusal(
    conn: AsyncConnection,
    source: str,
    reason: str,
    digest: str | None,
    count: int | None,
    since: datetime | None = None,
) -> None:
    """Record that the feed is refused, since `since` (now if not given)."""
    await _save(
        conn,
        source,
        {
            "refused_reason": reason,
            "refused_since": since or utcnow(),
            "refused_digest": digest,
            "refused_count": count,
        },
    )


async def save_applied(conn: AsyncConnection, source: str, digest: str) -> None:
    """Record the feed version applied; any refusal and approval are over."""
    await _save(
        conn,
        source,
        {
            "applied_digest": digest,
            "applied_at": utcnow(),
            "refused_reason": None,
            "refused_since": None,
            "refused_digest": None,
            "refused_count": None,
            "approved_digest": None,
        },
    )


async def approve_refused(
    conn: AsyncConnection, source: str, actor: str = SYNCD
) -> AuthorityState | None:
    """Approve the refused feed version (`actor` did); None when none is refused."""
    state = await authority_state(conn, source)
    if state.refused_digest is None:
        return None
    await _save(conn, source, {"approved_digest": state.refused_digest})
    await record_operator_action(
        conn,
        actor,
        "approve_authority",
        subject="authority",
        detail=state.refused_reason,
        old={"approved_digest": state.approved_digest},
        new={"approved_digest": state.refused_digest, "deprovisions": state.refused_count},
    )
    return state


def authority_view(state: AuthorityState) -> dict[str, object]:
    """The state for an operator: refusal and since when, what was applied (no emails)."""
    return {
        "refused": state.refused_reason,
        "refused_since": state.refused_since,
        "awaiting_approval": state.refused_digest is not None
        and state.approved_digest != state.refused_digest,
        "refused_people": state.refused_count,
        "refused_digest": state.refused_digest and state.refused_digest[:12],
        "approved_digest": state.approved_digest and state.approved_digest[:12],
        "applied_digest": state.applied_digest and state.applied_digest[:12],
        "applied_at": state.applied_at,
    }


DEPROVISIONS_SUBJECT = "deprovisions"  # the audit subject of an approved burst of leavers
_APPROVE_DEPROVISIONS = "approve_deprovisions"


async def deprovisioned_since(
    conn: AsyncConnection, since: datetime, exempt: Collection[str]
) -> set[int]:
    """People an authority other than the `exempt` ones deprovisioned after `since`."""
    rows = await conn.execute(
        sa.select(p.c.id).where(
            p.c.lifecycle == "deprovisioned",
            p.c.updated_at > since,
            p.c.source.not_in(sorted(exempt)),
        )
    )
    return set(rows.scalars())


async def active_people(conn: AsyncConnection) -> int:
    """How many people are not deprovisioned."""
    count = await conn.scalar(
        sa.select(sa.func.count()).select_from(p).where(p.c.lifecycle != "deprovisioned")
    )
    return int(count or 0)


async def deprovisions_approved_at(conn: AsyncConnection) -> datetime | None:
    """When an operator last approved a burst of deprovisions, if ever."""
    at = await conn.scalar(
        sa.select(sa.func.max(e.c.at)).where(
            e.c.subject == DEPROVISIONS_SUBJECT, e.c.kind == f"operator.{_APPROVE_DEPROVISIONS}"
        )
    )
    if isinstance(at, datetime) and at.tzinfo is None:  # SQLite hands back naive UTC
        return at.replace(tzinfo=UTC)
    return at if isinstance(at, datetime) else None


async def approve_deprovisions(conn: AsyncConnection, actor: str, operations: int) -> None:
    """Record that `actor` approved a burst of deprovisions (its held operations released)."""
    await record_operator_action(
        conn,
        actor,
        _APPROVE_DEPROVISIONS,
        subject=DEPROVISIONS_SUBJECT,
        new={"operations": operations},
    )
