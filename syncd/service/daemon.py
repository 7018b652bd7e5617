"""`syncd run`: pollers, pushers and the authority feed under one task group, with health."""

from __future__ import annotations

import random
import signal
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio
import sqlalchemy as sa
import structlog

from graph import lease, outbox, replicas
from graph.authority import authority_state, authority_view
from graph.db import open_database
from graph.models import utcnow
from syncd.authority.scim.listener import scim_listener
from syncd.boundary import EX_TEMPFAIL, Failure
from syncd.config import Config, ConfigError, load_config
from syncd.engine import AUTHORITY_SOURCE, Engine
from syncd.reconcile import mass_deprovision_view
from syncd.service import backstop
from syncd.service.dbwatch import DatabaseWatch
from syncd.service.health import Check, health_app
from syncd.service.hints import DROPPED, IGNORED, QUEUED, Hint, HintQueue, work_hints
from syncd.service.listeners import serve_app
from syncd.service.metrics import Metrics
from syncd.service.sdnotify import Notifier, watchdog_interval, watchdog_loop
from syncd.service.shares import Shares
from syncd.service.webhooks import webhook_app, webhook_routes
from syncd.service.writer import Held, writer_lease

log = structlog.get_logger("syncd.service.daemon")
DRAIN_GRACE = 8.0  # seconds in-flight writes get to finish after SIGTERM
PUSH_IDLE = 1.0


_UNSEEN = object()  # no feed signature read yet (or a reread was asked for)


def _signature(path: Path) -> tuple[int, int] | None:
    """The file's modification time and size; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class NotRecovered(Failure):
    """Shutdown could not put the operations in flight back in the queue in time."""

    exit_code = EX_TEMPFAIL


@dataclass
class ConnectorHealth:
    """What the daemon knows of one connector between cycles."""

    last_success: datetime | None = None
    failing: str | None = None
    parked: str | None = None
    failures: int = 0
    claimed_at: datetime | None = None  # when this replica took the connector's lease over


@dataclass(eq=False)
class Unit:
    """One lease's work in this process: its readers stop at once, its pusher drains."""

    name: str
    stopping: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    finished: anyio.Event = field(default_factory=anyio.Event)


def lease_names(config: Config) -> list[str]:
    """The leases that divide the work: the authority's and one per connector."""
    return [lease.AUTHORITY, *(lease.CONNECTOR + name for name in config.connectors)]


def _connector_of(name: str) -> str | None:
    """The connector a lease is for (None: the authority's)."""
    return name.removeprefix(lease.CONNECTOR) if name.startswith(lease.CONNECTOR) else None


class Daemon:
    """The long-running service; also the health endpoint's source."""

    def __init__(self, config_path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.config_path = config_path
        self.environ = environ
        self.replica = lease.holder_id()
        self.metrics = Metrics()
        self.notifier = Notifier(environ)
        self.health: dict[str, ConnectorHealth] = {}
        self.stopping = anyio.Event()
        self.engine: Engine | None = None
        self._feed_signature: object = _UNSEEN
        self._refused_digest: str | None = None  # the feed version last refused here
        self._wake: dict[str, anyio.Event] = {}
        self._readers: anyio.CancelScope | None = None
        self.health_url: str | None = None
        self.database = DatabaseWatch()
        self.not_recovered: str | None = None  # why shutdown left operations in flight
        self.hints: dict[str, HintQueue] = {}  # per connector with a webhook
        self.webhooks_url: str | None = None
        self.scim_url: str | None = None  # the SCIM listener's base URL while it serves
        self._hints_full: set[str] = set()  # connectors whose hint queue is dropping
        self._planned = anyio.Event()  # the start's full pass is done: pollers may list
        self._replan_wanted = anyio.Event()  # a reload asks for another full pass
        self.units: dict[str, Unit] = {}  # the leases whose work runs here, by lease name
        self._units: anyio.abc.TaskGroup | None = None
        self.shares: Shares | None = None  # set while replicas share the leases

    async def run(self, config: Config) -> int:
        """Start in order (database, lease, health server, connectors), run until a signal."""
        async with Engine.open(config, self.environ) as engine:
            self.engine = engine
            if config.lease.replicas:
                self.metrics.replica = self.replica
                self._planned.set()  # the authority's holder plans everyone, maybe elsewhere
                await self._serve(engine)
            else:
                async with writer_lease(config.database.url, config.lease.ttl) as writer:
                    await self._serve(engine, writer)
        self.notifier.close()
        log.info("daemon.stopped")
        if self.not_recovered is not None:
            raise NotRecovered(
                "syncd run stopped without putting operations in flight back in the queue "
                f"({self.not_recovered}); the next start does"
            )
        return 0

    async def _serve(self, engine: Engine, writer: Held | None = None) -> None:
        """Serve health, webhooks and SCIM while the work runs; the writer lease, if alone."""
        config = engine.config
        engine.on_commit = self.wake_pushers
        for name, connector in engine.connectors.items():
            self.health[name] = ConnectorHealth()
            self._wake[name] = anyio.Event()
            connector.http.observer = self.metrics.observe_request
            engine.pushers[name].observe = self.metrics.observe_push
            if writer is not None:
                engine.pushers[name].may_write = writer.valid
                engine.pushers[name].token = writer.lease.token
        app = health_app(self, self.metrics)
        async with (
            serve_app(app, config.health.host, config.health.port) as url,
            self._webhooks(engine),
            scim_listener(config.scim, engine.store.db, engine, self.environ) as scim_url,
        ):
            self.health_url, self.scim_url = url, scim_url
            log.info(
                "daemon.started",
                health=url,
                connectors=sorted(engine.connectors),
                replica=self.replica if writer is None else None,
            )
            if writer is None:
                await self._share(engine)
                return
            recovered = await engine.recover()
            if recovered:
                log.warning("outbox.recovered", operations=recovered)
            await self._supervise(engine)

    @asynccontextmanager
    async def _webhooks(self, engine: Engine) -> AsyncIterator[None]:
        """Serve the webhook listener while the daemon runs, if `[webhooks]` is configured."""
        settings = engine.config.webhooks
        if settings is None:
            yield
            return
        routes = webhook_routes(engine.config, self.environ)
        self.hints = {name: HintQueue(settings.queue) for name in routes}
        app = webhook_app(
            routes,
            self._accept_hint,
            self.metrics.observe_hint,
            max_body_bytes=settings.max_body_bytes,
        )
        async with serve_app(app, settings.host, settings.port, name="webhooks") as url:
            self.webhooks_url = url
            log.info("webhooks.listening", url=url, connectors=sorted(routes))
            yield

    def _accept_hint(self, name: str, hint: Hint | None) -> str:
        """Queue a webhook's hint for its connector's worker; count what became of it."""
        queue = self.hints[name]
        elsewhere = self.shares is not None and lease.CONNECTOR + name not in self.units
        # A replica that does not hold the connector ignores its hints: its next poll sees all.
        outcome = IGNORED if hint is None or elsewhere else queue.offer(hint)
        self.metrics.observe_hint(name, outcome)
        if outcome == QUEUED:
            self._hints_full.discard(name)
        elif outcome == DROPPED and name not in self._hints_full:
            self._hints_full.add(name)  # logged once until a hint fits again
            log.warning("webhooks.queue_full", connector=name, limit=queue.limit)
        return outcome

    async def _hint_loop(self, engine: Engine, name: str) -> None:
        """One connector's hints, one at a time, through its budget (riding out outages)."""

        async def refetch(hint: Hint) -> str:
            outcome = "failed"

            async def once() -> None:
                nonlocal outcome
                outcome = await engine.refetch(name, hint.external_id, hint.email)

            await self.database.ride(f"hints:{name}", once)
            return outcome

        await work_hints(
            self.hints[name], refetch, lambda done: self.metrics.observe_hint(name, done)
        )

    def wake_pushers(self) -> None:
        """Every pusher looks at its outbox now, not at its next poll."""
        for event in self._wake.values():
            event.set()

    async def _share(self, engine: Engine) -> None:
        """Share the leases with the other replicas until a signal."""
        # Its own connections, so a renewal never queues behind this replica's writers; and
        # if this process is paused mid-statement, the server frees its lease rows in time.
        ttl = engine.config.lease.ttl
        db = await open_database(engine.config.database.url, idle_limit=ttl / 2)
        try:
            self.shares = Shares(db, lease_names(engine.config), ttl, self.replica, self)
            await self._supervise(engine, self.shares)
        finally:
            with anyio.CancelScope(shield=True):
                await db.close()

    async def _supervise(self, engine: Engine, shares: Shares | None = None) -> None:
        """Run the work of every lease (alone) or of the leases held (shared) until a signal."""
        async with anyio.create_task_group() as units:
            self._units = units
            keeper = anyio.CancelScope()
            async with anyio.create_task_group() as readers:
                self._readers = readers.cancel_scope
                readers.start_soon(self._signals)
                if (interval := watchdog_interval(self.environ)) is not None:
                    readers.start_soon(watchdog_loop, self.notifier, interval)
                if shares is None:
                    for name in lease_names(engine.config):
                        self.begin(name)
                else:
                    units.start_soon(self._keep, shares, keeper)
                self.notifier.ready(self._summary())
            # A signal: each lease's pusher finishes its in-flight writes, within a bound.
            if shares is not None:
                await shares.give_back_all()  # renewed meanwhile, then released
            for unit in self.units.values():
                unit.stopping.set()
            self.wake_pushers()
            for unit in list(self.units.values()):
                await unit.finished.wait()
            keeper.cancel()
        if shares is not None:
            return  # what is left in flight is put back by whoever holds each lease next
        # Whatever a cancelled write left in flight goes back to the queue, not half-done.
        bounded = anyio.move_on_after(backstop.RECOVERY_TIMEOUT)
        with anyio.CancelScope(shield=True), bounded:
            await self.database.ride("shutdown", lambda: outbox.recover_in_flight(engine.store.db))
        if bounded.cancelled_caught:
            self.not_recovered = f"database unavailable: {self.database.outage or 'timed out'}"
            log.error("outbox.not_recovered", reason=self.not_recovered)

    async def _keep(self, shares: Shares, scope: anyio.CancelScope) -> None:
        with scope:
            await self._task("leases", shares.run())

    # -- the work of one lease (shares.Work) ------------------------------------------------

    def begin(self, name: str, held: Held | None = None) -> None:
        """Start a lease's work: a connector's poller, pusher and hints, or the authority's."""
        assert self._units is not None and self.engine is not None
        unit = self.units[name] = Unit(name)
        connector = _connector_of(name)
        if connector is not None and held is not None:
            pusher = self.engine.pushers[connector]
            pusher.token, pusher.may_write = held.lease.token, held.valid
            self.health[connector] = ConnectorHealth(claimed_at=utcnow())
            # What happened while another replica held it is unknown here: its first
            # listing plans everyone for it (an incomplete listing elsewhere left people
            # unplanned, and only a full plan catches them).
            self.engine.planned_since.pop(connector, None)
        self._units.start_soon(self._run_unit, self.engine, unit)

    def abandon(self, name: str) -> None:
        """The lease moved: its work stops at once (its pusher could not write anyway)."""
        if (unit := self.units.pop(name, None)) is not None:
            unit.scope.cancel()

    async def finish(self, name: str) -> None:
        """Stop a lease's work, its pusher's in-flight writes first finishing, within a bound."""
        unit = self.units.get(name)
        if unit is None:
            return
        unit.stopping.set()
        if (connector := _connector_of(name)) is not None:
            self._wake[connector].set()
        await unit.finished.wait()
        if self.units.get(name) is unit:
            del self.units[name]

    async def _run_unit(self, engine: Engine, unit: Unit) -> None:
        connector = _connector_of(unit.name)
        try:
            with unit.scope:
                async with anyio.create_task_group() as writers:
                    async with anyio.create_task_group() as readers:
                        for task, work in self._readers_of(engine, unit.name):
                            readers.start_soon(self._task, task, work)
                        if connector is not None:
                            pushing = self._push_loop(engine, connector, unit.stopping)
                            writers.start_soon(self._task, f"push:{connector}", pushing)
                        await unit.stopping.wait()
                        readers.cancel_scope.cancel()
                    writers.cancel_scope.deadline = anyio.current_time() + DRAIN_GRACE
        finally:
            if connector is not None and self.shares is not None:
                self.metrics.forget(connector)  # whoever holds it next reports it
            unit.finished.set()

    def _readers_of(self, engine: Engine, name: str) -> Sequence[tuple[str, Awaitable[None]]]:
        """The tasks of a lease that only read and plan: stopped at once when it ends."""
        connector = _connector_of(name)
        if connector is None:
            feed = [("feed", self._feed_loop(engine))] if engine.config.authority else []
            return [*feed, ("replan", self._replan_loop(engine))]
        tasks = [(f"poll:{connector}", self._poll_loop(engine, connector))]
        if connector in self.hints:
            tasks.append((f"hints:{connector}", self._hint_loop(engine, connector)))
        return tasks

    async def _task(self, name: str, work: Awaitable[None]) -> None:
        """Run one supervised task; if it crashes, the process stops within the bound."""
        try:
            await work
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            log.error("daemon.task_crashed", task=name, error=type(exc).__name__)
            backstop.arm_for(exc)
            raise

    def stop(self) -> None:
        """Stop polling and let in-flight writes finish, as SIGTERM does."""
        backstop.arm(
            backstop.SHUTDOWN_BOUND,
            EX_TEMPFAIL,
            f"syncd run: shutdown did not finish within {backstop.SHUTDOWN_BOUND:g} s; "
            "stopped anyway (the next start puts operations left in flight back in the queue)",
        )
        self.notifier.stopping("stopping")
        self.stopping.set()
        if self._readers is not None:
            self._readers.cancel()

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for received in signals:
                if received == signal.SIGHUP:
                    self._reload()
                    continue
                log.info("daemon.stopping", signal=signal.Signals(received).name)
                self.stop()
                return

    def _reload(self) -> None:
        assert self.engine is not None
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config.reload_failed", error=str(exc))
            return
        if config.connectors != self.engine.config.connectors or (
            (config.database, config.webhooks)
            != (self.engine.config.database, self.engine.config.webhooks)
        ):
            log.warning("config.restart_needed", reason="connectors, database or webhooks changed")
        self.engine.reload(config)
        self._replan_wanted.set()  # the new rules apply to everyone, not only who changes next
        self._feed_signature = _UNSEEN  # read the feed again, even if unchanged
        log.info("config.reloaded")

    async def _feed_loop(self, engine: Engine) -> None:
        while True:
            settings = engine.config.authority
            if settings is None:
                return
            await self.database.ride("feed", lambda: self._feed_once(engine))
            await anyio.sleep(settings.poll_interval)

    async def _feed_once(self, engine: Engine) -> None:
        """Apply the HR file if it changed, or an operator approved the refused version."""
        settings = engine.config.authority
        if settings is not None:
            signature = _signature(settings.hr_feed)
            if signature != self._feed_signature or await self._approval_waiting(engine):
                result = await engine.apply_feed()
                if not result.changing:  # a file being written is read again next poll
                    self._feed_signature = signature
                    self._refused_digest = result.digest if result.refused else None
                    if result.digest is not None and result.refused is None:
                        log.info(
                            "authority.applied",
                            people=result.people,
                            created=result.created,
                            updated=result.updated,
                            deprovisioned=result.deprovisioned,
                            skipped_rows=result.skipped_rows,
                            rejected_rows=result.rejected_rows,
                            queued=result.plan.queued,
                        )
                    self.wake_pushers()

    async def _approval_waiting(self, engine: Engine) -> bool:
        """Whether an operator approved the feed version this daemon last refused."""
        if self._refused_digest is None:
            return False
        async with engine.store.db.read() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
        return state.refused_digest == self._refused_digest == state.approved_digest

    async def _replan_loop(self, engine: Engine) -> None:
        """Plan everyone once at the start, then once after every reload."""
        try:
            await self.database.ride("replan", lambda: self._replan(engine, start=True))
        finally:
            self._planned.set()
        while True:
            await self._replan_wanted.wait()
            self._replan_wanted = anyio.Event()
            await self.database.ride("replan", lambda: self._replan(engine))

    async def _replan(self, engine: Engine, *, start: bool = False) -> None:
        """One full pass over everyone; wake the pushers for what it queued."""
        result = await engine.replan(start=start)
        log.info("plan.everyone", queued=result.queued, held=sum(result.held.values()))
        self.wake_pushers()

    async def _poll_loop(self, engine: Engine, name: str) -> None:
        # Listings plan only who they change, from the start's full pass on.
        await self._planned.wait()
        while True:
            await self.database.ride(f"poll:{name}", lambda: self._poll_once(engine, name))
            interval = engine.config.connectors[name].poll_interval
            await anyio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311  (jitter)

    async def _poll_once(self, engine: Engine, name: str) -> None:
        """List one connector, resolve and plan; keep its health and wake its pusher."""
        health = self.health[name]
        result = await engine.list_connector(name)
        connector = engine.connectors[name]
        self.metrics.observe_listing(name, result.seconds)
        self.metrics.set_rates(name, connector.budget.rate, connector.budget.learned_rate)
        await engine.save_learned_rate(name)
        if result.complete:
            health.last_success = utcnow()
            health.failures = 0
            self.metrics.cycle_succeeded(name, health.last_success)
            if health.failing or health.parked:
                log.info("connector.recovered", connector=name)
            health.failing = health.parked = None
        else:
            health.failures += 1
            error = result.error or "listing incomplete"
            parked = error.startswith("credentials rejected")
            if health.failing is None:
                log.error("connector.failing", connector=name, error=error, parked=parked)
            health.failing = error
            health.parked = error if parked else None
        self.metrics.set_parked(name, health.parked is not None)
        self._wake[name].set()
        self.notifier.status(self._summary())

    async def _push_loop(self, engine: Engine, name: str, stopping: anyio.Event) -> None:
        pusher = engine.pushers[name]
        while not stopping.is_set():
            await self.database.ride(
                f"push:{name}",
                lambda: self._push_once(engine, name, stopping),
                stop=stopping,
                # The drain a fault ended has stopped: nothing it claimed is still being sent.
                requeue=lambda: outbox.recover_in_flight(
                    engine.store.db, name, only_token=pusher.token
                ),
            )
            if stopping.is_set():
                return
            with anyio.move_on_after(PUSH_IDLE):
                await self._wake[name].wait()
            self._wake[name] = anyio.Event()

    async def _push_once(self, engine: Engine, name: str, stopping: anyio.Event) -> None:
        """Drain one connector's outbox; a rejected credential parks the connector."""
        stats = await engine.push(name, stopping)
        if stats.auth_failed:
            self.health[name].parked = "credentials rejected while pushing"

    def _summary(self) -> str:
        here = [self.health[name] for name in self._connectors_here()]
        ok = sum(1 for item in here if item.failing is None)
        parked = sum(1 for item in here if item.parked)
        return f"{ok}/{len(here)} connectors ok, {parked} parked"

    # -- HealthSource ---------------------------------------------------------------

    async def readiness(self) -> dict[str, Check]:
        """Database reachable; every connector listed within its staleness limit, none parked."""
        assert self.engine is not None
        checks: dict[str, Check] = {}
        try:
            async with self.engine.store.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["database"] = Check(True, "answers")
        except Exception as exc:  # any failure means not ready
            checks["database"] = Check(False, f"error: {type(exc).__name__}")
        if (outage := self.database.outage) is not None:  # reads may pass while writes cannot
            checks["database"] = Check(False, f"unavailable: {outage}")
        if self.engine.config.authority is not None:
            checks["authority"] = await self._authority_check()
        checks["deprovisions"] = await self._deprovisions_check()
        if self.shares is not None:
            checks["leases"] = self._leases_check(self.shares)
        now = utcnow()
        for name in self._connectors_here():
            health = self.health[name]
            settings = self.engine.config.connectors[name]
            limit = settings.staleness_limit or 3 * settings.poll_interval
            claimed = health.claimed_at
            if health.parked:
                checks[f"connector:{name}"] = Check(False, "parked: credentials rejected")
            elif (
                health.last_success is None and claimed and (now - claimed).total_seconds() < limit
            ):
                checks[f"connector:{name}"] = Check(True, "taken over; first listing under way")
            elif health.last_success is None:
                checks[f"connector:{name}"] = Check(False, "no complete listing yet")
            elif (age := (now - health.last_success).total_seconds()) > limit:
                checks[f"connector:{name}"] = Check(False, f"stale: last listing {age:.0f}s ago")
            else:
                checks[f"connector:{name}"] = Check(True, "fresh")
        return checks

    def _connectors_here(self) -> list[str]:
        """The connectors this process runs: all alone, the ones whose lease it holds if shared."""
        if self.shares is None:
            return list(self.health)
        return [name for name in self.health if lease.CONNECTOR + name in self.units]

    def _leases_check(self, shares: Shares) -> Check:
        """Ready while lease rounds succeed: it then holds its share or stands by."""
        held = f"holds {len(shares.held)} of {len(shares.names)} leases, {shares.live} replicas"
        if shares.error is not None:
            return Check(False, f"lease round failed ({shares.error}); {held}")
        if shares.last_round is None:
            return Check(False, "no lease round yet")
        if lease.steady() - shares.last_round > shares.ttl:
            return Check(False, f"no lease round for over {shares.ttl:g} s; {held}")
        return Check(True, held)

    async def _authority_check(self) -> Check:
        assert self.engine is not None
        try:
            async with self.engine.store.db.read() as conn:
                state = await authority_state(conn, AUTHORITY_SOURCE)
        except Exception as exc:  # the database check names the failure
            return Check(False, f"error: {type(exc).__name__}")
        if state.refused_reason is not None:
            return Check(False, f"feed refused: {state.refused_reason}")
        return Check(True, "feed applied" if state.applied_digest else "no feed applied yet")

    async def _deprovisions_check(self) -> Check:
        assert self.engine is not None
        try:
            reasons = await outbox.held_reasons(self.engine.store.db)
        except Exception as exc:  # the database check names the failure
            return Check(False, f"error: {type(exc).__name__}")
        view = mass_deprovision_view(reasons, self.engine.config.guard.deprovision_window)
        if view["held_operations"]:
            return Check(
                False,
                f"{view['held_operations']} vendor deactivations held: {view['reason']} "
                "(syncd approve or syncd reject)",
            )
        return Check(True, "none held")

    async def status(self) -> dict[str, object]:
        """Per connector: health, last success, outbox, held and why, conflicts (no emails)."""
        assert self.engine is not None
        by_state = await outbox.counts_by_state(self.engine.store.db)
        reasons = await outbox.held_reasons(self.engine.store.db)
        dead = await outbox.dead_creates(self.engine.store.db)
        conflicts = {
            item.connector: item.open_conflicts for item in await self.engine.store.counts()
        }
        connectors: dict[str, object] = {}
        for name in self._connectors_here():
            health = self.health[name]
            budget = self.engine.connectors[name].budget
            outbox_states = {state: n for (c, state), n in by_state.items() if c == name}
            connectors[name] = {
                "ok": health.failing is None and health.last_success is not None,
                "parked": health.parked is not None,
                "failing": health.failing is not None,
                "consecutive_failures": health.failures,
                "last_success": health.last_success,
                "rate": budget.rate,
                "learned_rate": budget.learned_rate,
                "outbox": outbox_states,
                "held": outbox_states.get("held", 0),
                "held_reasons": reasons.get(name, {}),
                "retrying_dead_creates": dead.get(name, {}).get("retrying_dead_creates", 0),
                "dead_creates_need_operator": dead.get(name, {}).get(
                    "dead_creates_need_operator", 0
                ),
                "open_conflicts": conflicts.get(name, 0),
            }
        async with self.engine.store.db.read() as conn:
            authority = authority_view(await authority_state(conn, AUTHORITY_SOURCE))
        return {
            "summary": self._summary(),
            **(await self._sharing(self.shares) if self.shares is not None else {}),
            "authority": authority,
            "deprovisions": mass_deprovision_view(
                reasons, self.engine.config.guard.deprovision_window
            ),
            "connectors": connectors,
        }

    async def _sharing(self, shares: Shares) -> dict[str, object]:
        """This replica, the live ones, and who holds each lease (the same on every replica)."""
        now, rows = await lease.listing(shares.db)
        live = await replicas.live(shares.db, shares.ttl)
        return {
            "replica": self.replica,
            "replicas": [
                {"id": item.id, "host": item.host, "pid": item.pid, "seen": item.seen_at}
                for item in live
            ],
            "leases": {
                row.name: {
                    "holder": row.holder if row.expires_at > now else None,
                    "token": row.token,
                    "expires_in_seconds": max(round((row.expires_at - now).total_seconds(), 1), 0),
                }
                for row in rows
                if row.name in shares.names
            },
        }

    async def refresh_metrics(self) -> None:
        """Bring the graph gauges up to date."""
        assert self.engine is not None
        await self.metrics.refresh(self.engine.store.db)


def run_daemon(config_path: Path) -> int:
    """Load the config and run the daemon until SIGTERM or SIGINT."""
    config = load_config(config_path)
    daemon = Daemon(config_path)

    async def main() -> int:
        try:
            code = await daemon.run(config)
        except BaseException as exc:
            # The driver's clean-up of cancelled work can keep the event loop from closing.
            backstop.arm_for(exc, backstop.TEARDOWN_GRACE)
            raise
        backstop.arm(backstop.TEARDOWN_GRACE, code, "")
        return code

    return anyio.run(main)
