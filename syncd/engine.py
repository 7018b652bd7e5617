"""The sync engine: authority in, listings in, plan, outbox, push out."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.core.base import Connector
from connectors.core.budget import RateBudget
from connectors.core.errors import AuthenticationError, ConnectorError, WriteFenced
from connectors.core.records import VendorAccount
from connectors.core.session import open_session
from connectors.registry import vendor
from graph import outbox
from graph.authority import AuthorityState, authority_state, save_applied, save_refusal
from graph.authority_rows import current_rows, row_hashes, save_rows
from graph.db import IDLE_LIMIT
from graph.emails import normalize_email
from graph.ingest import ingest_account
from graph.linked import (
    account_person,
    learned_rates,
    listing_state,
    people_touched,
    save_learned_rate,
    save_listing_problem,
)
from graph.models import utcnow
from graph.outbox import dead_create_generations
from graph.people import (
    PeopleStats,
    active_from,
    deprovision,
    people_named,
    primary_emails,
    upsert_people_in,
)
from graph.records import PersonRecord
from graph.resolve import resolve_in
from graph.store import GraphStore
from syncd.authority.hrfeed import Feed, FeedChanging, FeedError, read_feed
from syncd.collector import tune_collector
from syncd.config import Config, ConfigError, ConnectorConfig, ProvisionConfig, resolve_secrets
from syncd.plan import Guard, Person, Target
from syncd.push import Pusher, PushStats, RetryPolicy
from syncd.reconcile import Policy, ReconcileResult, reconcile
from syncd.values import ValueMap

CREDENTIALS_REJECTED = "credentials rejected"  # how a listing the vendor refused us begins
log = structlog.get_logger("syncd.engine")
AUTHORITY_SOURCE = "hr"
CLOSE_TIMEOUT = 10.0  # seconds closing the graph's connections may take


class Rollback(Exception):
    """Raised inside a transaction to undo it (a dry run)."""


def provision_rule(rule: ProvisionConfig) -> Callable[[Person], bool]:
    """Who gets a new account: an email domain, a group, or every listed attribute matching."""
    domains = {domain.casefold() for domain in rule.domains}
    groups = set(rule.groups)

    def matches(person: Person) -> bool:
        if person.email.rpartition("@")[2].casefold() in domains:
            return True
        held = person.attributes.get("groups")
        if groups and isinstance(held, list) and groups.intersection(map(str, held)):
            return True
        return bool(rule.attributes) and all(
            str(person.attributes.get(key)) == value for key, value in rule.attributes.items()
        )

    return matches


@dataclass
class FeedResult:
    """What one read of the authority feed did."""

    people: int = 0
    skipped_rows: int = 0  # rows the reader found invalid
    rejected_rows: int = 0  # valid rows the graph would not apply
    created: int = 0
    updated: int = 0
    deprovisioned: int = 0
    refused: str | None = None  # why the feed, or its deprovisioning, was refused
    unusable: bool = False  # refused because the file itself cannot be used (bad input data)
    changing: bool = False  # the file changed while read: nothing done, try again
    digest: str | None = None  # the feed version (sha256 of the file)
    would_deprovision: list[str] = field(default_factory=list)  # emails; dry runs only
    plan: ReconcileResult = field(default_factory=ReconcileResult)


class _RefusedWhole(Exception):
    """Raised inside the feed's transaction to undo it: the feed is refused whole."""


@dataclass
class ListingResult:
    """What one listing of one connector did."""

    connector: str
    complete: bool = False
    accounts: int = 0
    changed: int = 0
    error: str | None = None
    plan: ReconcileResult = field(default_factory=ReconcileResult)
    seconds: float = 0.0


def build_connector(
    name: str,
    settings: ConnectorConfig,
    session: aiohttp.ClientSession,
    secrets: Mapping[str, str],
    learned_rate: float | None = None,
) -> Connector:
    """Build one configured connector; a setting the vendor does not take is a ConfigError."""
    kwargs: dict[str, object] = dict(settings.settings)
    if settings.allow_delete:
        kwargs["allow_delete"] = True
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    budget = RateBudget(settings.rate, burst=settings.burst, name=name, learned_rate=learned_rate)
    try:
        connector = vendor(settings.vendor).connector(
            name=name,
            session=session,
            secrets=secrets,
            budget=budget,
            **kwargs,  # type: ignore[arg-type]
        )
    except TypeError as exc:
        raise ConfigError(f"connectors.{name}.settings: {exc}") from None
    except (ConnectorError, ValueError) as exc:
        raise ConfigError(f"connectors.{name}: {exc}") from None
    connector.http.max_response_bytes = settings.max_response_bytes
    return connector


def _connector_error(exc: BaseException) -> ConnectorError | None:
    """The vendor failure inside an error (task groups wrap what their tasks raise)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _connector_error(inner)) is not None:
                return found
    return None


async def _fenced(
    pages: AsyncGenerator[list[VendorAccount], None], may_write: Callable[[], bool], name: str
) -> AsyncGenerator[list[VendorAccount], None]:
    """The listing's pages while this process may still store them (its lease is valid)."""
    async with aclosing(pages):
        async for page in pages:
            if not may_write():
                raise WriteFenced(name, "listing not stored: this process's lease ran out")
            yield page


class Engine:
    """One configured deployment: the graph, its connectors and their pushers."""

    def __init__(
        self,
        config: Config,
        store: GraphStore,
        connectors: Mapping[str, Connector],
    ) -> None:
        self.config = config
        self.store = store
        self.connectors = dict(connectors)
        self.on_commit: Callable[[], None] = lambda: None  # the daemon wakes its pushers here
        # Per connector, when its last complete listing (or the start's full pass) began: the
        # next listing plans only who changed since. Without one (incomplete listing, a
        # connector never listed at the start) a listing plans everyone for its connector.
        self.planned_since: dict[str, datetime] = {}
        self.reload(config)
        retry = RetryPolicy(
            max_attempts=config.push.max_attempts,
            base_delay=config.push.base_delay,
            max_delay=config.push.max_delay,
        )
        self.pushers = {
            name: Pusher(store.db, connector, retry=retry, policy=store.policy)
            for name, connector in self.connectors.items()
        }

    def reload(self, config: Config) -> None:
        """Take up the settings that can change while running: authority, guards, rules."""
        # What each connector planned stays valid: the rules' effect on everyone comes from
        # the one full pass (`replan`) the caller runs after a reload.
        self.config = config
        guard = Guard(
            max_count=config.guard.max_deactivations,
            max_share=config.guard.max_deactivation_share,
            max_email_changes=config.guard.max_email_changes,
            deprovision_window=config.guard.deprovision_window,
        )
        self.policy = Policy(
            guard=guard,
            precedence={key: tuple(sources) for key, sources in config.precedence.items()},
            deactivate_orphans=frozenset(
                name for name, item in config.connectors.items() if item.deactivate_orphans
            ),
            file_sources=frozenset({AUTHORITY_SOURCE}),
            replan_delay=config.push.max_delay,
        )
        self.targets = {
            name: Target(
                name,
                has_deactivate=connector.capabilities.has_deactivate,
                can_delete=config.connectors[name].allow_delete
                and connector.capabilities.has_delete,
                writable=connector.writable,
                provision=provision_rule(config.connectors[name].provision),
                trust_email_links=config.connectors[name].trust_email_links,
                values=ValueMap(name, config.connectors[name].values, connector.allowed_values),
            )
            for name, connector in self.connectors.items()
            if name in config.connectors
        }

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: Config, environ: Mapping[str, str] | None = None
    ) -> AsyncIterator[Engine]:
        """Open the graph and a client session and build every connector."""
        secrets = {
            name: resolve_secrets(name, item.secrets, environ)
            for name, item in config.connectors.items()
        }
        # Replicas: a transaction left open by a paused replica ends before its lease can
        # move (a takeover comes at least two thirds of the TTL after the pause began).
        idle = config.lease.ttl / 2 if config.lease.replicas else IDLE_LIMIT
        store = await GraphStore.open(config.database.url, idle_limit=idle)
        try:
            async with store.db.read() as conn:
                learned = await learned_rates(conn)
            async with open_session() as session:
                connectors = {
                    name: build_connector(name, item, session, secrets[name], learned.get(name))
                    for name, item in config.connectors.items()
                }
                engine = cls(config, store, connectors)
                tune_collector()
                yield engine
        finally:
            # Closing must finish even when the command was cancelled (SIGTERM, Ctrl-C).
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await store.close()

    # -- authority ------------------------------------------------------------------

    async def apply_feed(self, path: Path | None = None, *, dry_run: bool = False) -> FeedResult:
        """Read the HR feed and apply it with its plan in one transaction, or refuse it."""
        if path is None:
            if self.config.authority is None:
                return FeedResult()
            path = self.config.authority.hr_feed
        async with self.store.db.read() as conn:
            known = await row_hashes(conn, AUTHORITY_SOURCE)
        try:
            feed = await anyio.to_thread.run_sync(read_feed, path, known, repr(self.store.policy))
        except FeedChanging:
            log.info("authority.changing")
            return FeedResult(changing=True)
        except FeedError as exc:
            result = FeedResult(refused=str(exc), unusable=True)
            if not dry_run:
                await self._refuse(result.refused or "", None, None)
            return result
        result = FeedResult(
            people=len(feed.people) + len(feed.kept),
            skipped_rows=len(feed.errors),
            digest=feed.digest,
        )
        for error in feed.errors:
            log.warning("authority.row_skipped", line=error.line, reason=error.message)
        try:
            async with self.store.db.write() as conn:
                await self._apply(conn, feed, result, dry_run)
        except Rollback:
            pass
        except _RefusedWhole as refused:
            await self._refuse(result.refused or "", feed.digest, refused.args[0])
        return result

    async def _apply(
        self, conn: AsyncConnection, feed: Feed, result: FeedResult, dry_run: bool
    ) -> None:
        """Upsert the feed, guard it, deprovision the absent, plan; raise to undo."""
        state = await authority_state(conn, AUTHORITY_SOURCE)
        # People an invalid row names stay exactly as they are: present, untouched.
        untouched = await people_named(
            conn,
            [error.employee_id for error in feed.errors if error.employee_id],
            [
                email
                for error in feed.errors
                if error.email and (email := normalize_email(error.email, self.store.policy).email)
            ],
            AUTHORITY_SOURCE,
        )
        kept, stale = await self._kept_rows(conn, feed, untouched)
        before = await active_from(conn, AUTHORITY_SOURCE)
        stats = await upsert_people_in(
            conn, feed.people, AUTHORITY_SOURCE, self.store.policy, untouched
        )
        result.created, result.updated = stats.created, stats.updated
        result.rejected_rows = stats.rejected
        for record, reason in stats.rejected_records:
            log.warning("authority.row_rejected", line=feed.lines[record - 1], reason=reason)
        present = stats.present | untouched | set(kept.values())
        absent = before - present
        invalid = self.invalid_refusal(feed.rows, result.skipped_rows + result.rejected_rows)
        refusal = invalid or self._feed_refusal(len(absent), len(before), len(present))
        if refusal is not None and state.approved_digest == feed.digest:
            if not dry_run:
                log.warning("authority.approved_feed_applied", digest=feed.digest[:12])
            refusal = None
        refused_count = len(absent)
        if refusal is not None:
            result.refused = refusal
            if dry_run:
                emails = await primary_emails(conn, absent)
                result.would_deprovision = sorted(emails.values())
            if invalid is not None:
                result.created = result.updated = 0
                raise Rollback if dry_run else _RefusedWhole(refused_count)
            absent = set()
        result.deprovisioned = await deprovision(conn, absent, AUTHORITY_SOURCE)
        changed = stats.changed | absent
        if changed:
            result.plan = await reconcile(
                conn, list(self.targets.values()), self.policy, changed, dry_run=dry_run
            )
        if dry_run:
            raise Rollback
        if refusal is not None:
            await self._save_refusal(conn, state, refusal, feed.digest, refused_count)
        else:
            if state.refused_reason is not None:
                log.info("authority.refusal_cleared", digest=feed.digest[:12])
            await save_applied(conn, AUTHORITY_SOURCE, feed.digest)
        applied = {feed.hashes[record - 1]: pid for record, pid in stats.applied.items()}
        await save_rows(conn, AUTHORITY_SOURCE, stale - applied.keys(), applied)

    async def _kept_rows(
        self, conn: AsyncConnection, feed: Feed, untouched: set[int]
    ) -> tuple[dict[str, int], set[str]]:
        """The feed's unchanged rows (hash to person) that need no applying; the stored rest.

        A kept row is applied after all when its person changed since (another version), an
        invalid row names them, or another row of this feed could be theirs: then every row is,
        so the feed applies exactly as a full read would.
        """
        current, stale = await current_rows(conn, AUTHORITY_SOURCE)
        feed.admit([h for h in feed.kept if current.get(h) in untouched or h not in current])
        kept = {h: current[h] for h in feed.kept}
        named = await people_named(
            conn,
            [person.authority_id for person in feed.people if person.authority_id],
            [
                email
                for person in feed.people
                if (email := normalize_email(person.email, self.store.policy).email)
            ],
            AUTHORITY_SOURCE,
        )
        if named & set(kept.values()):
            feed.admit(list(feed.kept))
            kept = {}
        return kept, stale | (current.keys() - kept.keys())

    async def _refuse(self, reason: str, digest: str | None, count: int | None) -> None:
        """Persist a refusal of the whole feed (nothing of it was applied)."""
        async with self.store.db.write() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
            await self._save_refusal(conn, state, reason, digest, count)

    async def _save_refusal(
        self,
        conn: AsyncConnection,
        state: AuthorityState,
        reason: str,
        digest: str | None,
        count: int | None,
    ) -> None:
        if state.refused_reason != reason:
            log.warning("authority.refused", reason=reason)  # once, when it starts or changes
        await save_refusal(conn, AUTHORITY_SOURCE, reason, digest, count, state.refused_since)

    def invalid_refusal(self, rows: int, invalid: int) -> str | None:
        """Why a feed with this many invalid rows (of `rows`) is refused, or None."""
        settings = self.config.authority
        if invalid == 0 or settings is None or invalid <= settings.max_invalid_share * rows:
            return None
        return (
            f"{invalid} of {rows} rows are invalid "
            f"(more than max_invalid_share {settings.max_invalid_share:g})"
        )

    def _feed_refusal(self, absent: int, before: int, present: int) -> str | None:
        settings = self.config.authority
        if absent == 0 or settings is None:
            return None
        if present == 0:
            return f"the feed holds nobody but {before} people are active"
        if absent > settings.missing_allowance and absent > settings.max_missing_share * before:
            return f"{absent} of {before} people would be deprovisioned"
        return None

    async def apply_people(
        self, conn: AsyncConnection, records: Sequence[PersonRecord], source: str, actor: str
    ) -> PeopleStats:
        """Upsert one authority's people and plan what changed, in the caller's transaction.

        A leaver is a record whose lifecycle is deprovisioned; `actor` is in the audit trail.
        """
        stats = await upsert_people_in(conn, records, source, self.store.policy, actor=actor)
        if stats.changed:
            await reconcile(conn, list(self.targets.values()), self.policy, stats.changed)
        return stats

    def committed(self) -> None:
        """People were applied: wake every pusher (set by the daemon; nothing to do otherwise)."""
        self.on_commit()

    # -- connectors -----------------------------------------------------------------

    async def list_connector(self, name: str, *, dry_run: bool = False) -> ListingResult:
        """List every account, write what changed, resolve, and plan for this connector."""
        connector = self.connectors[name]
        may_write = self.pushers[name].may_write  # False once this process's lease ran out
        result = ListingResult(name)
        started = time.monotonic()
        listing = await self.store.begin_listing(name)
        complete = False
        rejected = 0
        try:
            async with aclosing(_fenced(connector.list_pages(), may_write, name)) as pages:
                stats = await self.store.ingest_pages(listing, pages)
            result.changed = stats.inserted + stats.updated
            complete = True
            rejected = stats.rejected
            if rejected:
                result.error = f"{rejected} records could not be stored (see ingest.rejected)"
        except (ConnectorError, ExceptionGroup) as caught:
            exc = _connector_error(caught)
            if exc is None:
                raise
            if isinstance(exc, AuthenticationError):
                result.error = f"{CREDENTIALS_REJECTED}: {exc}"
            else:
                result.error = f"{type(exc).__name__}: {exc}"
        if not may_write():  # another replica holds the connector now: it stores and plans
            result.seconds = time.monotonic() - started
            return result
        # A record that could not be stored was not seen: it proves nothing missing.
        finish = await self.store.finish_listing(
            listing, complete=complete, mark_missing=rejected == 0
        )
        result.complete = complete and finish.refused is None
        result.accounts = listing.listed
        if finish.refused:
            result.error = f"listing refused: {finish.refused}"
        async with self.store.db.write() as conn:
            problem = None if result.complete else result.error or "listing incomplete"
            await save_listing_problem(conn, name, problem)
        since = self.planned_since.pop(name, None)
        result.plan = await self._plan([name], since, dry_run=dry_run)
        if result.complete and not dry_run:
            self.planned_since[name] = listing.started_at
        elif since is not None and dry_run:
            self.planned_since[name] = since
        result.seconds = time.monotonic() - started
        return result

    async def _plan(
        self, names: Sequence[str], since: datetime | None, *, dry_run: bool = False
    ) -> ReconcileResult:
        """Resolve the connectors' new accounts, then plan who changed since `since` (None: all).

        Planning everyone reads first, then holds the writer only to queue for the people
        with something to queue.
        """
        targets = [self.targets[name] for name in names]
        result = ReconcileResult()
        try:
            async with self.store.db.write() as conn:
                for name in names:
                    await resolve_in(conn, name)
                if since is not None or dry_run:
                    scope = None
                    if since is not None:
                        scope = set()
                        for name in names:
                            scope |= await self._touched(conn, name, since)
                    result = await reconcile(
                        conn, targets, self.policy, scope, orphans=True, dry_run=dry_run
                    )
                    if dry_run:
                        raise Rollback
                    return result
        except Rollback:
            return result
        async with self.store.db.read() as conn:
            preview = await reconcile(conn, targets, self.policy, orphans=True, dry_run=True)
        if not preview.operations and not preview.unheld:
            return preview
        # The guards count what this pass would queue: everyone with an operation is in it.
        changing = [*preview.operations, *preview.unheld]
        people = {spec.person_id for spec in changing if spec.person_id is not None}
        orphans = len(people) < len(changing)  # an orphan has no person
        async with self.store.db.write() as conn:
            return await reconcile(conn, targets, self.policy, people, orphans=orphans)

    async def _touched(self, conn: AsyncConnection, name: str, since: datetime) -> set[int]:
        """Who a listing must plan: people its changes touched, and those whose create died."""
        touched = await people_touched(conn, name, since)
        touched.update(person for _, person in await dead_create_generations(conn, [name]))
        return touched

    async def refetch(
        self, name: str, external_id: str | None = None, email: str | None = None
    ) -> str:
        """Re-read a hinted account, store it, plan its person; return what happened."""
        connector = self.connectors[name]
        try:
            if external_id is not None:
                account = await connector.get_account(external_id)
            elif email is not None and connector.capabilities.email_filter:
                account = await connector.find_by_email(email)
            else:
                return "ignored"  # only a scan of the whole listing could find it
        except ConnectorError as exc:
            log.warning("hint.refetch_failed", connector=name, error=type(exc).__name__)
            return "failed"
        if account is None:
            return "not_found"  # a hint never deactivates: the next full listing decides
        async with self.store.db.write() as conn:
            stats = await ingest_account(conn, name, account, self.store.policy)
            if stats.rejected:
                return "rejected"
            if not stats.rows_written:
                return "unchanged"
            await resolve_in(conn, name)
            person = await account_person(conn, name, account.external_id)
            if person is not None:
                await reconcile(conn, list(self.targets.values()), self.policy, [person])
        self.committed()
        return "refetched"

    async def replan(
        self, *, dry_run: bool = False, start: bool = False, names: Sequence[str] | None = None
    ) -> ReconcileResult:
        """Plan every person against every listed connector (or those named) in one pass.

        At a `start`, each connector whose last listing was complete then plans only who
        changed since this pass; nothing else may list or plan while it runs.
        """
        names = list(self.targets) if names is None else list(names)
        began = utcnow()
        async with self.store.db.read() as conn:
            complete = [name for name in names if (await listing_state(conn, name)).complete]
        result = await self._plan(names, None, dry_run=dry_run)
        if start and not dry_run:
            for name in complete:
                self.planned_since.setdefault(name, began)
        return result

    async def save_learned_rate(self, name: str) -> None:
        """Keep what the connector's budget learned, so a restart starts there."""
        async with self.store.db.write() as conn:
            await save_learned_rate(conn, name, self.connectors[name].budget.learned_rate)

    async def push(self, name: str, stop: anyio.Event | None = None) -> PushStats:
        """Drain one connector's outbox (until `stop` is set, if given)."""
        return await self.pushers[name].drain(stop)

    async def recover(self) -> int:
        """Put operations a crash left in flight back in the queue."""
        return await outbox.recover_in_flight(self.store.db)
