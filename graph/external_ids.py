"""Vendor account ids the graph accepts: ones that name one account in a URL path."""

from __future__ import annotations

import unicodedata

MAX_EXTERNAL_ID = 256
_FORBIDDEN = frozenset("/\\?#%")


def checked_external_id(value: object) -> str:
    """The id as text; ValueError when it could not safely name one account at a vendor."""
    text = str(value)
    if text.strip() in ("", ".", ".."):
        raise ValueError("external id is empty, '.' or '..'")
    if len(text) > MAX_EXTERNAL_ID:
        raise ValueError(f"external id is longer than {MAX_EXTERNAL_ID} characters")
    if not _FORBIDDEN.isdisjoint(text) or (
        not (text.isascii() and text.isprintable())
        and any(unicodedata.category(ch).startswith("C") for ch in text)
    ):
        raise ValueError("external id contains '/', '\\\\', '?', '#', '%' or a control character")
    return text


def shown_id(value: object) -> str:
    """An id as it may appear in a log line: printable, bounded."""
    text = str(value)
    return text if text.isprintable() and len(text) <= 40 else ascii(text)[:40]
