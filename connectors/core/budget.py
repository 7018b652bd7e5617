"""A per-connector rate budget that learns a vendor's undocumented rate limit."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import structlog
from aiolimiter import AsyncLimiter

from connectors.core.priority import Priority, PrioritySemaphore

_SEND_WINDOW = 1.0  # seconds of send history used to measure the rate we actually sent at
DEFAULT_START = 5.0  # requests per second a budget with no ceiling starts at before probing


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission to send one request, stamped with when it was granted."""

    sent_at: float


class RateBudget:
    """Requests per second and concurrency for one connector instance, shared by reads and writes.

    A configured ceiling is never exceeded and is where the budget starts. Without one it
    starts at `start` and, until the first 429, multiplies its rate by `growth` after each
    run of clean traffic (slow start). A 429 lowers the rate: to the acceptance rate
    measured between two 429s when there are enough samples, else by half. Retry-After is
    waited out; without it the budget backs off. After each run of clean traffic the rate
    climbs: quickly back up to just below the limit it learned, then above it by
    `probe_step` of the estimate per run, the estimate rising with each clean run, so that
    a raised vendor limit is found again.
    """

    def __init__(
        self,
        ceiling: float | None = None,
        *,
        start: float = DEFAULT_START,
        growth: float = 2.0,
        burst: float | None = None,
        concurrency: int = 8,
        learned_rate: float | None = None,
        name: str = "",
        floor: float = 0.05,
        decrease: float = 0.5,
        margin: float = 0.05,
        probe_interval: float = 1.0,
        probe_step: float = 0.02,
        backoff: float = 0.1,
        max_backoff: float = 60.0,
        min_samples: int = 8,
        estimate_horizon: float = 30.0,
    ) -> None:
        if ceiling is not None and ceiling <= 0:
            raise ValueError("ceiling must be positive")
        if start <= 0 or growth <= 1:
            raise ValueError("start must be positive and growth above 1")
        if not 0 < decrease < 1 or not 0 <= margin < 1:
            raise ValueError("decrease must be in (0, 1) and margin in [0, 1)")
        self.ceiling = math.inf if ceiling is None else float(ceiling)
        self.growth = growth
        self.burst = float(burst) if burst is not None else min(2.0, self.ceiling)
        self.floor = min(floor, self.ceiling)
        self.decrease = decrease
        self.margin = margin
        self.probe_interval = probe_interval
        self.probe_step = probe_step
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.min_samples = min_samples
        self.estimate_horizon = estimate_horizon
        self.name = name
        self._log = structlog.get_logger("connectors.core.budget", connector=name)

        self._rate = start if ceiling is None else self.ceiling
        self._limit: float | None = None
        if learned_rate is not None and learned_rate > 0:
            self._rate = max(self.floor, min(learned_rate, self.ceiling))
            self._limit = learned_rate
        self._limiter = self._new_limiter(self._rate)
        self._limiter_primed = True
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._concurrency = anyio.Semaphore(concurrency)
        self._gate = PrioritySemaphore(1)

        self._paused_until = -math.inf
        self._throttled = False
        self._last_decrease_at = -math.inf
        self._last_throttle_at: float | None = None
        self._accepted_since_throttle = 0
        self._consecutive_throttles = 0
        self._run_start: float | None = None
        self._run_accepted = 0
        self._sends: deque[float] = deque()

    def bind(self, name: str) -> None:
        """Name the connector this budget belongs to, for its log lines."""
        self.name = name
        self._log = structlog.get_logger("connectors.core.budget", connector=name)

    @property
    def rate(self) -> float:
        """Return the request rate currently allowed, in requests per second."""
        return self._rate

    @property
    def learned_rate(self) -> float:
        """Return the rate to persist and pass back as `learned_rate` on the next start."""
        return self._rate

    @property
    def limit_estimate(self) -> float | None:
        """Return the vendor limit learned from 429s (or given as learned_rate), if any."""
        return self._limit

    @property
    def throttled(self) -> bool:
        """Tell whether the budget is below its learned limit after a 429."""
        return self._throttled

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.READ) -> AsyncIterator[Ticket]:
        """Wait for a concurrency place and a rate token, most urgent first; hold the place."""
        # Only the gate holder waits for a place and a token, so nobody holds a place while
        # queued, and the gate's order (most urgent first) decides who goes next.
        async with self._gate.hold(priority):
            await self._concurrency.acquire()
            try:
                await self._take_token()
            except BaseException:
                self._concurrency.release()
                raise
        try:
            now = anyio.current_time()
            self._note_send(now)
            yield Ticket(now)
        finally:
            self._concurrency.release()

    def on_accepted(self, ticket: Ticket) -> None:
        """Record that the vendor accepted a request (any answer but 429)."""
        now = anyio.current_time()
        self._accepted_since_throttle += 1
        self._consecutive_throttles = 0
        if self._run_start is None:
            self._run_start = ticket.sent_at
        if ticket.sent_at < self._run_start:
            return
        self._run_accepted += 1
        if self._run_accepted < max(self.min_samples, self._rate * self.probe_interval):
            return
        elapsed = max(now - self._run_start, 1e-9)
        # Climb only on evidence: traffic that actually pressed against the current rate.
        if self._run_accepted / elapsed >= 0.5 * self._rate:
            self._increase()
        self._run_start, self._run_accepted = now, 0

    def on_throttled(self, ticket: Ticket, retry_after: float | None) -> None:
        """Record a 429: pause, lower the rate once per episode, and learn the limit."""
        now = anyio.current_time()
        self._run_start, self._run_accepted = None, 0
        if retry_after is not None:
            self._paused_until = max(self._paused_until, now + max(retry_after, 0.0))
        if ticket.sent_at < self._last_decrease_at:
            self._refine(now)  # sent before we last slowed down: no new decrease, only a bound
            return
        self._consecutive_throttles += 1
        if retry_after is None:
            pause = min(self.max_backoff, self.backoff * 2.0 ** (self._consecutive_throttles - 1))
            self._paused_until = max(self._paused_until, now + pause)

        sending = min(self._rate, self._send_rate(now))
        accepted, span = self._since_last_throttle(now)
        if accepted >= self.min_samples:
            self._limit = min(accepted / span, sending)
            new_rate = self._limit * (1 - self.margin)
        elif accepted >= 2:
            # Too few samples to trust, but (accepted + 1) / span still bounds the limit above.
            self._limit = min((accepted + 1) / span, sending)
            new_rate = min(sending * self.decrease, self._limit * (1 - self.margin))
        else:
            self._limit = sending
            new_rate = sending * self.decrease
        previous = self._rate
        self._set_rate(new_rate)
        self._last_decrease_at = now
        self._last_throttle_at = now
        self._accepted_since_throttle = 0
        self._throttled = True
        self._log.warning(
            "budget.throttled",
            rate=round(self._rate, 3),
            previous_rate=round(previous, 3),
            limit_estimate=round(self._limit, 3),
            retry_after=retry_after,
        )

    def _refine(self, now: float) -> None:
        """Lower the limit estimate to the upper bound that a late 429 proves, if lower."""
        accepted, span = self._since_last_throttle(now)
        if span <= 0 or self._limit is None:
            return
        bound = (accepted + 1) / span
        if bound < self._limit:
            self._limit = bound
            self._set_rate(min(self._rate, bound * (1 - self.margin)))

    def _since_last_throttle(self, now: float) -> tuple[int, float]:
        """Return requests accepted since the previous 429 and the seconds since it.

        Between two 429s the vendor's bucket went from empty to empty, so what it accepted
        in between, over the time in between, is its refill rate: the limit to learn.
        """
        if self._last_throttle_at is None:
            return 0, 0.0
        span = now - self._last_throttle_at
        if span <= 0 or span > self.estimate_horizon:
            return 0, 0.0
        return self._accepted_since_throttle, span

    def _note_send(self, now: float) -> None:
        """Remember a send time, forgetting those older than the window."""
        self._sends.append(now)
        while self._sends[0] < now - _SEND_WINDOW:
            self._sends.popleft()

    def _send_rate(self, now: float) -> float:
        """Return the rate requests were actually sent at over the last second."""
        while self._sends and self._sends[0] < now - _SEND_WINDOW:
            self._sends.popleft()
        if len(self._sends) < 3:
            return self._rate
        span = self._sends[-1] - self._sends[0]
        return (len(self._sends) - 1) / span if span > 0 else self._rate

    def _increase(self) -> None:
        """Raise the rate after a clean run: fast up to the learned limit, slowly beyond."""
        if self._limit is None:
            # No 429 yet: the limit could be anywhere above, so search for it geometrically.
            self._set_rate(self._rate * self.growth)
            return
        safe = self._limit * (1 - self.margin)
        # A clean run at or above the estimate shows the limit is at least that high (the
        # vendor may have raised it), so the probing step grows with it: geometric, not linear.
        self._limit = max(self._limit, self._rate)
        step = self._limit * self.probe_step
        if self._rate < safe:
            new_rate = min(safe, self._rate + max((safe - self._rate) / 2, step))
        else:
            new_rate = self._rate + step
        self._set_rate(new_rate)
        if self._throttled and self._rate >= safe:
            self._throttled = False
            self._log.info(
                "budget.recovered", rate=round(self._rate, 3), limit_estimate=round(self._limit, 3)
            )

    def _set_rate(self, rate: float) -> None:
        """Switch to a new rate; the new limiter starts full so that no burst follows."""
        rate = max(self.floor, min(rate, self.ceiling))
        if rate == self._rate:
            return
        self._rate = rate
        self._limiter = self._new_limiter(rate)
        self._limiter_primed = False

    def _new_limiter(self, rate: float) -> AsyncLimiter:
        """Build a limiter for rate whose burst scales with the rate (at least min(burst, 2))."""
        burst = max(min(self.burst, 2.0), self.burst * rate / self.ceiling)
        return AsyncLimiter(burst, burst / rate)

    async def _take_token(self) -> None:
        """Wait out any pause, then take one token from the current limiter."""
        while True:
            delay = self._paused_until - anyio.current_time()
            if delay > 0:
                await anyio.sleep(delay)
                continue
            limiter = self._limiter
            if not self._limiter_primed:
                self._limiter_primed = True
                await limiter.acquire(limiter.max_rate)
            await limiter.acquire()
            if limiter is self._limiter and anyio.current_time() >= self._paused_until:
                return
