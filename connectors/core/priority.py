"""A semaphore whose waiters are served most urgent first."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum

import anyio
from anyio.lowlevel import checkpoint


class Priority(IntEnum):
    """How urgently a request should be sent; lower goes first."""

    DEACTIVATE = 0
    WRITE = 1
    READ = 2


class PrioritySemaphore:
    """Up to `capacity` holders; waiters are granted by priority, then arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._free = capacity
        self._waiters: list[tuple[int, int, anyio.Event]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Return how many tasks are waiting."""
        return len(self._waiters)

    async def acquire(self, priority: int = Priority.READ) -> None:
        """Wait for a free place, ahead of every waiter with a larger priority value."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            try:
                await checkpoint()
            except BaseException:
                self.release()  # cancelled as it took the place: give it back, or it is lost
                raise
            return
        entry = (int(priority), next(self._order), anyio.Event())
        heapq.heappush(self._waiters, entry)
        try:
            await entry[2].wait()
        except BaseException:
            if entry[2].is_set():
                self.release()  # the place was handed to us as we were cancelled: pass it on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        """Hand the place to the most urgent waiter, or free it."""
        if self._waiters:
            heapq.heappop(self._waiters)[2].set()
        else:
            self._free += 1

    @asynccontextmanager
    async def hold(self, priority: int = Priority.READ) -> AsyncIterator[None]:
        """Hold a place for the duration of the block."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
