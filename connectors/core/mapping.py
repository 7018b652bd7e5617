"""Small helpers every vendor mapping uses."""

from __future__ import annotations

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
