"""Database connections: URL handling, SQLite tuning, migrations on open."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from graph.audit import seal

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITER_QUEUE_TIMEOUT = 900.0  # seconds a SQLite write transaction waits for its turn
IDLE_LIMIT = 60.0  # seconds a PostgreSQL transaction of ours may sit idle (none comes close)
# SQLite's primary result codes for "another connection holds the lock".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# PostgreSQL SQLSTATEs of faults that pass: by class (connection exception, insufficient
# resources, operator intervention such as a restart) and by code (lock or serialization).
_PG_TRANSIENT_CLASSES = ("08", "53", "57")
_PG_TRANSIENT_CODES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock wait",
    "25P03": "transaction ended by the server after idling (was this process paused?)",
}
MIGRATION_LOCK = 0x73796E6364  # pg_advisory_xact_lock key for migrations: "syncd"


class DatabaseError(Exception):
    """The database URL or schema is unusable."""


class DatabaseURLError(DatabaseError):
    """The database URL itself is wrong: a mistake in the config, not an outage."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def async_url(url: str) -> URL:
    """Map a plain sqlite:/// or postgresql:// URL to its async driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseURLError(f"not a database URL: {display_url(url)}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError("SQLite needs a file path: sqlite:///PATH")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def display_url(url: str) -> str:
    """The URL with any password masked, safe to log or print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _unusable(url: str, error: BaseException) -> DatabaseError:
    """One line naming the database (password masked) and what its driver said."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    return DatabaseError(f"cannot use the database {display_url(url)}: {reason}")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, the driver's error it wraps, and what that was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "orig", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__


def _fault(error: BaseException) -> str | None:
    """The reason for one (non-group) error, by the driver's code, else by its kind."""
    for item in _chain(error):
        code = getattr(item, "sqlite_errorcode", None)
        if isinstance(code, int):
            if code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return "database is locked (busy)"
            return None
        state = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if isinstance(state, str) and state:
            if state in _PG_TRANSIENT_CODES:
                return _PG_TRANSIENT_CODES[state]
            if state.startswith(_PG_TRANSIENT_CLASSES):
                return f"server unavailable (SQLSTATE {state})"
            return None
    if isinstance(error, sa_exc.TimeoutError):
        return "no database connection free in time"
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return "connection lost"
    if isinstance(error, sa_exc.InterfaceError) or any(
        isinstance(item, ConnectionError) for item in _chain(error)
    ):
        return "connection refused or lost"
    return None


def transient_fault(error: BaseException) -> str | None:
    """A short reason when `error` is a database fault that passes (locked, busy, connection
    lost or refused, server restarting); None for anything else, such as a bug or bad data.
    """
    # The reason comes from a fixed vocabulary: never the driver's text, which can hold SQL.
    if isinstance(error, BaseExceptionGroup):
        reasons = [transient_fault(inner) for inner in error.exceptions]
        return reasons[0] if reasons and all(reasons) else None
    return _fault(error)


def _create_sqlite_file(path: Path) -> None:
    """Check the file's directory, and create the file 0600 (SQLite gives its WAL the same mode)."""
    directory = path.parent
    if not directory.is_dir():
        raise DatabaseError(
            f"cannot create the SQLite database {path}: directory {directory} does not exist"
        )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the SQLite database {path}: {exc.strerror} "
            f"(the directory {directory} must be writable by this user)"
        ) from None
    os.close(descriptor)


# Page cache per connection, in KiB: the writer's holds what bulk writes touch; readers
# (four) share the operating system's file cache, so a large one each only adds memory.
WRITER_CACHE_KIB = 65_536
READER_CACHE_KIB = 8_192


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, cache_kib: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
    cursor.close()


def _tune_sqlite(dbapi_connection: Any, record: Any, cache_kib: int) -> None:
    _sqlite_pragmas(dbapi_connection, record, cache_kib)
    # Let SQLAlchemy's begin event emit BEGIN itself, so writers can take the lock up front.
    dbapi_connection.isolation_level = None


def _make_engine(url: URL, *, writer: bool, idle_limit: float = IDLE_LIMIT) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        settings = {
            # Bulk statements carry thousands of keys; a cached generic plan, made while one
            # connector filled the table, can turn their index lookups into full scans.
            "plan_cache_mode": "force_custom_plan",
            # A process paused (or hung) inside a transaction would hold its row locks for
            # ever; the server ends such a transaction, so another replica can go on.
            "idle_in_transaction_session_timeout": str(max(int(idle_limit * 1000), 1)),
        }
        return create_async_engine(
            url,
            json_serializer=_json_dumps,
            hide_parameters=True,  # parameters hold emails: never in logs or errors
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            connect_args={"server_settings": settings},
        )
    engine = create_async_engine(
        url,
        json_serializer=_json_dumps,
        hide_parameters=True,
        pool_size=1 if writer else 4,
        max_overflow=0,
        # The one writer connection is a queue inside this process: every holder is one of
        # our own transactions and ends, so waiting for it long beats failing a listing that
        # queued behind a large plan (which at 100,000 people takes more than 30 s).
        pool_timeout=WRITER_QUEUE_TIMEOUT if writer else 30,
    )
    cache_kib = WRITER_CACHE_KIB if writer else READER_CACHE_KIB
    event.listen(
        engine.sync_engine, "connect", lambda conn, record: _tune_sqlite(conn, record, cache_kib)
    )
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
    event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    return engine


@asynccontextmanager
async def _transaction(engine: AsyncEngine, *, whole: bool) -> AsyncIterator[AsyncConnection]:
    """A transaction whose end (commit, rollback, close) is shielded from cancellation.

    With `whole`, everything from BEGIN on is shielded too; waiting for the pool is not, as a
    task that has no connection yet holds nothing.
    """
    conn = await engine.connect()
    try:
        with anyio.CancelScope(shield=whole):
            transaction = await conn.begin()
            try:
                yield conn
            except BaseException:
                with anyio.CancelScope(shield=True):
                    if transaction.is_active:
                        await transaction.rollback()
                raise
            with anyio.CancelScope(shield=True):
                await transaction.commit()
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close()


@dataclass
class Database:
    """The graph's engines: one writer (SQLite allows one) and readers."""

    url: URL
    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.url.get_backend_name() == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite the only one in this process at a time.

        It runs to its end even when its task is cancelled (it holds no vendor call, only
        statements): a statement cancelled midway leaves the driver's connection, and
        SQLite's write lock, open past the next writer's busy timeout.
        """
        async with _transaction(self.writer, whole=True) as conn:
            yield conn
            await seal(conn)  # the events it recorded join the audit chain before it commits

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction that does not wait for the writer."""
        async with _transaction(self.reader, whole=False) as conn:
            yield conn

    async def close(self) -> None:
        """Dispose of every pooled connection."""
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "graph:migrations")
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _is_current(connection: Connection) -> bool:
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return MigrationContext.configure(connection).get_current_revision() == head


def _lock_path(target: URL) -> Path:
    return Path(f"{target.database}.lock")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, released when the block ends (or the process dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def upgrade_database(url: str) -> None:
    """Apply every pending migration; processes opening one database together take turns."""
    target = async_url(url)
    engine = create_async_engine(target, poolclass=NullPool, hide_parameters=True)
    sqlite = target.get_backend_name() == "sqlite"
    if sqlite:
        assert target.database is not None  # async_url refuses a SQLite URL without a path
        _create_sqlite_file(Path(target.database))
        # Every migration in one transaction (the driver would commit before each DDL
        # statement itself): a process killed midway leaves the schema as it was.
        event.listen(
            engine.sync_engine,
            "connect",
            lambda conn, record: _tune_sqlite(conn, record, WRITER_CACHE_KIB),
        )
        event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    try:
        with ExitStack() as stack:
            if sqlite:
                lock = _file_lock(_lock_path(target))
                await anyio.to_thread.run_sync(stack.enter_context, lock)
            async with engine.begin() as conn:
                if not sqlite:
                    # Transaction-scoped, so it is safe behind PgBouncer in transaction mode.
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                await conn.run_sync(_upgrade)
    except (sa_exc.DBAPIError, OSError) as exc:
        raise _unusable(url, exc) from exc
    finally:
        await engine.dispose()


async def open_database(url: str, *, idle_limit: float = IDLE_LIMIT) -> Database:
    """Open the graph; SQLite files are created and upgraded, PostgreSQL must be current.

    `idle_limit`: seconds PostgreSQL lets one of its transactions sit idle before ending it.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        await upgrade_database(url)
        return Database(
            target, _make_engine(target, writer=True), _make_engine(target, writer=False)
        )
    engine = _make_engine(target, writer=True, idle_limit=idle_limit)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(_is_current)
    except (sa_exc.DBAPIError, OSError) as exc:
        await engine.dispose()
        raise _unusable(url, exc) from exc
    if not current:
        await engine.dispose()
        raise DatabaseError(
            f"the schema of {display_url(url)} is not current: "
            "run `syncd db upgrade --config FILE` with the config that names it"
        )
    return Database(target, engine, engine)
