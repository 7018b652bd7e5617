"""Keep secrets out of log lines and error text."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "***"

# Values shorter than this would redact ordinary words; no real credential is that short.
_MIN_SECRET_LENGTH = 6

_SENSITIVE_KEY = re.compile(
    r"authori[sz]ation|token|secret|password|passwd|api[-_]?key|apikey|cookie|credential"
    r"|subscription[-_]?key|signature|private[-_]?key",
    re.IGNORECASE,
)

# Later processors need these exactly as given (format_exc_info reads exc_info).
_PASSTHROUGH_KEYS = frozenset({"exc_info", "stack_info"})

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so that it is redacted wherever it appears."""
    if len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


def is_sensitive_key(key: str) -> bool:
    """Tell whether a header or field name holds credentials by its name alone."""
    return _SENSITIVE_KEY.search(key) is not None


def contains_secret(text: str) -> bool:
    """Tell whether any registered secret occurs in text."""
    return any(secret in text for secret in _secrets)


def redact_text(text: str) -> str:
    """Replace every registered secret in text with the redaction marker."""
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: object) -> object:
    """Redact secrets in a value and in every string, mapping and sequence inside it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_sensitive_key(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return headers with every credential-bearing value replaced."""
    return {
        name: REDACTED if is_sensitive_key(name) else redact_text(value)
        for name, value in headers.items()
    }


def redact_secrets(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: redact auth-like keys and every registered secret value.

    Place it after ``format_exc_info`` so that rendered tracebacks are redacted too.
    """
    for key in list(event_dict):
        value = event_dict[key]
        if key in _PASSTHROUGH_KEYS:
            continue
        if key != "event" and is_sensitive_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(value)
    return event_dict
