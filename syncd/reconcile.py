"""Plan every person against every target and queue the operations, guarded."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from graph import linked
from graph.outbox import OperationSpec, enqueue
from graph.sql import dumps
from syncd.plan import Account, Guard, Person, Precedence, Target, plan_person

log = structlog.get_logger("syncd.reconcile")


@dataclass
class ReconcileResult:
    """What one planning pass queued, held and could not do."""

    queued: int = 0
    held: dict[str, int] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    operations: list[OperationSpec] = field(default_factory=list)


def to_person(row: linked.PersonRow) -> Person:
    """The planner's view of a person: authority attributes plus names."""
    attributes: dict[str, object] = dict(row.attributes)
    for key, value in row.names.items():
        if value is not None:
            attributes[key] = value
    if "display_name" not in attributes:
        names = [row.names.get("given_name"), row.names.get("family_name")]
        if any(names):
            attributes["display_name"] = " ".join(name for name in names if name)
    return Person(row.id, row.email, row.lifecycle, row.version, attributes, row.authority_id)


def to_accounts(row: linked.PersonRow) -> dict[str, Account]:
    """The planner's view of a person's linked accounts."""
    return {
        name: Account(acc.id, acc.active, acc.attributes, acc.payload_hash, acc.link_method)
        for name, acc in row.accounts.items()
    }


@dataclass(frozen=True, slots=True)
class Policy:
    """The planning settings that are not per target."""

    guard: Guard = field(default_factory=Guard)
    precedence: Precedence = field(default_factory=dict)
    deactivate_orphans: frozenset[str] = frozenset()


async def targets_ready(conn: AsyncConnection, targets: Sequence[Target]) -> list[Target]:
    """Targets limited by their listings: none before the first, no deactivation after a bad one."""
    ready = []
    for target in targets:
        state = await linked.listing_state(conn, target.connector)
        if not state.listed:
            continue
        ready.append(replace(target, can_create=state.complete, can_deactivate=state.complete))
    return ready


async def reconcile(
    conn: AsyncConnection,
    targets: Sequence[Target],
    policy: Policy,
    person_ids: Collection[int] | None = None,
    *,
    dry_run: bool = False,
) -> ReconcileResult:
    """Queue what the plan says, in the caller's transaction; hold mass deactivations."""
    result = ReconcileResult()
    ready = await targets_ready(conn, targets)
    if not ready:
        return result
    names = [target.connector for target in ready]
    open_ops = await linked.open_operations(conn, names)
    deactivations: dict[str, list[OperationSpec]] = {name: [] for name in names}
    others: list[OperationSpec] = []

    def keep(spec: OperationSpec) -> None:
        signature = (
            spec.connector,
            spec.op,
            spec.account_id,
            spec.person_id,
            dumps(dict(spec.payload)),
        )
        if signature in open_ops:
            return  # the same write is already waiting
        (deactivations[spec.connector] if spec.op == "deactivate" else others).append(spec)

    async for people in linked.people_with_accounts(conn, person_ids):
        for row in people:
            plan = plan_person(to_person(row), to_accounts(row), ready, policy.precedence)
            for spec in plan.operations:
                keep(spec)
            result.unsupported.extend(plan.unsupported)
    if person_ids is None:
        for target in ready:
            if target.connector in policy.deactivate_orphans and target.can_deactivate:
                for orphan in await linked.live_orphans(conn, target.connector):
                    if orphan.active and target.has_deactivate:
                        keep(
                            OperationSpec(
                                target.connector,
                                "deactivate",
                                {},
                                account_id=orphan.id,
                                key_basis=f"orphan:{orphan.payload_hash}",
                            )
                        )
    result.operations = [*others, *(spec for specs in deactivations.values() for spec in specs)]
    if dry_run:
        return result
    result.queued += await enqueue(conn, others)
    for name, specs in deactivations.items():
        if not specs:
            continue
        total = await linked.live_account_count(conn, name)
        held = policy.guard.holds(len(specs), total)
        result.queued += await enqueue(conn, specs, held=held)
        if held:
            result.held[name] = len(specs)
            log.warning(
                "guard.held",
                connector=name,
                deactivations=len(specs),
                accounts=total,
                hint="syncd approve or syncd reject",
            )
    return result
