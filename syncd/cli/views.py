"""Readable text for an operator: fixed-width tables, ages such as "3m ago", no Python reprs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Outbox states in the order an operator reads them: what waits, what needs them, what ended.
STATE_ORDER = ("pending", "in_flight", "held", "dead", "done", "cancelled")
NONE = "-"


def when(value: datetime | str | None) -> datetime | None:
    """A timestamp from the graph or from the JSON form, in UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(value: datetime | str | None, now: datetime) -> str:
    """How long ago: "just now", "42s ago", "3m ago", "5h ago", "2d ago"; "never" for None."""
    moment = when(value)
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 1:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def stamp(value: datetime | str | None, now: datetime) -> str:
    """A time to the minute, in UTC, with its age."""
    moment = when(value)
    if moment is None:
        return "never"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({age(moment, now)})"


def cell(value: object) -> str:
    """One value as text: no reprs, no control characters a vendor could have sent."""
    if value is None or value == "":
        text = NONE
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{key}={cell(item)}" for key, item in value.items()) or NONE
    elif isinstance(value, list | tuple):
        text = ", ".join(cell(item) for item in value) or NONE
    else:
        text = str(value)
    return "".join(char if char.isprintable() else "?" for char in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns as wide as their widest cell; numbers right-aligned."""
    texts = [[cell(value) for value in row] for row in rows]
    widths = [
        max([len(header), *(len(row[i]) for row in texts)]) for i, header in enumerate(headers)
    ]
    numeric = [
        bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        cells = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), *(line(row) for row in texts)])


def outbox_counts(states: Mapping[str, int]) -> str:
    """Outbox counts by state, in reading order: "pending 2, dead 1, done 40"."""
    known = [state for state in STATE_ORDER if state in states]
    others = sorted(set(states) - set(STATE_ORDER))
    return ", ".join(f"{state} {states[state]}" for state in [*known, *others]) or "empty"


def _listing(item: Mapping[str, Any], now: datetime) -> str:
    if not item["listed"]:
        return "never listed"
    if item["listing_complete"]:
        return f"complete {age(item['last_listing_at'], now)}"
    last = item.get("last_complete_at")
    whole = f"complete {age(last, now)}" if last else "never complete"
    return f"INCOMPLETE {age(item['last_listing_at'], now)}; last {whole}"


def _problem(item: Mapping[str, Any]) -> str | None:
    problem: str | None = item["problem"]
    if problem is None:
        return None
    return f"PARKED: {problem}" if item["parked"] else f"FAILING: {problem}"


def _connector_notes(name: str, item: Mapping[str, Any]) -> list[str]:
    notes = []
    if (problem := _problem(item)) is not None:
        runs = item["consecutive_failures"]
        notes.append(f"{name}: {problem} ({runs} listing(s) in a row)")
    if held := item["outbox"].get("held", 0):
        notes.append(f"{name}: {held} held: syncd approve / syncd reject")
    notes.extend(f"{name}:   held {n}: {reason}" for reason, n in item["held_reasons"].items())
    if retrying := item["retrying_dead_creates"]:
        notes.append(f"{name}: {retrying} dead create(s) planned again, with backoff")
    if refused := item["dead_creates_need_operator"]:
        notes.append(f"{name}: {refused} dead create(s) need an operator: see their last error")
    return notes


def authority_line(authority: Mapping[str, Any], now: datetime) -> str:
    """The HR feed: its file, its people, when it was last applied, and a refusal."""
    people = authority["people"]
    counted = ", ".join(f"{n} {state}" for state, n in sorted(people.items())) or "none"
    parts = [f"authority: {authority['file'] or 'no HR feed configured'}", f"people: {counted}"]
    if authority["applied_digest"]:
        applied = stamp(authority["applied_at"], now)
        parts.append(f"last applied: feed {authority['applied_digest']} at {applied}")
    else:
        parts.append("no feed applied yet")
    line = "; ".join(parts)
    if authority["refused"]:
        since = stamp(authority["refused_since"], now)
        line += f"\nauthority: REFUSED since {since}: {authority['refused']}"
        if authority["awaiting_approval"]:
            line += "  (approve that version: syncd approve --authority)"
    return line


def status_text(data: Mapping[str, Any], now: datetime) -> str:
    """`syncd status`: one row per connector, its problems, then the authority line."""
    headers = ("CONNECTOR", "LAST LISTING", "ACCOUNTS", "LINKED", "ORPHANS", "CONFLICTS")
    rows = []
    notes = []
    for name, item in data["connectors"].items():
        counts = item["accounts"]
        rows.append(
            (
                name,
                _listing(item, now),
                counts.get("accounts", 0),
                counts.get("linked", 0),
                counts.get("orphans", 0),
                item["open_conflicts"],
                outbox_counts(item["outbox"]),
                f"{item['learned_rate']:g}/s" if item["learned_rate"] else NONE,
            )
        )
        notes.extend(_connector_notes(name, item))
    blocks = [table((*headers, "OUTBOX", "RATE"), rows) if rows else "no connectors configured"]
    if notes:
        blocks.append("\n".join(notes))
    blocks.append(authority_line(data["authority"], now))
    held = data.get("deprovisions", {}).get("held_operations")
    if held:
        blocks.append(
            f"deprovisions: HELD {held} vendor deactivations: {data['deprovisions']['reason']}"
            "  (syncd approve or syncd reject)"
        )
    return "\n\n".join(blocks)


def orphans_text(orphans: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """`syncd orphans`: accounts that belong to nobody."""
    if not orphans:
        return "no orphan accounts"
    rows = [
        (
            item["connector"],
            item["external_id"],
            item["email"] or f"(no usable email: {item['email_error'] or 'none given'})",
            item["status"],
            age(item["first_seen"], now),
            age(item["last_seen"], now) if item["last_seen"] else "unknown (listing incomplete)",
        )
        for item in orphans
    ]
    table_text = table(
        ("CONNECTOR", "EXTERNAL ID", "EMAIL", "STATUS", "FIRST SEEN", "LAST SEEN"), rows
    )
    return f"{table_text}\n{len(orphans)} orphan account(s): link one with syncd link"


def person_text(person: Mapping[str, Any], now: datetime) -> str:
    """`syncd person`: who they are, their emails and attributes, and their accounts."""
    name = " ".join(part for part in (person["given_name"], person["family_name"]) if part)
    lines = [
        f"{person['primary_email']}  {name or person['display_name'] or ''}".rstrip(),
        f"  lifecycle:    {person['lifecycle']}",
        f"  authority id: {cell(person['authority_id'])}",
        f"  emails:       {cell(person['emails'])}",
        f"  attributes:   {cell(person['attributes'])}",
    ]
    accounts = person["accounts"]
    if not accounts:
        lines.append("no linked accounts")
        return "\n".join(lines)
    rows = [
        (
            account["connector"],
            account["external_id"],
            account["email"],
            account["status"],
            account["link_method"],
            f"missing {age(account['missing_since'], now)}" if account["missing_since"] else NONE,
            age(account["changed_at"], now),
        )
        for account in accounts
    ]
    headers = ("CONNECTOR", "EXTERNAL ID", "EMAIL", "STATUS", "LINKED BY", "MISSING", "CHANGED")
    return "\n".join(lines) + "\n\n" + table(headers, rows)
