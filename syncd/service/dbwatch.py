"""A busy or unreachable database is a fault that passes: each loop waits it out, logged once."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

import anyio
import structlog

from graph.db import transient_fault

log = structlog.get_logger("syncd.service.dbwatch")
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 8.0


def backoff(attempt: int) -> float:
    """Capped exponential backoff with jitter, for the `attempt`th retry (from 1)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (timing jitter, not security)


class DatabaseWatch:
    """Which loops wait for the database now, and why; the readiness check reads it."""

    def __init__(self) -> None:
        self._waiting: dict[str, str] = {}  # loop -> reason
        self._since: float | None = None

    @property
    def outage(self) -> str | None:
        """Why the database cannot be used right now, or None while it can."""
        return next(iter(self._waiting.values()), None)

    async def ride(
        self,
        loop: str,
        step: Callable[[], Awaitable[object]],
        *,
        stop: anyio.Event | None = None,
        requeue: Callable[[], Awaitable[object]] | None = None,
    ) -> bool:
        """Run one step of a loop until it completes; a transient database fault is retried.

        Before a retry, `requeue` puts back what the failed step left half-done; once it
        succeeds the database answers again. Returns False when `stop` was set while the
        step waited for the database (it did not complete).
        """
        attempt = 0
        while True:
            try:
                if attempt and requeue is not None:
                    await requeue()
                    self._cleared(loop)
                await step()
            except Exception as exc:
                if (reason := transient_fault(exc)) is None:
                    raise
                self._failed(loop, exc, reason)
                if stop is not None and stop.is_set():
                    return False
                attempt += 1
                await anyio.sleep(backoff(attempt))
                continue
            self._cleared(loop)
            return True

    def _failed(self, loop: str, exc: BaseException, reason: str) -> None:
        if not self._waiting:
            self._since = time.monotonic()
            log.error("database.unavailable", error=_class_of(exc), reason=reason, loop=loop)
        self._waiting[loop] = reason

    def _cleared(self, loop: str) -> None:
        if self._waiting.pop(loop, None) is not None and not self._waiting:
            seconds = time.monotonic() - (self._since or time.monotonic())
            log.info("database.recovered", seconds=round(seconds, 1))


def _class_of(error: BaseException) -> str:
    """The class of the failure inside task-group exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return type(error).__name__
