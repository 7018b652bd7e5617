"""Bounds on what one vendor record may store: identifiers, strings, lists, raw payload size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from graph.sql import dumps

MAX_EMAIL_CHARS = 320  # a local part of 64, "@", a domain of 255 (RFC 5321)
MAX_STRING_BYTES = 4 * 1024  # UTF-8, per string value and per object key
MAX_ITEMS = 1_000  # per list, and keys per object
MAX_RAW_BYTES = 16 * 1024  # the stored raw payload, as JSON
RAW_OMITTED_KEY = "_syncd_omitted"  # how many raw fields did not fit in MAX_RAW_BYTES

_SHORT = MAX_STRING_BYTES // 4  # characters that fit whatever their UTF-8 length
# JSON this short (in bytes) cannot hold a list or object past MAX_ITEMS nor a string past the cap.
_WITHIN_BOUNDS = 2 * MAX_ITEMS + 2
_SCALARS = (str, int, float, bool, type(None))


def check_email_length(email: str | None) -> None:
    """Refuse a record whose email is too long to be real (ids: graph.external_ids)."""
    if email is not None and len(email) > MAX_EMAIL_CHARS:
        raise ValueError(f"email longer than {MAX_EMAIL_CHARS} characters")


def cap_string(text: str) -> str:
    """The string cut to MAX_STRING_BYTES of UTF-8, never mid-character."""
    if len(text) <= _SHORT:
        return text
    encoded = text.encode()
    if len(encoded) <= MAX_STRING_BYTES:
        return text
    return encoded[:MAX_STRING_BYTES].decode(errors="ignore")


def cap_value(value: object) -> object:
    """A JSON value with every string, list and object in it cut to the bounds above."""
    if isinstance(value, str):
        return cap_string(value)
    if isinstance(value, list | tuple):
        return [cap_value(item) for item in value[:MAX_ITEMS]]
    if isinstance(value, Mapping):
        return {
            cap_string(key) if isinstance(key, str) else key: cap_value(item)
            for key, item in list(value.items())[:MAX_ITEMS]
        }
    return value  # numbers, booleans, null (what is not JSON was rejected before)


def bounded_json(mapping: Mapping[str, object]) -> str:
    """The mapping as canonical JSON, its values cut to the bounds when they need it."""
    data = orjson.dumps(mapping, option=orjson.OPT_SORT_KEYS)  # what graph.sql.dumps makes
    return data.decode() if len(data) <= _WITHIN_BOUNDS else dumps(cap_value(mapping))


def raw_rest_json(raw: Mapping[str, object], held: Sequence[object]) -> str:
    """The raw fields whose value the row does not already hold, as JSON of bounded size.

    Fields that do not fit in MAX_RAW_BYTES are left out, and their number is recorded.
    """
    fields = _not_held(raw, held)
    text = bounded_json(fields)
    if len(text.encode()) <= MAX_RAW_BYTES:
        return text
    rest = cap_value(fields)
    assert isinstance(rest, dict)
    kept: dict[str, object] = {}
    size = 2 + len(RAW_OMITTED_KEY) + 16  # braces and the omitted count
    for key, value in rest.items():
        entry = len(dumps({key: value}).encode())  # its "key":value and a comma, in effect
        if size + entry <= MAX_RAW_BYTES:
            kept[key] = value
            size += entry
    kept[RAW_OMITTED_KEY] = len(rest) - len(kept)
    return dumps(kept)


def _not_held(raw: Mapping[str, object], held: Sequence[object]) -> dict[str, object]:
    """The raw fields whose value is not among `held` (compared with its type: 1 is not True)."""
    types: dict[object, type] = {}
    others = []
    for value in held:
        if isinstance(value, _SCALARS):
            types[value] = type(value)
        else:
            others.append(value)
    rest: dict[str, object] = {}
    for key, value in raw.items():
        if isinstance(value, _SCALARS):
            if types.get(value) is type(value):
                continue
        elif any(value == other and type(value) is type(other) for other in others):
            continue
        rest[key] = value
    return rest
