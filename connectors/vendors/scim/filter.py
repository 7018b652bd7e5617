"""SCIM filter expressions built from values, never from raw text (RFC 7644 §3.4.2.2)."""

from __future__ import annotations

import json


def equals(attribute: str, value: str) -> str:
    """Return `attribute eq "value"`, the value a JSON string (quotes, backslashes escaped)."""
    return f"{attribute} eq {json.dumps(value, ensure_ascii=False)}"
