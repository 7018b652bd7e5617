"""Shared fixtures: a fresh graph database on each backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from graph.db import upgrade_database
from graph.store import GraphStore

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"
# Parallel runs (several worktrees on one server) each name their own database.
TEST_DATABASE = os.environ.get("SYNCD_TEST_POSTGRES_DB", "syncd_test")


async def _fresh_postgres_url() -> str:
    """A clean `syncd_test` database beside the one the environment names."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (CI sets it); none given")
    url = make_url(base)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("SYNCD_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL at {url.render_as_string()} is not reachable: {exc}")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEST_DATABASE)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await admin.close()
    test_url = url.set(database=TEST_DATABASE)
    conn = await asyncpg.connect(test_url.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
    return test_url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated graph database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'graph.db'}"
    url = await _fresh_postgres_url()
    await upgrade_database(url)
    return url


@asynccontextmanager
async def opened_store(db_url: str) -> AsyncIterator[GraphStore]:
    """A GraphStore open on the database, closed on the way out."""
    graph = await GraphStore.open(db_url)
    try:
        yield graph
    finally:
        await graph.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[GraphStore]:
    """An open GraphStore on a fresh database."""
    async with opened_store(db_url) as graph:
        yield graph
