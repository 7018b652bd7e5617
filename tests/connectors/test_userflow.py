"""Userflow connector against its simulator on 127.0.0.1."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import aiohttp
import pytest

from connectors import (
    AuthenticationError,
    ConnectorError,
    IncompleteListing,
    RateBudget,
    RetryPolicy,
    UnsupportedOperation,
    VendorHTTPError,
    VendorServerError,
)
from connectors.sim import serve
from connectors.vendors.userflow.connector import UserflowConnector
from connectors.vendors.userflow.simulator import UserflowSimulator
from tests.connectors.conftest import FAST_RETRY, configure, sim_get

KEY = "uf-live-Secret-5150-abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}", "Userflow-Version": "2020-01-03"}
PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)
EVERY_ID = [f"usr_{index:06d}" for index in range(1, 1001)]


@pytest.fixture
def simulator() -> UserflowSimulator:
    """A Userflow simulator with 1,000 seeded users."""
    return UserflowSimulator(users=1000, seed=5, token=KEY)


@pytest.fixture
async def url(simulator: UserflowSimulator) -> AsyncIterator[str]:
    """The simulator's base URL."""
    async with serve(simulator) as base:
        yield base


def connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    key: str = KEY,
    allow_delete: bool = False,
    id_attribute: str = "app_user_id",
    order_by: str | None = None,
    retry: RetryPolicy = FAST_RETRY,
    timeout: float = 5.0,
) -> UserflowConnector:
    """Build a Userflow connector against the simulator."""
    return UserflowConnector(
        name="userflow-test",
        session=session,
        base_url=url,
        secrets={"api_key": key},
        allow_delete=allow_delete,
        id_attribute=id_attribute,
        order_by=order_by,
        budget=RateBudget(1000, concurrency=8),
        retry=retry,
        timeout=timeout,
    )


async def test_full_listing_of_10000_users_equals_the_vendor(
    session: aiohttp.ClientSession,
) -> None:
    simulator = UserflowSimulator(users=10_000, seed=2, token=KEY)
    async with serve(simulator) as url:
        accounts = [account async for account in connect(session, url).list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    assert [account.raw for account in accounts] == held
    assert len({account.external_id for account in accounts}) == 10_000
    assert stats["requests"] - stats["throttled"] == 100
    assert stats["query_keys"] == ["expand", "limit", "starting_after"]
    assert stats["secret_in_url"] == 0
    assert accounts[0].attributes["groups"] and accounts[0].attributes["active"] is True


async def test_next_page_url_keeps_the_query_then_adds_the_cursor(
    session: aiohttp.ClientSession, url: str
) -> None:
    query = "limit=2&order_by=created_at&expand=memberships"
    async with session.get(f"{url}/users?{query}", headers=HEADERS) as response:
        body = await response.json()
    assert body["object"] == "list" and body["has_more"] is True
    assert [user["id"] for user in body["data"]] == ["usr_000001", "usr_000002"]
    assert body["next_page_url"] == f"/users?{query}&starting_after=usr_000002"
    async with session.get(f"{url}{body['next_page_url']}", headers=HEADERS) as response:
        following = await response.json()
    assert following["next_page_url"] == f"/users?{query}&starting_after=usr_000004"
    async with session.get(
        f"{url}/users?limit=100&starting_after=usr_000901", headers=HEADERS
    ) as r:
        last = await r.json()
    assert last["has_more"] is False and last["next_page_url"] is None
    assert "memberships" not in last["data"][0]  # only when expanded


async def test_simulator_rejects_what_userflow_rejects(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    async def status(path: str, headers: dict[str, str]) -> int:
        async with session.get(f"{url}{path}", headers=headers) as response:
            return response.status

    assert await status("/users?limit=101", HEADERS) == 400
    assert await status("/users?limit=0", HEADERS) == 400
    assert await status("/users?limit=100", HEADERS) == 200
    assert await status("/users", {"Authorization": f"Bearer {KEY}"}) == 400
    assert await status("/users", {**HEADERS, "Userflow-Version": "2019-01-01"}) == 400
    assert await status("/users", {**HEADERS, "Authorization": "Bearer nope-nope"}) == 401
    assert await status("/users?starting_after=usr_999999", HEADERS) == 400
    null_one = next(
        uid
        for uid, user in simulator.users.items()
        if "signed_up_at" not in user["attributes"]  # type: ignore[operator]
    )
    assert await status(f"/users?order_by=signed_up_at&starting_after={null_one}", HEADERS) == 500
    assert await status("/users?order_by=created_at&starting_after=usr_000010", HEADERS) == 200
    async with session.post(f"{url}/users", json={}, headers=HEADERS) as response:
        assert response.status == 405  # no create without the app's user id


async def test_ordering_by_a_field_that_can_be_null_fails_the_listing(
    session: aiohttp.ClientSession, url: str
) -> None:
    by_created = connect(session, url, order_by="created_at")
    assert [a.external_id async for a in by_created.list_accounts()] == EVERY_ID
    by_title = connect(session, url, order_by="title")  # null on most users
    with pytest.raises(VendorServerError, match="HTTP 500"):
        [account async for account in by_title.list_accounts()]


async def test_create_update_round_trip_keeps_omitted_and_clears_null(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    connector = connect(session, url)
    created = await connector.create_account(
        {
            "app_user_id": "app-42",
            "email": "ines@app.example",
            "given_name": "Ines",
            "title": "CTO",
            "role": "owner",
            "groups": ["ignored"],
        }
    )
    assert created.external_id == "app-42"
    assert created.attributes["title"] == "CTO" and created.attributes["groups"] == []
    # Vendor-only state written by the app itself must survive our writes.
    simulator.users["app-42"]["attributes"]["plan"] = "pro"  # type: ignore[index]
    before = copy.deepcopy(simulator.users["app-42"])

    updated = await connector.update_account("app-42", {"role": "member", "title": None})
    assert updated.attributes["role"] == "member"
    assert updated.attributes["title"] is None
    after = simulator.users["app-42"]
    expected = copy.deepcopy(before)
    expected["attributes"]["role"] = "member"  # type: ignore[index]
    del expected["attributes"]["title"]  # type: ignore[attr-defined]
    assert after == expected


async def test_update_never_creates_a_user(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    with pytest.raises(VendorHTTPError) as caught:
        await connect(session, url).update_account("gone-user", {"role": "member"})
    assert caught.value.status == 404
    assert "gone-user" not in simulator.users


async def test_create_needs_the_app_user_id(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    with pytest.raises(ConnectorError, match="app user id in 'app_user_id'"):
        await connect(session, url).create_account({"email": "no-id@app.example"})
    by_email = connect(session, url, id_attribute="email")
    created = await by_email.create_account({"email": "a+b@app.example"})
    assert created.external_id == "a+b@app.example" and "a+b@app.example" in simulator.users
    fetched = await by_email.get_account("a+b@app.example")
    assert fetched is not None and fetched.email == "a+b@app.example"


async def test_get_find_deactivate_and_delete(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    connector = connect(session, url)
    assert await connector.get_account("usr_999999") is None
    one = await connector.get_account("usr_000007")
    assert one is not None and one.raw == simulator.users["usr_000007"]
    email = str(simulator.users["usr_000500"]["attributes"]["email"]).title()  # type: ignore[index]
    found = await connector.find_by_email(email)
    assert found is not None and found.external_id == "usr_000500"
    assert await connector.find_by_email("nobody@app.example") is None

    with pytest.raises(UnsupportedOperation, match="no deactivate"):
        await connector.deactivate_account("usr_000007")
    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await connector.delete_account("usr_000007")
    assert "usr_000007" in simulator.users

    deleting = connect(session, url, allow_delete=True)
    await deleting.deactivate_account("usr_000007")
    assert "usr_000007" not in simulator.users
    await deleting.delete_account("usr_000008")
    assert await connector.get_account("usr_000008") is None


async def test_bad_key_is_an_authentication_error(session: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(AuthenticationError, match="userflow: GET /users -> HTTP 401"):
        [a async for a in connect(session, url, key="uf-wrong-key-000").list_accounts()]
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 0


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_a_429_storm_ends_in_the_full_listing(
    session: aiohttp.ClientSession, retry_after: str
) -> None:
    async with serve(UserflowSimulator(users=300, seed=9, token=KEY)) as url:
        await configure(session, url, rate=40, burst=1, retry_after=retry_after)
        accounts = [account async for account in connect(session, url).list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    assert [account.raw for account in accounts] == held and len(held) == 300
    assert stats["throttled"] >= 1 and stats["secret_in_url"] == 0


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
    session: aiohttp.ClientSession, url: str, faults: dict[str, object]
) -> None:
    await configure(session, url, faults=faults)
    connector = connect(session, url, retry=PATIENT, timeout=0.15)
    assert [account.external_id async for account in connector.list_accounts()] == EVERY_ID
    assert (await sim_get(session, url, "stats"))["requests"] > 10


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 0}, "page 2 repeats an earlier page"),
        ({"truncate_after": 130}, "an empty page claims more records"),
        ({"truncate_after": 200}, "an empty page claims more records"),
    ],
)
async def test_listing_faults_end_in_incomplete_listing(
    session: aiohttp.ClientSession, url: str, faults: dict[str, object], reason: str
) -> None:
    await configure(session, url, faults=faults)
    seen: list[str] = []
    with pytest.raises(IncompleteListing) as caught:
        async for account in connect(session, url).list_accounts():
            seen.append(account.external_id)
    assert caught.value.reason == reason
    assert caught.value.records == len(seen) < 1000


async def test_unauthorized_fault_ends_in_an_authentication_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, faults={"unauthorized": True})
    with pytest.raises(AuthenticationError):
        [account async for account in connect(session, url).list_accounts()]
