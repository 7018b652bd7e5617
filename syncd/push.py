"""Drain a connector's outbox on its rate budget: each operation done once at the vendor."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta

import anyio
import sqlalchemy as sa
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from connectors.core.base import Connector
from connectors.core.errors import (
    AccountExistsError,
    AuthenticationError,
    ConnectorError,
    IncompleteListing,
    InvalidIdentifierError,
    UnsupportedOperation,
    VendorHTTPError,
    VendorRequestError,
    WriteFenced,
)
from connectors.core.records import VendorAccount
from graph.db import Database
from graph.emails import DEFAULT_POLICY, EmailPolicy, normalize_email
from graph.models import account_table, utcnow
from graph.outbox import (
    AUTH,
    LOOKALIKE,
    LOOKUP,
    REFUSED,
    TRANSIENT,
    UNSUPPORTED,
    QueuedOperation,
    Superseded,
    claim,
    complete,
    fail,
    recover_in_flight,
)
from graph.writeback import mark_deactivated, record_account
from syncd.plan import same_value

log = structlog.get_logger("syncd.push")


def _debugging() -> bool:
    """True when debug logs are written: only then may a push's log name the person's email."""
    return logging.getLogger("syncd.push").isEnabledFor(logging.DEBUG)


@dataclass
class PushStats:
    """What one drain did."""

    done: int = 0
    retried: int = 0
    dead: int = 0
    auth_failed: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how far apart a failed operation is tried again."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    max_lookup_failures: int = 30  # then the create dies visibly, and is planned again later

    def delay(self, attempts: int) -> float:
        """Capped exponential backoff with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (timing jitter, not security)


FORBIDDEN = 403  # a write refused for good; a 401 is a credential the vendor rejects
# Statuses that say "not now" rather than "not this": the write may pass by itself.
_PASSING_STATUSES = frozenset({408, 423, 425, 429})


def failure_kind(exc: Exception) -> str:
    """Transient when a failed write may pass by itself, else refused as it stands."""
    if isinstance(exc, VendorRequestError):
        status = exc.status
        passing = status is None or status >= 500 or status in _PASSING_STATUSES
        return TRANSIENT if passing else REFUSED
    if isinstance(exc, ConnectorError) and (exc.retryable or isinstance(exc, IncompleteListing)):
        return TRANSIENT
    return REFUSED  # the connector refused the payload (a required field missing, say)


def refused_for_good(exc: Exception) -> bool:
    """The vendor answered a 4xx that the same request will get again: no retry helps.

    A 409 gets here only when the lookup after it found no account to link.
    """
    return isinstance(exc, VendorRequestError) and failure_kind(exc) == REFUSED


def _vendor_answer(exc: Exception) -> tuple[int | None, str | None]:
    """The vendor's status and own reason for a failure, when it answered at all."""
    if isinstance(exc, VendorHTTPError):
        return exc.status, exc.reason
    if isinstance(exc, VendorRequestError):
        return exc.status, exc.detail
    return None, None


def _maybe_sent(op: QueuedOperation) -> bool:
    """Whether an earlier try of the operation may have reached the vendor."""
    return op.attempts > 1 or op.lookup_failures > 0


def _email_key(op: QueuedOperation) -> str:
    """A create's email as lookups compare it."""
    return str(op.payload.get("email", "")).strip().casefold()


class LookupFailed(Exception):
    """The lookup before a create failed; the create itself was not tried."""

    def __init__(self, cause: ConnectorError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class LookalikeRefused(UnsupportedOperation):
    """The lookup found an account whose email only looks like the person's."""


class Pusher:
    """Pushes a connector's queued operations and writes the vendor's answers to the graph."""

    def __init__(
        self,
        db: Database,
        connector: Connector,
        *,
        retry: RetryPolicy | None = None,
        policy: EmailPolicy = DEFAULT_POLICY,
        batch: int = 64,
        concurrency: int = 8,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.db = db
        self.connector = connector
        self.retry = retry or RetryPolicy()
        self.policy = policy
        self.batch = batch
        self.concurrency = concurrency
        self.observe = observe
        # False once this process may no longer write (its lease ran out). Asked before each
        # claim and, through the connector's HTTP layer, immediately before each write.
        self.may_write: Callable[[], bool] = lambda: True
        connector.http.may_write = lambda: self.may_write()
        self.token: int | None = None  # the fencing token of the lease operations are claimed under
        # Accounts one listing scan found for creates that must look their email up first
        # (casefolded email -> account, None: not there), each used once.
        self._looked_up: dict[str, VendorAccount | None] = {}
        self.log = log.bind(connector=connector.name)

    async def drain(self, stop: anyio.Event | None = None) -> PushStats:
        """Push every due operation; stop early on rejected credentials or when told to."""
        stats = PushStats()
        if self.token is not None and self.may_write():
            # What a claimer under an older lease left in flight will not be finished by it.
            name, token = self.connector.name, self.token
            swept = await recover_in_flight(self.db, name, except_token=token)
            if swept:
                self.log.warning("outbox.recovered", operations=swept)
        # Workers take operations one at a time, so the next batch is claimed while the
        # last of this one is still at the vendor: the rate budget never waits on a claim.
        send, receive = anyio.create_memory_object_stream[QueuedOperation]()
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.concurrency):
                    group.start_soon(self._work, receive.clone(), stats)
                receive.close()
                async with send:
                    await self._claim_all(send, stats, stop)
        finally:
            self._looked_up.clear()  # a later drain looks again: the vendor may have changed
        return stats

    async def _claim_all(
        self,
        send: MemoryObjectSendStream[QueuedOperation],
        stats: PushStats,
        stop: anyio.Event | None,
    ) -> None:
        """Claim batches and hand their operations to the workers until none is due.

        Only operations due when the drain began: one that fails meanwhile waits for the next.
        """
        began = utcnow()
        while not stats.auth_failed and not (stop is not None and stop.is_set()):
            if not self.may_write():
                break
            ops = await claim(self.db, self.connector.name, self.batch, due=began, token=self.token)
            if not ops:
                break
            creates = [op for op in ops if op.op == "create" and not _maybe_sent(op)]
            rest = [op for op in ops if op not in creates]
            await self._scan_for(rest)
            if self.connector.capabilities.bulk_invite and len(creates) > 1:
                await self._invite(creates, stats)
            else:
                rest = ops
            for op in rest:
                await send.send(op)

    async def _work(
        self, receive: MemoryObjectReceiveStream[QueuedOperation], stats: PushStats
    ) -> None:
        async with receive:
            async for op in receive:
                await self._push(op, stats)

    async def _push(self, op: QueuedOperation, stats: PushStats) -> None:
        if not self.may_write():
            return  # refused before it is sent; the next lease holder puts it back in the queue
        try:
            await self._try(op, stats)
        except WriteFenced:
            self.log.warning("push.fenced", op=op.op, operation=op.id)
        except Superseded as exc:
            self.log.warning("push.superseded", op=op.op, operation=op.id, reason=str(exc))

    async def _try(self, op: QueuedOperation, stats: PushStats) -> None:
        started = time.monotonic()
        try:
            await self._apply(op)
        except AuthenticationError as exc:
            if exc.status == FORBIDDEN:  # this write is not allowed; the key itself works
                await self._failed(op, exc, stats, final=True, kind=REFUSED)
            else:
                stats.auth_failed = True
                await self._failed(op, exc, stats, final=False, attempts_back=True, kind=AUTH)
        except LookupFailed as exc:
            await self._failed(op, exc.cause, stats, final=False, kind=LOOKUP)
        except LookalikeRefused as exc:
            await self._failed(op, exc, stats, final=True, kind=LOOKALIKE)
        except (UnsupportedOperation, InvalidIdentifierError) as exc:
            await self._failed(op, exc, stats, final=True, kind=UNSUPPORTED)
        except WriteFenced:
            raise
        except (ConnectorError, ValueError) as exc:
            final = refused_for_good(exc)
            await self._failed(op, exc, stats, final=final, kind=failure_kind(exc))
        else:
            stats.done += 1
            if self.observe is not None:
                self.observe(self.connector.name, op.op, time.monotonic() - started)

    async def _failed(
        self,
        op: QueuedOperation,
        exc: Exception,
        stats: PushStats,
        *,
        final: bool,
        attempts_back: bool = False,
        kind: str = TRANSIENT,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        lookup = kind == LOOKUP
        tries = op.lookup_failures + 1 if lookup else op.attempts
        if lookup:
            limit = self.retry.max_lookup_failures
            error = f"the lookup before create failed {tries} of {limit} times: {error}"
        retry_at = utcnow() + timedelta(seconds=self.retry.delay(tries))
        status, reason = _vendor_answer(exc)
        # A rejected credential or a failed lookup is not the write's fault: it does not
        # use up the write's attempts (lookups are counted, and bounded, on their own).
        state = await fail(
            self.db,
            op,
            error,
            retry_at=retry_at,
            max_attempts=1 if final else self.retry.max_attempts,
            kind=kind,
            refund=(attempts_back or lookup) and not final,
            lookup_failed=lookup,
            max_lookup_failures=self.retry.max_lookup_failures,
            status=status,
            message=None if lookup else reason,  # a lookup's failure says so in `error`
        )
        if state == "dead":
            stats.dead += 1
            self.log.error("push.dead", op=op.op, operation=op.id, error=error)
        else:
            stats.retried += 1
            self.log.warning("push.retry", op=op.op, operation=op.id, error=error)

    async def _apply(self, op: QueuedOperation) -> None:
        connector = self.connector
        if op.op == "create":
            account, created = await self._create(op)
            await self._record(op, account, "created_by_push" if created else "email")
            return
        external_id = await self._external_id(op)
        if op.attempts > 1 and await self._already_applied(op, external_id):
            return
        if op.op in ("update", "reactivate"):
            try:
                account = await connector.update_account(external_id, op.payload)
            except VendorHTTPError as exc:
                if exc.status == 404:
                    raise UnsupportedOperation(connector.vendor, "the account is gone") from exc
                raise
            await self._record(op, account)
        elif op.op == "deactivate":
            try:
                await connector.deactivate_account(external_id)
            except VendorHTTPError as exc:
                if exc.status != 404:  # an account that is gone has no access left
                    raise
            await self._finish(op, external_id, deactivated=True)
        elif op.op == "delete":
            try:
                await connector.delete_account(external_id)
            except VendorHTTPError as exc:
                if exc.status != 404:  # already gone is what a delete wants
                    raise
            await self._finish(op, external_id, deactivated=True)
        else:
            raise UnsupportedOperation(connector.vendor, f"unknown operation {op.op!r}")

    async def _already_applied(self, op: QueuedOperation, external_id: str) -> bool:
        """Whether an earlier try (sent before a crash or takeover) already made the change.

        Completes the operation if so: a write that reached the vendor is not sent twice.
        """
        try:
            current = await self.connector.get_account(external_id)
        except UnsupportedOperation:
            return False
        if op.op in ("deactivate", "delete"):
            if current is not None and current.status != "inactive":
                return False
            await self._finish(op, external_id, deactivated=True)
        else:
            if current is None or (op.op == "reactivate" and current.status != "active"):
                return False
            changes = {key: value for key, value in op.payload.items() if key != "active"}
            if not all(same_value(k, v, current.attributes.get(k)) for k, v in changes.items()):
                return False
            await self._record(op, current)
        self.log.info("push.already_applied", op=op.op, operation=op.id)
        return True

    async def _create(self, op: QueuedOperation) -> tuple[VendorAccount, bool]:
        """The account for a create, and whether syncd created it (else a lookup found it)."""
        email = str(op.payload.get("email", ""))
        if _maybe_sent(op):
            # An earlier try may have reached the vendor before a crash or timeout.
            found = await self._find(op, email)
            if found is not None:
                return found, False
        try:
            return await self.connector.create_account(op.payload), True
        except AccountExistsError:
            found = await self._find(op, email)
            if found is None:
                raise
            return found, False

    async def _scan_for(self, ops: list[QueuedOperation]) -> None:
        """Look up in one listing scan the creates of a batch that must look first."""
        # Only where the vendor has no email filter: there each lookup alone is a scan of
        # every page, and after a takeover or a crash a whole batch may need one.
        if self.connector.capabilities.email_filter:
            return
        wanted = {_email_key(op) for op in ops if op.op == "create" and _maybe_sent(op)}
        if len(wanted) < 2:
            return
        found: dict[str, VendorAccount] = {}
        try:
            async with aclosing(self.connector.list_accounts()) as accounts:
                async for account in accounts:
                    if (key := (account.email or "").strip().casefold()) in wanted:
                        found.setdefault(key, account)
        except ConnectorError:
            return  # each create then looks itself up, and fails or succeeds on its own
        self._looked_up.update({key: found.get(key) for key in wanted})

    async def _find(self, op: QueuedOperation, email: str) -> VendorAccount | None:
        """The vendor's account for exactly this email; a look-alike is refused, never linked."""
        key = email.strip().casefold()
        try:
            if key in self._looked_up:
                found = self._looked_up.pop(key)
            else:
                found = await self.connector.find_by_email(email)
        except (AuthenticationError, UnsupportedOperation):
            raise
        except ConnectorError as exc:
            raise LookupFailed(exc) from exc
        if found is None:
            return None
        wanted = normalize_email(email, self.policy)
        held = normalize_email(found.email, self.policy)
        imitates = held.lookalike and not wanted.lookalike
        if wanted.email is None or held.email != wanted.email or imitates:
            raise LookalikeRefused(
                self.connector.vendor,
                f"the existing account {found.external_id} has a different or look-alike email; "
                "not linked: check it at the vendor, then `syncd link` it or remove it",
            )
        self.log.info("push.create_found", operation=op.id, account=found.external_id)
        return found

    async def _invite(self, ops: list[QueuedOperation], stats: PushStats) -> None:
        invite = getattr(self.connector, "invite_accounts", None)
        assert invite is not None
        if not self.may_write():
            return
        try:
            await self._invite_all(invite, ops, stats)
        except WriteFenced:
            self.log.warning("push.fenced", op="create", operations=len(ops))
        except Superseded as exc:
            self.log.warning("push.superseded", op="create", reason=str(exc))

    async def _invite_all(
        self,
        invite: Callable[[list[dict[str, object]]], Awaitable[list[VendorAccount]]],
        ops: list[QueuedOperation],
        stats: PushStats,
    ) -> None:
        started = time.monotonic()
        try:
            accounts = await invite([op.payload for op in ops])
        except WriteFenced:
            raise
        except AuthenticationError as exc:
            stats.auth_failed = True
            for op in ops:
                await self._failed(op, exc, stats, final=False, attempts_back=True)
            return
        except (ConnectorError, ValueError) as exc:
            # One member can make the vendor refuse the whole batch: each is tried again
            # alone (looking its email up first), where its own refusal ends it.
            for op in ops:
                await self._failed(op, exc, stats, final=False, kind=failure_kind(exc))
            return
        for op, account in zip(ops, accounts, strict=True):
            await self._record(op, account)
            stats.done += 1
            if self.observe is not None:
                self.observe(self.connector.name, op.op, time.monotonic() - started)

    async def _external_id(self, op: QueuedOperation) -> str:
        async with self.db.read() as conn:
            found = (
                await conn.execute(
                    sa.select(account_table.c.external_id).where(
                        account_table.c.id == op.account_id
                    )
                )
            ).scalar()
        if found is None:
            raise UnsupportedOperation(self.connector.vendor, "the account is no longer known")
        return str(found)

    async def _record(
        self, op: QueuedOperation, account: VendorAccount, link_method: str = "created_by_push"
    ) -> None:
        async with self.db.write() as conn:
            account_id = await record_account(
                conn,
                self.connector.name,
                account,
                person_id=op.person_id,
                link_method=link_method,
                policy=self.policy,
            )
            await complete(conn, op, account_id)
        self._done(op, account.external_id)

    async def _finish(self, op: QueuedOperation, external_id: str, *, deactivated: bool) -> None:
        async with self.db.write() as conn:
            if deactivated and op.account_id is not None:
                await mark_deactivated(conn, op.account_id)
            await complete(conn, op)
        self._done(op, external_id)

    def _done(self, op: QueuedOperation, external_id: str) -> None:
        """Log a confirmed write; the person's email only when debugging."""
        email = op.payload.get("email") if _debugging() else None
        self.log.info(
            "push.done",
            op=op.op,
            operation=op.id,
            external_id=external_id,
            person=op.person_id,
            **({"email": email} if email else {}),
        )
