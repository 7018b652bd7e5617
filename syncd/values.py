"""Per-connector value maps: our role and group names as the values a vendor accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("syncd.values")

# Attributes whose values are a vendor's own vocabulary.
MAPPED = ("role", "groups")
DEFAULT = "*"  # the map entry for every value without one of its own


@dataclass(frozen=True, slots=True)
class ValueMap:
    """One connector's value maps and the values its vendor is known to accept."""

    connector: str = ""
    maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    reported: set[tuple[str, str]] = field(default_factory=set, compare=False)

    def vendor_value(self, key: str, value: str) -> str | None:
        """The vendor's value for ours, or None where it has none."""
        table = self.maps.get(key)
        if table:  # a configured map alone decides: an unlisted value is not passed through
            return table.get(value, table.get(DEFAULT))
        allowed = self.allowed.get(key)
        return value if not allowed or value in allowed else None

    def apply(self, wanted: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
        """`wanted` in the vendor's values, less any attribute a value of has no mapping."""
        mapped = dict(wanted)
        problems: list[str] = []
        for key in MAPPED:
            value = wanted.get(key)
            if value in (None, "", []):
                continue  # absent or cleared: nothing to translate
            items = list(value) if isinstance(value, list | tuple) else [value]
            translated = [self.vendor_value(key, str(item)) for item in items]
            pairs = zip(items, translated, strict=True)
            missing = [str(item) for item, new in pairs if new is None]
            if missing:
                # Sending part of a list would take the rest away at the vendor: leave it all out.
                del mapped[key]
                problems.extend(self._report(key, item) for item in missing)
            elif isinstance(value, list | tuple):
                mapped[key] = list(dict.fromkeys(str(new) for new in translated))
            else:
                mapped[key] = translated[0]
        return mapped, problems

    def _report(self, key: str, value: str) -> str:
        """Describe an unmapped value, logging it once per connector."""
        problem = f"{self.connector}: {key} {value!r} has no value map entry: {key} left out"
        if (key, value) not in self.reported:
            self.reported.add((key, value))
            log.warning(
                "values.unmapped",
                connector=self.connector,
                attribute=key,
                value=value,
                hint=f"add it to [connectors.{self.connector}.values] {key}",
            )
        return problem


def allowed_problem(key: str, target: str, allowed: frozenset[str]) -> str | None:
    """Why a mapped-to value is one the vendor does not accept, or None."""
    if not target:
        return "must not be empty"
    if allowed and target not in allowed:
        return f"{target!r} is not a {key} the vendor accepts ({', '.join(sorted(allowed))})"
    return None
