"""Read an HR export (CSV or JSON Lines) into authority person records."""

from __future__ import annotations

import csv
import hashlib
import io
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
    """The feed file cannot be used at all: it is refused whole."""


class FeedChanging(Exception):
    """The file changed while it was read: try again on the next poll."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One row that failed validation, with whatever names its person."""

    line: int
    message: str
    employee_id: str | None = None
    email: str | None = None  # normalized, when the row's email is valid


@dataclass
class Feed:
    """The valid people in a feed (with their lines), the invalid rows, and its digest."""

    people: list[PersonRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each person
    digest: str = ""  # sha256 of the file's bytes: the feed version

    @property
    def rows(self) -> int:
        """Every data row, valid or not."""
        return len(self.people) + len(self.errors)


def _text(row: Mapping[object, object], key: str) -> str | None:
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


def _person(row: Mapping[object, object]) -> PersonRecord:
    email = _text(row, "email")
    if email is None:
        raise ValueError("email is missing")
    normalized = normalize_email(email)
    if normalized.error is not None:
        raise ValueError(f"email is invalid: {normalized.error}")
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


def _row_error(line: int, message: str, row: Mapping[object, object]) -> RowError:
    """The error, with the employee id and the email if either can be read."""
    email = _text(row, "email")
    normalized = normalize_email(email).email if email else None
    return RowError(line, message, _text(row, "employee_id"), normalized)


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Mapping[object, object]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise FeedError(f"{path}: line 1: {exc}") from None
    if not fieldnames or "email" not in fieldnames:
        raise FeedError(f"{path}: the header must name an 'email' column")
    try:
        for row in reader:
            if None in row or None in row.values():
                # csv puts surplus fields under None and fills missing ones with None.
                error = "the row does not have the columns the header names"
                yield reader.line_num, {**row, "_error": error}
            else:
                yield reader.line_num, row
    except csv.Error as exc:
        raise FeedError(f"{path}: line {reader.line_num}: {exc}") from None


def _jsonl_rows(text: str) -> Iterator[tuple[int, Mapping[object, object]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"_error": f"not JSON: {exc.msg}"}
            continue
        yield number, row if isinstance(row, dict) else {"_error": "not a JSON object"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, read once; a change while reading raises FeedChanging."""
    try:
        before = path.stat()
        data = path.read_bytes()
        after = path.stat()
    except OSError as exc:
        raise FeedError(f"{path}: cannot read: {exc.strerror or exc}") from None
    signature = (before.st_size, before.st_mtime_ns)
    if signature != (after.st_size, after.st_mtime_ns) or len(data) != after.st_size:
        raise FeedChanging(f"{path}: the file changed while it was read")
    return data


def _decode(path: Path, data: bytes) -> str:
    if not data.strip():
        raise FeedError(f"{path}: the file is empty")
    if not data.endswith(b"\n"):
        raise FeedError(
            f"{path}: the last line has no newline: the file is cut off or still being written"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FeedError(f"{path}: not UTF-8 at line {line}, byte offset {exc.start}") from None


def read_feed(path: Path) -> Feed:
    """Read every row; invalid rows are reported by line with the keys they carry."""
    data = _read_bytes(path)
    text = _decode(path, data)
    feed = Feed(digest=hashlib.sha256(data).hexdigest())
    rows = _jsonl_rows(text) if path.suffix in (".jsonl", ".ndjson") else _csv_rows(path, text)
    for line, row in rows:
        if "_error" in row:
            feed.errors.append(_row_error(line, str(row["_error"]), row))
            continue
        try:
            feed.people.append(_person(row))
            feed.lines.append(line)
        except ValueError as exc:
            feed.errors.append(_row_error(line, str(exc), row))
    return feed
