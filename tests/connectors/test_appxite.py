"""AppXite: the connector against its simulator on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    UnsupportedOperation,
    VendorHTTPError,
)
from connectors.core.errors import AccountExistsError
from connectors.registry import VENDORS
from connectors.sim import serve
from connectors.sim.base import SimPerson
from connectors.vendors.appxite.connector import AppXiteConnector, AppXitePaths
from connectors.vendors.appxite.simulator import IDENTITY_PROVIDERS, ROLES, AppXiteSimulator
from tests.connectors.conftest import (
    build_connector,
    configure,
    list_served,
    sim_get,
    throttled_replies,
)

TOKEN = "tok-AppXite-Bearer-7777"
KEY = "key-Apim-Subscription-5150"
HEADERS = {"Ocp-Apim-Subscription-Key": KEY, "Authorization": f"Bearer {TOKEN}"}
PLATFORM = {"OrganizationIds": ["platform-1"]}
PERSON = SimPerson(1, "e-1", "pia@customer-01.example.com", "Pia", "Holm", "Buyer")


@pytest.fixture
def simulator() -> AppXiteSimulator:
    """An AppXite simulator with 300 seeded users (not yet serving)."""
    return AppXiteSimulator(users=300, seed=11, token=TOKEN, subscription_key=KEY)


def make(session: aiohttp.ClientSession, url: str, **settings: Any) -> AppXiteConnector:
    """Build an AppXite connector against a simulator (platform scope unless told otherwise)."""
    settings.setdefault("scope_id", "platform-1")
    secrets = settings.pop("secrets", {"subscription_key": KEY, "token": TOKEN})
    return build_connector(AppXiteConnector, session, url, secrets, **settings)


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
    accounts, held, stats = await list_served(session, simulator, make)
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

    def expected() -> list[str]:
        return [i for i, u in simulator.users.items() if u["OrganizationIds"] == ["customer-03"]]

    ids = [account.external_id async for account in connector.list_accounts()]
    assert ids == expected()
    assert 7 < len(ids) < 300
    # The kept customer listing follows a user who joins and one who leaves.
    joining = next(i for i, u in simulator.users.items() if u["OrganizationIds"] != ["customer-03"])
    simulator.users[joining] = {**simulator.users[joining], "OrganizationIds": ["customer-03"]}
    simulator.users[ids[0]] = {**simulator.users[ids[0]], "OrganizationIds": ["customer-01"]}
    again = [account.external_id async for account in connector.list_accounts()]
    assert again == expected() and joining in again and ids[0] not in again


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


async def test_create_update_deactivate_round_trip(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make(session, url)
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
    stats = await sim_get(session, url, "stats")
    assert calls(stats, "PUT", "/v1/users/{id}") == 1  # read, merge, one PUT
    assert calls(stats, "PUT", "/v1/users/{id}/status") == 2
    assert not [r for r in stats["by_route"] if r["method"] == "PATCH"]


async def test_an_invited_user_can_be_blocked(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    new_user = next(i for i, u in simulator.users.items() if u["State"] == "New")
    await make(session, url).deactivate_account(new_user)
    assert simulator.users[new_user]["State"] == "Blocked"


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


USER = "00000000-0000-4000-8000-000000000001"
PROFILE = {"Email": "p@customer-01.example.com", "FirstName": "Pia"}
INVITE = "/v1/users/invite"
LIST = "/v1/users?platformId=platform-1"
ME = f"/v1/users/{USER}"
STATE = f"{ME}/status"


def invite(*users: dict[str, object], **extra: object) -> dict[str, object]:
    """An invite body for the platform organization."""
    return {"Users": list(users), **PLATFORM, **extra}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", LIST + "&page=0", None, 400, "page must be between 1"),
        ("GET", LIST + "&pageSize=101", None, 400, "pageSize must be between 1 and 100"),
        ("GET", LIST + "&page=two", None, 400, "page must be an integer"),
        ("GET", "/v1/users", None, 400, "exactly one of platformId or customerId"),
        ("GET", "/v1/users?customerId=customer-99", None, 404, "unknown scope"),
        ("PATCH", ME, {"FirstName": "X"}, 405, "Method Not Allowed"),
        ("PATCH", STATE, {"State": "Blocked"}, 405, "Method Not Allowed"),
        ("POST", INVITE, PLATFORM, 400, "missing required field(s): Users"),
        (
            "POST",
            INVITE,
            {"Users": [{"Email": "z@z.example"}]},
            400,
            "missing required field(s): OrganizationIds",
        ),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example"}, SendEmail=True),
            400,
            "unknown field 'SendEmail'",
        ),
        (
            "POST",
            INVITE,
            {"Users": {"Email": "z@z.example"}, **PLATFORM},
            400,
            "'Users' must be an array",
        ),
        ("POST", INVITE, invite(), 400, "Users must be a non-empty array"),
        (
            "POST",
            INVITE,
            {"Users": [{"Email": "z@z.example"}], "OrganizationIds": ["org-x"]},
            400,
            "known organizations",
        ),
        ("POST", INVITE, invite({"FirstName": "Zed"}), 400, "missing required field(s): Email"),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example", "Nickname": "z"}),
            400,
            "unknown field 'Nickname'",
        ),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example", "FirstName": 7}),
            400,
            "'FirstName' must be a string",
        ),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example", "State": "Active"}),
            400,
            "'State' is read-only",
        ),
        ("POST", INVITE, invite({"Email": "not-an-address"}), 400, "valid Email"),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example"}, {"Email": "Z@z.example"}),
            400,
            "invited twice",
        ),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example", "RoleId": "role-nope"}),
            400,
            "unknown RoleId",
        ),
        (
            "POST",
            INVITE,
            invite({"Email": "z@z.example", "IdentityProviderId": "idp-google"}),
            400,
            "disabled IdentityProviderId",
        ),
        ("PUT", ME, {"FirstName": "Pia"}, 400, "missing required field(s): Email"),
        ("PUT", ME, {**PROFILE, "Nickname": "p"}, 400, "unknown field 'Nickname'"),
        ("PUT", ME, {**PROFILE, "LastName": ["P"]}, 400, "'LastName' must be a string"),
        ("PUT", ME, {**PROFILE, "Email": None}, 400, "'Email' may not be null"),
        ("PUT", ME, {**PROFILE, "Id": USER}, 400, "'Id' is read-only"),
        (
            "PUT",
            ME,
            {**PROFILE, "OrganizationIds": ["customer-01"]},
            400,
            "'OrganizationIds' is read-only",
        ),
        ("PUT", STATE, {"State": "Deleted"}, 400, "'State' must be one of Active, Blocked"),
        ("PUT", STATE, {"State": "Blocked", "Reason": "left"}, 400, "unknown field 'Reason'"),
        ("PUT", STATE, {}, 400, "missing required field(s): State"),
        ("GET", "/v1/users/nobody", None, 404, "not found"),
    ],
)
async def test_the_simulator_rejects_what_the_vendor_would_in_the_apim_shape(
    session: aiohttp.ClientSession,
    simulator: AppXiteSimulator,
    url: str,
    method: str,
    path: str,
    body: object,
    status: int,
    message: str,
) -> None:
    before = {i: dict(u) for i, u in simulator.users.items()}
    simulator.users[USER] = simulator.user_for(PERSON)
    before[USER] = dict(simulator.users[USER])
    async with session.request(method, f"{url}{path}", json=body, headers=HEADERS) as reply:
        answer = await reply.json()
        assert (reply.status, reply.content_type) == (status, "application/json"), answer
    assert set(answer) == {"statusCode", "message"}
    assert answer["statusCode"] == status
    assert message in answer["message"]
    assert simulator.users == before  # a refusal changes nothing


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Ocp-Apim-Subscription-Key": KEY},
        {"Ocp-Apim-Subscription-Key": KEY, "Authorization": TOKEN},  # no Bearer scheme
    ],
)
async def test_both_secrets_are_required(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> None:
    async with session.get(f"{url}{LIST}", headers=headers) as reply:
        assert reply.status == 401
        assert await reply.json() == {"statusCode": 401, "message": "unauthorized"}


async def test_writes_must_be_declared_json(session: aiohttp.ClientSession, url: str) -> None:
    body = b'{"Users": [{"Email": "j@z.example"}], "OrganizationIds": ["platform-1"]}'
    plain = {**HEADERS, "Content-Type": "text/plain"}
    async with session.post(f"{url}{INVITE}", data=body, headers=plain) as reply:
        assert reply.status == 415
        assert (await reply.json())["statusCode"] == 415


async def test_a_429_carries_retry_after_and_the_apim_body(
    session: aiohttp.ClientSession, url: str
) -> None:
    replies = await throttled_replies(session, url, "/v1/roles", HEADERS)
    for reply in replies:
        if reply.status == 429:
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.body["statusCode"] == 429
    statuses = [reply.status for reply in replies]
    assert statuses[0] == 200 and 429 in statuses


async def test_authentication_is_checked_before_the_rate_limit(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=1, burst=1)
    wrong = {**HEADERS, "Ocp-Apim-Subscription-Key": "wrong"}
    for _ in range(3):
        async with session.get(f"{url}/v1/roles", headers=wrong) as reply:
            assert reply.status == 401


async def test_the_simulator_rejects_duplicates_and_impossible_moves(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    taken = next(iter(simulator.users.values()))
    body = invite({"Email": str(taken["Email"]).upper()})
    async with session.post(f"{url}{INVITE}", json=body, headers=HEADERS) as reply:
        assert reply.status == 409
        assert (await reply.json())["statusCode"] == 409
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
    assert simulator.users[new_user]["State"] == "New"


async def test_paths_come_from_a_config_table(
    session: aiohttp.ClientSession, url: str, simulator: AppXiteSimulator
) -> None:
    table = {"list_users": "/{version}/customers/{scope_id}/users"}
    connector = make(
        session, url, scope_kind="customer", scope_id="customer-05", scope_in="path", paths=table
    )
    ids = [account.external_id async for account in connector.list_accounts()]
    assert ids == [i for i, u in simulator.users.items() if u["OrganizationIds"] == ["customer-05"]]
    assert ids


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"paths": "/users"}, "paths must be a table of path templates"),
        ({"paths": {"listing": "/users"}}, "paths takes only: list_users, user,"),
        ({"paths": {"user": "/{version}/users/{user_id}"}}, "paths.user must be a path starting"),
        ({"paths": {"invite": "users/invite"}}, "paths.invite must be a path starting with /"),
        ({"paths": {"user": "/{version}/users"}}, "paths.user needs {id}"),
        ({"scope_in": "path"}, "scope_in='path' needs {scope_id} in paths.list_users"),
        ({"scope_kind": "tenant"}, "scope_kind must be platform or customer"),
    ],
)
def test_a_bad_setting_is_a_one_line_config_error(
    session: aiohttp.ClientSession, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        make(session, "http://127.0.0.1:9", **settings)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("removed", ["update_method", "deactivate_method"])
def test_the_patch_settings_are_gone(session: aiohttp.ClientSession, removed: str) -> None:
    with pytest.raises(TypeError, match=removed):  # syncd reports it as a config error
        make(session, "http://127.0.0.1:9", **{removed: "PATCH"})
