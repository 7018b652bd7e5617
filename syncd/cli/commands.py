"""The engine's operator commands: once, plan, approve, reject, status, person, conflicts, link."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
import sqlalchemy as sa
import structlog

from connectors.core.errors import ConnectorError
from graph import outbox, queries, writeback
from graph.authority import AuthorityState, approve_refused, authority_state, authority_view
from graph.db import transient_fault
from graph.emails import normalize_email
from graph.linked import account_emails
from graph.models import utcnow
from graph.people import primary_emails
from graph.store import GraphStore
from syncd.authority.hrfeed import FeedChanging, FeedError, read_feed
from syncd.boundary import UsageError
from syncd.cli import views
from syncd.cli.audit import operator
from syncd.cli.ops import released_text, released_view, run_ops
from syncd.config import Config, load_config
from syncd.engine import AUTHORITY_SOURCE, CREDENTIALS_REJECTED, Engine
from syncd.reconcile import mass_deprovision_view
from syncd.service import backstop
from syncd.service.writer import writer_lease

EXIT_OK, EXIT_FAILURE, EXIT_DATAERR = 0, 1, 65
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it
ORPHANS_SHOWN = 1000
log = structlog.get_logger("syncd.cli.commands")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _plain(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    """Print data as JSON with --json, else as text for a person."""
    if getattr(args, "json", False):
        sys.stdout.write(orjson.dumps(_plain(data), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(text(data) + "\n")


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{message}")
        sys.stderr.flush()


def _spec_view(spec: outbox.OperationSpec) -> dict[str, Any]:
    return {
        "connector": spec.connector,
        "op": spec.op,
        "person_id": spec.person_id,
        "account_id": spec.account_id,
        "attributes": sorted(spec.payload),
    }


async def run_once(config: Config, args: argparse.Namespace) -> int:
    """One full cycle of every connector (or the one named): feed, listings, plan, push."""
    summary: dict[str, Any] = {"connectors": {}}
    try:
        async with (
            Engine.open(config) as engine,
            writer_lease(config.database.url, config.lease.ttl) as writer,
        ):
            for pusher in engine.pushers.values():
                pusher.may_write, pusher.token = writer.valid, writer.lease.token
            names = [args.connector] if args.connector else list(engine.connectors)
            try:
                await _cycle(engine, names, summary)
            except BaseException as exc:
                # However the clean-up below goes, the command ends within the bound.
                backstop.arm_for(exc)
                # Interrupted (Ctrl-C) or failed mid-push: what was in flight goes back.
                await _requeue(engine)
                raise
    except BaseException as exc:
        # The driver's clean-up of cancelled work can keep the event loop from closing.
        backstop.arm_for(exc, backstop.TEARDOWN_GRACE)
        raise
    _progress("")
    emit(args, summary, _once_text)
    problems = _once_problems(summary)
    if not problems:
        return EXIT_OK
    sys.stderr.write(f"syncd once: {'; '.join(problems)} (see `syncd status`)\n")
    # The cycle still ran on the last good state; an unusable HR file is bad input data.
    return EXIT_DATAERR if summary["authority"]["unusable"] else EXIT_FAILURE


async def _requeue(engine: Engine) -> None:
    """Put operations in flight back in the queue, within a bound; a busy database may stop it."""
    bounded = anyio.move_on_after(backstop.RECOVERY_TIMEOUT)
    with anyio.CancelScope(shield=True), bounded:
        try:
            await engine.recover()
        except Exception as exc:
            if (reason := transient_fault(exc)) is None:
                raise
            log.warning("outbox.not_recovered", reason=f"database unavailable: {reason}")
    if bounded.cancelled_caught:
        log.warning("outbox.not_recovered", reason="timed out")


async def _cycle(engine: Engine, names: list[str], summary: dict[str, Any]) -> None:
    """Apply the feed, then list and push each named connector, filling in the summary."""
    recovered = await engine.recover()
    feed = await engine.apply_feed()
    summary["authority"] = {
        "people": feed.people,
        "skipped_rows": feed.skipped_rows,
        "rejected_rows": feed.rejected_rows,
        "created": feed.created,
        "updated": feed.updated,
        "deprovisioned": feed.deprovisioned,
        "refused": feed.refused,
        "unusable": feed.unusable,
        "changing": feed.changing,
        "digest": feed.digest and feed.digest[:12],
    }
    summary["recovered_in_flight"] = recovered
    # Everyone is planned once from the graph; each listing then plans only who it changed.
    full = await engine.replan(start=True, names=names)
    summary["full_pass"] = {"queued": full.queued, "held": sum(full.held.values())}

    async def one(name: str) -> None:
        _progress(f"listing {name} ...")
        listing = await engine.list_connector(name)
        _progress(f"pushing {name} ...")
        pushed = await engine.push(name)
        summary["connectors"][name] = {
            "listing_complete": listing.complete,
            "accounts": listing.accounts,
            "changed": listing.changed,
            "error": listing.error,
            "queued": listing.plan.queued,
            "held": listing.plan.held.get(name, 0),
            "pushed": pushed.done,
            "retrying": pushed.retried,
            "dead": pushed.dead,
            "seconds": round(listing.seconds, 2),
        }

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(one, name)
    # Operations the feed queued for connectors listed earlier went out above; a
    # final drain catches those queued while another connector was still listing.
    for name in names:
        pushed = await engine.push(name)
        summary["connectors"][name]["pushed"] += pushed.done
        summary["connectors"][name]["dead"] += pushed.dead
        # Keep what the budget learned from reads and writes, so the next run starts there.
        await engine.save_learned_rate(name)


def _once_problems(summary: dict[str, Any]) -> list[str]:
    """What makes a cycle a failure: a refused feed, an incomplete listing, a dead operation."""
    problems = []
    if summary["authority"]["refused"]:
        problems.append(f"the HR feed was refused: {summary['authority']['refused']}")
    for name, item in sorted(summary["connectors"].items()):
        if not item["listing_complete"]:
            problems.append(f"{name}: listing incomplete")
        if item["dead"]:
            problems.append(f"{name}: {item['dead']} operation(s) dead")
    return problems


def _once_text(summary: dict[str, Any]) -> str:
    feed = summary["authority"]
    lines = [
        f"authority: {feed['people']} people, {feed['created']} new, {feed['updated']} changed, "
        f"{feed['deprovisioned']} deprovisioned, {feed['skipped_rows']} rows skipped, "
        f"{feed['rejected_rows']} rows rejected"
        + (f" (REFUSED: {feed['refused']})" if feed["refused"] else "")
        + (" (the file is being written: not applied, try again)" if feed["changing"] else "")
    ]
    full = summary["full_pass"]
    lines.append(f"everyone planned from the graph: queued {full['queued']}, held {full['held']}")
    for name, item in sorted(summary["connectors"].items()):
        state = "ok" if item["listing_complete"] else f"INCOMPLETE ({item['error']})"
        lines.append(
            f"{name}: listing {state}, {item['accounts']} accounts, {item['changed']} changed; "
            f"queued {item['queued']}, pushed {item['pushed']}, held {item['held']}, "
            f"retrying {item['retrying']}, dead {item['dead']}"
        )
    return "\n".join(lines)


async def run_plan(config: Config, args: argparse.Namespace) -> int:
    """What a cycle would queue from the feed and the graph's last listings; writes nothing.

    With `--all`, plan everyone against every connector from the graph and queue it.
    """
    if args.all:
        return await _plan_everyone(config, args)
    async with Engine.open(config) as engine:
        feed = await engine.apply_feed(dry_run=True)
        graph = await engine.replan(dry_run=True)
        specs = {spec.idempotency_key: spec for spec in [*feed.plan.operations, *graph.operations]}
        waiting = {
            spec.idempotency_key: state
            for spec, state in [*feed.plan.waiting, *graph.waiting]
            if spec.idempotency_key not in specs
        }
        specs.update(
            (spec.idempotency_key, spec)
            for spec, _ in [*feed.plan.waiting, *graph.waiting]
            if spec.idempotency_key in waiting
        )
        operations = await _operation_views(engine, specs, waiting)
    data = {
        "operations": operations,
        "unsupported": sorted(set(feed.plan.unsupported + graph.unsupported)),
        "feed_refused": feed.refused,
        "would_deprovision": feed.would_deprovision,
    }
    emit(args, data, _plan_text)
    if feed.refused:
        sys.stderr.write(f"syncd plan: the HR feed would be refused: {feed.refused}\n")
        return EXIT_DATAERR if feed.unusable else EXIT_FAILURE
    return EXIT_OK


async def _plan_everyone(config: Config, args: argparse.Namespace) -> int:
    """Plan everyone against every listed connector in one pass and queue it, guarded."""
    async with Engine.open(config) as engine:
        result = await engine.replan()
        specs = {spec.idempotency_key: spec for spec in result.operations}
        operations = await _operation_views(engine, specs, {})
    data = {
        "operations": operations,
        "queued": result.queued,
        "held": sum(result.held.values()),
        "unsupported": sorted(set(result.unsupported)),
    }
    emit(args, data, _plan_all_text)
    return EXIT_OK


async def _operation_views(
    engine: Engine, specs: dict[str, outbox.OperationSpec], waiting: dict[str, str]
) -> list[dict[str, Any]]:
    """Each operation for an operator: its person's or account's email and outbox state."""
    async with engine.store.db.read() as conn:
        states = await outbox.states_by_key(conn, specs) | waiting
        people = await primary_emails(conn, [s.person_id for s in specs.values() if s.person_id])
        accounts = await account_emails(
            conn, [s.account_id for s in specs.values() if s.person_id is None and s.account_id]
        )
    operations = []
    for key, spec in specs.items():
        view = _spec_view(spec)
        view["email"] = people.get(spec.person_id or 0) or accounts.get(spec.account_id or 0)
        view["state"] = states.get(key, "new")
        operations.append(view)
    return operations


def _operation_line(op: dict[str, Any]) -> str:
    return (
        f"{op['op']:<10} {op['connector']:<20} {op['email'] or '(no email)'} "
        f"{','.join(op['attributes'])}"
    )


def _plan_all_text(data: dict[str, Any]) -> str:
    lines = [f"{_operation_line(op)}  ({op['state']})" for op in data["operations"]]
    lines.append(f"{data['queued']} operation(s) queued, {data['held']} of them held by a guard")
    lines.extend(f"not possible: {item}" for item in data["unsupported"])
    return "\n".join(lines)


def _plan_text(data: dict[str, Any]) -> str:
    lines = []
    for op in data["operations"]:
        state = "" if op["state"] == "new" else f"  (already in the outbox: {op['state']})"
        lines.append(f"{_operation_line(op)}{state}")
    new = sum(1 for op in data["operations"] if op["state"] == "new")
    lines.append(f"{new} operation(s) would be queued")
    if known := len(data["operations"]) - new:
        lines.append(f"{known} operation(s) are already in the outbox")
    lines.extend(f"not possible: {item}" for item in data["unsupported"])
    if data["feed_refused"]:
        lines.append(f"feed refused: {data['feed_refused']}")
    if data["would_deprovision"]:
        lines.append(
            f"it would deprovision {len(data['would_deprovision'])} people "
            "(syncd approve --authority applies it):"
        )
        lines.extend(f"  {email}" for email in data["would_deprovision"])
    return "\n".join(lines)


async def _with_store(config: Config, work: Callable[[GraphStore], Awaitable[Any]]) -> Any:
    store = await GraphStore.open(config.database.url)
    try:
        return await work(store)
    finally:
        await store.close()


async def run_release(config: Config, args: argparse.Namespace) -> int:
    """Approve or reject held operations, or approve a refused authority feed."""
    approve = args.command == "approve"
    if approve and args.authority:
        return await _approve_authority(config, args)
    verb = "approved" if approve else "rejected"
    data = await _with_store(config, lambda store: released_view(store, args, approve=approve))
    emit(args, data, lambda view: released_text(view, verb))
    return EXIT_OK


async def _approve_authority(config: Config, args: argparse.Namespace) -> int:
    async def approve(store: GraphStore) -> tuple[AuthorityState, AuthorityState | None]:
        async with store.db.write() as conn:
            return await authority_state(conn, AUTHORITY_SOURCE), await approve_refused(
                conn, AUTHORITY_SOURCE, operator()
            )

    state, approved = await _with_store(config, approve)
    if approved is None or approved.refused_digest is None:
        why = (
            f"; the feed is refused ({state.refused_reason}) and cannot be approved: fix the file"
            if state.refused_reason
            else ""
        )
        sys.stderr.write(f"syncd approve --authority: no refused feed to approve{why}\n")
        return EXIT_FAILURE
    data = {"approved_digest": approved.refused_digest[:12], "people": approved.refused_count}
    emit(
        args,
        data,
        lambda d: (
            f"approved feed {d['approved_digest']}: it deprovisions {d['people']} people "
            "when it is applied (the daemon's next poll, or syncd once)"
        ),
    )
    return EXIT_OK


async def run_status(config: Config, args: argparse.Namespace) -> int:
    """Per connector: listing and its age, accounts, outbox by state, rate, problem; the feed."""

    async def gather(store: GraphStore) -> dict[str, Any]:
        by_state = await outbox.counts_by_state(store.db)
        reasons = await outbox.held_reasons(store.db)
        dead = await outbox.dead_creates(store.db)
        counts = {item.connector: item for item in await store.counts()}
        listings = await queries.listings(store.db)
        connectors: dict[str, Any] = {}
        for name in config.connectors:
            listing = listings.get(name)
            count = counts.get(name)
            problem = listing.problem if listing else None
            connectors[name] = {
                "listed": listing is not None and listing.finished_at is not None,
                "listing_complete": listing is not None and listing.complete,
                "last_listing_at": listing and listing.finished_at,
                "last_complete_at": listing and listing.last_complete_at,
                "accounts": _plain(count) if count else {},
                "outbox": {s: n for (c, s), n in by_state.items() if c == name},
                "held_reasons": reasons.get(name, {}),
                "retrying_dead_creates": dead.get(name, {}).get("retrying_dead_creates", 0),
                "dead_creates_need_operator": dead.get(name, {}).get(
                    "dead_creates_need_operator", 0
                ),
                "open_conflicts": count.open_conflicts if count else 0,
                "learned_rate": listing and listing.learned_rate,
                "problem": problem,
                "parked": problem is not None and problem.startswith(CREDENTIALS_REJECTED),
                "consecutive_failures": listing.consecutive_failures if listing else 0,
            }
        async with store.db.read() as conn:
            authority = authority_view(await authority_state(conn, AUTHORITY_SOURCE))
        feed = config.authority.hr_feed if config.authority else None
        authority.update(
            file=feed and str(feed), people=await queries.people_by_lifecycle(store.db)
        )
        deprovisions = mass_deprovision_view(reasons, config.guard.deprovision_window)
        return {"authority": authority, "deprovisions": deprovisions, "connectors": connectors}

    data = await _with_store(config, gather)
    emit(args, data, lambda d: views.status_text(d, utcnow()))
    return EXIT_OK


async def run_person(config: Config, args: argparse.Namespace) -> int:
    """A person by any of their emails, with linked accounts."""
    view = await _with_store(config, lambda store: store.person(args.email))
    if view is None:
        sys.stderr.write(f"syncd person: no person has the email {args.email}\n")
        return EXIT_FAILURE
    emit(args, view, lambda data: views.person_text(_plain(data), utcnow()))
    return EXIT_OK


async def run_orphans(config: Config, args: argparse.Namespace) -> int:
    """Live accounts that belong to nobody, with email and when they were last seen."""

    async def gather(store: GraphStore) -> list[dict[str, Any]]:
        listings = await queries.listings(store.db)
        found = []
        for account in await store.orphans(args.connector, limit=ORPHANS_SHOWN):
            listing = listings.get(account.connector)
            # A live account was in the last complete listing; an incomplete one proves nothing.
            seen = listing.finished_at if listing and listing.complete else None
            found.append(
                {
                    "connector": account.connector,
                    "external_id": account.external_id,
                    "email": account.email,
                    "email_error": account.email_error,
                    "status": account.status,
                    "first_seen": account.first_seen,
                    "last_seen": seen,
                }
            )
        return found

    found = await _with_store(config, gather)
    emit(args, found, lambda data: views.orphans_text(_plain(data), utcnow()))
    if len(found) == ORPHANS_SHOWN:
        sys.stderr.write(f"syncd orphans: only the first {ORPHANS_SHOWN} are shown\n")
    return EXIT_OK


async def run_conflicts(config: Config, args: argparse.Namespace) -> int:
    """Open conflicts, oldest first."""
    items = await _with_store(config, lambda store: store.conflicts())
    emit(
        args,
        items,
        lambda data: (
            "\n".join(f"{c.id} {c.kind} {c.connector or ''} {c.email or ''}" for c in data)
            or "no open conflicts"
        ),
    )
    return EXIT_OK


async def run_link(config: Config, args: argparse.Namespace) -> int:
    """Link or unlink an account by hand; later cycles keep the decision."""

    async def work(store: GraphStore) -> None:
        async with store.db.write() as conn:
            if args.command == "link":
                await writeback.link(
                    conn, args.connector, args.external_id, args.email, actor=operator()
                )
            else:
                await writeback.unlink(conn, args.connector, args.external_id, operator())

    try:
        await _with_store(config, work)
    except writeback.LinkError as exc:
        sys.stderr.write(f"syncd {args.command}: {exc}\n")
        return EXIT_FAILURE
    print(f"{args.command}ed {args.connector} account {args.external_id}")
    return EXIT_OK


async def run_doctor(config: Config, args: argparse.Namespace) -> int:
    """Check the config, the database, and each vendor's credentials with one cheap read."""
    checks: dict[str, str] = {"config": "ok"}
    failed = False
    async with Engine.open(config) as engine:
        try:
            async with engine.store.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure is the finding
            checks["database"] = f"FAILED: {type(exc).__name__}"
            failed = True
        if config.authority is not None:
            checks["authority"] = await _feed_check(engine, config.authority.hr_feed)
            failed = failed or checks["authority"] != "ok"
        for name, connector in engine.connectors.items():
            try:
                async with aclosing(connector.list_pages()) as pages:
                    await anext(pages, None)  # the first page only: one request
                checks[f"connector:{name}"] = "ok"
            except ConnectorError as exc:
                checks[f"connector:{name}"] = f"FAILED: {exc}"
                failed = True
    emit(args, checks, lambda data: "\n".join(f"{key}: {value}" for key, value in data.items()))
    return EXIT_FAILURE if failed else EXIT_OK


async def _feed_check(engine: Engine, path: Path) -> str:
    """Read and validate the HR feed as the engine would; ok or the reason."""
    try:
        feed = await anyio.to_thread.run_sync(read_feed, path)
    except (FeedError, FeedChanging) as exc:
        return f"FAILED: {exc}"
    if (refusal := engine.invalid_refusal(feed.rows, len(feed.errors))) is not None:
        return f"FAILED: {path}: {refusal}"
    return "ok"


HANDLERS: dict[str, Callable[[Config, argparse.Namespace], Awaitable[int]]] = {
    "once": run_once,
    "plan": run_plan,
    "approve": run_release,
    "reject": run_release,
    "status": run_status,
    "person": run_person,
    "orphans": run_orphans,
    "conflicts": run_conflicts,
    "link": run_link,
    "unlink": run_link,
    "doctor": run_doctor,
    "ops": run_ops,
}


def check_arguments(config: Config, args: argparse.Namespace) -> None:
    """A connector must be configured and an email well formed, or it is a usage error."""
    connector = getattr(args, "connector", None)
    if connector is not None and connector not in config.connectors:
        known = ", ".join(sorted(config.connectors)) or "none are configured"
        raise UsageError(f"{args.command}: unknown connector {connector!r} (known: {known})")
    email = getattr(args, "email", None)
    if email is not None and (error := normalize_email(email).error) is not None:
        raise UsageError(f"{args.command}: {email!r} is not an email address: {error}")


def run_command(args: argparse.Namespace) -> int:
    """Load the config, check the arguments against it and run the named engine command."""
    config = load_config(args.config)
    check_arguments(config, args)
    handler = HANDLERS[args.command]

    async def main() -> int:
        result = EXIT_TERMINATED
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_sigterm, group.cancel_scope)
            result = await handler(config, args)
            group.cancel_scope.cancel()
        if result == EXIT_TERMINATED:
            sys.stderr.write(f"syncd {args.command}: stopped by SIGTERM\n")
        return result

    return anyio.run(main)


async def _cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    """SIGTERM ends a command like Ctrl-C: its cleanup runs (in-flight work goes back)."""
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
