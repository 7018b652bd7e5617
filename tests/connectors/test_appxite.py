"""AppXite: the connector against its simulator on 127.0.0.1."""

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
    VendorHTTPError,
)
from connectors.core.errors import AccountExistsError
from connectors.registry import VENDORS
from connectors.sim import serve
from connectors.vendors.appxite.connector import AppXiteConnector, AppXitePaths
from connectors.vendors.appxite.simulator import IDENTITY_PROVIDERS, ROLES, AppXiteSimulator
from tests.connectors.conftest import FAST_RETRY, configure, sim_get

TOKEN = "tok-AppXite-Bearer-7777"
KEY = "key-Apim-Subscription-5150"
HEADERS = {"Ocp-Apim-Subscription-Key": KEY, "Authorization": f"Bearer {TOKEN}"}
PLATFORM = {"OrganizationIds": ["platform-1"]}
PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)


@pytest.fixture
def simulator() -> AppXiteSimulator:
    """An AppXite simulator with 300 seeded users (not yet serving)."""
    return AppXiteSimulator(users=300, seed=11, token=TOKEN, subscription_key=KEY)


@pytest.fixture
async def url(simulator: AppXiteSimulator) -> AsyncIterator[str]:
    """The simulator's base URL on 127.0.0.1."""
    async with serve(simulator) as base:
        yield base


def make(session: aiohttp.ClientSession, url: str, **settings: Any) -> AppXiteConnector:
    """Build an AppXite connector against a simulator."""
    options: dict[str, Any] = {
        "secrets": {"subscription_key": KEY, "token": TOKEN},
        "scope_id": "platform-1",
        "budget": RateBudget(1000, concurrency=8),
        "retry": FAST_RETRY,
        "timeout": 5.0,
        **settings,
    }
    return AppXiteConnector(name="appxite-test", session=session, base_url=url, **options)


async def sim_users(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every user the simulator holds, by id."""
    return {user["Id"]: user for user in (await sim_get(session, url, "users"))["users"]}


def calls(stats: dict[str, Any], method: str, path: str) -> int:
    """How many requests the simulator answered on one route, not counting its 429s."""
    return sum(
        r["count"]
        for r in stats["by_route"]
        if (r["method"], r["path"]) == (method, path) and r["status"] != 429
    )


def test_registered_and_seeded_deterministically() -> None:
    assert VENDORS["appxite"].connector is AppXiteConnector
    assert VENDORS["appxite"].simulator is AppXiteSimulator
    first, again = AppXiteSimulator(users=200, seed=5), AppXiteSimulator(users=200, seed=5)
    assert first.users == again.users
    assert first.users != AppXiteSimulator(users=200, seed=6).users
    states = [user["State"] for user in first.users.values()]
    assert {"New", "Active", "Blocked"} == set(states)
    assert states.count("Active") > states.count("New") > 0


async def test_listing_10000_users_equals_the_simulator(
    session: aiohttp.ClientSession,
) -> None:
    simulator = AppXiteSimulator(users=10_000, seed=3, token=TOKEN, subscription_key=KEY)
    async with serve(simulator) as base:
        connector = make(session, base)
        accounts = [account async for account in connector.list_accounts()]
        held = (await sim_get(session, base, "users"))["users"]
        stats = await sim_get(session, base, "stats")
    assert [account.raw for account in accounts] == held
    assert len({account.external_id for account in accounts}) == 10_000
    assert calls(stats, "GET", "/v1/users") == 100
    by_state = {user["State"]: user["Id"] for user in held}
    mapped = {a.external_id: (a.status, a.attributes["active"]) for a in accounts}
    assert mapped[by_state["New"]] == ("invited", True)
    assert mapped[by_state["Active"]] == ("active", True)
    assert mapped[by_state["Blocked"]] == ("inactive", False)


async def test_mapping_to_canonical_attributes(
    session: aiohttp.ClientSession, simulator: AppXiteSimulator
) -> None:
    raw = next(iter(simulator.users.values()))
    account = make(session, "http://127.0.0.1:9").to_account(raw)
    assert account.attributes == {
        "email": raw["Email"],
        "given_name": raw["FirstName"],
        "family_name": raw["LastName"],
        "display_name": raw["DisplayName"],
        "title": raw["JobTitle"],
        "company": raw["CompanyName"],
        "locale": raw["Language"],
        "timezone": raw["TimeZone"],
        "role": raw["RoleName"],
        "groups": raw["OrganizationIds"],
        "active": raw["State"] != "Blocked",
    }
    assert account.raw is raw


@pytest.mark.parametrize(
    ("scope_in", "list_users"),
    [("query", "/{version}/users"), ("path", "/{version}/{scope_kind}s/{scope_id}/users")],
)
async def test_customer_scope_lists_only_its_users(
    session: aiohttp.ClientSession,
    url: str,
    simulator: AppXiteSimulator,
    scope_in: str,
    list_users: str,
) -> None:
    connector = make(
        session,
        url,
        scope_kind="customer",
        scope_id="customer-03",
        scope_in=scope_in,
        paths=AppXitePaths(list_users=list_users),
        page_size=7,
    )
    ids = [account.external_id async for account in connector.list_accounts()]
    expected = [i for i, u in simulator.users.items() if u["OrganizationIds"] == ["customer-03"]]
    assert ids == expected
    assert 7 < len(ids) < 300


async def test_bulk_invite_batches_calls_and_users_start_as_new(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make(session, url, invite_batch_size=100)
    wanted = [
        {"email": f"new.{n}@customer-01.example.com", "given_name": f"New{n}", "role": "Member"}
        for n in range(250)
    ]
    accounts = await connector.invite_accounts(wanted)
    stats = await sim_get(session, url, "stats")
    assert calls(stats, "POST", "/v1/users/invite") == 3
    assert [a.email for a in accounts] == [w["email"] for w in wanted]
    assert {(a.status, a.attributes["active"]) for a in accounts} == {("invited", True)}
    held = await sim_users(session, url)
    assert len(held) == 550
    for account in accounts:
        stored = held[account.external_id]
        assert stored["State"] == "New"
        assert stored["RoleId"] == "role-member"  # the role name was resolved to its id
        assert stored["OrganizationIds"] == ["platform-1"]
    listed = {a.external_id: a.status async for a in connector.list_accounts()}
    assert all(listed[a.external_id] == "invited" for a in accounts)


async def test_invites_are_grouped_by_organizations(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make(session, url, invite_batch_size=2, identity_provider_id="idp-entra")
    wanted: list[dict[str, object]] = [
        {"email": "a@x.example.com", "groups": ["customer-02"]},
        {"email": "b@x.example.com"},
        {"email": "c@x.example.com", "groups": ["customer-02"]},
        {"email": "d@x.example.com", "groups": ["customer-02"]},
    ]
    accounts = await connector.invite_accounts(wanted)
    assert [a.attributes["groups"] for a in accounts] == [
        ["customer-02"], ["platform-1"], ["customer-02"], ["customer-02"],
    ]  # fmt: skip
    assert {a.raw["IdentityProviderId"] for a in accounts} == {"idp-entra"}
    stats = await sim_get(session, url, "stats")
    assert calls(stats, "POST", "/v1/users/invite") == 3  # customer-02: 2 + 1, platform: 1


async def test_invite_answered_without_users_is_found_by_listing(
    session: aiohttp.ClientSession,
) -> None:
    simulator = AppXiteSimulator(
        users=30, seed=2, token=TOKEN, subscription_key=KEY, echo_invites=False
    )
    async with serve(simulator) as base:
        connector = make(session, base)
        account = await connector.create_account({"email": "Quiet@Example.com"})
    assert account.email == "Quiet@Example.com"
    assert account.status == "invited"
    assert account.external_id in simulator.users


@pytest.mark.parametrize("update_method", ["PATCH", "PUT"])
async def test_create_update_deactivate_round_trip(
    session: aiohttp.ClientSession, url: str, update_method: str
) -> None:
    connector = make(session, url, update_method=update_method)
    created = await connector.create_account(
        {"email": "rt@customer-01.example.com", "given_name": "Round", "family_name": "Trip"}
    )
    assert created.status == "invited"
    assert (await connector.get_account(created.external_id)) == created

    before = await sim_users(session, url)
    target = next(u for u in before.values() if u["State"] == "Active")
    updated = await connector.update_account(
        target["Id"], {"given_name": "Changed", "title": "CTO", "role": "role-admin"}
    )
    after = (await sim_users(session, url))[target["Id"]]
    changed = {key for key in after if after[key] != target[key]}
    assert changed == {"FirstName", "JobTitle", "RoleId", "RoleName"}
    assert after["PhoneNumber"] == target["PhoneNumber"]  # vendor-only fields survive
    assert after["ExternalReference"] == target["ExternalReference"]
    assert updated.raw == after
    assert updated.attributes["role"] == "Administrator"

    await connector.deactivate_account(target["Id"])
    blocked = await connector.get_account(target["Id"])
    assert blocked is not None
    assert (blocked.status, blocked.attributes["active"]) == ("inactive", False)
    assert {k for k in blocked.raw if blocked.raw[k] != after[k]} == {"State", "IsAccessible"}

    back = await connector.update_account(target["Id"], {"active": True})
    assert back.status == "active"
    assert (await sim_users(session, url))[target["Id"]]["State"] == "Active"
    held = await sim_users(session, url)
    assert all(held[i] == before[i] for i in before if i != target["Id"])


async def test_deactivate_through_patch_on_the_user(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    connector = make(
        session,
        url,
        deactivate_method="PATCH",
        paths=AppXitePaths(user_state="/{version}/users/{id}"),
    )
    new_user = next(i for i, u in simulator.users.items() if u["State"] == "New")
    await connector.deactivate_account(new_user)
    assert simulator.users[new_user]["State"] == "Blocked"
    stats = await sim_get(session, url, "stats")
    assert calls(stats, "PATCH", "/v1/users/{id}") == 1


async def test_roles_identity_providers_get_and_find(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    connector = make(session, url)
    roles = await connector.list_roles()
    assert [(r.id, r.name, r.weight) for r in roles] == [
        (r["Id"], r["Name"], r["Weight"]) for r in ROLES
    ]
    providers = await connector.list_identity_providers()
    assert [(p.id, p.name, p.prefix, p.enabled) for p in providers] == [
        (p["Id"], p["Name"], p["Prefix"], p["Enabled"]) for p in IDENTITY_PROVIDERS
    ]
    assert await connector.get_account("00000000-0000-4000-8000-000000000000") is None
    raw = list(simulator.users.values())[123]
    found = await connector.find_by_email(f"  {str(raw['Email']).upper()} ")
    assert found is not None and found.external_id == raw["Id"]
    assert await connector.find_by_email("nobody@example.com") is None


async def test_delete_is_refused_unless_enabled(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    victim = next(iter(simulator.users))
    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await make(session, url).delete_account(victim)
    assert victim in simulator.users
    await make(session, url, allow_delete=True).delete_account(victim)
    assert victim not in simulator.users


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_a_429_storm_ends_in_the_full_listing(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator, retry_after: str
) -> None:
    await configure(session, url, rate=25, burst=1, retry_after=retry_after)
    ids = [a.external_id async for a in make(session, url).list_accounts()]
    assert ids == list(simulator.users)
    assert (await sim_get(session, url, "stats"))["throttled"] >= 1


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
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator, faults: dict[str, Any]
) -> None:
    await configure(session, url, faults=faults)
    connector = make(session, url, timeout=0.2, retry=PATIENT, page_size=25)
    ids = [a.external_id async for a in connector.list_accounts()]
    assert ids == list(simulator.users)
    assert (await sim_get(session, url, "stats"))["requests"] > 12  # faults were retried


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 0}, "page 2 repeats an earlier page"),
        ({"truncate_after": 130}, "page 2 holds 30 records, 100 expected: cut short"),
    ],
)
async def test_listing_faults_end_in_incomplete_listing(
    session: aiohttp.ClientSession, url: str, faults: dict[str, Any], reason: str
) -> None:
    await configure(session, url, faults=faults)
    with pytest.raises(IncompleteListing) as caught:
        [a async for a in make(session, url).list_accounts()]
    assert caught.value.reason == reason


async def test_no_secret_in_any_url(session: aiohttp.ClientSession, url: str) -> None:
    connector = make(session, url)
    accounts = [a async for a in connector.list_accounts()]
    await connector.create_account({"email": "s@customer-01.example.com"})
    await connector.update_account(accounts[0].external_id, {"locale": "fr-FR"})
    await connector.deactivate_account(accounts[1].external_id)
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 0
    assert stats["query_keys"] == ["page", "pageSize", "platformId"]
    async with session.get(f"{url}/v1/roles?subscription-key={KEY}", headers=HEADERS) as reply:
        assert reply.status == 200
    assert (await sim_get(session, url, "stats"))["secret_in_url"] == 1  # the check can fail


@pytest.mark.parametrize(
    "secrets",
    [{"subscription_key": "wrong", "token": TOKEN}, {"subscription_key": KEY, "token": "wrong"}],
)
async def test_a_wrong_secret_is_an_authentication_error(
    session: aiohttp.ClientSession, url: str, secrets: dict[str, str]
) -> None:
    connector = make(session, url, secrets=secrets)
    with pytest.raises(AuthenticationError, match=r"appxite: GET /v1/users -> HTTP 401"):
        [a async for a in connector.list_accounts()]
    with pytest.raises(ConnectorConfigError, match="subscription_key"):
        make(session, url, secrets={"token": TOKEN})


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("GET", "/v1/users?platformId=platform-1", None, {"Authorization": f"Bearer {TOKEN}"}, 401),
        ("GET", "/v1/users?platformId=platform-1", None, {"Ocp-Apim-Subscription-Key": KEY}, 401),
        ("GET", "/v1/users?platformId=platform-1&page=0", None, HEADERS, 400),
        ("GET", "/v1/users?platformId=platform-1&pageSize=101", None, HEADERS, 400),
        ("GET", "/v1/users?platformId=platform-1&page=two", None, HEADERS, 400),
        ("GET", "/v1/users", None, HEADERS, 400),
        ("GET", "/v1/users?customerId=customer-99", None, HEADERS, 404),
        ("POST", "/v1/users/invite", {"OrganizationIds": ["platform-1"]}, HEADERS, 400),
        ("POST", "/v1/users/invite", {"Users": [{"Email": "z@z.example"}]}, HEADERS, 400),
        (
            "POST",
            "/v1/users/invite",
            {
                "Users": [{"Email": "z@z.example"}, {"Email": "Z@z.example"}],
                "OrganizationIds": ["platform-1"],
            },
            HEADERS,
            400,
        ),
        (
            "POST",
            "/v1/users/invite",
            {
                "Users": [{"Email": "z@z.example", "RoleId": "role-nope"}],
                "OrganizationIds": ["platform-1"],
            },
            HEADERS,
            400,
        ),
    ],
)
async def test_the_simulator_rejects_what_the_vendor_would(
    session: aiohttp.ClientSession,
    url: str,
    method: str,
    path: str,
    body: object,
    headers: dict[str, str],
    status: int,
) -> None:
    async with session.request(method, f"{url}{path}", json=body, headers=headers) as reply:
        assert reply.status == status, await reply.text()


async def test_the_simulator_rejects_duplicates_and_impossible_moves(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    taken = next(iter(simulator.users.values()))
    invite = {"Users": [{"Email": str(taken["Email"]).upper()}], "OrganizationIds": ["platform-1"]}
    async with session.post(f"{url}/v1/users/invite", json=invite, headers=HEADERS) as reply:
        assert reply.status == 409
    connector = make(session, url)
    with pytest.raises(AccountExistsError, match="HTTP 409"):
        await connector.create_account({"email": taken["Email"]})
    other = list(simulator.users.values())[1]
    with pytest.raises(AccountExistsError):
        await connector.update_account(str(other["Id"]), {"email": taken["Email"]})
    with pytest.raises(VendorHTTPError, match="HTTP 400"):
        await connector.update_account(str(other["Id"]), {"role": "no-such-role"})
    assert simulator.users[str(other["Id"])] == other
    new_user = next(i for i, u in simulator.users.items() if u["State"] == "New")
    status_path = f"{url}/v1/users/{new_user}/status"
    async with session.put(status_path, json={"State": "Active"}, headers=HEADERS) as reply:
        assert reply.status == 400  # only the invitee accepts an invitation
    async with session.patch(
        f"{url}/v1/users/{new_user}", json={"CreatedDate": "1999-01-01"}, headers=HEADERS
    ) as reply:
        assert reply.status == 400
    assert simulator.users[new_user]["State"] == "New"
