"""The outbox: operations to push to vendors, each queued once and completed once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.audit import record_operations
from graph.db import Database
from graph.models import operation_attempt_table, operation_table, utcnow
from graph.sql import IN_CHUNK, chunks, dumps, from_row, insert_for, loads

o = operation_table
# Deactivations first: a leaver's access goes before routine profile updates.
OP_ORDER = sa.case((o.c.op == "deactivate", 0), (o.c.op == "delete", 1), else_=2)

# Why an operation failed last (`error_kind`). A dead create of a replannable kind is
# planned again under a new key; the others wait for an operator.
TRANSIENT = "transient"  # the vendor or the network failed every attempt
LOOKUP = "lookup"  # the lookup before a create kept failing
LOOKALIKE = "lookalike"  # the lookup found an account with a look-alike email
UNSUPPORTED = "unsupported"  # the vendor cannot do it, or refused the identifier
REFUSED = "refused"  # the vendor (or the connector) refused the write as it stands
REJECTED = "rejected"  # an operator rejected it
AUTH = "auth"  # the vendor rejected the credentials
CANCELLED = "cancelled"  # an operator cancelled it
REPLANNABLE = frozenset({TRANSIENT, LOOKUP})


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One write the planner wants pushed to a vendor."""

    connector: str
    op: str
    payload: Mapping[str, object]
    account_id: int | None = None
    person_id: int | None = None
    key_basis: str = ""
    delay: float = field(default=0.0, compare=False)  # seconds before its first attempt
    # An earlier operation for the same write may have reached the vendor: it is queued as
    # tried once, so a create looks the account up before creating it.
    maybe_sent: bool = field(default=False, compare=False)

    @property
    def idempotency_key(self) -> str:
        """Equal for identical operations, so one is never queued twice."""
        text = "|".join(
            (
                self.connector,
                self.op,
                str(self.account_id),
                str(self.person_id),
                self.key_basis,
                dumps(dict(self.payload)),
            )
        )
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


@dataclass(frozen=True, slots=True)
class QueuedOperation:
    """An operation as stored in the outbox."""

    id: int
    connector: str
    op: str
    payload: dict[str, Any]
    account_id: int | None
    person_id: int | None
    idempotency_key: str
    state: str
    attempts: int
    last_error: str | None
    lookup_failures: int = 0
    lease_token: int | None = None  # the fencing token it was claimed under


class Superseded(Exception):
    """The operation is no longer this claimer's: a lease holder after it put it back."""


def _queued(row: Any) -> QueuedOperation:
    return from_row(QueuedOperation, row, payload=loads(row.payload_json))


async def enqueue(
    conn: AsyncConnection,
    specs: Iterable[OperationSpec],
    *,
    held: bool = False,
    reason: str | None = None,
) -> int:
    """Queue operations inside the caller's transaction; returns how many were new.

    A held operation's `last_error` says why it waits for an operator.
    """
    now = utcnow()
    rows = [
        {
            "connector": spec.connector,
            "op": spec.op,
            "payload_json": dumps(dict(spec.payload)),
            "account_id": spec.account_id,
            "person_id": spec.person_id,
            "idempotency_key": spec.idempotency_key,
            "state": "held" if held else "pending",
            "attempts": 1 if spec.maybe_sent else 0,
            "last_error": reason if held else None,
            "next_attempt_at": now + timedelta(seconds=spec.delay) if spec.delay > 0 else None,
            "created_at": now,
            "updated_at": now,
        }
        for spec in specs
    ]
    if not rows:
        return 0
    statement = insert_for(conn, o).on_conflict_do_nothing(index_elements=["idempotency_key"])
    new = 0
    for row in rows:
        new += (await conn.execute(statement, row)).rowcount
    return new


def _due(connector: str, now: datetime, limit: int) -> sa.Select[Any]:
    """The ids of a connector's next due operations, most urgent first."""
    return (
        sa.select(o.c.id)
        .where(
            o.c.connector == connector,
            o.c.state == "pending",
            sa.or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now),
        )
        .order_by(OP_ORDER, o.c.id)
        .limit(limit)
    )


async def claim(
    db: Database,
    connector: str,
    limit: int,
    *,
    due: datetime | None = None,
    token: int | None = None,
) -> list[QueuedOperation]:
    """Take the next operations of a connector due by `due` (now), marking them in flight.

    Only rows this call moved from pending to in flight are returned, so two claimers
    (two processes, or two pushers) never get the same operation. `token` is the claimer's
    lease fencing token: only a claimer with it may complete or fail them.
    """
    now = utcnow()
    due = now if due is None else min(due, now)
    # Most wakes find nothing due: a read costs no write lock (SQLite's single writer).
    async with db.read() as conn:
        if (await conn.execute(_due(connector, due, 1))).first() is None:
            return []
    async with db.write() as conn:
        ids = (
            (
                await conn.execute(
                    # PostgreSQL: skip rows another claimer holds (SQLite has one writer).
                    _due(connector, due, limit).with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        rows = (
            await conn.execute(
                sa.update(o)
                .where(o.c.id.in_(ids), o.c.state == "pending")
                .values(
                    state="in_flight",
                    attempts=o.c.attempts + 1,
                    updated_at=now,
                    lease_token=token,
                )
                .returning(*o.c)
            )
        ).all()
    order = {op_id: index for index, op_id in enumerate(ids)}
    return sorted((_queued(row) for row in rows), key=lambda op: order[op.id])


# An attempt's message is one line for a person, not a log.
MAX_ATTEMPT_MESSAGE = 300


async def record_attempt(
    conn: AsyncConnection,
    op_id: int,
    outcome: str,
    *,
    status: int | None = None,
    message: str | None = None,
) -> None:
    """Note one try of an operation (or an operator's action on it) and how it ended."""
    text = " ".join(message.split()) if message else None
    if text is not None and len(text) > MAX_ATTEMPT_MESSAGE:
        text = text[: MAX_ATTEMPT_MESSAGE - 1] + "…"
    await conn.execute(
        sa.insert(operation_attempt_table).values(
            operation_id=op_id, at=utcnow(), status=status, outcome=outcome, message=text
        )
    )


def _claimed(op: QueuedOperation) -> sa.ColumnElement[bool]:
    """The operation's row while it is still in flight under the claim that took it."""
    return sa.and_(
        o.c.id == op.id,
        o.c.state == "in_flight",
        o.c.lease_token.is_not_distinct_from(op.lease_token),
    )


async def complete(
    conn: AsyncConnection, op: QueuedOperation, account_id: int | None = None
) -> None:
    """The vendor confirmed the operation (inside the caller's transaction).

    `account_id` names the account a create made (or found), so the operation shows it.
    Raises Superseded, so the caller's transaction rolls back, if the claim is no longer
    this caller's.
    """
    op_id = op.id
    now = utcnow()
    values: dict[str, Any] = {"account_id": account_id} if account_id is not None else {}
    result = await conn.execute(
        sa.update(o)
        .where(_claimed(op))
        .values(
            state="done",
            last_error=None,
            error_kind=None,
            updated_at=now,
            finished_at=now,
            **values,
        )
    )
    if not result.rowcount:
        raise Superseded(f"operation {op_id} was put back in the queue by a later lease holder")
    await record_attempt(conn, op_id, "done")
    await record_operations(conn, o.c.id == op_id, "done")


async def fail(
    db: Database,
    op: QueuedOperation,
    error: str,
    *,
    retry_at: datetime,
    max_attempts: int,
    kind: str = TRANSIENT,
    refund: bool = False,
    lookup_failed: bool = False,
    max_lookup_failures: int = 0,
    status: int | None = None,
    message: str | None = None,
) -> str:
    """Record a failed attempt: retry later, or `dead` once attempts (or lookups) run out.

    A refunded attempt is not counted; a failed lookup counts in `lookup_failures` instead,
    up to `max_lookup_failures` (0: no bound). `status` and `message` are the vendor's answer.
    """
    spent = op.attempts - 1 if refund else op.attempts
    lookups = op.lookup_failures + 1 if lookup_failed else op.lookup_failures
    out_of_lookups = lookup_failed and 0 < max_lookup_failures <= lookups
    dead = out_of_lookups or (not refund and spent >= max_attempts)
    state = "dead" if dead else "pending"
    now = utcnow()
    async with db.write() as conn:
        result = await conn.execute(
            sa.update(o)
            .where(_claimed(op))
            .values(
                state=state,
                last_error=error[:2000],
                error_kind=kind,
                next_attempt_at=retry_at,
                attempts=max(spent, 0),
                lookup_failures=lookups,
                updated_at=now,
                finished_at=now if dead else None,
            )
        )
        if not result.rowcount:
            raise Superseded(f"operation {op.id} was put back in the queue by a later lease holder")
        await record_attempt(
            conn, op.id, "dead" if dead else "retry", status=status, message=message or error
        )
        await record_operations(
            conn, o.c.id == op.id, "dead" if dead else "retry", detail=error[:2000]
        )
    return state


async def recover_in_flight(
    db: Database,
    connector: str | None = None,
    *,
    only_token: int | None = None,
    except_token: int | None = None,
) -> int:
    """After a crash, put operations that were in flight back in the queue.

    `only_token`: only those claimed under that lease token (one claimer's own).
    `except_token`: only those claimed under another one; their claimer's lease has moved
    on, so nobody will finish them.
    """
    query = sa.update(o).where(o.c.state == "in_flight")
    if connector is not None:
        query = query.where(o.c.connector == connector)
    if only_token is not None:
        query = query.where(o.c.lease_token == only_token)
    if except_token is not None:
        query = query.where(o.c.lease_token.is_distinct_from(except_token))
    async with db.write() as conn:
        result = await conn.execute(query.values(state="pending", updated_at=utcnow()))
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class Changed:
    """An operation an operator's command moved to another state."""

    id: int
    connector: str
    op: str
    person_id: int | None


class Scope(TypedDict, total=False):
    """Which operations an operator's command acts on; every key given must match."""

    connector: str | None
    ids: Iterable[int] | None
    person_ids: Iterable[int] | None


async def release_moot_holds(
    conn: AsyncConnection,
    signatures: Iterable[tuple[str, str, int | None, int | None, str]],
    reason: str,
) -> int:
    """Put back in the queue held operations with these signatures held for `reason` only.

    A signature is (connector, op, account, person, payload JSON), as the planner compares.
    """
    released = 0
    for connector, op, account_id, person_id, payload in signatures:
        result = await conn.execute(
            sa.update(o)
            .where(
                o.c.connector == connector,
                o.c.op == op,
                o.c.account_id.is_not_distinct_from(account_id),
                o.c.person_id.is_not_distinct_from(person_id),
                o.c.payload_json == payload,
                o.c.state == "held",
                o.c.last_error == reason,
            )
            .values(state="pending", last_error=None, updated_at=utcnow())
            .returning(o.c.id)
        )
        ids = list(result.scalars())
        if ids:
            await record_operations(
                conn, o.c.id.in_(ids), "approved", action="plan", detail=f"no longer: {reason}"
            )
        released += len(ids)
    return released


async def release_held(
    db: Database, *, approve: bool, actor: str, **scope: Unpack[Scope]
) -> list[Changed]:
    """Approve held operations (they go out) or reject them (they never do); only those named."""
    now = utcnow()
    values: dict[str, Any] = (
        {"state": "pending", "last_error": None}
        if approve
        else {
            "state": "dead",
            "last_error": f"rejected by an operator ({actor})",
            "error_kind": REJECTED,
            "finished_at": now,
        }
    )
    outcome = "approved" if approve else "rejected"
    return await _transition(db, ("held",), values, outcome, actor, **scope)


async def retry_dead(
    db: Database, *, actor: str, connector: str | None = None, ids: Iterable[int] | None = None
) -> list[Changed]:
    """Put dead operations back in the queue with fresh attempts.

    A retried create counts as tried once, so it looks the account up before creating it:
    an earlier try, or a create planned again since, may have made it already.
    """
    values: dict[str, Any] = {
        "state": "pending",
        "attempts": sa.case((o.c.op == "create", 1), else_=0),
        "lookup_failures": 0,
        "error_kind": None,
        "next_attempt_at": None,
        "finished_at": None,
    }
    return await _transition(db, ("dead",), values, "retried", actor, connector=connector, ids=ids)


async def cancel(db: Database, ids: Iterable[int], *, actor: str) -> list[Changed]:
    """End pending, held or dead operations for good: they are never sent."""
    values: dict[str, Any] = {
        "state": CANCELLED,
        "last_error": f"cancelled by an operator ({actor})",
        "error_kind": CANCELLED,
        "finished_at": utcnow(),
    }
    return await _transition(db, ("pending", "held", "dead"), values, "cancelled", actor, ids=ids)


# The audit trail's name for each operator action, by the outcome it gives.
_ACTIONS = {"approved": "approve", "rejected": "reject", "retried": "retry", "cancelled": "cancel"}


async def _transition(
    db: Database,
    states: tuple[str, ...],
    values: dict[str, Any],
    outcome: str,
    actor: str,
    **scope: Unpack[Scope],
) -> list[Changed]:
    """Move the operations in one of `states` to `values`, and note who did it.

    The state check is in the UPDATE itself: an operation the daemon claimed meanwhile
    (now in flight) is left alone, whatever this command read before.
    """
    query = sa.update(o).where(o.c.state.in_(states))
    if (connector := scope.get("connector")) is not None:
        query = query.where(o.c.connector == connector)
    if (ids := scope.get("ids")) is not None:
        query = query.where(o.c.id.in_(sorted(set(ids))))
    if (person_ids := scope.get("person_ids")) is not None:
        query = query.where(o.c.person_id.in_(sorted(set(person_ids))))
    async with db.write() as conn:
        rows = (
            await conn.execute(
                query.values(updated_at=utcnow(), **values).returning(
                    o.c.id, o.c.connector, o.c.op, o.c.person_id
                )
            )
        ).all()
        for row in rows:
            await record_attempt(conn, row.id, outcome, message=f"by {actor}")
        if rows:
            changed = o.c.id.in_([row.id for row in rows])
            await record_operations(conn, changed, outcome, actor=actor, action=_ACTIONS[outcome])
    return sorted((from_row(Changed, row) for row in rows), key=lambda item: item.id)


async def held_reasons(db: Database) -> dict[str, dict[str, int]]:
    """Per connector, how many operations are held for each reason."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(o.c.connector, o.c.last_error, sa.func.count())
            .where(o.c.state == "held")
            .group_by(o.c.connector, o.c.last_error)
        )
        found: dict[str, dict[str, int]] = {}
        for connector, reason, count in rows:
            found.setdefault(connector, {})[reason or "held by a guard"] = count
        return found


async def held_for(conn: AsyncConnection, reason: str) -> int:
    """How many operations are held for this reason, at every connector."""
    count = await conn.scalar(
        sa.select(sa.func.count()).where(o.c.state == "held", o.c.last_error == reason)
    )
    return int(count or 0)


async def counts_by_state(db: Database) -> dict[tuple[str, str], int]:
    """How many operations each connector has in each state."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(o.c.connector, o.c.state, sa.func.count()).group_by(o.c.connector, o.c.state)
        )
        return {(connector, state): count for connector, state, count in rows}


async def dead_creates(db: Database) -> dict[str, dict[str, int]]:
    """Per connector: creates planned again after one died, and dead ones an operator must see."""
    dead = sa.alias(o, "dead")
    earlier = sa.exists().where(
        dead.c.connector == o.c.connector,
        dead.c.person_id == o.c.person_id,
        dead.c.op == "create",
        dead.c.state == "dead",
        dead.c.error_kind.in_(sorted(REPLANNABLE)),
    )
    refused = sa.or_(o.c.error_kind.is_(None), o.c.error_kind.not_in(sorted(REPLANNABLE)))
    found: dict[str, dict[str, int]] = {}
    async with db.read() as conn:
        for label, where in (
            ("retrying_dead_creates", sa.and_(o.c.state.in_(("pending", "in_flight")), earlier)),
            ("dead_creates_need_operator", sa.and_(o.c.state == "dead", refused)),
        ):
            rows = await conn.execute(
                sa.select(o.c.connector, sa.func.count())
                .where(o.c.op == "create", where)
                .group_by(o.c.connector)
            )
            for connector, count in rows:
                found.setdefault(connector, {})[label] = count
    return found


async def dead_create_generations(
    conn: AsyncConnection, connectors: Iterable[str]
) -> dict[tuple[str, int], int]:
    """Per (connector, person), how many of their creates died of a replannable failure."""
    rows = await conn.execute(
        sa.select(o.c.connector, o.c.person_id, sa.func.count())
        .where(
            o.c.connector.in_(list(connectors)),
            o.c.op == "create",
            o.c.state == "dead",
            o.c.person_id.is_not(None),
            o.c.error_kind.in_(sorted(REPLANNABLE)),
        )
        .group_by(o.c.connector, o.c.person_id)
    )
    return {(connector, person): count for connector, person, count in rows}


async def states_by_key(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, str]:
    """The state of each operation already queued under one of these idempotency keys."""
    found: dict[str, str] = {}
    for batch in chunks(sorted(set(keys)), IN_CHUNK):
        rows = await conn.execute(
            sa.select(o.c.idempotency_key, o.c.state).where(o.c.idempotency_key.in_(batch))
        )
        found.update({row.idempotency_key: row.state for row in rows})
    return found
