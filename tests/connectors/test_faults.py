"""Every simulator fault ends in the right data or in an error that says what went wrong."""

from __future__ import annotations

import aiohttp
import pytest

from connectors import AuthenticationError, RateBudget, RetryPolicy
from tests.connectors.conftest import configure, incomplete_listing, make_connector, sim_get

PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)
EVERY_ID = [f"u{index:06d}" for index in range(1, 251)]


@pytest.mark.parametrize(
    "faults",
    [
        {"server_error_share": 0.4},
        {"server_error_share": 0.4, "server_error_status": 500},
        {"timeout_share": 0.3, "timeout_delay": 0.5},
        {"reset_share": 0.4},
        {"malformed_share": 0.4},
        {
            "server_error_share": 0.15,
            "timeout_share": 0.1,
            "timeout_delay": 0.5,
            "reset_share": 0.15,
            "malformed_share": 0.15,
        },
    ],
)
async def test_transient_faults_end_in_the_full_listing(
    session: aiohttp.ClientSession, url: str, faults: dict[str, object]
) -> None:
    await configure(session, url, faults=faults)
    connector = make_connector(session, url, timeout=0.15, retry=PATIENT)
    ids = [account.external_id async for account in connector.list_accounts()]
    assert ids == EVERY_ID
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] > 3  # faults were injected and retried through


async def test_rate_limiting_ends_in_the_full_listing(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=20, burst=1, retry_after="none")
    connector = make_connector(session, url, budget=RateBudget(1000))
    ids = [account.external_id async for account in connector.list_accounts()]
    assert ids == EVERY_ID
    stats = await sim_get(session, url, "stats")
    assert stats["throttled"] >= 1


async def test_unauthorized_ends_in_an_authentication_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, faults={"unauthorized": True})
    connector = make_connector(session, url)
    with pytest.raises(AuthenticationError, match=r"example: GET /users -> HTTP 401"):
        [account async for account in connector.list_accounts()]


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 0}, "page 2 repeats an earlier page"),
        ({"repeat_page": 1}, "page 3 holds 100 records, 50 expected: cut short"),
        ({"truncate_after": 130}, "page 2 holds 30 records, 100 expected: cut short"),
        ({"truncate_after": 200}, "page 3 holds 0 records, 50 expected: cut short"),
    ],
)
async def test_listing_faults_end_in_incomplete_listing(
    session: aiohttp.ClientSession, url: str, faults: dict[str, object], reason: str
) -> None:
    await configure(session, url, faults=faults)
    connector = make_connector(session, url)
    incomplete, seen = await incomplete_listing(connector)
    assert incomplete.reason == reason
    assert incomplete.records == len(seen)
    assert str(incomplete).startswith("example: listing /users incomplete after")
