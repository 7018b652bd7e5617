"""Opening databases and migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

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
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"


def test_migrations_match_the_models(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "g.db"}"\n')
    assert main(["db", "upgrade", "--config", str(config)]) == 0
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
