"""Opening databases and migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from graph.db import DatabaseError, async_url, display_url, open_database
from graph.models import metadata
from syncd.cli import main


async def test_opening_a_sqlite_file_creates_and_upgrades_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "graph.db"
    path.parent.mkdir()
    db = await open_database(f"sqlite:///{path}")
    await db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002"


def test_migrations_match_the_models(tmp_path: Path) -> None:
    assert main(["db", "upgrade", "--database", f"sqlite:///{tmp_path / 'g.db'}"]) == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


async def test_postgres_must_be_upgraded_explicitly(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite upgrades itself on open")
    import asyncpg

    conn = await asyncpg.connect(db_url)
    await conn.execute("UPDATE alembic_version SET version_num = 'old'")
    await conn.close()
    with pytest.raises(DatabaseError, match="syncd db upgrade"):
        await open_database(db_url)


def test_bad_urls_are_explained_and_passwords_hidden() -> None:
    with pytest.raises(DatabaseError, match="unsupported database 'mysql'"):
        async_url("mysql://root@localhost/x")
    with pytest.raises(DatabaseError, match="needs a file path"):
        async_url("sqlite://")
    assert "hunter2" not in display_url("postgresql://u:hunter2@h/db")


OPEN_ONE = """
import sys, anyio
from graph.db import open_database, upgrade_database

async def main(url: str) -> None:
    if url.startswith("sqlite"):
        await (await open_database(url)).close()
    else:
        await upgrade_database(url)

anyio.run(main, sys.argv[1])
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_first_opens_all_succeed(backend: str, tmp_path: Path) -> None:
    from tests.conftest import _fresh_postgres_url

    # PostgreSQL: an empty schema, never migrated.
    url = (
        f"sqlite:///{tmp_path / 'fresh.db'}"
        if backend == "sqlite"
        else anyio.run(_fresh_postgres_url)
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_ONE, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, outputs
    assert anyio.run(_version, url) == [("0002",)]


async def _version(url: str) -> list[tuple[str, ...]]:
    db = await open_database(url)  # PostgreSQL: refuses unless the schema is at head
    try:
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await db.close()
    return [tuple(row) for row in rows]
