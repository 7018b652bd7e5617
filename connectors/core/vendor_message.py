"""The vendor's own reason for an error status, read from the response body: short and redacted."""

from __future__ import annotations

import orjson

from connectors.core.redaction import redact_text

MAX_MESSAGE_CHARS = 300
# Only the start of a body is read: a reason is short, and a huge body must cost nothing.
MAX_BODY_BYTES = 16 * 1024
_MESSAGE_KEYS = ("message", "error_description", "detail", "error", "errors", "title")


def vendor_message(body: bytes | bytearray) -> str | None:
    """The reason in an error body (JSON `message`, `error`, `errors`, `detail`, else text)."""
    head = bytes(body[:MAX_BODY_BYTES])
    try:
        found = _reason(orjson.loads(head))
    except orjson.JSONDecodeError:
        found = head.decode("utf-8", "replace")
    text = " ".join(found.split()) if found else ""
    if not text:
        return None
    text = redact_text(text)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _reason(value: object) -> str | None:
    """The first message in the vendors' error shapes: nested objects and lists are searched."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [part for item in value if (part := _reason(item))]
        return "; ".join(parts) or None
    if isinstance(value, dict):
        for key in _MESSAGE_KEYS:
            if (found := _reason(value.get(key))) is not None:
                return found
    return None
