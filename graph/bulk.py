"""Driver-level executemany inside a SQLAlchemy transaction, for the hot bulk paths."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.models import UTCDateTime

_QMARK = re.compile(r"\?")


class Bulk:
    """Run many-row statements through the bare driver, in the caller's transaction.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own insert; these
    paths write plain tuples instead. SQL is written with `?` placeholders.
    """

    def __init__(self, driver: Any, dialect: str, to_db_time: Callable[[datetime], object]):
        self._driver = driver
        self._postgres = dialect == "postgresql"
        self._to_db_time = to_db_time

    @classmethod
    async def on(cls, conn: AsyncConnection) -> Bulk:
        """Bind to the transaction `conn` holds (starting it if the driver starts lazily)."""
        await conn.execute(sa.text("SELECT 1"))
        raw = await conn.get_raw_connection()
        processor = UTCDateTime.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        to_db_time: Callable[[datetime], object] = processor or (lambda value: value)
        return cls(raw.driver_connection, conn.dialect.name, to_db_time)

    def time(self, value: datetime) -> object:
        """A timestamp in the form this driver stores."""
        return self._to_db_time(value)

    def _sql(self, sql: str) -> str:
        if not self._postgres:
            return sql
        counter = iter(range(1, 1_000_000))
        return _QMARK.sub(lambda _: f"${next(counter)}", sql)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run `sql` once per row."""
        if rows:
            await self._driver.executemany(self._sql(sql), rows)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run `sql` once."""
        if self._postgres:
            await self._driver.execute(self._sql(sql), *params)
        else:
            async with self._driver.execute(sql, params):
                pass

    async def copy(
        self, table: str, rows: Sequence[Sequence[object]], columns: Sequence[str] | None = None
    ) -> None:
        """Binary COPY of `rows` into `columns` (default every column) of `table` (PostgreSQL)."""
        if rows:
            await self._driver.copy_records_to_table(table, records=rows, columns=columns)

    async def cursor(
        self, sql: str, size: int, params: Sequence[object] = ()
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Rows of a query `size` at a time, through a server-side cursor (PostgreSQL)."""
        cursor = await self._driver.cursor(self._sql(sql), *params)
        while rows := await cursor.fetch(size):
            yield [tuple(row) for row in rows]

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query as tuples."""
        if self._postgres:
            return [tuple(row) for row in await self._driver.fetch(self._sql(sql), *params)]
        async with self._driver.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


def placeholders(count: int) -> str:
    """`?, ?, ...` for an IN list of `count` values."""
    return ", ".join("?" * count)
