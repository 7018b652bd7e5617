"""Influitive's quirks: connector and simulator on 127.0.0.1 (generic behaviour: test_contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    ConnectorError,
    IncompleteListing,
    UnsupportedOperation,
)
from connectors.sim import serve
from connectors.vendors.influitive.connector import InfluitiveConnector, hub_url
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from tests.connectors.conftest import TOKEN, build_connector, configure, sim_get, throttled_replies

ORG = "org-4711"


def make(session: aiohttp.ClientSession, url: str | None, **settings: Any) -> InfluitiveConnector:
    """Build an Influitive connector (hub generation unless the settings say otherwise)."""
    secrets = {"api_key": settings.pop("token", TOKEN)}
    return build_connector(InfluitiveConnector, session, url, secrets, **settings)


@pytest.fixture
async def hub() -> AsyncIterator[str]:
    """A hub of 130 members (some locked), served."""
    async with serve(InfluitiveSimulator(users=130, seed=11, token=TOKEN)) as url:
        yield url


async def stored(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every member the simulator holds, by id."""
    return {str(user["id"]): user for user in (await sim_get(session, url, "users"))["users"]}


async def raw(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    auth: str = f"Token {TOKEN}",
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """Send one request as a plain HTTP client; return status, decoded body and headers."""
    async with session.request(method, url, headers={"Authorization": auth}, **kwargs) as answer:
        body = await answer.json(content_type=None) if await answer.read() else None
        return answer.status, body, answer.headers


async def test_listing_follows_links_next_and_asks_for_every_status(
    session: aiohttp.ClientSession, hub: str
) -> None:
    await configure(session, hub, rate=None)
    accounts = [account async for account in make(session, hub).list_accounts()]
    held = (await sim_get(session, hub, "users"))["users"]
    assert [account.raw for account in accounts] == held
    locked = [account for account in accounts if account.raw["locked_at"] is not None]
    assert locked and all(not a.attributes["active"] and a.status == "inactive" for a in locked)
    stats = await sim_get(session, hub, "stats")
    assert stats["query_keys"] == ["page", "q[status]"]
    assert stats["requests"] == 6  # 130 members, 25 a page, no empty page at the end
    # Without `q[status]=all` the hub leaves locked members out: they would look deleted.
    status, body, _ = await raw(session, "GET", f"{hub}/contacts?per_page=100&page=2")
    assert status == 200 and body["links"]["next"] is None
    assert len(body["contacts"]) == 30 - len(locked)


async def test_members_map_name_and_custom_fields(session: aiohttp.ClientSession, hub: str) -> None:
    connector = make(session, hub, custom_field_map={"locale": "language"})
    account = await connector.get_account("1")
    assert account is not None
    member = account.raw
    assert account.attributes["given_name"] == member["first_name"]
    assert account.attributes["display_name"] == member["name"]
    assert account.attributes["locale"] == member["custom_fields"]["language"]  # type: ignore[index]
    by_uuid = await connector.get_account(str(member["uuid"]))
    assert by_uuid is not None and by_uuid.raw == member
    assert await connector.get_account("999999") is None


async def test_create_is_a_flat_nominee_with_a_full_name(
    session: aiohttp.ClientSession, hub: str
) -> None:
    connector = make(session, hub)
    created = await connector.create_account(
        {"email": "New.Hire@corp.example", "given_name": "New", "family_name": "Hire van Dam"}
    )
    member = (await stored(session, hub))[created.external_id]
    assert member["name"] == "New Hire van Dam"
    assert (member["first_name"], member["last_name"]) == ("New", "Hire van Dam")
    assert (member["type"], member["source"], member["locked_at"]) == ("Nominee", "syncd", None)
    assert created.attributes["active"] is True
    with pytest.raises(ConnectorError, match="needs an email and a full name"):
        await connector.create_account({"email": "nameless@corp.example"})


async def test_update_patches_the_full_name_and_never_the_email(
    session: aiohttp.ClientSession, hub: str
) -> None:
    connector = make(session, hub)
    before = (await stored(session, hub))["3"]
    updated = await connector.update_account("3", {"given_name": "Renamed", "title": "CTO"})
    after = (await stored(session, hub))["3"]
    assert after["name"] == f"Renamed {before['last_name']}"
    assert (after["title"], after["company"]) == ("CTO", before["company"])
    assert updated.attributes["given_name"] == "Renamed"
    with pytest.raises(UnsupportedOperation, match="cannot change a member's email"):
        await connector.update_account("3", {"email": "other@corp.example"})
    routes = {(r["method"], r["path"]) for r in (await sim_get(session, hub, "stats"))["by_route"]}
    assert ("PUT", "/members/{id}") not in routes


async def test_deactivation_locks_and_reactivation_unlocks(
    session: aiohttp.ClientSession, hub: str
) -> None:
    connector = make(session, hub)
    await connector.deactivate_account("5")
    assert (await stored(session, hub))["5"]["locked_at"] is not None
    account = await connector.get_account("5")
    assert account is not None and account.attributes["active"] is False
    await connector.update_account("5", {"active": True})
    assert (await stored(session, hub))["5"]["locked_at"] is None
    assert connector.capabilities.has_deactivate and not connector.capabilities.has_delete
    with pytest.raises(UnsupportedOperation, match="no delete"):
        await make(session, hub, allow_delete=True).delete_account("5")
    assert "5" in await stored(session, hub)


async def test_lookup_by_email_is_one_request_and_refuses_to_guess(
    session: aiohttp.ClientSession, hub: str
) -> None:
    connector = make(session, hub)
    member = (await stored(session, hub))["7"]
    found = await connector.find_by_email(str(member["email"]).upper())
    assert found is not None and found.external_id == "7"
    assert await connector.find_by_email("nobody@corp.example") is None
    stats = await sim_get(session, hub, "stats")
    assert stats["requests"] == 2 and "email" in stats["query_keys"]
    twin = {**member, "id": 5000, "uuid": "twin"}
    async with session.post(f"{hub}/_sim/users", json=[twin]) as answer:
        assert answer.status == 200
    with pytest.raises(ConnectorError, match="members 7, 5000 share one email"):
        await connector.find_by_email(str(member["email"]))
    assert all(r["path"] != "/events" for r in (await sim_get(session, hub, "stats"))["by_route"])


async def test_the_platform_generation_needs_the_org_header(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(InfluitiveSimulator(users=30, seed=2, token=TOKEN, org_id=ORG)) as url:
        connector = make(session, url, api="platform", org_id=ORG)
        assert len([a async for a in connector.list_accounts()]) == 30
        wrong = make(session, url, api="platform", org_id="org-1")
        with pytest.raises(AuthenticationError, match="HTTP 401"):
            await wrong.get_account("1")
        hub_client = make(session, url)  # the hub generation sends no X_ORG_ID
        with pytest.raises(AuthenticationError):
            await hub_client.get_account("1")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"api": "platform"}, "api = 'platform' needs org_id"),
        ({"api": "platform", "org_id": ORG, "hub": "acme"}, "hub is for api = 'hub'"),
        ({"api": "v1"}, "api must be one of hub, platform"),
        ({"hub": "acme", "advocates_path": "/api/v1/advocates"}, "choose settings.api"),
        ({"hub": "acme", "email_filter_param": "email"}, "advocates_path|email_filter_param"),
        ({"hub": "acme", "org_id": "a b"}, "org_id must be"),
        ({}, "exactly one of base_url, hub"),
    ],
)
async def test_settings_refused_with_one_clear_line(
    session: aiohttp.ClientSession, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConnectorConfigError, match=problem):
        make(session, None, **settings)


async def test_generations_pick_their_roots(session: aiohttp.ClientSession) -> None:
    assert make(session, None, hub="acme").http.resolve_link(f"{hub_url('acme')}/contacts?page=2")
    assert hub_url("acme") == "https://acme.influitive.com/api"
    platform = make(session, None, api="platform", org_id=ORG)
    assert platform.http.resolve_link("https://api.influitive.com/contacts?page=2") == (
        "/contacts",
        {"page": "2"},
    )
    with pytest.raises(TypeError, match="unexpected setting 'colour'"):
        make(session, None, hub="acme", colour="blue")


async def test_401_is_empty_with_the_token_challenge_and_both_token_forms_pass(
    session: aiohttp.ClientSession, hub: str
) -> None:
    status, body, headers = await raw(session, "GET", f"{hub}/members/1", auth="Bearer nope")
    assert (status, body, headers["WWW-Authenticate"]) == (401, None, "Token realm=Api")
    for form in (f"Token {TOKEN}", f'Token token="{TOKEN}"', f"Token token={TOKEN}"):
        status, body, _ = await raw(session, "GET", f"{hub}/members/1", auth=form)
        assert status == 200 and body["id"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        (
            "POST",
            "/members",
            {"email": "a@b.example", "name": "A B", "nick": "x"},
            422,
            "unknown field 'nick'",
        ),
        (
            "POST",
            "/members",
            {"email": "a@b.example", "first_name": "A"},
            422,
            "unknown field 'first_name'",
        ),
        ("POST", "/members", {"email": "a@b.example"}, 422, "missing required field(s): name"),
        ("POST", "/members", {"email": "a@b.example", "name": 7}, 422, "'name' must be a string"),
        (
            "POST",
            "/members",
            {"email": "a@b.example", "name": "A", "type": "Boss"},
            422,
            "'type' must be one of Nominee, Advocate",
        ),
        ("POST", "/members", {"email": "not-an-email", "name": "A"}, 422, "email is invalid"),
        ("PATCH", "/members/1", {"email": "x@y.example"}, 422, "'email' is read-only"),
        ("PATCH", "/members/1", {"match_criteria": "x"}, 422, "'match_criteria' must be an object"),
        ("PATCH", "/members/1", {"member": {"title": "x"}}, 422, "unknown field 'member'"),
        ("GET", "/contacts?per_page=101", None, 400, "per_page must be between 1 and 100"),
        ("GET", "/contacts?q[status]=gone", None, 400, "q[status] must be all, active or locked"),
        ("GET", "/members", None, 400, "email is required"),
        ("GET", "/members/999999", None, 404, "not found"),
    ],
)
async def test_simulator_refuses_what_influitive_refuses(
    session: aiohttp.ClientSession,
    hub: str,
    method: str,
    path: str,
    body: object,
    status: int,
    error: str,
) -> None:
    answer = await raw(session, method, hub + path, json=body)
    assert answer[:2] == (status, {"errors": [error]})


async def test_simulator_refuses_duplicates_non_json_and_missing_verbs(
    session: aiohttp.ClientSession, hub: str
) -> None:
    email = (await stored(session, hub))["1"]["email"]
    taken = await raw(session, "POST", f"{hub}/members", json={"email": email, "name": "A B"})
    assert taken[:2] == (409, {"errors": ["email has already been taken"]})
    form = await raw(session, "POST", f"{hub}/members", data="email=a@b.example")
    assert form[:2] == (415, {"errors": ["Content-Type must be application/json"]})
    for verb in ("PUT", "DELETE"):  # updates are PATCH; there is no delete
        assert (await raw(session, verb, f"{hub}/members/1", json={}))[0] == 405


async def test_throttling_sends_no_retry_after_and_comes_after_auth(
    session: aiohttp.ClientSession, hub: str
) -> None:
    replies = await throttled_replies(
        session, hub, "/members/1", {"Authorization": f"Token {TOKEN}"}
    )
    assert all("Retry-After" not in reply.headers for reply in replies)
    statuses = [reply.status for reply in replies]
    assert statuses[0] == 200 and 429 in statuses
    assert (await raw(session, "GET", f"{hub}/members/1", auth="Token wrong"))[0] == 401


async def test_connection_names_the_generation(session: aiohttp.ClientSession) -> None:
    hub_sim = InfluitiveSimulator(token=TOKEN)
    platform_sim = InfluitiveSimulator(token=TOKEN, org_id=ORG)
    assert hub_sim.connection().settings == {"api": "hub"}
    assert platform_sim.connection().settings == {"api": "platform", "org_id": ORG}
    async with serve(platform_sim) as url:
        link = platform_sim.connection()
        connector = make(session, url, token=link.secrets["api_key"], **link.settings)
        assert await connector.get_account("1") is None  # authorised, and the hub is empty


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"repeat_page": 2}, "page 4 repeats an earlier page"),
        ({"truncate_after": 40}, "an empty page links to a next one"),
    ],
)
async def test_a_links_next_listing_that_loops_or_is_cut_is_incomplete(
    session: aiohttp.ClientSession, hub: str, faults: dict[str, int], reason: str
) -> None:
    await configure(session, hub, faults=faults)
    with pytest.raises(IncompleteListing, match=reason):
        [account async for account in make(session, hub).list_accounts()]
