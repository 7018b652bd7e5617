"""What a simulator saw: requests by method, path and status, 429s, peak rate, keys, writes."""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque

MAX_WRITES_LOGGED = 200_000


class SimStats:
    """Counters for vendor requests (never `/_sim/` ones)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.throttled = 0
        self.peak_rate = 0
        self.query_keys: set[str] = set()
        self.secret_in_url = 0
        self._recent: deque[float] = deque()
        # Every write answered, oldest first: wall time, method, exact path, status, body digest.
        self.writes: deque[dict[str, object]] = deque(maxlen=MAX_WRITES_LOGGED)

    def arrived(self, now: float, url: str, query_keys: list[str]) -> None:
        """Count an arriving request toward the peak rate and note its query keys."""
        self._recent.append(now)
        while self._recent[0] <= now - 1.0:
            self._recent.popleft()
        self.peak_rate = max(self.peak_rate, len(self._recent))
        self.query_keys.update(query_keys)
        if self._secret and self._secret in url:
            self.secret_in_url += 1

    def answered(self, method: str, path: str, status: int) -> None:
        """Count an answered request."""
        self.requests[(method, path, status)] += 1
        if status == 429:
            self.throttled += 1

    def wrote(self, method: str, path: str, status: int, body: bytes) -> None:
        """Log one answered write (the body only as a digest: it may hold personal data)."""
        self.writes.append(
            {
                "at": time.time(),
                "method": method,
                "path": path,
                "status": status,
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
        )

    def duplicate_writes(self) -> int:
        """Successful writes that repeat an earlier one exactly: same method, path and body."""
        seen: Counter[tuple[object, object, object]] = Counter(
            (w["method"], w["path"], w["body_sha256"])
            for w in self.writes
            if isinstance(w["status"], int) and 200 <= w["status"] < 300
        )
        return sum(count - 1 for count in seen.values())

    def to_json(self) -> dict[str, object]:
        """Return the counters as JSON-ready data."""
        return {
            "requests": sum(self.requests.values()),
            "throttled": self.throttled,
            "peak_rate": self.peak_rate,
            "by_route": [
                {"method": method, "path": path, "status": status, "count": count}
                for (method, path, status), count in sorted(self.requests.items())
            ],
            "query_keys": sorted(self.query_keys),
            "secret_in_url": self.secret_in_url,
            "writes": len(self.writes),
            "duplicate_writes": self.duplicate_writes(),
        }
