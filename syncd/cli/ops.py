"""`syncd ops`: list the outbox, show one operation, retry dead ones, cancel waiting ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.core.redaction import redact_value
from graph import oplog, outbox
from graph.authority import approve_deprovisions
from graph.db import Database
from graph.emails import normalize_email
from graph.models import utcnow
from graph.store import GraphStore
from syncd.boundary import EX_FAILURE, EX_OK, EX_TEMPFAIL, UsageError
from syncd.cli import views
from syncd.cli.audit import operator
from syncd.config import Config
from syncd.reconcile import HELD_AUTHORITY_MASS_DEPROVISION

_ERROR_WIDTH = 100


async def run_ops(config: Config, args: argparse.Namespace) -> int:
    """Dispatch `syncd ops` and its subcommands."""
    from syncd.cli.commands import emit

    store = await GraphStore.open(config.database.url)
    try:
        if args.ops_command == "show":
            detail = await oplog.operation_detail(store.db, args.id)
            if detail is None:
                sys.stderr.write(f"syncd ops show: no operation {args.id}\n")
                return EX_FAILURE
            emit(args, _detail_data(detail), _detail_text)
            return EX_OK
        if args.ops_command in ("retry", "cancel"):
            return await _change(store.db, args)
        rows = await oplog.list_operations(store.db, _filters(args))
        emit(args, rows, _table)
        return EX_OK
    finally:
        await store.close()


def _filters(args: argparse.Namespace) -> oplog.Filters:
    email = None
    if args.person is not None:
        normalized = normalize_email(args.person)
        if normalized.email is None:
            raise UsageError(f"ops: {args.person!r} is not an email address: {normalized.error}")
        email = normalized.email
    return oplog.Filters(
        states=tuple(args.state) if args.state else None,
        connector=args.connector,
        person_email=email,
        since=utcnow() - args.since if args.since is not None else None,
    )


async def _change(db: Database, args: argparse.Namespace) -> int:
    """Retry or cancel; report what changed on stdout and each refusal in one line."""
    from syncd.cli.commands import emit

    actor = operator()
    wanted: list[int] = list(dict.fromkeys(args.ids))
    allowed: tuple[str, ...]
    if args.ops_command == "retry":
        if args.dead == bool(wanted):
            raise UsageError("ops retry: name operation ids, or --dead for every dead one")
        if args.connector is not None and not args.dead:
            raise UsageError("ops retry: --connector goes with --dead")
        changed = await outbox.retry_dead(
            db, actor=actor, connector=args.connector, ids=wanted or None
        )
        verb, allowed = "retried", ("dead",)
    else:
        changed = await outbox.cancel(db, wanted, actor=actor)
        verb, allowed = "cancelled", ("pending", "held", "dead")
    emit(args, {verb: [item.id for item in changed]}, lambda data: _changed_text(verb, data[verb]))
    refused = await _refusals(db, [i for i in wanted if i not in {c.id for c in changed}], allowed)
    if not refused:
        return EX_OK
    reasons = ", ".join(f"{op_id} ({why})" for op_id, why in refused.items())
    sys.stderr.write(f"syncd ops {args.ops_command}: not {verb}: {reasons}\n")
    in_flight = any(why.startswith("in flight") for why in refused.values())
    return EX_TEMPFAIL if in_flight else EX_FAILURE


async def _refusals(db: Database, ids: list[int], allowed: Sequence[str]) -> dict[int, str]:
    """Why each of these operations was left alone."""
    if not ids:
        return {}
    states = await oplog.states_of(db, ids)
    refused: dict[int, str] = {}
    for op_id in ids:
        state = states.get(op_id)
        if state is None:
            refused[op_id] = "no such operation"
        elif state == "in_flight":
            refused[op_id] = "in flight: the daemon is pushing it; try again when it ends"
        else:
            refused[op_id] = f"it is {state}; only {' or '.join(allowed)} ones"
    return refused


def _changed_text(verb: str, ids: list[int]) -> str:
    if not ids:
        return f"no operation {verb}"
    return f"{len(ids)} operation(s) {verb}: {', '.join(str(i) for i in ids)}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _one_line(text: str | None, width: int = _ERROR_WIDTH) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _last_error(row: oplog.OperationRow) -> str | None:
    """The vendor's status and reason when it gave them: the part a person acts on."""
    if row.last_error is None:
        return None
    if row.last_status is not None and row.last_reason:
        return f"HTTP {row.last_status}: {row.last_reason}"
    return row.last_error


def _table(rows: list[oplog.OperationRow]) -> str:
    """The operations as aligned columns, one line each."""
    if not rows:
        return "no operations"
    header = ("ID", "CONNECTOR", "KIND", "EMAIL", "EXTERNAL ID", "STATE", "TRIES", "NEXT", "ERROR")
    lines = [
        (
            str(row.id),
            row.connector,
            row.op,
            row.email or "-",
            row.external_id or "-",
            row.state,
            str(row.attempts),
            _when(row.next_attempt_at) if row.state == "pending" else "-",
            _one_line(_last_error(row)) or "-",
        )
        for row in rows
    ]
    return views.table(header, lines)


def _detail_data(detail: oplog.OperationDetail) -> dict[str, Any]:
    return {
        **{key: getattr(detail.operation, key) for key in oplog.OperationRow.__dataclass_fields__},
        "person_id": detail.person_id,
        "error_kind": detail.error_kind,
        "created_at": detail.created_at,
        "finished_at": detail.finished_at,
        "payload": redact_value(detail.payload),  # secrets never, whatever a payload holds
        "history": detail.attempts,
    }


def _detail_text(data: dict[str, Any]) -> str:
    lines = [
        f"operation {data['id']}: {data['op']} at {data['connector']}, {data['state']}",
        f"  person:      {data['email'] or '-'} (id {data['person_id'] or '-'})",
        f"  account:     {data['external_id'] or '-'}",
        f"  attempts:    {data['attempts']}"
        + (f", next at {_when(data['next_attempt_at'])}" if data["state"] == "pending" else ""),
        f"  created:     {_when(data['created_at'])}",
        f"  finished:    {_when(data['finished_at'])}",
    ]
    if data["last_error"]:
        lines.append(f"  last error:  {data['last_error']} ({data['error_kind'] or '-'})")
    lines.append("  payload:")
    lines.extend(f"    {key}: {value!r}" for key, value in sorted(data["payload"].items()))
    lines.append("  history:")
    lines.extend(
        f"    {_when(item.at)}  {item.outcome:<10} "
        f"{'HTTP ' + str(item.status) if item.status is not None else '-':<9} {item.message or ''}"
        for item in data["history"]
    )
    if not data["history"]:
        lines.append("    (not tried yet)")
    return "\n".join(lines)


async def released_view(
    store: GraphStore, args: argparse.Namespace, *, approve: bool
) -> dict[str, Any]:
    """Approve or reject the held operations named (all by default); what was released."""
    person_ids = None
    if args.person is not None:
        normalized = normalize_email(args.person)
        if normalized.email is None:
            raise UsageError(f"{args.command}: {args.person!r} is not an email address")
        person_ids = await oplog.person_ids_for(store.db, normalized.email)
    burst = await _held_burst(store.db)
    changed = await outbox.release_held(
        store.db,
        approve=approve,
        actor=operator(),
        connector=args.connector,
        ids=args.ids,
        person_ids=person_ids,
    )
    if approve and (released := burst - await _held_burst(store.db)) > 0:
        # Later leavers of the same burst are not held again (docs/safety.md).
        async with store.db.write() as conn:
            await approve_deprovisions(conn, operator(), released)
    emails = await oplog.primary_emails_of(store.db, [c.person_id for c in changed if c.person_id])
    counts: dict[str, dict[str, int]] = {}
    for item in changed:
        kinds = counts.setdefault(item.connector, {})
        kinds[item.op] = kinds.get(item.op, 0) + 1
    return {
        "approved" if approve else "rejected": len(changed),
        "operations": [item.id for item in changed],
        "by_connector": counts,
        "emails": sorted({emails[c.person_id] for c in changed if c.person_id in emails}),
    }


async def _held_burst(db: Database) -> int:
    """How many vendor deactivations the authority window guard holds."""
    async with db.read() as conn:
        return await outbox.held_for(conn, HELD_AUTHORITY_MASS_DEPROVISION)


def released_text(data: dict[str, Any], verb: str) -> str:
    """What `approve` or `reject` released or dropped, for a person."""
    lines = [f"{data[verb]} held operation(s) {verb}"]
    for connector, kinds in sorted(data["by_connector"].items()):
        parts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        lines.append(f"  {connector}: {parts}")
    lines.extend(f"  {email}" for email in data["emails"])
    return "\n".join(lines)
