"""Retry timing: capped exponential backoff with jitter, and Retry-After parsing."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_jitter = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry timeouts, connection errors, 5xx and bad JSON."""

    attempts: int = 4  # total tries, the first included
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_throttled: int = 20  # 429s tolerated for one request; the budget paces them

    def delay(self, retry: int) -> float:
        """Return the pause before retry number `retry` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds a Retry-After header asks to wait (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
