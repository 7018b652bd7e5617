"""The audit commands: `audit verify`, `audit export` and `history EMAIL`."""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from graph import audit
from graph.db import open_database
from graph.emails import normalize_email
from syncd.boundary import EX_DATAERR, EX_FAILURE, EX_OK, UsageError
from syncd.config import load_config

T = TypeVar("T")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# The columns of an exported event, in file order.
EXPORT_FIELDS = (
    *("seq", "id", "at", "actor", "source", "kind", "subject", "subject_id", "connector"),
    *("person_id", "operation_id", "outcome", "detail", "old", "new", "prev_hash", "hash"),
)


def operator() -> str:
    """The local user name an operator action is recorded under."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A duration back from now (`90m`, `7d`, `2w`) or an ISO date or time (UTC if bare)."""
    if match := _DURATION.fullmatch(text.strip()):
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO date"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _read(args: argparse.Namespace, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one read transaction on the configured database."""

    async def run() -> T:
        db = await open_database(load_config(args.config).database.url)
        try:
            async with db.read() as conn:
                return await work(conn)
        finally:
            await db.close()

    return anyio.run(run)


def run_verify(args: argparse.Namespace) -> int:
    """Check the whole event chain; exit 65 naming the first broken link."""
    result = _read(args, audit.verify)
    data: dict[str, Any] = {"events": result.events, "ok": result.broken is None}
    if result.broken is not None:
        data["broken"] = {
            "event_id": result.broken.event_id,
            "seq": result.broken.seq,
            "reason": result.broken.reason,
        }
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif result.broken is None:
        print(f"audit chain intact: {result.events} events verified")
    else:
        print(f"audit chain BROKEN at {result.broken} ({result.events} events before it verified)")
    return EX_OK if result.broken is None else EX_DATAERR


def run_export(args: argparse.Namespace) -> int:
    """Write every event since --since as JSON lines or CSV, to --output or stdout."""

    async def events(conn: AsyncConnection) -> list[dict[str, Any]]:
        return await audit.events_since(conn, args.since)

    rows = _read(args, events)
    text = _jsonl(rows) if args.format == "jsonl" else _csv(rows)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        sys.stderr.write(f"exported {len(rows)} events to {args.output}\n")
    return EX_OK


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(
        orjson.dumps({name: row[name] for name in EXPORT_FIELDS}).decode() + "\n" for row in rows
    )


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([_cell(row[name]) for name in EXPORT_FIELDS])
    return out.getvalue()


def _cell(value: object) -> object:
    """A CSV cell: JSON for structured values, empty for none."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def run_history(args: argparse.Namespace) -> int:
    """A person's timeline: authority changes, links, every operation and its outcome."""
    normalized = normalize_email(args.email)
    if normalized.email is None:
        raise UsageError(f"history: {args.email!r} is not an email address: {normalized.error}")
    email = normalized.email

    async def timeline(conn: AsyncConnection) -> list[dict[str, Any]] | None:
        person_id = await audit.person_id_for(conn, email)
        return None if person_id is None else await audit.history(conn, person_id)

    events = _read(args, timeline)
    if events is None:
        sys.stderr.write(f"syncd history: no person has the email {email}\n")
        return EX_FAILURE
    if args.json:
        sys.stdout.write(orjson.dumps(events, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write("".join(_line(event) + "\n" for event in events))
    return EX_OK


def _line(event: dict[str, Any]) -> str:
    """One event as a timeline line: when, who, what, where, outcome, what changed."""
    where = event["connector"] or ""
    if event.get("external_id"):
        where += f" {event['external_id']}"
    if event["operation_id"] is not None:
        where += f" op {event['operation_id']}"
    parts = [event["at"][:19].replace("T", " "), event["actor"] or "", event["kind"], where.strip()]
    if event["outcome"]:
        parts.append(event["outcome"])
    if event["detail"]:
        parts.append(event["detail"].splitlines()[0][:200])
    change = _change(event["old"], event["new"])
    if change:
        parts.append(change)
    return "  ".join(part for part in parts if part)


def _change(old: Any, new: Any, prefix: str = "") -> str:
    """`key: old → new` for each key that changed (nested ones dotted), or new values alone."""
    if not isinstance(new, dict):
        return ""
    before = old if isinstance(old, dict) else {}
    items = []
    for key in sorted(new):
        if isinstance(new[key], dict):
            items.append(_change(before.get(key), new[key], f"{prefix}{key}."))
        elif key in before:
            items.append(f"{prefix}{key}: {before[key]!r} → {new[key]!r}")
        else:
            items.append(f"{prefix}{key}={new[key]!r}")
    return ", ".join(item for item in items if item)


def add_commands(
    commands: argparse._SubParsersAction[Any],
    *options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`audit verify`, `audit export` and `history`; `options` add --config, logging and such."""

    def common(parser: argparse.ArgumentParser) -> None:
        for add in options:
            add(parser)

    group = commands.add_parser("audit", help="check or export the tamper-evident audit trail")
    audit_commands = group.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check the event chain (exit 65 if broken)")
    common(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=run_verify)
    export = audit_commands.add_parser("export", help="write the events to a file for auditors")
    common(export)
    export.add_argument(
        "--since", type=parse_since, help="a duration back (7d, 24h) or an ISO date; default all"
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", type=Path, help="the file to write (default: stdout)")
    export.set_defaults(handler=run_export)
    history = commands.add_parser("history", help="a person's timeline across every vendor")
    common(history)
    history.add_argument("email")
    history.add_argument("--json", action="store_true", help="print the events as JSON")
    history.set_defaults(handler=run_history)
