"""Small helpers every vendor mapping uses."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.core.errors import MalformedResponseError
from connectors.core.pagination import Record


def text(value: object) -> str | None:
    """Return a non-empty string value, or None."""
    return value if isinstance(value, str) and value else None


def unwrap(vendor: str, body: object, key: str, method: str, path: str) -> Record:
    """Return the record inside a `{key: {...}}` body."""
    if isinstance(body, dict) and isinstance(body.get(key), dict):
        return dict(body[key])
    raise MalformedResponseError(vendor, method, path, f"no '{key}' object in the body")


def full_name(given: object, family: object) -> str | None:
    """Return `given family` from whichever parts are non-empty text, or None."""
    return " ".join(part for part in (text(given), text(family)) if part) or None


def renamed(attributes: Mapping[str, object], names: Mapping[str, str]) -> Record:
    """Return the given canonical attributes under the vendor's field names."""
    return {field: attributes[key] for key, field in names.items() if key in attributes}


def with_status(attributes: Mapping[str, object], names: Mapping[str, str]) -> Record:
    """Return `renamed` fields plus `active` as a `status` of "active" or "inactive"."""
    fields = renamed(attributes, names)
    if "active" in attributes:
        fields["status"] = "active" if attributes["active"] else "inactive"
    return fields


def texts(raw: Mapping[str, object], names: Mapping[str, str]) -> dict[str, object]:
    """Return each canonical attribute read as text from the vendor field it is named by."""
    return {key: text(raw.get(field)) for key, field in names.items()}
