"""Plan every person against every target and queue the operations, guarded."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from graph import linked
from graph.authority import active_people, deprovisioned_since, deprovisions_approved_at
from graph.models import utcnow
from graph.outbox import (
    OperationSpec,
    dead_create_generations,
    enqueue,
    held_for,
    release_moot_holds,
)
from graph.shared import split
from graph.sql import dumps
from syncd.plan import Account, Guard, Person, Precedence, Target, plan_person, removal

log = structlog.get_logger("syncd.reconcile")


@dataclass
class ReconcileResult:
    """What one planning pass queued, held and could not do."""

    queued: int = 0
    held: dict[str, int] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    operations: list[OperationSpec] = field(default_factory=list)
    # Planned again but already in the outbox, with the state they wait in there.
    waiting: list[tuple[OperationSpec, str]] = field(default_factory=list)
    # Held in the outbox, but this pass would not hold them: released unless a dry run.
    unheld: list[OperationSpec] = field(default_factory=list)


def to_person(row: linked.PersonRow) -> Person:
    """The planner's view of a person: authority attributes plus names, and each authority's."""
    attributes, sources = split(row.attributes, row.source)
    for key, value in row.names.items():
        if value is not None:
            attributes[key] = value
    if "display_name" not in attributes:
        names = [row.names.get("given_name"), row.names.get("family_name")]
        if any(names):
            attributes["display_name"] = " ".join(name for name in names if name)
    return Person(
        row.id, row.email, row.lifecycle, row.version, attributes, row.authority_id, sources
    )


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
    # Authorities whose leavers the window guard does not count (the HR file has its own).
    file_sources: frozenset[str] = frozenset()
    replan_delay: float = 300.0  # a dead create's next generation waits this, doubled each time


REPLAN_CAP = 3600.0  # seconds: the longest a replanned create waits before its first try


def replanned(spec: OperationSpec, generation: int, base: float) -> OperationSpec:
    """A create planned again after `generation` dead ones: a new key, and a later start."""
    if spec.op != "create" or generation <= 0:
        return spec
    return replace(
        spec,
        key_basis=f"{spec.key_basis}:gen{generation}",
        delay=min(base * 2**generation, REPLAN_CAP),
        maybe_sent=True,
    )


async def targets_ready(conn: AsyncConnection, targets: Sequence[Target]) -> list[Target]:
    """Targets limited by their listings: none before the first, no deactivation after a bad one."""
    ready = []
    for target in targets:
        state = await linked.listing_state(conn, target.connector)
        if not state.listed:
            continue
        ready.append(replace(target, can_create=state.complete, can_deactivate=state.complete))
    return ready


REMOVALS = ("deactivate", "delete")
HELD_MASS_REMOVAL = "more deactivations than the guard allows"
HELD_EMAIL_CHANGES = "more login email changes than the guard allows"
HELD_NEW_DOMAIN = "login email moves to a domain the authority never used"
HELD_CONFLICT = "leaver's account is in a conflict"
HELD_UNLINKED = "leaver's account is not linked to them"
HELD_AUTHORITY_MASS_DEPROVISION = "the authority deprovisioned more people than the guard allows"


def risk(spec: OperationSpec) -> str | None:
    """Which guard an operation answers to: removal, email (a login email change), or none."""
    if spec.op in REMOVALS:
        return "removal"
    if spec.op != "create" and "email" in spec.payload:
        return "email"
    return None


async def guard_holds(
    conn: AsyncConnection, guard: Guard, specs: Sequence[OperationSpec]
) -> dict[str, str]:
    """Why each risky operation must wait for an operator, by idempotency key."""
    held: dict[str, str] = {}
    removals: dict[str, list[OperationSpec]] = {}
    changes: list[OperationSpec] = []
    for spec in specs:
        kind = risk(spec)
        if kind == "removal":
            removals.setdefault(spec.connector, []).append(spec)
        elif kind == "email":
            changes.append(spec)
    for name, group in removals.items():
        if guard.holds(len(group), await linked.live_account_count(conn, name)):
            held.update(dict.fromkeys((spec.idempotency_key for spec in group), HELD_MASS_REMOVAL))
    if changes:
        if guard.holds_email_changes(len({spec.person_id for spec in changes})):
            held.update(
                dict.fromkeys((spec.idempotency_key for spec in changes), HELD_EMAIL_CHANGES)
            )
        else:
            moving = {
                spec.person_id: str(spec.payload["email"])
                for spec in changes
                if spec.person_id is not None
            }
            new_domain = await linked.on_new_domains(conn, moving)
            for spec in changes:
                if spec.person_id in new_domain:
                    held[spec.idempotency_key] = HELD_NEW_DOMAIN
    return held


async def burst_holds(
    conn: AsyncConnection, policy: Policy, specs: Sequence[OperationSpec]
) -> dict[str, str]:
    """Hold the removals of people deprovisioned in a burst past the guard, by idempotency key.

    The burst is counted from the graph over the guard's window, so it holds across calls,
    restarts and replicas; an operator's approval covers one window after it, and counting
    starts afresh once that window is over.
    """
    removals = [spec for spec in specs if spec.op in REMOVALS and spec.person_id is not None]
    if not removals:
        return {}
    window = timedelta(seconds=policy.guard.deprovision_window)
    since = utcnow() - window
    if (approved := await deprovisions_approved_at(conn)) is not None:
        since = max(since, approved + window)
    burst = await deprovisioned_since(conn, since, policy.file_sources)
    if not burst or not policy.guard.holds(len(burst), await active_people(conn) + len(burst)):
        return {}
    return {
        spec.idempotency_key: HELD_AUTHORITY_MASS_DEPROVISION
        for spec in removals
        if spec.person_id in burst
    }


def mass_deprovision_view(
    reasons: Mapping[str, Mapping[str, int]], window: float
) -> dict[str, object]:
    """The window guard for an operator: vendor deactivations it holds, from held reasons."""
    held = sum(item.get(HELD_AUTHORITY_MASS_DEPROVISION, 0) for item in reasons.values())
    return {
        "held_operations": held,
        "reason": HELD_AUTHORITY_MASS_DEPROVISION if held else None,
        "window_seconds": window,
    }


def _signature(spec: OperationSpec) -> linked.OperationSignature:
    """What makes two planned writes the same write."""
    return (spec.connector, spec.op, spec.account_id, spec.person_id, dumps(dict(spec.payload)))


async def reconcile(
    conn: AsyncConnection,
    targets: Sequence[Target],
    policy: Policy,
    person_ids: Collection[int] | None = None,
    *,
    orphans: bool | None = None,
    dry_run: bool = False,
) -> ReconcileResult:
    """Queue what the plan says, in the caller's transaction; hold what the guards hold.

    Orphans are planned when `orphans` says so, by default only when planning everyone.
    """
    result = ReconcileResult()
    if not dry_run:
        await linked.hold_listings(conn, [target.connector for target in targets])
    ready = await targets_ready(conn, targets)
    if not ready:
        return result
    names = [target.connector for target in ready]
    open_ops = await linked.open_operations(conn, names)
    seen: set[linked.OperationSignature] = set()
    # A create that died of a failure that may pass is planned again under a new key; one
    # refused (a look-alike, an unsupported write) keeps its key, so it waits for an operator.
    generations = await dead_create_generations(conn, names)
    planned: list[OperationSpec] = []
    reasons: dict[str, str] = {}  # idempotency key -> why it waits for an operator

    def keep(spec: OperationSpec, hold: str | None = None) -> None:
        signature = _signature(spec)
        if signature in seen:
            return
        seen.add(signature)
        if (state := open_ops.get(signature)) is not None:
            result.waiting.append((spec, state))  # the same write is already waiting
            if state == "held" and hold is None:
                result.unheld.append(spec)  # held for a reason that no longer holds?
            return
        planned.append(spec)
        if hold is not None:
            reasons[spec.idempotency_key] = hold

    async for people in linked.people_with_accounts(conn, person_ids):
        for row in people:
            plan = plan_person(to_person(row), to_accounts(row), ready, policy.precedence)
            for spec in plan.operations:
                generation = generations.get((spec.connector, row.id), 0)
                keep(replanned(spec, generation, policy.replan_delay))
            result.unsupported.extend(plan.unsupported)
    await _leavers(conn, ready, person_ids, planned, keep, reasons, result)
    if person_ids is None if orphans is None else orphans:
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
    # The guards weigh what would go out unapproved; what is already held is not at stake.
    free = [spec for spec in planned if spec.idempotency_key not in reasons]
    reasons.update(burst := await burst_holds(conn, policy, free))
    free = [spec for spec in free if spec.idempotency_key not in burst]
    reasons.update(await guard_holds(conn, policy.guard, free))
    # Routine writes first, then removals: the order they are queued in.
    result.operations = sorted(planned, key=lambda spec: spec.op in REMOVALS)
    if dry_run:
        return result
    result.queued += await enqueue(
        conn, [spec for spec in result.operations if spec.idempotency_key not in reasons]
    )
    # A leaver's account held because it was not linked to them, and linked to them since
    # (a create that reached the vendor before a crash, found by its lookup), goes now.
    await release_moot_holds(conn, [_signature(spec) for spec in result.unheld], HELD_UNLINKED)
    burst_began = bool(burst) and not await held_for(conn, HELD_AUTHORITY_MASS_DEPROVISION)
    waiting: dict[tuple[str, str], list[OperationSpec]] = {}
    for spec in result.operations:
        if (held := reasons.get(spec.idempotency_key)) is not None:
            waiting.setdefault((spec.connector, held), []).append(spec)
    for (name, reason), specs in waiting.items():
        new = await enqueue(conn, specs, held=True, reason=reason)
        result.queued += new
        if new:
            result.held[name] = result.held.get(name, 0) + new
            log.warning(
                "guard.held",
                connector=name,
                operations=new,
                reason=reason,
                hint="syncd approve or syncd reject",
            )
    if burst_began and await held_for(conn, HELD_AUTHORITY_MASS_DEPROVISION):
        log.warning(
            "authority.mass_deprovision_held",
            window=policy.guard.deprovision_window,
            hint="syncd approve or syncd reject",
        )
    return result


async def _leavers(
    conn: AsyncConnection,
    ready: Sequence[Target],
    person_ids: Collection[int] | None,
    planned: Sequence[OperationSpec],
    keep: Callable[[OperationSpec, str | None], None],
    reasons: dict[str, str],
    result: ReconcileResult,
) -> None:
    """Remove every live account of a leaver, not only the one the planner saw.

    Linked ones go like any leaver's account; unlinked ones and any in a conflict are
    held: the email says they are the leaver's, only an operator can say it for certain.
    """
    targets = {target.connector: target for target in ready if target.can_deactivate}
    if not targets:
        return
    covered = {spec.account_id: spec for spec in planned if spec.op in REMOVALS}
    for found in await linked.leaver_accounts(conn, list(targets), person_ids):
        account = found.account
        if account.id in covered:
            if found.in_conflict:  # planned already, but the conflict makes it uncertain
                reasons[covered[account.id].idempotency_key] = HELD_CONFLICT
            continue
        if not account.active:
            continue
        target = targets[account.connector]
        op = removal(target)
        if op is None:
            if not found.linked:  # the planner already reported the linked ones
                result.unsupported.append(f"{target.connector}: cannot deactivate")
            continue
        hold = HELD_CONFLICT if found.in_conflict else None if found.linked else HELD_UNLINKED
        spec = OperationSpec(
            target.connector,
            op,
            {},
            account_id=account.id,
            person_id=found.person_id,
            key_basis=f"leaver:{found.person_id}:v{found.person_version}"
            f":account:{account.payload_hash}",
        )
        keep(spec, hold)
