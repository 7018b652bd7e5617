"""Replicas share the leases: claim a fair share, renew it, give back what is over it."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.abc
import structlog
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from graph import lease, replicas
from graph.db import Database
from syncd.service.writer import Held

log = structlog.get_logger("syncd.service.shares")
RELEASE_TIMEOUT = 5.0
_DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


class Work(Protocol):
    """What a replica does with a lease while it holds it."""

    def begin(self, name: str, held: Held) -> None:
        """Begin the lease's work (it puts back what an earlier holder left in flight)."""

    def abandon(self, name: str) -> None:
        """Stop the lease's work at once: the lease is no longer ours."""

    async def finish(self, name: str) -> None:
        """Stop the lease's work, letting in-flight writes finish first."""


def fair_share(leases: int, live: int) -> int:
    """The most leases one replica holds: ceil(leases / live replicas) + 1."""
    return math.ceil(leases / max(live, 1)) + 1


class Shares:
    """One replica's part in sharing the leases, renewed every third of the TTL."""

    def __init__(
        self, db: Database, names: Sequence[str], ttl: float, replica: str, work: Work
    ) -> None:
        self.db = db
        self.names = list(names)
        self.ttl = ttl
        self.replica = replica
        self.work = work
        self.held: dict[str, Held] = {}  # in the order they were claimed
        self.leaving: set[str] = set()  # held, renewed, while their work stops to give them back
        self.live = 1
        self.closing = False  # shutting down: claim nothing more
        self.last_round: float | None = None  # steady time of the last round that succeeded
        self.error: str | None = None  # why the last round failed

    def valid(self, name: str) -> bool:
        """Whether this replica may write under the lease `name` now."""
        held = self.held.get(name)
        return held is not None and held.valid()

    @property
    def share(self) -> int:
        """How many leases this replica may hold while `live` replicas share them."""
        return fair_share(len(self.names), self.live)

    async def run(self) -> None:
        """Take part until cancelled: a round every third of the TTL, claims in between."""
        # Between rounds, a look for expired leases every tenth of the TTL: a dead
        # replica's work moves soon after its leases run out, not a round later.
        next_round = 0.0
        async with anyio.create_task_group() as leaving:
            while True:
                try:
                    if lease.steady() >= next_round:
                        await self.round(leaving)
                        next_round = lease.steady() + self.ttl / 3
                    elif not self.closing and len(self.held) < self.share:
                        await self._claim(self.share - len(self.held))
                except _DATABASE_ERRORS as exc:
                    if self.error is None:
                        log.warning("leases.round_failed", error=type(exc).__name__)
                    self.error = type(exc).__name__
                    self._drop_expired()
                await anyio.sleep(self.ttl / 10)

    async def round(self, leaving: anyio.abc.TaskGroup) -> None:
        """Beat, renew what is held, then claim up to the share or give one lease back."""
        await lease.ensure(self.db, self.names)
        self.live = await replicas.beat(self.db, self.replica, self.ttl)
        await self._renew()
        staying = [name for name in self.held if name not in self.leaving]
        if not self.closing:
            if len(staying) > self.share and not self.leaving:
                # The most recent claim goes, in the background: renewals must go on meanwhile.
                self.leaving.add(staying[-1])
                leaving.start_soon(self.give_back, staying[-1])
            elif len(self.held) < self.share:
                await self._claim(self.share - len(self.held))
        if self.error is not None:
            log.info("leases.round_succeeded")
        self.error = None
        self.last_round = lease.steady()

    async def _renew(self) -> None:
        """Renew every held lease in one statement; a lease not renewed in time is lost."""
        while self.held:
            self._drop_expired()
            if not self.held:
                return
            sent = lease.steady()
            remaining = min(held.deadline for held in self.held.values()) - sent
            try:
                with anyio.fail_after(remaining):
                    renewed = await lease.renew_all(
                        self.db, {name: held.lease for name, held in self.held.items()}, self.ttl
                    )
            except _DATABASE_ERRORS as exc:
                log.warning("leases.renew_failed", error=type(exc).__name__)
                await anyio.sleep(min(1.0, max(remaining / 4, 0.05)))
                continue
            for name, held in list(self.held.items()):
                if name in renewed:
                    held.lease, held.deadline = renewed[name], sent + self.ttl
                else:
                    self._lose(name, "taken over by another replica")
            return

    def _drop_expired(self) -> None:
        """Give up, at once, every lease whose local deadline has passed."""
        for name, held in list(self.held.items()):
            if not held.valid():
                self._lose(name, f"not renewed within its {self.ttl:g} s TTL")

    def _lose(self, name: str, reason: str) -> None:
        held = self.held.pop(name)
        held.lost = reason
        log.error("lease.lost", lease=name, reason=reason, fence=held.lease.token)
        self.work.abandon(name)

    async def _claim(self, wanted: int) -> None:
        """Claim up to `wanted` expired leases, in a random order so replicas do not collide."""
        free = [name for name in await lease.expired(self.db, self.names) if name not in self.held]
        random.shuffle(free)
        for name in free:
            if wanted <= 0 or self.closing:
                return
            sent = lease.steady()
            try:
                got = await lease.claim(self.db, name, self.replica, self.ttl)
            except DBAPIError:
                continue  # locked by a holder mid-renewal: it is not free
            if got is None:
                continue  # another replica was quicker
            self.held[name] = held = Held(got, sent + self.ttl)
            wanted -= 1
            log.info("lease.claimed", lease=name, fence=got.token)
            self.work.begin(name, held)

    async def give_back(self, name: str) -> None:
        """Stop the lease's work (in-flight writes finish), then release it for another replica."""
        try:
            await self.work.finish(name)
        finally:
            self.leaving.discard(name)
        held = self.held.pop(name, None)
        if held is None or not held.valid():
            return  # lost meanwhile: nothing of ours to release
        with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_TIMEOUT):
            try:
                await lease.release(self.db, held.lease)
                log.info("lease.released", lease=name, fence=held.lease.token)
            except _DATABASE_ERRORS as exc:  # it expires by itself within the TTL
                log.warning("lease.release_failed", lease=name, error=type(exc).__name__)

    async def give_back_all(self) -> None:
        """On shutdown: stop every lease's work and release them all, then leave."""
        self.closing = True
        async with anyio.create_task_group() as tasks:
            for name in list(self.held):
                if name not in self.leaving:
                    tasks.start_soon(self.give_back, name)
        with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_TIMEOUT):
            try:
                await replicas.leave(self.db, self.replica)
            except _DATABASE_ERRORS as exc:
                log.warning("replica.leave_failed", error=type(exc).__name__)
