"""Shutdown recovery: bounded when the database stays locked, one line and no traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from graph.db import open_database
from syncd.shutdown import recover_on_shutdown


async def test_a_locked_database_ends_recovery_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    db = await open_database(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock throughout
    try:
        with capture_logs() as logs:
            assert await recover_on_shutdown(db, tries=1, pause=0) is False
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [entry["event"] for entry in logs] == ["outbox.recover_failed"]
    assert logs[0]["error"] == "database is locked"
    assert await recover_on_shutdown(db) is True  # free again: recovery just works
    await db.close()
