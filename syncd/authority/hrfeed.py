"""Read an HR export (CSV or JSON Lines) into authority person records."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
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


Row = Mapping[object, object]
# Each reader yields (line, the row's text to hash, how to make the row): a row whose hash is
# known is never made.
Rows = Iterator[tuple[int, str, Callable[[], Row]]]
ROW_FORMAT = "1"  # part of every row hash: change it when a row would be read differently


@dataclass
class Feed:
    """The valid people in a feed (with their lines), the invalid rows, and its digest.

    A row whose hash was `known` is not parsed: it is `kept` (by hash, with its line) until
    `admit` parses it.
    """

    people: list[PersonRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each person
    hashes: list[str] = field(default_factory=list)  # the row hash of each person
    kept: dict[str, int] = field(default_factory=dict)  # row hash -> line (ints: no GC work)
    reread: Callable[[], Rows] = field(default=lambda: iter(()))  # the rows again, to admit
    digest: str = ""  # sha256 of the file's bytes: the feed version

    @property
    def rows(self) -> int:
        """Every data row, valid or not."""
        return len(self.people) + len(self.errors) + len(self.kept)

    def take(self, line: int, row: Row, row_hash: str) -> None:
        """Parse one row into a person, or an error."""
        if "_error" in row:
            self.errors.append(_row_error(line, str(row["_error"]), row))
            return
        try:
            self.people.append(_person(row))
        except ValueError as exc:
            self.errors.append(_row_error(line, str(exc), row))
            return
        self.lines.append(line)
        self.hashes.append(row_hash)

    def admit(self, hashes: Iterable[str]) -> None:
        """Parse these kept rows after all, keeping the people in the file's order."""
        wanted = {self.kept.pop(h): h for h in list(hashes) if h in self.kept}
        if not wanted:
            return
        for line, _, make in self.reread():
            if line in wanted:
                self.take(line, make(), wanted[line])
        order = sorted(range(len(self.people)), key=self.lines.__getitem__)
        self.people = [self.people[index] for index in order]
        self.lines = [self.lines[index] for index in order]
        self.hashes = [self.hashes[index] for index in order]
        self.errors.sort(key=lambda error: error.line)


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


SEPARATOR = "\x1f"
# Any of these and a line is not simply its values joined by commas: the csv module reads it.
_NOT_PLAIN = re.compile('["\\x00\\x1f]')
COLUMNS_ERROR = "the row does not have the columns the header names"


def _csv_row(fieldnames: list[str], values: list[str]) -> Row:
    row: dict[object, object] = dict(zip(fieldnames, values, strict=False))
    if len(values) != len(fieldnames):
        row["_error"] = COLUMNS_ERROR
    return row


def _csv_rows(path: Path, text: str) -> Rows:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        fieldnames = next(reader, [])
    except csv.Error as exc:
        raise FeedError(f"{path}: line 1: {exc}") from None
    if "email" not in fieldnames:
        raise FeedError(f"{path}: the header must name an 'email' column")
    header = repr(fieldnames)
    lines = _plain_lines(text)
    if lines is not None and max(map(len, lines)) <= csv.field_size_limit():
        yield from _plain_rows(fieldnames, header, lines)
        return
    try:
        for values in reader:
            if values:
                joined = SEPARATOR.join(values)
                if joined.count(SEPARATOR) != len(values) - 1:  # a value holds the separator
                    joined = repr(values)
                yield reader.line_num, header + joined, partial(_csv_row, fieldnames, values)
    except csv.Error as exc:
        raise FeedError(f"{path}: line {reader.line_num}: {exc}") from None


def _plain_lines(text: str) -> list[str] | None:
    """The lines if csv would read each as its values split at commas, else None."""
    if _NOT_PLAIN.search(text):
        return None
    if "\r" in text:  # CRLF ends (spreadsheet exports) are plain; a lone CR ends a csv line
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    return text.split("\n")


def _plain_rows(fieldnames: list[str], header: str, lines: list[str]) -> Rows:
    """The rows after the header, read as csv would: no quotes, lone carriage returns or NULs."""
    for number in range(1, len(lines)):
        line = lines[number]
        if line:
            yield (
                number + 1,
                header + line.replace(",", SEPARATOR),
                partial(_plain_row, fieldnames, line),
            )


def _plain_row(fieldnames: list[str], line: str) -> Row:
    return _csv_row(fieldnames, line.split(","))  # split only when made: most rows are kept


def _json_row(line: str) -> Row:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"_error": f"not JSON: {exc.msg}"}
    return row if isinstance(row, dict) else {"_error": "not a JSON object"}


def _jsonl_rows(text: str) -> Rows:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line, partial(_json_row, line)


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


def row_hasher(salt: str) -> Callable[[str], str]:
    """The hash of one row's text (`salt` says how it is read)."""
    salted = hashlib.blake2b(f"{ROW_FORMAT}\x1d{salt}\x1d".encode(), digest_size=16)

    def row_hash(text: str) -> str:
        digest = salted.copy()  # the salt is hashed once, not once a row
        digest.update(text.encode())
        return digest.hexdigest()

    return row_hash


def read_feed(path: Path, known: Collection[str] = frozenset(), salt: str = "") -> Feed:
    """Read every row; invalid rows are reported by line with the keys they carry.

    A row whose hash is in `known` is kept unparsed (once: a repeat is parsed).
    """
    data = _read_bytes(path)
    text = _decode(path, data)
    feed = Feed(digest=hashlib.sha256(data).hexdigest())
    jsonl = path.suffix in (".jsonl", ".ndjson")
    feed.reread = partial(_jsonl_rows, text) if jsonl else partial(_csv_rows, path, text)
    row_hash = row_hasher(salt)
    for line, row_text, make in feed.reread():
        digest = row_hash(row_text)
        if digest in known and digest not in feed.kept:
            feed.kept[digest] = line
        else:
            feed.take(line, make(), digest)
    return feed
