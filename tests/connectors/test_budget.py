"""The rate budget: ceiling, Retry-After, adaptation to an unknown limit, learned rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import anyio
import pytest

from connectors import RateBudget, parse_retry_after
from connectors.vendors.example.connector import ExampleConnector
from tests.connectors.conftest import LogLines, configure, make_connector, sim_get


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("-5") == 0.0


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(7.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_retry_after_that_cannot_be_read_is_ignored() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None


async def test_ceiling_is_never_exceeded(session: aiohttp.ClientSession, url: str) -> None:
    connector = make_connector(session, url, budget=RateBudget(40, burst=2))
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        for _ in range(40):
            group.start_soon(connector.http.request, "GET", "/users/u000001")
    elapsed = anyio.current_time() - started
    assert elapsed >= (40 - 2) / 40 * 0.95
    stats = await sim_get(session, url, "stats")
    assert stats["peak_rate"] <= 40 + 2


async def test_concurrency_is_capped(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, latency_ms=100)
    connector = make_connector(session, url, budget=RateBudget(1000, concurrency=2))
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(connector.http.request, "GET", "/users/u000001")
    # Six requests of 100 ms, two at a time: three rounds.
    assert anyio.current_time() - started >= 0.29


@pytest.mark.parametrize("mode", ["seconds", "date"])
async def test_retry_after_is_waited_out(
    session: aiohttp.ClientSession, url: str, mode: str
) -> None:
    await configure(session, url, rate=1, burst=1, retry_after=mode)
    connector = make_connector(session, url, budget=RateBudget(100))
    started = anyio.current_time()
    await connector.http.request("GET", "/users/u000001")
    await connector.http.request("GET", "/users/u000002")
    elapsed = anyio.current_time() - started
    stats = await sim_get(session, url, "stats")
    # One 429, then the client waits as told; guessing would have drawn more 429s.
    assert stats["throttled"] == 1
    assert elapsed >= 0.9 if mode == "seconds" else elapsed >= 0.5
    assert connector.budget.rate < 100


async def test_budget_learns_an_unknown_limit(
    session: aiohttp.ClientSession, url: str, logs: LogLines
) -> None:
    await configure(session, url, rate=40, burst=10, retry_after="none", latency_ms=5)
    connector = make_connector(session, url, budget=RateBudget(400, concurrency=8))
    async with anyio.create_task_group() as group:
        for index in range(120):
            group.start_soon(connector.http.request, "GET", f"/users/u{index + 1:06d}")
    stats = await sim_get(session, url, "stats")
    budget = connector.budget
    assert budget.rate < 400
    assert budget.limit_estimate is not None
    assert 30 <= budget.limit_estimate <= 55
    assert stats["throttled"] <= 8
    assert budget.learned_rate == budget.rate
    throttled = logs.named("budget.throttled")
    assert throttled and throttled[0]["connector"] == "example-test"
    # Logged once per decrease, not once per 429 or per request.
    assert len(throttled) <= stats["throttled"]


async def test_budget_probes_back_up_after_a_decrease(
    session: aiohttp.ClientSession, url: str, logs: LogLines
) -> None:
    # The vendor was slow for a while (learned 50/s) and has no limit now.
    budget = RateBudget(500, learned_rate=50, concurrency=4, probe_interval=0.2)
    assert budget.rate == 50
    connector = make_connector(session, url, budget=budget)
    async with anyio.create_task_group() as group:
        for index in range(60):
            group.start_soon(connector.http.request, "GET", f"/users/u{index + 1:06d}")
    # Probing above the remembered 429 rate is slow: steps of 2%, never a jump.
    assert 50 < budget.rate <= 50 * 1.15
    assert budget.learned_rate == budget.rate


async def test_budget_recovers_quickly_below_the_learned_limit(
    session: aiohttp.ClientSession, url: str, logs: LogLines
) -> None:
    await configure(session, url, rate=50, burst=50, retry_after="none")
    budget = RateBudget(200, concurrency=8, probe_interval=0.25)
    connector = make_connector(session, url, budget=budget)
    async with anyio.create_task_group() as group:
        for index in range(150):
            group.start_soon(connector.http.request, "GET", f"/users/u{index % 250 + 1:06d}")
    assert budget.limit_estimate is not None
    assert budget.rate >= 0.8 * budget.limit_estimate
    assert logs.named("budget.recovered")


async def test_learned_rate_survives_a_restart(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, rate=60, burst=5, retry_after="none")
    first = make_connector(session, url, budget=RateBudget(600))
    async with anyio.create_task_group() as group:
        for index in range(60):
            group.start_soon(first.http.request, "GET", f"/users/u{index + 1:06d}")
    learned = first.budget.learned_rate
    assert learned < 600

    restarted = RateBudget(600, learned_rate=learned)
    assert restarted.rate == pytest.approx(learned)
    assert restarted.limit_estimate == pytest.approx(learned)


async def fetch_at_once(connector: ExampleConnector, count: int) -> float:
    """Fetch the first `count` users all at once; return the seconds it took."""
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(connector.http.request, "GET", f"/users/u{index + 1:06d}")
    return anyio.current_time() - started


async def test_with_no_rate_the_budget_probes_up_to_an_unknown_limit(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=20, burst=5, retry_after="none", latency_ms=5)
    budget = RateBudget(concurrency=8)
    assert budget.rate == 5
    connector = make_connector(session, url, budget=budget)
    elapsed = await fetch_at_once(connector, 80)
    stats = await sim_get(session, url, "stats")
    # It climbed well above where it started and settled near the limit, not far above.
    assert 10 <= budget.rate <= 20 * 1.15
    assert budget.limit_estimate is not None
    assert 14 <= budget.limit_estimate <= 2 * 20 + 5
    assert stats["throttled"] <= 5
    assert stats["peak_rate"] <= 2 * 20 + 5
    assert elapsed < 80 / 5 * 0.75  # at a fixed 5/s these 80 requests take 16 s
    assert RateBudget(learned_rate=budget.learned_rate).rate == budget.learned_rate


async def test_a_configured_rate_is_a_hard_ceiling(
    session: aiohttp.ClientSession, url: str
) -> None:
    # The vendor has no limit, so nothing stops the budget but its ceiling.
    await configure(session, url, rate=None, latency_ms=5)
    budget = RateBudget(10, burst=1, learned_rate=9.5, concurrency=8, probe_interval=0.25)
    connector = make_connector(session, url, budget=budget)
    elapsed = await fetch_at_once(connector, 40)
    stats = await sim_get(session, url, "stats")
    assert budget.rate == 10  # it probed up from the learned 9.5, and no further
    assert stats["peak_rate"] <= 10 + 1
    assert elapsed >= 39 / 10 * 0.95


def test_budget_starts_at_its_ceiling_or_else_at_the_start_rate() -> None:
    assert RateBudget(3).rate == 3
    assert RateBudget(300).rate == 300
    assert RateBudget().rate == 5
    assert RateBudget(start=12).rate == 12
    assert RateBudget(learned_rate=40).rate == 40


def test_budget_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        RateBudget(0)
    with pytest.raises(ValueError, match="decrease"):
        RateBudget(10, decrease=1.5)
    with pytest.raises(ValueError, match="growth"):
        RateBudget(growth=1)


def test_learned_rate_above_the_ceiling_is_capped() -> None:
    assert RateBudget(10, learned_rate=50).rate == 10
