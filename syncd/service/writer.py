"""Hold the writer lease for the life of a command: acquire, renew, stop work if it is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import structlog
from sqlalchemy.exc import SQLAlchemyError

from graph import lease
from graph.db import Database, open_database
from syncd.service import backstop

log = structlog.get_logger("syncd.service.writer")
RELEASE_TIMEOUT = 5.0
LOST_EXIT_GRACE = 5.0  # seconds a process that lost its lease gets to stop by itself


class Held:
    """A lease this process holds, and until when (by its own steady clock) it is valid.

    The deadline is measured from before the claiming or renewing statement was sent, so it
    is never later than the row's expiry.
    """

    def __init__(self, held: lease.Lease, deadline: float) -> None:
        self.lease = held
        self.deadline = deadline
        self.lost: str | None = None

    def valid(self) -> bool:
        """True while a write may still be sent: the lease is ours and has not run out."""
        return self.lost is None and lease.steady() < self.deadline


async def _keep(db: Database, held: Held, ttl: float, work: anyio.CancelScope) -> None:
    """Renew at a third of the TTL; if the lease runs out or is taken, cancel the work."""
    warned = False
    while True:
        await anyio.sleep(ttl / 3)
        while True:
            remaining = held.deadline - lease.steady()
            if remaining <= 0:
                held.lost = f"not renewed within its {ttl:g} s TTL"
                break
            sent = lease.steady()
            try:
                with anyio.fail_after(remaining):
                    held.lease = await lease.renew(db, held.lease, ttl)
            except lease.LeaseLost as exc:
                held.lost = str(exc)
                break
            except (TimeoutError, SQLAlchemyError, OSError) as exc:
                if not warned:
                    log.warning("lease.renew_failed", error=type(exc).__name__)
                    warned = True
                await anyio.sleep(min(1.0, max(remaining / 4, 0.05)))
                continue
            # Measured from before the statement was sent: never longer than the row says.
            held.deadline = sent + ttl
            if warned:
                log.info("lease.renewed")
                warned = False
            break
        if held.lost is not None:
            log.error("lease.lost", reason=held.lost, fence=held.lease.token)
            work.cancel()
            # A process without its lease must stop soon, even if its work does not.
            backstop.arm_for(lease.LeaseLost(_lost_message(held.lost)), LOST_EXIT_GRACE)
            return


def _lost_message(reason: str) -> str:
    return f"the writer lease was lost ({reason}); stopped writing"


@asynccontextmanager
async def writer_lease(url: str, ttl: float) -> AsyncIterator[Held]:
    """Hold the writer lease while the block runs; raise LeaseHeld or LeaseLost otherwise."""
    # Its own connections, so a renewal never queues behind this process's writers.
    db = await open_database(url)
    try:
        started = lease.steady()
        held = Held(await lease.acquire(db, lease.WRITER, lease.holder_id(), ttl), 0.0)
        held.deadline = started + ttl
        log.info("lease.acquired", fence=held.lease.token, ttl=ttl)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_keep, db, held, ttl, tasks.cancel_scope)
                yield held
                tasks.cancel_scope.cancel()
        except Exception as exc:
            if held.lost is None:
                raise
            # What the cancelled work raised (a locked or unreachable database) follows from
            # the loss; the loss is what the operator needs to hear about.
            raise lease.LeaseLost(_lost_message(held.lost)) from exc
        finally:
            if held.lost is None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_TIMEOUT):
                    await lease.release(db, held.lease)
                    log.info("lease.released", fence=held.lease.token)
        if held.lost is not None:
            raise lease.LeaseLost(_lost_message(held.lost))
    finally:
        with anyio.CancelScope(shield=True):
            await db.close()
