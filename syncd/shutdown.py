"""Put in-flight operations back in the queue at shutdown: bounded, one line if it cannot."""

from __future__ import annotations

import anyio
import structlog
from sqlalchemy import exc as sa_exc

from graph import outbox
from graph.db import Database

log = structlog.get_logger("syncd.shutdown")
RECOVERY_TRIES = 3  # each waits up to the database's busy timeout
RECOVERY_PAUSE = 1.0


async def recover_on_shutdown(
    db: Database, *, tries: int = RECOVERY_TRIES, pause: float = RECOVERY_PAUSE
) -> bool:
    """Put in-flight operations back; False, logged once, if the database stayed busy."""
    for attempt in range(1, tries + 1):
        try:
            await outbox.recover_in_flight(db)
        except sa_exc.OperationalError as exc:  # "database is locked", a server gone away
            if attempt < tries:
                await anyio.sleep(pause)
                continue
            reason = str(exc.orig or exc).strip().splitlines()[0]
            log.error(
                "outbox.recover_failed",
                error=reason,
                tries=tries,
                hint="operations in flight go back to the queue at the next start",
            )
            return False
        else:
            return True
    return False
