"""Opening databases and migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text

from graph.db import WRITER_QUEUE_TIMEOUT, DatabaseError, async_url, display_url, open_database
from graph.models import metadata
from syncd.cli.main import main

HEAD = "0011"  # the newest migration


async def test_opening_a_sqlite_file_creates_and_upgrades_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "graph.db"
    path.parent.mkdir()
    db = await open_database(f"sqlite:///{path}")
    await db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD


async def test_a_sqlite_write_waits_for_its_turn_behind_a_long_one(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'graph.db'}")
    try:
        # A queued writer must not fail after the pool's usual 30 s while a big plan commits.
        assert db.writer.sync_engine.pool.timeout() == WRITER_QUEUE_TIMEOUT  # type: ignore[attr-defined]
        waited = anyio.Event()

        async def second() -> None:
            async with db.write() as other:
                await other.execute(text("SELECT 1"))
            waited.set()

        async with anyio.create_task_group() as group, db.write():
            group.start_soon(second)
            await anyio.sleep(0.5)
            assert not waited.is_set()  # the one writer connection is held
        assert waited.is_set()  # and the queued write ran once it was free
    finally:
        await db.close()


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


def to(revision: str) -> Callable[[Connection], None]:
    """A step that migrates the connection's database up or down to `revision`."""
    from alembic import command

    from graph.db import _alembic_config

    def step(conn: Connection) -> None:
        config = _alembic_config(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current > revision:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return step


async def test_migration_0003_rekeys_only_non_ascii_emails(db_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from graph.db import async_url

    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    now = "2026-01-01 00:00:00+00:00"
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0002"))
            # Rows as the old rules stored them: NFKC + casefold keys.
            await conn.execute(
                text(
                    "INSERT INTO person (id, primary_email, lifecycle, attributes_json, source,"
                    " version, created_at, updated_at) VALUES"
                    " (1, 'strasse@corp.example', 'active', '{}', 'hr', 1, :now, :now),"
                    " (2, 'ann@corp.example', 'active', '{}', 'hr', 1, :now, :now)"
                ),
                {"now": datetime.fromisoformat(now)},
            )
            await conn.execute(
                text(
                    "INSERT INTO person_email (person_id, email, raw, is_primary, source, added_at)"
                    " VALUES (1, 'strasse@corp.example', 'Straße@corp.example', true, 'hr', :now),"
                    " (2, 'ann@corp.example', 'Ann@corp.example', true, 'hr', :now)"
                ),
                {"now": datetime.fromisoformat(now)},
            )
            await conn.execute(
                text(
                    "INSERT INTO account (connector, external_id, email_raw, email, status,"
                    " attributes_json, raw_json, payload_hash, first_seen, changed_at) VALUES"
                    " ('acme', '1', 'ſam@corp.example', 'sam@corp.example', 'active', '{}', '{}',"
                    " 'h1', :now, :now),"
                    " ('acme', '2', 'ANN@corp.example', 'ann@corp.example', 'active', '{}', '{}',"
                    " 'h2', :now, :now),"
                    " ('acme', '3', 'STRASSE@corp.example', 'strasse@corp.example', 'active', '{}',"
                    " '{}', 'h3', :now, :now),"
                    " ('acme', '4', '\u212aim@corp.example', 'kim@corp.example', 'active', '{}',"
                    " '{}', 'h4', :now, :now)"
                ),
                {"now": datetime.fromisoformat(now)},
            )
            # The looser rules linked 2, 3 and 4 by email to ann and the straße person.
            await conn.execute(
                text(
                    "UPDATE account SET person_id = CASE WHEN external_id = '2' THEN 2 ELSE 1 END,"
                    " link_method = 'email' WHERE external_id IN ('2', '3', '4')"
                )
            )
            await conn.run_sync(to("head"))
            conflicts = (
                await conn.execute(
                    text(
                        "SELECT a.external_id, c.person_id FROM conflict c"
                        " JOIN account a ON a.id = c.account_id"
                        " WHERE c.kind = 'lookalike' ORDER BY a.external_id"
                    )
                )
            ).all()
            people = (
                await conn.execute(text("SELECT email, email_loose FROM person_email ORDER BY id"))
            ).all()
            primaries = (
                await conn.execute(text("SELECT primary_email FROM person ORDER BY id"))
            ).all()
            accounts = (
                await conn.execute(text("SELECT email, email_loose FROM account ORDER BY id"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in people] == [
        ("straße@corp.example", "strasse@corp.example"),
        ("ann@corp.example", "ann@corp.example"),
    ]
    assert [row[0] for row in primaries] == ["straße@corp.example", "ann@corp.example"]
    assert [tuple(row) for row in accounts] == [
        ("ſam@corp.example", "sam@corp.example"),
        ("ann@corp.example", None),
        ("strasse@corp.example", None),
        ("kim@corp.example", "kim@corp.example"),
    ]
    # Links the strict rules would not make are kept, untrusted, and put to an operator.
    assert [tuple(row) for row in conflicts] == [("3", 1), ("4", 1)]


async def test_migration_0004_keeps_why_old_operations_died(db_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from graph.db import async_url

    errors = {
        "a": ("dead", "IncompleteListing: partnerize: listing /user incomplete"),
        "b": ("dead", "UnsupportedOperation: partnerize: look-alike"),
        "c": ("dead", "rejected by an operator"),
        "d": ("pending", "VendorServerError: HTTP 503"),
    }
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0003"))
            for key, (state, error) in errors.items():
                await conn.execute(
                    text(
                        "INSERT INTO operation (connector, op, payload_json, idempotency_key,"
                        " state, attempts, last_error, created_at, updated_at) VALUES"
                        " ('acme', 'create', '{}', :key, :state, 5, :error, :now, :now)"
                    ),
                    {
                        "key": key,
                        "state": state,
                        "error": error,
                        "now": datetime.now().astimezone(),
                    },
                )
            await conn.run_sync(to("head"))
            kinds = (
                await conn.execute(
                    text("SELECT idempotency_key, error_kind, lookup_failures FROM operation")
                )
            ).all()
    finally:
        await engine.dispose()
    assert sorted(tuple(row) for row in kinds) == [
        ("a", "transient", 0),  # planned again
        ("b", "unsupported", 0),  # waits for an operator
        ("c", "rejected", 0),
        ("d", None, 0),
    ]


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
    assert anyio.run(_version, url) == [(HEAD,)]


async def _version(url: str) -> list[tuple[str, ...]]:
    db = await open_database(url)  # PostgreSQL: refuses unless the schema is at head
    try:
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await db.close()
    return [tuple(row) for row in rows]
