"""Desired state minus observed state: the operations one person needs at one vendor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from connectors.core.records import CANONICAL_ATTRIBUTES
from graph.emails import Normalized, normalize_email
from graph.outbox import OperationSpec
from syncd.values import ValueMap

# Attributes a person carries; `active` is their lifecycle, planned on its own.
CANONICAL = tuple(name for name in CANONICAL_ATTRIBUTES if name != "active")


AUTHORITY = "authority"  # whichever authority last wrote the person
AUTHORITY_SOURCES = ("hr", "scim")  # one authority by name, in a deployment that has both
Precedence = Mapping[str, Sequence[str]]
# Writes that give access or move a login: only for a trusted link to a provisioned person.
ESCALATING = frozenset({"role", "groups", "email"})
TRUSTED_LINKS = frozenset({"manual", "created_by_push"})


@dataclass(frozen=True, slots=True)
class Person:
    """A person as the authority wants them to be.

    An attribute the authority sent empty is present as None (clear it at vendors); one
    it never sent is absent (leave vendors as they are).
    """

    id: int
    email: str
    lifecycle: str
    version: int
    attributes: Mapping[str, object]
    authority_id: str | None = None
    # Each authority's own attributes (and names), by source ("hr", "scim"), for precedence.
    sources: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Account:
    """A person's linked account at one vendor, as last listed."""

    id: int
    active: bool
    attributes: Mapping[str, object]
    version: str = ""  # the account's content hash: a vendor-side change makes a new key
    link_method: str | None = None  # email (found by address), manual, created_by_push


def _nobody(_person: Person) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Target:
    """A vendor connector as the planner sees it."""

    connector: str
    has_deactivate: bool = True
    writable: frozenset[str] = frozenset(CANONICAL)
    provision: Callable[[Person], bool] = _nobody
    can_create: bool = True  # False until a complete listing says who is already there
    can_deactivate: bool = True  # False after a listing that did not finish cleanly
    can_delete: bool = False  # the connector's allow_delete: delete where it cannot deactivate
    trust_email_links: bool = False  # an operator reviewed the accounts linked by email
    values: ValueMap = field(default_factory=ValueMap)  # roles and groups as the vendor names them

    def trusts(self, account: Account) -> bool:
        """Whether the account's link is confirmed: syncd created it or an operator linked it."""
        if account.link_method in TRUSTED_LINKS:
            return True
        return account.link_method == "email" and self.trust_email_links


@dataclass
class PersonPlan:
    """The operations for one person, and what could not be planned."""

    operations: list[OperationSpec] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def _has_value(value: object) -> bool:
    return value not in (None, "", [])


def desired_attributes(
    person: Person, accounts: Mapping[str, Account], precedence: Precedence
) -> dict[str, object]:
    """Each canonical attribute from the first source in its precedence that has a value."""
    wanted: dict[str, object] = {}
    for key in CANONICAL:
        for source in precedence.get(key, (AUTHORITY,)):
            if source == AUTHORITY or source in AUTHORITY_SOURCES:
                said = person.attributes if source == AUTHORITY else person.sources.get(source, {})
                if key in said:
                    wanted[key] = said[key]
                    break
                continue
            account = accounts.get(source)
            if account is None or (key in ESCALATING and account.link_method not in TRUSTED_LINKS):
                continue  # an unconfirmed account is never where access comes from
            if _has_value(account.attributes.get(key)):
                wanted[key] = account.attributes[key]
                break
    wanted["email"] = person.email
    return wanted


@lru_cache(maxsize=65_536)
def _normalized_text(text: str) -> Normalized:
    return normalize_email(text)


def _normalized(value: object) -> Normalized:
    """An address normalized; a person's is compared with each vendor's, so text is kept."""
    return _normalized_text(value) if isinstance(value, str) else normalize_email(value)


def same_value(key: str, wanted: object, held: object) -> bool:
    """Whether a vendor's value already says what the person's value says."""
    if not _has_value(wanted) or not _has_value(held):
        return _has_value(wanted) == _has_value(held)
    if isinstance(wanted, list | tuple) and isinstance(held, list | tuple):
        return sorted(map(str, wanted)) == sorted(map(str, held))
    if key == "email":
        # Same strict key, and a look-alike only where the person's own address is one.
        mine = _normalized(wanted)
        if held == wanted:
            return mine.ok
        theirs = _normalized(held)
        return mine.ok and mine.email == theirs.email and mine.lookalike == theirs.lookalike
    return wanted == held or str(wanted).strip() == str(held).strip()


def _spec(
    target: Target, person: Person, op: str, payload: Mapping[str, object], account: Account | None
) -> OperationSpec:
    basis = f"person:{person.id}:v{person.version}"
    return OperationSpec(
        connector=target.connector,
        op=op,
        payload=payload,
        account_id=account.id if account else None,
        person_id=person.id,
        key_basis=f"{basis}:account:{account.version}" if account else basis,
    )


def removal(target: Target) -> str | None:
    """How a leaver's account goes at this target: deactivate, delete, or not at all."""
    if target.has_deactivate:
        return "deactivate"
    return "delete" if target.can_delete else None


def _in_vendor_values(
    target: Target, wanted: Mapping[str, object], plan: PersonPlan
) -> dict[str, object]:
    """The person's attributes in this vendor's values; what has none is reported."""
    mapped, problems = target.values.apply(wanted)
    plan.unsupported.extend(problems)
    return mapped


def plan_person(
    person: Person,
    accounts: Mapping[str, Account],
    targets: Sequence[Target],
    precedence: Precedence | None = None,
) -> PersonPlan:
    """Create, update, deactivate or reactivate so each vendor matches the person."""
    plan = PersonPlan()
    wanted = desired_attributes(person, accounts, precedence or {})
    active = person.lifecycle == "active"
    for target in targets:
        account = accounts.get(target.connector)
        if account is None:
            if active and target.can_create and target.provision(person):
                here = _in_vendor_values(target, wanted, plan)
                payload = {key: value for key, value in here.items() if _has_value(value)}
                if person.authority_id:
                    payload["employee_id"] = person.authority_id
                plan.operations.append(_spec(target, person, "create", payload, None))
            continue
        if not active:
            if not account.active or not target.can_deactivate:
                continue
            if (op := removal(target)) is not None:
                plan.operations.append(_spec(target, person, op, {}, account))
            else:
                plan.unsupported.append(f"{target.connector}: cannot deactivate")
            continue
        here = _in_vendor_values(target, wanted, plan)
        changes = {
            key: value
            for key, value in here.items()
            if key in target.writable and not same_value(key, value, account.attributes.get(key))
        }
        trusted = target.trusts(account)
        if not (trusted and target.provision(person)):
            withheld = sorted(ESCALATING.intersection(changes))
            changes = {key: value for key, value in changes.items() if key not in ESCALATING}
            if not account.active:
                withheld.insert(0, "reactivation")
            if withheld:
                why = "is outside the provision rule" if trusted else "needs a confirmed link"
                plan.unsupported.append(
                    f"{target.connector}: the account of {person.email} {why}: "
                    f"no {', '.join(withheld)}"
                )
            if changes:
                plan.operations.append(_spec(target, person, "update", changes, account))
            continue
        if not account.active:
            plan.operations.append(
                _spec(target, person, "reactivate", {**changes, "active": True}, account)
            )
        elif changes:
            plan.operations.append(_spec(target, person, "update", changes, account))
    return plan


@dataclass(frozen=True, slots=True)
class Guard:
    """How many risky writes (removals, login email changes) one pass may push unapproved."""

    max_count: int = 10
    max_share: float = 0.05
    allowance: int = 1  # so a single leaver at a small vendor is never held
    max_email_changes: int = 10
    deprovision_window: float = 3600.0  # seconds over which an authority's leavers are counted

    def holds(self, deactivations: int, accounts: int) -> bool:
        """True when this many deactivations need an operator's approval."""
        if deactivations <= self.allowance:
            return False
        share = deactivations / accounts if accounts else 1.0
        return deactivations > self.max_count or share > self.max_share

    def holds_email_changes(self, people: int) -> bool:
        """True when this many people's login emails changing needs an operator's approval."""
        return people > self.max_email_changes
