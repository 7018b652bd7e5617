"""The database a benchmark measures on: a SQLite file in its folder or a fresh PostgreSQL one."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from graph.db import upgrade_database

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


async def fresh_postgres(base: str, name: str) -> str:
    """An empty, migrated database `name` on the server `base` names."""
    url = make_url(base).set(drivername="postgresql")
    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    bench_url = url.set(database=name).render_as_string(hide_password=False)
    await upgrade_database(bench_url)
    return bench_url


async def bench_database(backend: str, workdir: Path, name: str, server_variable: str) -> str:
    """`workdir/graph.db` for sqlite, else a fresh database `name` on $server_variable's server."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'graph.db'}"
    return await fresh_postgres(os.environ.get(server_variable, DEFAULT_POSTGRES), name)
