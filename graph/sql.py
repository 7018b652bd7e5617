"""Small SQL helpers shared by the graph's bulk paths."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

# Well under both SQLite's and asyncpg's limit on bound parameters per statement.
IN_CHUNK = 2_000


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most `size` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def dumps(value: object) -> str:
    """Canonical JSON text: sorted keys, so equal content gives equal text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    """Parse JSON text stored by `dumps`; None stays None."""
    return None if text is None else orjson.loads(text)


def from_row(cls: type[T], row: Any, **derived: object) -> T:
    """Build a dataclass from a result row, field by field; `derived` gives the others."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: derived[name] if name in derived else getattr(row, name) for name in names})


def insert_for(conn: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def execute_many(
    conn: AsyncConnection, statement: Any, rows: Sequence[dict[str, Any]]
) -> None:
    """Run one statement for many parameter rows (nothing when there are none)."""
    if rows:
        await conn.execute(statement, list(rows))


def event_row(
    source: str,
    kind: str,
    subject_id: int,
    at: datetime,
    old: object,
    new: object,
    subject: str = "account",
    *,
    actor: str = "syncd",
    connector: str | None = None,
    person_id: int | None = None,
    operation_id: int | None = None,
    outcome: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """One audit event, as a row for the event table (chained when its transaction ends)."""
    return {
        "actor": actor,
        "connector": connector,
        "person_id": person_id,
        "operation_id": operation_id,
        "outcome": outcome,
        "detail": detail,
        "at": at,
        "source": source,
        "kind": kind,
        "subject": subject,
        "subject_id": subject_id,
        "old_json": None if old is None else dumps(old),
        "new_json": None if new is None else dumps(new),
    }
