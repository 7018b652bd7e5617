"""The server-side token bucket a simulator enforces with 429."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; one token per request."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def take(self, now: float) -> bool:
        """Take a token if one is there."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait(self, now: float) -> float:
        """Return the seconds until a token will be there."""
        self._refill(now)
        return max(0.0, (1 - self._tokens) / self.rate)

    def available(self, now: float) -> float:
        """Return the tokens there now (what a vendor reports as its remaining quota)."""
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last look."""
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
