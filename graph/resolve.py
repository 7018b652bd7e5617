"""Resolution: link accounts to people by email; record what needs a person to decide."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.db import Database
from graph.models import UTCDateTime, connector_state_table, utcnow

state = connector_state_table
SINCE_MARGIN = timedelta(minutes=10)

# Unlinked, live accounts whose strict email key belongs to a person, with how many such
# accounts claim that person in the same connector and whether the person already holds one
# there. `link_method IS NULL` leaves manual decisions (link or unlink) alone; a look-alike
# (`email_loose` set) never links by itself. `{scope}` becomes a connector filter when one is
# given: an `OR :x IS NULL` would defeat the planner. `_candidates` fills in `{held}` and
# `{held_join}`.
_CANDIDATES = """
SELECT a.id AS account_id, pe.person_id, a.connector, a.email,
       COUNT(*) OVER (PARTITION BY a.connector, pe.person_id) AS claims,
       {held} AS held
FROM account a
JOIN person_email pe ON pe.email = a.email {held_join}
WHERE a.person_id IS NULL AND a.link_method IS NULL AND a.missing_since IS NULL
  AND a.email_loose IS NULL {scope}
"""


def _candidates(*, look_up: bool) -> str:
    """The candidates, finding whether the person holds an account there in one of two ways.

    Reading the linked accounts in scope once is quicker on SQLite when everything is new.
    Looking each candidate's person up costs nothing when nothing is new; PostgreSQL, whose
    statistics from before a big link say hardly anything is linked, would otherwise walk
    every linked account of every connector on every pass.
    """
    if look_up:
        held = (
            "CASE WHEN EXISTS (SELECT 1 FROM account h"
            " WHERE h.person_id = pe.person_id AND h.connector = a.connector) THEN 1 ELSE 0 END"
        )
        return _CANDIDATES.replace("{held}", held).replace("{held_join}", "")
    join = """
LEFT JOIN (
  SELECT DISTINCT a.connector, a.person_id FROM account a WHERE a.person_id IS NOT NULL {scope}
) h ON h.connector = a.connector AND h.person_id = pe.person_id"""
    held = "CASE WHEN h.person_id IS NULL THEN 0 ELSE 1 END"
    return _CANDIDATES.replace("{held}", held).replace("{held_join}", join)


_LINK = f"""
UPDATE account SET person_id = c.person_id, link_method = 'email', linked_at = :now
FROM ({_candidates(look_up=False)}) c
WHERE account.id = c.account_id AND c.claims = 1 AND c.held = 0
"""

_LINK_EVENTS = """
INSERT INTO event (at, source, kind, subject, subject_id, actor, connector, person_id, old_json,
                   new_json)
SELECT :now, 'resolver', 'account.linked', 'account', a.id, 'syncd', a.connector, a.person_id, NULL,
       '{{"person_id":' || a.person_id || ',"method":"email"}}'
FROM account a
WHERE a.linked_at = :now AND a.link_method = 'email' {scope}
"""

_SECOND_ACCOUNT_CONFLICTS = f"""
INSERT INTO conflict (key, kind, connector, email, person_id, account_id, detail_json, state,
                      created_at)
SELECT 'second_account:' || c.account_id || ':' || c.person_id, 'second_account', c.connector,
       c.email, c.person_id, c.account_id, '{{{{}}}}', 'open', :now
FROM ({_candidates(look_up=False)}) c
WHERE c.claims > 1 OR c.held = 1
ON CONFLICT (key) DO NOTHING
"""

# PostgreSQL does the three above in one statement: the candidates are found once, and the
# links' events come from the UPDATE's RETURNING instead of a second scan of the connector.
_LINK_ALL = f"""
WITH c AS MATERIALIZED ({_candidates(look_up=True)}),
linked AS (
  UPDATE account SET person_id = c.person_id, link_method = 'email', linked_at = :now
  FROM c
  WHERE account.id = c.account_id AND c.claims = 1 AND c.held = 0
  RETURNING account.id, account.connector, account.person_id
),
events AS (
  INSERT INTO event (at, source, kind, subject, subject_id, actor, connector, person_id,
                     old_json, new_json)
  SELECT :now, 'resolver', 'account.linked', 'account', l.id, 'syncd', l.connector, l.person_id,
         NULL, '{{{{"person_id":' || l.person_id || ',"method":"email"}}}}'
  FROM linked l
),
second AS (
  INSERT INTO conflict (key, kind, connector, email, person_id, account_id, detail_json, state,
                        created_at)
  SELECT 'second_account:' || c.account_id || ':' || c.person_id, 'second_account', c.connector,
         c.email, c.person_id, c.account_id, '{{{{}}}}', 'open', :now
  FROM c
  WHERE c.claims > 1 OR c.held = 1
  ON CONFLICT (key) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM linked) AS linked, (SELECT count(*) FROM second) AS conflicts
"""

# The head of both look-alike statements below: who would link by loose form, and to whom.
_LOOKALIKES = """
INSERT INTO conflict (key, kind, connector, email, person_id, account_id, detail_json, state,
                      created_at)
SELECT DISTINCT 'lookalike:' || a.id || ':' || pe.person_id, 'lookalike', a.connector,
       COALESCE(a.email, a.email_raw), pe.person_id, a.id, '{{}}', 'open', :now
FROM account a
JOIN person_email pe ON pe.email_loose = COALESCE(a.email_loose, a.email)
"""

# Unlinked, live accounts whose loose form matches a person's but that cannot link by
# themselves: look-alikes, and plain addresses that match no one strictly but fold onto
# someone (`strasse@` beside a person `straße@`). An operator settles them with `syncd link`.
_LOOKALIKE_CONFLICTS = (
    _LOOKALIKES
    + """
WHERE a.person_id IS NULL AND a.link_method IS NULL AND a.missing_since IS NULL {scope}
  AND (
    a.email_loose IS NOT NULL
    OR NOT EXISTS (SELECT 1 FROM person_email x WHERE x.email = a.email)
  )
ON CONFLICT (key) DO NOTHING
"""
)

# The same on PostgreSQL, with the strict match `x` looked for only for a plain address: an
# anti-join rather than `OR NOT EXISTS`, which it runs as a subplan estimated dear enough to
# JIT-compile. (SQLite is quicker with the subquery: it skips the loose lookup of a match.)
_LOOKALIKE_CONFLICTS_POSTGRES = (
    _LOOKALIKES
    + """
LEFT JOIN person_email x ON x.email = a.email AND a.email_loose IS NULL
WHERE a.person_id IS NULL AND a.link_method IS NULL AND a.missing_since IS NULL {scope}
  AND x.id IS NULL
ON CONFLICT (key) DO NOTHING
"""
)

# A linked account whose vendor-side email is no longer one of its person's emails. Only
# accounts changed since the last pass (`{since}`) can have drifted: people never lose an
# address.
_DRIFT_CONFLICTS = """
INSERT INTO conflict (key, kind, connector, email, person_id, account_id, detail_json, state,
                      created_at)
SELECT 'email_drift:' || a.id || ':' || COALESCE(a.email, ''), 'email_drift', a.connector,
       a.email, a.person_id, a.id, '{{}}', 'open', :now
FROM account a
WHERE a.person_id IS NOT NULL AND a.link_method <> 'manual' {scope} {since}
  AND NOT EXISTS (
    SELECT 1 FROM person_email pe WHERE pe.person_id = a.person_id AND pe.email = a.email
  )
ON CONFLICT (key) DO NOTHING
"""


@dataclass
class ResolveStats:
    """What one resolution pass did."""

    linked: int = 0
    new_conflicts: int = 0


def _statement(sql: str) -> sa.TextClause:
    types: dict[str, Any] = {"now": UTCDateTime, "since": UTCDateTime, "connector": sa.String()}
    return sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=kind) for name, kind in types.items() if f":{name}" in sql)
    )


def _sql(sql: str, params: dict[str, object]) -> str:
    return sql.format(
        scope="" if params.get("connector") is None else "AND a.connector = :connector",
        since="" if params.get("since") is None else "AND a.changed_at >= :since",
    )


async def _execute(
    conn: AsyncConnection, sql: str, params: dict[str, object]
) -> sa.CursorResult[Any]:
    sql = _sql(sql, params)
    used = {name: value for name, value in params.items() if f":{name}" in sql}
    return await conn.execute(_statement(sql), used)


async def _run(conn: AsyncConnection, sql: str, params: dict[str, object]) -> int:
    return int((await _execute(conn, sql, params)).rowcount)


async def _link_sqlite(
    conn: AsyncConnection, params: dict[str, object], stats: ResolveStats
) -> None:
    stats.new_conflicts += await _run(conn, _SECOND_ACCOUNT_CONFLICTS, params)
    stats.linked = await _run(conn, _LINK, params)
    if stats.linked:
        await _run(conn, _LINK_EVENTS, params)


async def _link_postgres(
    conn: AsyncConnection, params: dict[str, object], stats: ResolveStats
) -> None:
    row = (await _execute(conn, _LINK_ALL, params)).one()
    stats.linked = int(row.linked)
    stats.new_conflicts += int(row.conflicts)


@asynccontextmanager
async def _without_jit(conn: AsyncConnection) -> AsyncIterator[None]:
    """PostgreSQL: no JIT meanwhile (then the transaction's setting again).

    Statements that read a whole connector pass `jit_above_cost`, and compiling them takes
    longer than running them.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    jit = (await conn.execute(sa.text("SELECT current_setting('jit')"))).scalar_one()
    await conn.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    yield
    await conn.execute(sa.text("SELECT set_config('jit', :jit, true)"), {"jit": jit})


async def _last_pass(conn: AsyncConnection, connector: str | None) -> datetime | None:
    if connector is None:
        return None
    last = (
        await conn.execute(sa.select(state.c.resolved_at).where(state.c.connector == connector))
    ).scalar()
    # The margin covers writers whose timestamps predate this pass but committed after it.
    return None if last is None else last - SINCE_MARGIN


async def resolve(db: Database, connector: str | None = None) -> ResolveStats:
    """Link every unlinked account whose email names exactly one person."""
    async with db.write() as conn:
        return await resolve_in(conn, connector)


async def resolve_in(conn: AsyncConnection, connector: str | None = None) -> ResolveStats:
    """Resolve inside the caller's transaction."""
    stats = ResolveStats()
    now = utcnow()
    params: dict[str, object] = {
        "now": now,
        "connector": connector,
        "since": await _last_pass(conn, connector),
    }
    postgres = conn.dialect.name == "postgresql"
    lookalikes = _LOOKALIKE_CONFLICTS_POSTGRES if postgres else _LOOKALIKE_CONFLICTS
    async with _without_jit(conn):
        await (_link_postgres if postgres else _link_sqlite)(conn, params, stats)
        stats.new_conflicts += await _run(conn, lookalikes, params)
        stats.new_conflicts += await _run(conn, _DRIFT_CONFLICTS, params)
    if connector is not None:
        await conn.execute(
            sa.update(state).where(state.c.connector == connector).values(resolved_at=now)
        )
    return stats
