"""Thought Industries connector against its simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    IncompleteListing,
    RateBudget,
    RetryPolicy,
    UnsupportedOperation,
)
from connectors.core.errors import AccountExistsError
from connectors.sim import serve
from connectors.vendors.thought_industries.connector import ThoughtIndustriesConnector
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from tests.connectors.conftest import FAST_RETRY, TOKEN, LogLines, configure, sim_get

PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)
V1_USERS = "/incoming/api/v1/users"


def make(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str = TOKEN,
    retry: RetryPolicy = FAST_RETRY,
    timeout: float = 5.0,
    **settings: Any,
) -> ThoughtIndustriesConnector:
    """Build a Thought Industries connector against a simulator."""
    return ThoughtIndustriesConnector(
        name="ti-test",
        session=session,
        base_url=url,
        secrets={"api_key": token},
        budget=RateBudget(1000, concurrency=8),
        retry=retry,
        timeout=timeout,
        **settings,
    )


@pytest.fixture
async def small() -> AsyncIterator[str]:
    """A tenant of 230 users, served."""
    async with serve(ThoughtIndustriesSimulator(users=230, seed=5, token=TOKEN)) as url:
        yield url


async def held(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every user the simulator holds, by id."""
    return {str(user["id"]): user for user in (await sim_get(session, url, "users"))["users"]}


async def test_full_listing_of_10000_equals_the_tenant(session: aiohttp.ClientSession) -> None:
    async with serve(ThoughtIndustriesSimulator(users=10_000, seed=3, token=TOKEN)) as url:
        accounts = [account async for account in make(session, url).list_accounts()]
        users = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    assert len(accounts) == 10_000
    assert [account.raw for account in accounts] == users
    assert stats["query_keys"] == ["page", "per_page"]
    assert stats["secret_in_url"] == 0
    assert stats["requests"] - stats["throttled"] == 100
    inactive = [a for a in accounts if a.raw["active"] is False]
    assert inactive and all(a.status == "inactive" for a in inactive)
    assert accounts[0].attributes["locale"] == accounts[0].raw["language"]


async def test_v2_with_bearer_lists_the_same_users(
    session: aiohttp.ClientSession, small: str
) -> None:
    connector = make(session, small, api_version="v2", page_size=25)
    accounts = [account async for account in connector.list_accounts()]
    assert [a.raw for a in accounts] == list((await held(session, small)).values())
    stats = await sim_get(session, small, "stats")
    assert {route["path"] for route in stats["by_route"]} == {"/incoming/v2/users"}
    with pytest.raises(AuthenticationError):  # v1 does not take a Bearer token
        await make(session, small, auth_style="bearer").get_account("x")


async def test_create_update_deactivate_round_trip_keeps_untouched_fields(
    session: aiohttp.ClientSession, small: str
) -> None:
    connector = make(session, small)
    created = await connector.create_account(
        {"email": "new.learner@example.com", "given_name": "New", "locale": "de", "title": "CTO"}
    )
    stored = (await held(session, small))[created.external_id]
    assert stored["firstName"] == "New" and stored["language"] == "de"
    assert stored["active"] is True and "title" not in stored

    target = next(iter(await held(session, small)))
    before = (await held(session, small))[target]
    updated = await connector.update_account(
        target, {"family_name": "Changed", "custom_fields": {"cohort": 99}}
    )
    after = (await held(session, small))[target]
    assert after["lastName"] == "Changed"
    assert after["customFields"] == {**before["customFields"], "cohort": 99}
    untouched = set(before) - {"lastName", "customFields", "updatedAt"}
    assert {key: after[key] for key in untouched} == {key: before[key] for key in untouched}
    assert after["updatedAt"] != before["updatedAt"]
    assert updated.raw == after

    await connector.deactivate_account(target)
    final = (await held(session, small))[target]
    assert final == {**after, "active": False, "updatedAt": final["updatedAt"]}
    account = await connector.get_account(target)
    assert account is not None and account.status == "inactive"


async def test_put_replaces_so_a_partial_body_would_have_lost_fields(
    session: aiohttp.ClientSession, small: str
) -> None:
    target, before = next(iter((await held(session, small)).items()))
    body = {"email": before["email"], "firstName": "Only"}
    async with session.put(
        f"{small}{V1_USERS}/{target}", json=body, headers={"X-API-Key": TOKEN}
    ) as response:
        assert response.status == 200
    after = (await held(session, small))[target]
    assert "ssoId" not in after and "customFields" not in after and "lastName" not in after
    assert after["createdAt"] == before["createdAt"]


async def test_duplicate_email_on_create_is_account_exists(
    session: aiohttp.ClientSession, small: str
) -> None:
    email = next(iter((await held(session, small)).values()))["email"]
    with pytest.raises(AccountExistsError, match="HTTP 409"):
        await make(session, small).create_account({"email": email.upper(), "given_name": "X"})
    assert len(await held(session, small)) == 230


async def test_get_find_and_delete(session: aiohttp.ClientSession, small: str) -> None:
    connector = make(session, small)
    users = await held(session, small)
    some_id, some = list(users.items())[200]
    account = await connector.get_account(some_id)
    assert account is not None and account.raw == some
    assert await connector.get_account("no-such-user") is None

    found = await connector.find_by_email(f"  {str(some['email']).upper()} ")
    assert found is not None and found.external_id == some_id
    assert await connector.find_by_email("nobody@example.com") is None
    stats = await sim_get(session, small, "stats")
    assert "email" in stats["query_keys"]
    assert stats["requests"] == 4  # one request per lookup: no listing scan

    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await connector.delete_account(some_id)
    assert some_id in await held(session, small)
    await make(session, small, allow_delete=True).delete_account(some_id)
    assert some_id not in await held(session, small)


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_429_storm_ends_in_the_full_listing(
    session: aiohttp.ClientSession, small: str, retry_after: str
) -> None:
    await configure(session, small, rate=40, burst=2, retry_after=retry_after)
    connector = make(session, small, page_size=20)
    accounts = [account async for account in connector.list_accounts()]
    assert [a.raw for a in accounts] == list((await held(session, small)).values())
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
    connector = make(session, small, retry=PATIENT, timeout=0.15, page_size=25)
    accounts = [account async for account in connector.list_accounts()]
    assert [a.raw for a in accounts] == list((await held(session, small)).values())
    assert (await sim_get(session, small, "stats"))["requests"] > 10


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 0}, "page 2 repeats an earlier page"),
        ({"truncate_after": 130}, "page 2 holds 30 records, 100 expected: cut short"),
        ({"truncate_after": 200}, "page 3 holds 0 records, 30 expected: cut short"),
    ],
)
async def test_listing_faults_end_in_incomplete_listing(
    session: aiohttp.ClientSession, small: str, faults: dict[str, object], reason: str
) -> None:
    await configure(session, small, faults=faults)
    with pytest.raises(IncompleteListing, match=reason):
        [account async for account in make(session, small).list_accounts()]


async def test_authentication_failures(
    session: aiohttp.ClientSession, small: str, logs: LogLines
) -> None:
    with pytest.raises(AuthenticationError, match=rf"GET {V1_USERS} -> HTTP 401"):
        [account async for account in make(session, small, token="wrong").list_accounts()]
    await configure(session, small, faults={"unauthorized": True})
    with pytest.raises(AuthenticationError):
        await make(session, small).find_by_email("a@example.com")
    stats = await sim_get(session, small, "stats")
    assert stats["secret_in_url"] == 0 and "apiKey" not in stats["query_keys"]
    assert TOKEN not in logs.text


def test_settings_are_checked(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConnectorConfigError, match="page_size"):
        make(session, "http://127.0.0.1:1", page_size=101)
    with pytest.raises(ConnectorConfigError, match="exactly one"):
        make(session, "http://127.0.0.1:1", subdomain="acme")
    connector = ThoughtIndustriesConnector(
        name="ti", session=session, subdomain="acme", secrets={"api_key": TOKEN}
    )
    assert connector.users_path == V1_USERS
    assert connector.capabilities.put_replaces_object and connector.capabilities.email_filter


async def test_simulator_rejects_what_the_vendor_rejects(
    session: aiohttp.ClientSession, small: str
) -> None:
    auth = {"X-API-Key": TOKEN}
    users = f"{small}{V1_USERS}"

    async def status(method: str, url: str, **kwargs: Any) -> int:
        async with session.request(method, url, **kwargs) as response:
            return response.status

    assert await status("GET", users) == 401
    assert await status("GET", users, params={"apiKey": TOKEN}) == 200  # documented, never used
    assert await status("GET", users, headers=auth, params={"per_page": "101"}) == 400
    assert await status("GET", users, headers=auth, params={"per_page": "0"}) == 400
    assert await status("GET", users, headers=auth, params={"page": "0"}) == 400
    assert await status("GET", users, headers=auth, params={"page": "two"}) == 400
    wrapped = {"user": {"email": "w@example.com"}}
    assert await status("POST", users, headers=auth, json=wrapped) == 422
    assert await status("POST", users, headers=auth, json={"firstName": "No Email"}) == 422
    assert await status("PUT", f"{users}/nope", headers=auth, json={"email": "a@b.io"}) == 404
    assert await status("PATCH", f"{users}/nope", headers=auth, json={}) == 405
