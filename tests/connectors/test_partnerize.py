"""Partnerize connector against its simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import structlog

from connectors import (
    AuthenticationError,
    IncompleteListing,
    RateBudget,
    RetryPolicy,
    UnsupportedOperation,
    VendorHTTPError,
)
from connectors.sim import serve
from connectors.vendors.partnerize.connector import AuthStyle, PartnerizeConnector
from connectors.vendors.partnerize.simulator import PartnerizeSimulator
from tests.connectors.conftest import FAST_RETRY, LogLines, configure, sim_get

APP_KEY = "appKey-Partnerize-9f3a"
USER_KEY = "userKey-Partnerize-77c1"
PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)


@pytest.fixture
def simulator() -> PartnerizeSimulator:
    """A Partnerize simulator with 1,000 seeded users."""
    return PartnerizeSimulator(users=1000, seed=11, token=f"{APP_KEY}:{USER_KEY}")


@pytest.fixture
async def url(simulator: PartnerizeSimulator) -> AsyncIterator[str]:
    """The simulator's base URL."""
    async with serve(simulator) as base:
        yield base


def connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    auth_style: AuthStyle = "headers",
    keys: tuple[str, str] = (APP_KEY, USER_KEY),
    allow_delete: bool = False,
    retry: RetryPolicy = FAST_RETRY,
    timeout: float = 5.0,
) -> PartnerizeConnector:
    """Build a Partnerize connector against the simulator."""
    return PartnerizeConnector(
        name="partnerize-test",
        session=session,
        base_url=url,
        secrets={"application_key": keys[0], "user_api_key": keys[1]},
        auth_style=auth_style,
        allow_delete=allow_delete,
        budget=RateBudget(1000, concurrency=8),
        retry=retry,
        timeout=timeout,
    )


async def stored(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every user the simulator holds, by id."""
    return {user["user_id"]: user for user in (await sim_get(session, url, "users"))["users"]}


async def test_full_listing_of_10000_users_equals_the_vendor(
    session: aiohttp.ClientSession,
) -> None:
    simulator = PartnerizeSimulator(users=10_000, seed=3, token=f"{APP_KEY}:{USER_KEY}")
    async with serve(simulator) as url:
        accounts = [account async for account in connect(session, url).list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    assert [account.raw for account in accounts] == held
    assert len({account.external_id for account in accounts}) == 10_000
    assert stats["requests"] - stats["throttled"] == 101  # 100 full, 1 empty
    assert stats["query_keys"] == ["count", "page"]
    assert stats["secret_in_url"] == 0
    inactive = next(account for account in accounts if account.status == "inactive")
    assert inactive.attributes["active"] is False


async def test_simulator_rejects_a_count_over_100_and_bad_keys(
    session: aiohttp.ClientSession, url: str
) -> None:
    headers = {"X-Application-Key": APP_KEY, "X-User-Api-Key": USER_KEY}
    async with session.get(f"{url}/user?page=1&count=101", headers=headers) as response:
        assert response.status == 400
    async with session.get(f"{url}/user?page=1&count=100", headers=headers) as response:
        body = await response.json()
        assert response.status == 200 and len(body["users"]) == 100 and body["count"] == 1000
    async with session.get(f"{url}/user", headers={"X-Application-Key": APP_KEY}) as response:
        assert response.status == 401
    # The vendor accepts keys in the query; the stats must then report them.
    query = {"application_key": APP_KEY, "user_api_key": USER_KEY}
    async with session.get(f"{url}/user", params=query) as response:
        assert response.status == 200
    assert (await sim_get(session, url, "stats"))["secret_in_url"] == 1


async def test_put_without_a_merge_resets_omitted_fields(
    session: aiohttp.ClientSession, url: str
) -> None:
    headers = {"X-Application-Key": APP_KEY, "X-User-Api-Key": USER_KEY}
    before = (await stored(session, url))["1001"]
    async with session.put(f"{url}/user/1001", json={"firstname": "Solo"}, headers=headers):
        pass
    after = (await stored(session, url))["1001"]
    assert after["firstname"] == "Solo"
    assert "phone" in before and "phone" not in after
    assert "email" not in after


@pytest.mark.parametrize("auth_style", ["headers", "basic"])
async def test_create_update_deactivate_round_trip(
    session: aiohttp.ClientSession,
    url: str,
    simulator: PartnerizeSimulator,
    auth_style: AuthStyle,
) -> None:
    connector = connect(session, url, auth_style=auth_style)
    created = await connector.create_account(
        {"email": "new.partner@partners.example", "display_name": "Nia Mensah", "role": "admin"}
    )
    assert created.attributes["given_name"] == "Nia"
    assert created.attributes["family_name"] == "Mensah"
    assert created.status == "active"
    assert "password" not in created.raw
    password = simulator.passwords[created.external_id]
    assert len(password) >= 20

    # A vendor-only field set by someone else must survive our writes.
    simulator.users[created.external_id]["phone"] = "+44 1632 960000"
    before = (await stored(session, url))[created.external_id]

    updated = await connector.update_account(created.external_id, {"timezone": "Europe/Paris"})
    assert updated.attributes["timezone"] == "Europe/Paris"
    after = (await stored(session, url))[created.external_id]
    untouched = {key for key in before if key not in ("timezone", "updated_at")}
    assert {key: after[key] for key in untouched} == {key: before[key] for key in untouched}
    assert simulator.passwords[created.external_id] == password

    await connector.deactivate_account(created.external_id)
    final = (await stored(session, url))[created.external_id]
    assert final["status"] == "inactive"
    assert {key: final[key] for key in untouched - {"status"}} == {
        key: after[key] for key in untouched - {"status"}
    }
    assert simulator.auth_seen[auth_style] == 5  # POST, GET+PUT, GET+PUT
    assert set(simulator.auth_seen) == {auth_style}


async def test_create_needs_names_and_email(session: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(Exception, match="needs firstname, lastname"):
        await connect(session, url).create_account({"email": "x@partners.example"})


async def test_generated_password_never_reaches_logs_or_errors(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator, logs: LogLines
) -> None:
    await configure(session, url, faults={"server_error_share": 1.0, "limit": 2})
    connector = connect(session, url, retry=PATIENT)
    created = await connector.create_account(
        {"email": "pw@partners.example", "given_name": "Pat", "family_name": "Word"}
    )
    password = simulator.passwords[created.external_id]
    assert len(logs.named("http.retry")) == 2  # the create was retried and logged
    with pytest.raises(VendorHTTPError) as caught:
        await connector.create_account(
            {"email": "PW@partners.example", "given_name": "Pat", "family_name": "Again"}
        )
    assert caught.value.status == 409
    second = [p for uid, p in simulator.passwords.items() if uid != created.external_id]
    assert second == []  # the rejected create left nothing behind
    structlog.get_logger("test").error("leak", detail=f"pw={password}", exc_info=caught.value)
    assert password not in logs.text
    assert "pw=***" in logs.text
    assert password not in str(caught.value) and password not in repr(created)


async def test_get_find_and_delete(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator
) -> None:
    connector = connect(session, url)
    assert await connector.get_account("999999") is None
    one = await connector.get_account("1007")
    assert one is not None and one.raw == simulator.users["1007"]
    email = str(simulator.users["1200"]["email"]).upper()
    found = await connector.find_by_email(email)
    assert found is not None and found.external_id == "1200"
    assert await connector.find_by_email("nobody@partners.example") is None

    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await connector.delete_account("1007")
    assert "1007" in simulator.users
    await connect(session, url, allow_delete=True).delete_account("1007")
    assert "1007" not in simulator.users
    assert await connector.get_account("1007") is None


async def test_check_credentials(session: aiohttp.ClientSession, url: str) -> None:
    for style in ("headers", "basic"):
        me = await connect(session, url, auth_style=style).check_credentials()  # type: ignore[arg-type]
        assert me.attributes["role"] == "admin"
    for keys in ((APP_KEY, "userKey-wrong-000"), ("appKey-wrong-000", USER_KEY)):
        for style in ("headers", "basic"):
            bad = connect(session, url, auth_style=style, keys=keys)  # type: ignore[arg-type]
            with pytest.raises(AuthenticationError, match="GET /user/self -> HTTP 401"):
                await bad.check_credentials()
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 0 and stats["query_keys"] == []


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_a_429_storm_ends_in_the_full_listing(
    session: aiohttp.ClientSession, retry_after: str
) -> None:
    async with serve(PartnerizeSimulator(users=300, seed=9, token=f"{APP_KEY}:{USER_KEY}")) as url:
        await configure(session, url, rate=40, burst=1, retry_after=retry_after)
        accounts = [account async for account in connect(session, url).list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    assert [account.raw for account in accounts] == held and len(held) == 300
    assert stats["throttled"] >= 1


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
    ids = [account.external_id async for account in connector.list_accounts()]
    assert ids == [str(1000 + index) for index in range(1, 1001)]
    assert (await sim_get(session, url, "stats"))["requests"] > 3


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 0}, "page 2 repeats an earlier page"),
        ({"repeat_page": 1}, "page 3 repeats an earlier page"),
        ({"truncate_after": 130}, "130 records listed, the vendor reports 1000: cut short"),
        ({"truncate_after": 200}, "200 records listed, the vendor reports 1000: cut short"),
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
    assert caught.value.records == len(seen)


async def test_unauthorized_ends_in_an_authentication_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, faults={"unauthorized": True})
    with pytest.raises(AuthenticationError, match="partnerize: GET /user -> HTTP 401"):
        [account async for account in connect(session, url).list_accounts()]
