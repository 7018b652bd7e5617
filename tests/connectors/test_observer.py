"""The request observer sees every attempt: answers, 429s and failures to answer."""

from __future__ import annotations

import aiohttp

from connectors import RateBudget
from tests.connectors.conftest import configure, make_connector, sim_get

Seen = tuple[str, str, int, float]


async def test_the_observer_sees_each_attempt_including_429s(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=20, burst=1, retry_after="none")
    connector = make_connector(session, url, budget=RateBudget(1000))
    seen: list[Seen] = []
    connector.http.observer = lambda *call: seen.append(call)
    ids = [account.external_id async for account in connector.list_accounts()]
    assert len(ids) == 250
    statuses = [status for _, _, status, _ in seen]
    assert statuses.count(200) == 3  # three pages of 100
    stats = await sim_get(session, url, "stats")
    assert statuses.count(429) == stats["throttled"] >= 1
    assert len(seen) == stats["requests"]
    assert {(name, method) for name, method, _, _ in seen} == {("example-test", "GET")}
    assert all(seconds >= 0 for *_, seconds in seen)


async def test_a_timeout_is_observed_as_status_0(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, faults={"timeout_share": 1.0, "timeout_delay": 1.0, "limit": 1})
    connector = make_connector(session, url, timeout=0.2)
    seen: list[Seen] = []
    connector.http.observer = lambda *call: seen.append(call)
    await connector.deactivate_account("u000004")
    assert [(method, status) for _, method, status, _ in seen] == [("PATCH", 0), ("PATCH", 200)]
    assert seen[0][3] >= 0.2
