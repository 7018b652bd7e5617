"""Read an HR export (CSV or JSON Lines) into authority person records."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graph.emails import normalize_email
from graph.records import PersonRecord

ATTRIBUTES = ("title", "company", "locale", "timezone", "role")
LIST_SEPARATOR = ";"
STATUSES = {
    "active": "active",
    "suspended": "suspended",
    "leave": "suspended",
    "deprovisioned": "deprovisioned",
    "terminated": "deprovisioned",
    "inactive": "deprovisioned",
}


class FeedError(Exception):
    """The feed file itself cannot be read."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One row that failed validation and was skipped."""

    line: int
    message: str


@dataclass
class Feed:
    """The valid people in a feed, and the rows that were skipped."""

    people: list[PersonRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _text(row: Mapping[str, object], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip() for part in str(value).split(LIST_SEPARATOR) if part.strip()]


def _person(row: Mapping[str, object]) -> PersonRecord:
    email = _text(row, "email")
    if email is None:
        raise ValueError("email is missing")
    normalized = normalize_email(email)
    if normalized.error is not None:
        raise ValueError(f"email {email!r} is invalid: {normalized.error}")
    status = (_text(row, "status") or "active").lower()
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(sorted(STATUSES))}")
    attributes: dict[str, object] = {key: _text(row, key) for key in ATTRIBUTES}
    attributes["groups"] = sorted(_list(row.get("groups")))
    return PersonRecord(
        email=email,
        authority_id=_text(row, "employee_id"),
        aliases=tuple(_list(row.get("aliases"))),
        given_name=_text(row, "given_name"),
        family_name=_text(row, "family_name"),
        display_name=_text(row, "display_name"),
        lifecycle=STATUSES[status],
        attributes={key: value for key, value in attributes.items() if value not in (None, [])},
    )


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in reader.fieldnames:
            raise FeedError(f"{path}: the header must name an 'email' column")
        for row in reader:
            yield reader.line_num, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {"_error": f"not JSON: {exc.msg}"}
                continue
            yield number, row if isinstance(row, dict) else {"_error": "not a JSON object"}


def read_feed(path: Path) -> Feed:
    """Read every row; invalid rows are reported by line number and skipped."""
    rows = _jsonl_rows(path) if path.suffix in (".jsonl", ".ndjson") else _csv_rows(path)
    feed = Feed()
    try:
        for line, row in rows:
            if "_error" in row:
                feed.errors.append(RowError(line, str(row["_error"])))
                continue
            try:
                feed.people.append(_person(row))
            except ValueError as exc:
                feed.errors.append(RowError(line, str(exc)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FeedError(f"{path}: {exc}") from exc
    return feed
