"""Which database failures pass (locked, busy, connection lost): real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from graph.db import open_database, transient_fault


def test_a_locked_sqlite_file_passes_and_a_missing_table_does_not(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(sa_exc.OperationalError) as locked, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        holder.execute("ROLLBACK")
        with pytest.raises(sa_exc.OperationalError) as missing, engine.begin() as conn:
            conn.execute(sa.text("SELECT x FROM no_such_table"))
    finally:
        holder.close()
        engine.dispose()
    assert transient_fault(locked.value) == "database is locked (busy)"
    assert "INSERT" not in str(transient_fault(locked.value))
    assert transient_fault(missing.value) is None  # a bug or a broken schema: no retry
    # A task group's failures: transient only when every one of them is.
    assert transient_fault(ExceptionGroup("tasks", [locked.value])) is not None
    assert transient_fault(ExceptionGroup("tasks", [locked.value, missing.value])) is None
    assert transient_fault(ValueError("not the database")) is None


async def test_a_refused_connection_passes() -> None:
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(Exception) as refused:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    finally:
        await engine.dispose()
    assert transient_fault(refused.value) == "connection refused or lost"


async def test_a_postgres_connection_the_server_drops_passes(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect is PostgreSQL's")
    db = await open_database(db_url)
    admin = await asyncpg.connect(make_url(db_url).render_as_string(hide_password=False))
    try:
        with pytest.raises(sa_exc.DBAPIError) as dropped:
            async with db.read() as conn:
                pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                await conn.execute(sa.text("SELECT 1"))
    finally:
        await admin.close()
        await db.close()
    assert transient_fault(dropped.value) is not None
