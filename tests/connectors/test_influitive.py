"""Influitive connector against its simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors import (
    AuthenticationError,
    IncompleteListing,
    RateBudget,
    RetryPolicy,
    UnsupportedOperation,
)
from connectors.sim import serve
from connectors.vendors.influitive.connector import InfluitiveConnector
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from tests.connectors.conftest import FAST_RETRY, TOKEN, LogLines, configure, sim_get

PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)
CUSTOM = {"locale": "language", "timezone": "time_zone", "role": "persona"}


def make(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str = TOKEN,
    retry: RetryPolicy = FAST_RETRY,
    timeout: float = 5.0,
    **settings: Any,
) -> InfluitiveConnector:
    """Build an Influitive connector against a simulator."""
    return InfluitiveConnector(
        name="influitive-test",
        session=session,
        base_url=url,
        secrets={"api_key": token},
        budget=RateBudget(1000, concurrency=8),
        retry=retry,
        timeout=timeout,
        **{"custom_field_map": CUSTOM, **settings},
    )


@pytest.fixture
async def small(session: aiohttp.ClientSession) -> AsyncIterator[str]:
    """A hub of 130 advocates, served."""
    async with serve(InfluitiveSimulator(users=130, seed=11, token=TOKEN)) as url:
        yield url


async def stored(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every advocate the simulator holds, by id."""
    return {str(user["id"]): user for user in (await sim_get(session, url, "users"))["users"]}


async def test_full_listing_of_10000_equals_the_hub(session: aiohttp.ClientSession) -> None:
    async with serve(InfluitiveSimulator(users=10_000, seed=3, token=TOKEN)) as url:
        connector = make(session, url)
        accounts = [account async for account in connector.list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        assert len(accounts) == 10_000
        assert [account.raw for account in accounts] == held
        assert [account.external_id for account in accounts] == [str(u["id"]) for u in held]
        stats = await sim_get(session, url, "stats")
    assert stats["query_keys"] == ["page"]
    assert stats["secret_in_url"] == 0
    assert stats["requests"] - stats["throttled"] == 401  # 400 pages of 25, then an empty one
    first = accounts[0]
    assert first.attributes["given_name"] == first.raw["first_name"]
    assert first.attributes["locale"] == first.raw["custom_fields"]["language"]  # type: ignore[index]
    assert first.attributes["active"] is (first.status == "active")


async def test_create_update_deactivate_round_trip_keeps_untouched_fields(
    session: aiohttp.ClientSession, small: str
) -> None:
    connector = make(session, small)
    created = await connector.create_account(
        {
            "email": "new.advocate@example.com",
            "given_name": "New",
            "family_name": "Advocate",
            "company": "Initech",
            "locale": "fr-FR",
            "groups": ["Speakers"],
        }
    )
    held = (await stored(session, small))[created.external_id]
    assert held["first_name"] == "New" and held["status"] == "active"
    assert held["custom_fields"]["language"] == "fr-FR"
    assert created.attributes["locale"] == "fr-FR"

    target = "17"
    before = (await stored(session, small))[target]
    updated = await connector.update_account(target, {"title": "VP Marketing", "timezone": "UTC"})
    after = (await stored(session, small))[target]
    assert after["title"] == "VP Marketing"
    assert after["custom_fields"] == {**before["custom_fields"], "time_zone": "UTC"}
    untouched = set(before) - {"title", "custom_fields"}
    assert {key: after[key] for key in untouched} == {key: before[key] for key in untouched}
    assert updated.raw == after

    await connector.deactivate_account(target)
    final = (await stored(session, small))[target]
    assert final == {**after, "status": "inactive"}
    account = await connector.get_account(target)
    assert account is not None and account.status == "inactive"
    assert account.attributes["active"] is False


async def test_custom_field_keys_the_hub_does_not_know_are_warned_about(
    session: aiohttp.ClientSession, small: str, logs: LogLines
) -> None:
    connector = make(session, small, custom_field_map={"role": "advocate_tier"})
    await connector.update_account("5", {"role": "champion", "custom_fields": {"region": "APAC"}})
    held = (await stored(session, small))["5"]
    assert "advocate_tier" not in held["custom_fields"]  # the hub dropped it without an error
    assert held["custom_fields"]["region"] == "APAC"
    [warning] = logs.named("influitive.custom_fields_ignored")
    assert warning["keys"] == ["advocate_tier"]
    assert warning["advocate"] == "5"
    assert warning["level"] == "warning"


async def test_get_find_and_delete(session: aiohttp.ClientSession, small: str) -> None:
    connector = make(session, small)
    held = await stored(session, small)
    account = await connector.get_account("42")
    assert account is not None and account.raw == held["42"]
    assert await connector.get_account("99999") is None
    assert await connector.get_account("not-a-number") is None

    email = str(held["120"]["email"]).upper()
    found = await connector.find_by_email(email)
    assert found is not None and found.external_id == "120"
    assert await connector.find_by_email("nobody@example.com") is None
    filtered = make(session, small, email_filter_param="email")
    found = await filtered.find_by_email(email)
    assert found is not None and found.external_id == "120"

    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await connector.delete_account("42")
    assert "42" in await stored(session, small)
    await make(session, small, allow_delete=True).delete_account("42")
    assert "42" not in await stored(session, small)
    stats = await sim_get(session, small, "stats")
    assert not any("events" in route["path"] for route in stats["by_route"])


async def test_email_filter_that_the_hub_ignores_falls_back_to_a_scan(
    session: aiohttp.ClientSession, small: str, logs: LogLines
) -> None:
    held = await stored(session, small)
    connector = make(session, small, email_filter_param="q")  # not a filter this hub knows
    found = await connector.find_by_email(str(held["99"]["email"]))
    assert found is not None and found.external_id == "99"
    assert len(logs.named("influitive.email_filter_ignored")) == 1


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_429_storm_ends_in_the_full_listing(
    session: aiohttp.ClientSession, small: str, retry_after: str
) -> None:
    await configure(session, small, rate=40, burst=2, retry_after=retry_after)
    accounts = [account async for account in make(session, small).list_accounts()]
    assert [a.raw for a in accounts] == list((await stored(session, small)).values())
    assert (await sim_get(session, small, "stats"))["throttled"] >= 1


@pytest.mark.parametrize(
    "faults",
    [
        {"server_error_share": 0.4},
        {"timeout_share": 0.3, "timeout_delay": 0.5},
        {"reset_share": 0.4},
        {"malformed_share": 0.4},
    ],
)
async def test_transient_faults_end_in_the_full_listing(
    session: aiohttp.ClientSession, small: str, faults: dict[str, object]
) -> None:
    await configure(session, small, faults=faults)
    connector = make(session, small, retry=PATIENT, timeout=0.15)
    accounts = [account async for account in connector.list_accounts()]
    assert [a.raw for a in accounts] == list((await stored(session, small)).values())
    assert (await sim_get(session, small, "stats"))["requests"] > 7


async def test_a_repeated_page_ends_in_incomplete_listing(
    session: aiohttp.ClientSession, small: str
) -> None:
    await configure(session, small, faults={"repeat_page": 1})
    with pytest.raises(IncompleteListing, match="page 3 repeats an earlier page"):
        [account async for account in make(session, small).list_accounts()]


async def test_a_truncated_listing_is_only_what_the_hub_showed(
    session: aiohttp.ClientSession, small: str
) -> None:
    # No total and no page size: a hub that silently shows fewer advocates looks like a
    # smaller hub. The graph's shrink threshold is what guards this vendor.
    await configure(session, small, faults={"truncate_after": 60})
    accounts = [account async for account in make(session, small).list_accounts()]
    assert [a.external_id for a in accounts] == [str(index) for index in range(1, 61)]


async def test_authentication_failures(session: aiohttp.ClientSession, small: str) -> None:
    with pytest.raises(AuthenticationError, match=r"influitive: GET /api/v1/advocates -> HTTP 401"):
        [account async for account in make(session, small, token="wrong").list_accounts()]
    await configure(session, small, faults={"unauthorized": True})
    with pytest.raises(AuthenticationError):
        await make(session, small).get_account("1")
    assert (await sim_get(session, small, "stats"))["secret_in_url"] == 0


async def test_simulator_rejects_what_the_hub_rejects(
    session: aiohttp.ClientSession, small: str
) -> None:
    auth = {"Authorization": f"Token token={TOKEN}"}
    advocates = f"{small}/api/v1/advocates"

    async def status(method: str, url: str, **kwargs: Any) -> int:
        async with session.request(method, url, **kwargs) as response:
            return response.status

    assert await status("GET", advocates) == 401
    assert await status("GET", advocates, headers={"Authorization": f"Bearer {TOKEN}"}) == 401
    assert (
        await status("GET", advocates, headers={"Authorization": f'Token token="{TOKEN}"'}) == 200
    )
    assert await status("GET", advocates, headers=auth, params={"page": "x"}) == 400
    unwrapped = {"email": "a@example.com", "first_name": "A", "last_name": "B"}
    assert await status("POST", advocates, headers=auth, json=unwrapped) == 400
    assert (
        await status("POST", advocates, headers=auth, json={"advocate": {"email": "a@x.io"}}) == 422
    )
    taken = {**unwrapped, "email": (await stored(session, small))["1"]["email"]}
    assert await status("POST", advocates, headers=auth, json={"advocate": taken}) == 422
    assert (
        await status("PUT", f"{advocates}/1", headers=auth, json={"advocate": {"status": "gone"}})
        == 422
    )
    assert await status("PUT", f"{advocates}/999", headers=auth, json={"advocate": {}}) == 404
