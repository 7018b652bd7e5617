"""Rate-budget benchmark: listings through simulators with limits the client is not told.

Prints one JSON object. `utilization` is the accepted request rate over the simulator's true
limit (the worst run); `rejected_share` is 429s over all requests (the worst run). The
simulator's token bucket holds one second's worth of requests unless a run says otherwise.
`default_ratio` is the time a Userflow listing takes with no rate configured over the time
it takes at the vendor's limit (the worst run); `default_throttled` is its 429s (the most).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import structlog

from connectors import Priority, RateBudget, Ticket, open_session
from connectors.core.base import Connector
from connectors.registry import vendor
from connectors.sim import SimSettings, serve
from connectors.sim.base import VendorSimulator
from connectors.vendors.example.simulator import ExampleSimulator

TOKEN = "bench-token-0123456789"
PAGE_SIZE = 100  # the example connector's per_page
CONCURRENCY = 8

GOALS = {
    "utilization": (">=", 0.90),
    "rejected_share": ("<=", 0.03),
    "configured_utilization": (">=", 0.97),
    "configured_rejected": ("<=", 0),
    "offset_pages_per_s": (">=", 0.95 * 20),
    "default_ratio": ("<=", 1.10),
    "default_throttled": ("<=", 5),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One listing run: the simulator's hidden limit and the client's ceiling."""

    limit: float
    ceiling: float
    retry_after: str = "none"
    latency_ms: float = 20.0
    burst: float | None = None  # the simulator's bucket; None: one second's worth


ADAPTIVE = (
    Scenario(limit=10, ceiling=100, retry_after="none", latency_ms=50),
    Scenario(limit=25, ceiling=125, retry_after="seconds", latency_ms=20),
    Scenario(limit=40, ceiling=400, retry_after="date", latency_ms=20),
)
CONFIGURED = Scenario(limit=20, ceiling=20, retry_after="none", latency_ms=20)
OFFSET = Scenario(limit=20, ceiling=20, retry_after="none", latency_ms=100)
STRICT_BURST = Scenario(limit=20, ceiling=100, retry_after="none", latency_ms=20, burst=4)


# Listings with no rate configured: a Userflow cursor listing (one page at a time, 100 users
# a page) sized to take LISTING_SECONDS at the vendor's limit, so start-up does not dominate.
DEFAULT_LIMITS = (3.0, 10.0, 25.0)
DEFAULT_LATENCY_MS = 10.0
LISTING_SECONDS = 20.0
USERFLOW_PAGE_SIZE = 100
NAIVE_SLEEP = 1.0  # what a naive client sleeps after a 429 without Retry-After


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one listing run achieved."""

    scenario: Scenario
    requests: int
    throttled: int
    elapsed: float
    learned_rate: float
    limit_estimate: float | None

    @property
    def accepted(self) -> int:
        """Requests the simulator answered with anything but 429."""
        return self.requests - self.throttled

    @property
    def utilization(self) -> float:
        """Accepted requests per second over the simulator's true limit."""
        return self.accepted / self.elapsed / self.scenario.limit

    @property
    def rejected_share(self) -> float:
        """429s over all requests."""
        return self.throttled / self.requests

    def to_json(self) -> dict[str, object]:
        """The run's parameters and figures."""
        bucket = self.scenario.burst or max(1.0, self.scenario.limit)
        estimate = self.limit_estimate
        return {
            "limit": self.scenario.limit,
            "server_burst": bucket,
            "retry_after": self.scenario.retry_after,
            "latency_ms": self.scenario.latency_ms,
            "ceiling": self.scenario.ceiling,
            "concurrency": CONCURRENCY,
            "requests": self.requests,
            "throttled": self.throttled,
            "elapsed_s": round(self.elapsed, 3),
            "pages_per_s": round(self.accepted / self.elapsed, 3),
            "utilization": round(self.utilization, 3),
            # Against all the bucket could give, its initial burst included.
            "utilization_of_capacity": round(
                self.accepted / (bucket + self.scenario.limit * self.elapsed), 3
            ),
            "rejected_share": round(self.rejected_share, 4),
            "learned_rate": round(self.learned_rate, 3),
            "limit_estimate": None if estimate is None else round(estimate, 3),
        }


class NaiveBudget(RateBudget):
    """A naive client: requests back to back, one at a time, a fixed sleep after each 429."""

    def __init__(self) -> None:
        super().__init__(1e9, concurrency=1)
        self._resume_at = 0.0

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.READ) -> AsyncIterator[Ticket]:
        """Wait out the sleep that followed a 429, if any; nothing else."""
        await anyio.sleep(max(0.0, self._resume_at - anyio.current_time()))
        yield Ticket(anyio.current_time())

    def on_accepted(self, ticket: Ticket) -> None:
        """Learn nothing."""

    def on_throttled(self, ticket: Ticket, retry_after: float | None) -> None:
        """Sleep a fixed time before the next request."""
        self._resume_at = anyio.current_time() + NAIVE_SLEEP


@dataclass(frozen=True, slots=True)
class DefaultOutcome:
    """One Userflow listing with no rate configured (or by the naive client)."""

    limit: float
    pages: int
    requests: int
    throttled: int
    elapsed: float
    learned_rate: float | None

    @property
    def ratio(self) -> float:
        """Time taken over the time the pages take at the vendor's limit."""
        return self.elapsed / (self.pages / self.limit)

    def to_json(self) -> dict[str, object]:
        """The run's figures."""
        return {
            "elapsed_s": round(self.elapsed, 3),
            "ratio": round(self.ratio, 3),
            "requests": self.requests,
            "throttled": self.throttled,
            **({} if self.learned_rate is None else {"learned_rate": round(self.learned_rate, 3)}),
        }


async def timed_listing(
    simulator: VendorSimulator, name: str, budget: RateBudget | None, users: int
) -> tuple[Connector, float]:
    """List every user of the served simulator once with its vendor's connector; time it."""
    connection = simulator.connection()
    async with serve(simulator) as url, open_session() as session:
        connector = vendor(simulator.vendor).connector(
            name=name,
            session=session,
            base_url=url,
            secrets=connection.secrets,
            budget=budget,
            **connection.settings,  # type: ignore[arg-type]
        )
        started = time.perf_counter()
        listed = 0
        async for page in connector.list_pages():
            listed += len(page)
        elapsed = time.perf_counter() - started
    if listed != users:
        raise SystemExit(f"listed {listed} of {users} users")
    return connector, elapsed


async def list_userflow(limit: float, budget: RateBudget | None) -> DefaultOutcome:
    """List a Userflow simulator limited at `limit` with the given budget (None: the default)."""
    pages = round(limit * LISTING_SECONDS)
    users = pages * USERFLOW_PAGE_SIZE
    settings = SimSettings(rate=limit, retry_after="none", latency_ms=DEFAULT_LATENCY_MS)
    simulator = vendor("userflow").simulator(users=users, seed=1, settings=settings)
    name = f"bench-userflow-{limit:g}"
    connector, elapsed = await timed_listing(simulator, name, budget, users)
    return DefaultOutcome(
        limit=limit,
        pages=pages,
        requests=sum(simulator.stats.requests.values()),
        throttled=simulator.stats.throttled,
        elapsed=elapsed,
        learned_rate=None if budget is not None else connector.budget.learned_rate,
    )


def default_json(default: DefaultOutcome, naive: DefaultOutcome) -> dict[str, object]:
    """One hidden limit's parameters, the default budget's figures and the naive client's."""
    return {
        "limit": default.limit,
        "users": default.pages * USERFLOW_PAGE_SIZE,
        "pages": default.pages,
        "ideal_s": round(default.pages / default.limit, 3),
        "server_burst": max(1.0, default.limit),
        "latency_ms": DEFAULT_LATENCY_MS,
        "default": default.to_json(),
        "naive": naive.to_json(),
    }


async def run(scenario: Scenario, users: int) -> Outcome:
    """List every user once under the scenario and report what the simulator saw."""
    settings = SimSettings(
        rate=scenario.limit,
        burst=scenario.burst,
        retry_after=scenario.retry_after,
        latency_ms=scenario.latency_ms,
    )
    simulator = ExampleSimulator(users=users, seed=1, token=TOKEN, settings=settings)
    budget = RateBudget(scenario.ceiling, concurrency=CONCURRENCY)
    _, elapsed = await timed_listing(simulator, f"bench-{scenario.limit:g}", budget, users)
    return Outcome(
        scenario=scenario,
        requests=sum(simulator.stats.requests.values()),
        throttled=simulator.stats.throttled,
        elapsed=elapsed,
        learned_rate=budget.learned_rate,
        limit_estimate=budget.limit_estimate,
    )


def _met(value: float, goal: tuple[str, float]) -> bool:
    """Tell whether a figure meets its goal."""
    sign, target = goal
    return value >= target if sign == ">=" else value <= target


async def benchmark(users: int) -> dict[str, object]:
    """Run every scenario and gather the figures."""
    adaptive = [await run(scenario, users) for scenario in ADAPTIVE]
    configured = await run(CONFIGURED, users)
    offset = await run(OFFSET, users)
    strict = await run(STRICT_BURST, users)
    defaults = [
        (await list_userflow(limit, None), await list_userflow(limit, NaiveBudget()))
        for limit in DEFAULT_LIMITS
    ]
    figures: dict[str, float] = {
        "utilization": round(min(outcome.utilization for outcome in adaptive), 3),
        "rejected_share": round(max(outcome.rejected_share for outcome in adaptive), 4),
        "configured_utilization": round(configured.utilization, 3),
        "configured_rejected": configured.throttled,
        "offset_pages_per_s": round(offset.accepted / offset.elapsed, 3),
        "default_ratio": round(max(default.ratio for default, _ in defaults), 3),
        "default_throttled": max(default.throttled for default, _ in defaults),
    }
    return {
        **figures,
        "goals_met": {name: _met(figures[name], goal) for name, goal in GOALS.items()},
        "goals": {name: f"{sign} {target:g}" for name, (sign, target) in GOALS.items()},
        "parameters": {
            "users": users,
            "page_size": PAGE_SIZE,
            "pages": -(-users // PAGE_SIZE),
            "client_concurrency": CONCURRENCY,
            "server_burst": "one second's worth of requests unless given",
        },
        "adaptive_runs": [outcome.to_json() for outcome in adaptive],
        "configured_run": configured.to_json(),
        "offset_run": offset.to_json(),
        "not_a_goal_small_server_burst": strict.to_json(),
        "default_runs": [default_json(default, naive) for default, naive in defaults],
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--users", type=int, default=20_000, help="users per example listing (not the default runs)"
    )
    args = parser.parse_args()
    # Keep stdout for the JSON; the budget's log lines go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    result = anyio.run(benchmark, args.users)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
