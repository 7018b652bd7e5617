"""What a simulated vendor accepts in a user body: known fields, their types, required ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Record = dict[str, object]

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    float: "a number",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a user body."""

    types: tuple[type, ...] = (str,)
    required: bool = False  # must be present on create
    nullable: bool = False  # null is accepted (and usually clears the field)
    read_only: bool = False  # the vendor refuses it in a write body
    choices: tuple[object, ...] = ()  # when set, the only values accepted


class Schema:
    """The fields a vendor accepts; `problem` names the first thing it would reject."""

    def __init__(self, fields: Mapping[str, Field], *, extra_allowed: bool = False) -> None:
        self.fields = dict(fields)
        self.extra_allowed = extra_allowed

    def problem(self, body: Record, *, creating: bool) -> str | None:
        """Return why the vendor would reject this body, or None if it accepts it."""
        for key, value in body.items():
            spec = self.fields.get(key)
            if spec is None:
                if self.extra_allowed:
                    continue
                return f"unknown field {key!r}"
            if spec.read_only:
                return f"{key!r} is read-only"
            if value is None:
                if not spec.nullable:
                    return f"{key!r} may not be null"
                continue
            if not _is_a(value, spec.types):
                names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in spec.types)
                return f"{key!r} must be {names}"
            if spec.choices and value not in spec.choices:
                allowed = ", ".join(str(choice) for choice in spec.choices)
                return f"{key!r} must be one of {allowed}"
        if creating:
            missing = [
                key for key, spec in self.fields.items() if spec.required and body.get(key) is None
            ]
            if missing:
                return f"missing required field(s): {', '.join(missing)}"
        return None


def _is_a(value: object, types: tuple[type, ...]) -> bool:
    """Tell whether a JSON value has one of the types; a boolean is never a number."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)
