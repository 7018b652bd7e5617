"""A SCIM user as the graph sees it: a PersonRecord, and the emails its filters search."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graph.emails import normalize_email
from graph.records import PersonRecord
from graph.scim import UserEmail
from syncd.authority.scim.protocol import BadRequest

SOURCE = "scim"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Enterprise extension attribute → the person's attribute name.
_ENTERPRISE_ATTRIBUTES = {
    "organization": "company",
    "department": "department",
    "employeeNumber": "employeeNumber",
    "costCenter": "costCenter",
}


def user_emails(resource: Mapping[str, Any]) -> list[UserEmail]:
    """The user's emails with a value, in the order sent."""
    emails = []
    for item in resource.get("emails") or ():
        value = item.get("value") if isinstance(item, Mapping) else None
        if isinstance(value, str) and value:
            emails.append(UserEmail(value, item.get("type"), item.get("primary") is True))
    return emails


_PREFERENCE: tuple[Callable[[UserEmail], bool], ...] = (
    lambda email: email.primary,
    lambda email: (email.type or "").lower() == "work",
    lambda email: True,
)


def login_email(resource: Mapping[str, Any]) -> str:
    """The primary email, else the work one, else the first, else an email-like userName."""
    emails = user_emails(resource)
    user_name = resource.get("userName")
    chosen = next(
        (email.value for pick in _PREFERENCE for email in emails if pick(email)),
        user_name if isinstance(user_name, str) and "@" in user_name else None,
    )
    if chosen is None or normalize_email(chosen).email is None:
        raise BadRequest(400, "the user has no usable email address", "invalidValue")
    return chosen


def _attributes(resource: Mapping[str, Any], groups: Sequence[str]) -> dict[str, object]:
    attributes: dict[str, object] = {
        key: resource.get(key) for key in ("title", "locale", "timezone", "externalId")
    }
    enterprise = resource.get(ENTERPRISE) or {}
    for key, name in _ENTERPRISE_ATTRIBUTES.items():
        attributes[name] = enterprise.get(key)
    manager = enterprise.get("manager")
    attributes["manager"] = manager.get("value") if isinstance(manager, Mapping) else None
    attributes["groups"] = sorted(groups)
    return {key: value for key, value in attributes.items() if value not in (None, "")}


def person_record(
    resource: Mapping[str, Any], groups: Sequence[str], *, deleted: bool = False
) -> PersonRecord:
    """The authority person a SCIM user is (BadRequest when it has no usable email)."""
    emails = user_emails(resource)
    login = login_email(resource)
    name = resource.get("name") or {}
    active = resource.get("active") is not False and not deleted
    return PersonRecord(
        email=login,
        authority_id=str(resource["id"]),
        aliases=[email.value for email in emails if email.value != login],
        given_name=name.get("givenName"),
        family_name=name.get("familyName"),
        display_name=resource.get("displayName") or name.get("formatted"),
        lifecycle="active" if active else "deprovisioned",
        attributes=_attributes(resource, groups),
    )
