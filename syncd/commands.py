"""The engine's operator commands: once, plan, approve, reject, status, person, conflicts, link."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from typing import Any

import anyio
import orjson
import sqlalchemy as sa

from connectors.errors import ConnectorError
from graph import outbox, writeback
from graph.linked import listing_state
from graph.store import GraphStore
from syncd.config import Config, load_config
from syncd.engine import Engine, ListingResult
from syncd.writer import writer_lease

EXIT_OK, EXIT_FAILURE = 0, 1


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
    """One full cycle of every connector: feed, listings, plan, push."""
    summary: dict[str, Any] = {"connectors": {}}
    failed = False
    async with (
        Engine.open(config) as engine,
        writer_lease(config.database.url, config.lease.ttl) as writer,
    ):
        for pusher in engine.pushers.values():
            pusher.may_write = writer.valid
        recovered = await engine.recover()
        feed = await engine.apply_feed()
        summary["authority"] = {
            "people": feed.people,
            "skipped_rows": feed.skipped_rows,
            "created": feed.created,
            "updated": feed.updated,
            "deprovisioned": feed.deprovisioned,
            "refused": feed.refused,
        }
        summary["recovered_in_flight"] = recovered
        results: dict[str, ListingResult] = {}

        async def one(name: str) -> None:
            _progress(f"listing {name} ...")
            results[name] = await engine.list_connector(name)
            _progress(f"pushing {name} ...")
            pushed = await engine.push(name)
            listing = results[name]
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
            for name in engine.connectors:
                group.start_soon(one, name)
        # Operations the feed queued for connectors listed earlier went out above; a
        # final drain catches those queued while another connector was still listing.
        for name in engine.connectors:
            summary["connectors"][name]["pushed"] += (await engine.push(name)).done
        failed = any(not item["listing_complete"] for item in summary["connectors"].values())
    _progress("")
    emit(args, summary, _once_text)
    return EXIT_FAILURE if failed else EXIT_OK


def _once_text(summary: dict[str, Any]) -> str:
    feed = summary["authority"]
    lines = [
        f"authority: {feed['people']} people, {feed['created']} new, {feed['updated']} changed, "
        f"{feed['deprovisioned']} deprovisioned, {feed['skipped_rows']} rows skipped"
        + (f" (deprovisioning refused: {feed['refused']})" if feed["refused"] else "")
    ]
    for name, item in sorted(summary["connectors"].items()):
        state = "ok" if item["listing_complete"] else f"INCOMPLETE ({item['error']})"
        lines.append(
            f"{name}: listing {state}, {item['accounts']} accounts, {item['changed']} changed; "
            f"queued {item['queued']}, pushed {item['pushed']}, held {item['held']}, "
            f"retrying {item['retrying']}, dead {item['dead']}"
        )
    return "\n".join(lines)


async def run_plan(config: Config, args: argparse.Namespace) -> int:
    """What a cycle would queue from the feed and the graph's last listings; writes nothing."""
    async with Engine.open(config) as engine:
        feed = await engine.apply_feed(dry_run=True)
        graph = await engine.replan(dry_run=True)
    seen = set()
    operations = []
    for spec in [*feed.plan.operations, *graph.operations]:
        if spec.idempotency_key not in seen:
            seen.add(spec.idempotency_key)
            operations.append(_spec_view(spec))
    data = {
        "operations": operations,
        "unsupported": sorted(set(feed.plan.unsupported + graph.unsupported)),
        "deprovisioning_refused": feed.refused,
    }
    emit(args, data, _plan_text)
    return EXIT_OK


def _plan_text(data: dict[str, Any]) -> str:
    lines = [
        f"{op['op']:<10} {op['connector']:<20} person {op['person_id']} "
        f"{','.join(op['attributes'])}"
        for op in data["operations"]
    ]
    lines.append(f"{len(data['operations'])} operation(s) would be queued")
    lines.extend(f"not possible: {item}" for item in data["unsupported"])
    if data["deprovisioning_refused"]:
        lines.append(f"deprovisioning refused: {data['deprovisioning_refused']}")
    return "\n".join(lines)


async def _with_store(config: Config, work: Callable[[GraphStore], Awaitable[Any]]) -> Any:
    store = await GraphStore.open(config.database.url)
    try:
        return await work(store)
    finally:
        await store.close()


async def _with_writer(config: Config, work: Callable[[GraphStore], Awaitable[Any]]) -> Any:
    async with writer_lease(config.database.url, config.lease.ttl):
        return await _with_store(config, work)


async def run_release(config: Config, args: argparse.Namespace) -> int:
    """Approve or reject held operations."""
    approve = args.command == "approve"
    count = await _with_writer(
        config,
        lambda store: outbox.release_held(store.db, approve=approve, connector=args.connector),
    )
    verb = "approved" if approve else "rejected"
    emit(args, {verb: count}, lambda data: f"{data[verb]} held operation(s) {verb}")
    return EXIT_OK


async def run_status(config: Config, args: argparse.Namespace) -> int:
    """Per connector: listing, accounts, outbox by state."""

    async def gather(store: GraphStore) -> dict[str, Any]:
        by_state = await outbox.counts_by_state(store.db)
        counts = {item.connector: item for item in await store.counts()}
        connectors: dict[str, Any] = {}
        async with store.db.read() as conn:
            for name in config.connectors:
                state = await listing_state(conn, name)
                count = counts.get(name)
                connectors[name] = {
                    "listed": state.listed,
                    "listing_complete": state.complete,
                    "accounts": _plain(count) if count else {},
                    "outbox": {s: n for (c, s), n in by_state.items() if c == name},
                }
        return {"connectors": connectors}

    data = await _with_store(config, gather)
    emit(args, data, _status_text)
    return EXIT_OK


def _status_text(data: dict[str, Any]) -> str:
    lines = []
    for name, item in data["connectors"].items():
        held = item["outbox"].get("held", 0)
        lines.append(
            f"{name}: listed={item['listed']} complete={item['listing_complete']} "
            f"outbox={item['outbox']}" + (f"  HELD {held}: syncd approve / reject" if held else "")
        )
    return "\n".join(lines) or "no connectors configured"


async def run_person(config: Config, args: argparse.Namespace) -> int:
    """A person by any of their emails, with linked accounts."""
    view = await _with_store(config, lambda store: store.person(args.email))
    if view is None:
        sys.stderr.write("no person has that email\n")
        return EXIT_FAILURE
    emit(args, view, lambda data: orjson.dumps(_plain(data), option=orjson.OPT_INDENT_2).decode())
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
                await writeback.link(conn, args.connector, args.external_id, args.email)
            else:
                await writeback.unlink(conn, args.connector, args.external_id)

    try:
        await _with_writer(config, work)
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


HANDLERS: dict[str, Callable[[Config, argparse.Namespace], Awaitable[int]]] = {
    "once": run_once,
    "plan": run_plan,
    "approve": run_release,
    "reject": run_release,
    "status": run_status,
    "person": run_person,
    "conflicts": run_conflicts,
    "link": run_link,
    "unlink": run_link,
    "doctor": run_doctor,
}


def run_command(args: argparse.Namespace) -> int:
    """Load the config and run the named engine command."""
    config = load_config(args.config)
    handler = HANDLERS[args.command]

    async def main() -> int:
        return await handler(config, args)

    return anyio.run(main)
