"""The plain account record every connector yields."""

from __future__ import annotations

from dataclasses import dataclass

CANONICAL_ATTRIBUTES = (
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
    "active",
)


@dataclass(frozen=True, slots=True)
class VendorAccount:
    """One vendor account as a connector saw it."""

    external_id: str
    email: str | None
    status: str  # "active" | "inactive" | "invited" ... vendor-normalized lifecycle
    attributes: dict[str, object]  # canonical attributes, keys from CANONICAL_ATTRIBUTES
    raw: dict[str, object]  # the vendor payload as received
