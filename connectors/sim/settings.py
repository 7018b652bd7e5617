"""Simulator settings: server-side rate limit, latency and injected faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

RETRY_AFTER_MODES = ("seconds", "date", "none")


class SettingsError(ValueError):
    """A `/_sim/config` change names an unknown setting or has the wrong type."""


@dataclass(slots=True)
class Faults:
    """Faults a simulator injects into vendor requests (not into `/_sim/`)."""

    server_error_share: float = 0.0  # share of requests answered 5xx
    server_error_status: int = 503
    timeout_share: float = 0.0  # share answered only after `timeout_delay` seconds
    timeout_delay: float = 30.0
    reset_share: float = 0.0  # share whose connection is dropped without an answer
    malformed_share: float = 0.0  # share answered 200 with broken JSON
    unauthorized: bool = False  # every request answered 401
    repeat_page: int | None = None  # this page (0-based) is served again in place of the next
    truncate_after: int | None = None  # listings show only this many records
    limit: int | None = None  # request faults injected before they stop; None: no end
    body_bytes: int | None = None  # every answer is a 200 body this long, streamed, never held
    body_endless: bool = False  # every answer is a 200 body that never ends
    body_declared: bool = False  # that body announces its length in Content-Length


@dataclass(slots=True)
class SimSettings:
    """Everything `PUT /_sim/config` can change."""

    rate: float | None = None  # requests per second the vendor accepts; None: no limit
    burst: float | None = None  # token bucket size; None: one second's worth (at least 1)
    retry_after: str = "none"  # on 429: "seconds", "date" (HTTP date) or "none"
    latency_ms: float = 0.0
    faults: Faults = field(default_factory=Faults)

    def to_json(self) -> dict[str, object]:
        """Return the settings as JSON-ready data."""
        return asdict(self)

    def update(self, changes: Mapping[str, object]) -> None:
        """Apply a partial change from JSON; unknown keys or wrong types raise SettingsError."""
        for key, value in changes.items():
            if key == "faults":
                if not isinstance(value, Mapping):
                    raise SettingsError("faults must be an object")
                _apply(self.faults, value)
            else:
                _apply(self, {key: value})
        if self.retry_after not in RETRY_AFTER_MODES:
            raise SettingsError(f"retry_after must be one of {', '.join(RETRY_AFTER_MODES)}")


_FLAGS = {"unauthorized", "body_endless", "body_declared"}
_WHOLE_NUMBERS = {"server_error_status", "repeat_page", "truncate_after", "limit", "body_bytes"}
_OPTIONAL_NUMBERS = {"rate", "burst", "repeat_page", "truncate_after", "limit", "body_bytes"}


def _apply(target: Faults | SimSettings, changes: Mapping[str, object]) -> None:
    """Set each field from JSON after checking it against the field's current type."""
    known = {f.name for f in fields(target)} - {"faults"}
    for key, value in changes.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        current = getattr(target, key)
        if value is None and key in _OPTIONAL_NUMBERS:
            setattr(target, key, None)
        elif isinstance(current, bool) or key in _FLAGS:
            if not isinstance(value, bool):
                raise SettingsError(f"{key} must be true or false")
            setattr(target, key, value)
        elif isinstance(current, str):
            if not isinstance(value, str):
                raise SettingsError(f"{key} must be a string")
            setattr(target, key, value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            whole = key in _WHOLE_NUMBERS
            setattr(target, key, int(value) if whole else float(value))
        else:
            raise SettingsError(f"{key} must be a non-negative number")
