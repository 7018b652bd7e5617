"""Desired state minus observed state: the operations one person needs at one vendor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from graph.outbox import OperationSpec

CANONICAL = (
    "email",
    "given_name",
    "family_name",
    "display_name",
    "title",
    "company",
    "locale",
    "timezone",
    "role",
    "groups",
)


@dataclass(frozen=True, slots=True)
class Person:
    """A person as the authority wants them to be."""

    id: int
    email: str
    lifecycle: str
    version: int
    attributes: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Account:
    """A person's linked account at one vendor, as last listed."""

    id: int
    active: bool
    attributes: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Target:
    """A vendor connector as the planner sees it."""

    connector: str
    has_deactivate: bool = True
    provision: Callable[[Person], bool] = lambda _person: False


@dataclass
class PersonPlan:
    """The operations for one person, and what could not be planned."""

    operations: list[OperationSpec] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def desired_attributes(person: Person) -> dict[str, object]:
    """The canonical attributes every vendor should hold for this person."""
    wanted = {key: person.attributes.get(key) for key in CANONICAL}
    wanted["email"] = person.email
    return wanted


def _spec(
    target: Target, person: Person, op: str, payload: Mapping[str, object], account: Account | None
) -> OperationSpec:
    return OperationSpec(
        connector=target.connector,
        op=op,
        payload=payload,
        account_id=account.id if account else None,
        person_id=person.id,
        key_basis=f"person:{person.id}:v{person.version}",
    )


def plan_person(
    person: Person, accounts: Mapping[str, Account], targets: Sequence[Target]
) -> PersonPlan:
    """Create, update, deactivate or reactivate so each vendor matches the person."""
    plan = PersonPlan()
    wanted = desired_attributes(person)
    active = person.lifecycle == "active"
    for target in targets:
        account = accounts.get(target.connector)
        if account is None:
            if active and target.provision(person):
                plan.operations.append(_spec(target, person, "create", wanted, None))
            continue
        if not active:
            if account.active:
                if target.has_deactivate:
                    plan.operations.append(_spec(target, person, "deactivate", {}, account))
                else:
                    plan.unsupported.append(f"{target.connector}: cannot deactivate")
            continue
        changes = {
            key: value
            for key, value in wanted.items()
            if key in account.attributes and account.attributes[key] != value
        }
        if not account.active:
            plan.operations.append(_spec(target, person, "reactivate", changes, account))
        elif changes:
            plan.operations.append(_spec(target, person, "update", changes, account))
    return plan


@dataclass(frozen=True, slots=True)
class Guard:
    """How many deactivations one cycle may push to a connector without approval."""

    max_count: int = 10
    max_share: float = 0.05
    allowance: int = 1  # so a single leaver at a small vendor is never held

    def holds(self, deactivations: int, accounts: int) -> bool:
        """True when this many deactivations need an operator's approval."""
        if deactivations <= self.allowance:
            return False
        share = deactivations / accounts if accounts else 1.0
        return deactivations > self.max_count or share > self.max_share
