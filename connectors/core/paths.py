"""Vendor ids in URL paths: always one quoted segment, never a way to another resource."""

from __future__ import annotations

from urllib.parse import quote

from connectors.core.errors import InvalidIdentifierError


def segment(vendor: str, value: str) -> str:
    """Percent-quote an id as one path segment; refuse ids no quoting can make one."""
    # Quoting leaves "." and ".." as they are, and URL normalization resolves them: the
    # request would go to the collection (or its parent) instead of one account.
    if value in ("", ".", ".."):
        raise InvalidIdentifierError(vendor, f"refusing {value!r} as an id in a URL path")
    return quote(value, safe="")
