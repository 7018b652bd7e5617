"""Thought Industries quirks: two API generations, cursor vs page+total, a strict simulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    IncompleteListing,
    UnsupportedOperation,
)
from connectors.core.errors import AccountExistsError
from connectors.sim import ListingView, serve
from connectors.sim.listing import TokenCursorListing
from connectors.vendors.thought_industries.connector import ThoughtIndustriesConnector
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from tests.connectors.conftest import TOKEN, build_connector, configure, list_served, sim_get

V1_USERS = "/incoming/api/v1/users"
V2_USERS = "/incoming/v2/users"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
VERSIONS = pytest.mark.parametrize("version", ["v2", "v1"])


def make(
    session: aiohttp.ClientSession, url: str, token: str = TOKEN, **settings: Any
) -> ThoughtIndustriesConnector:
    """Build a Thought Industries connector against a simulator."""
    return build_connector(ThoughtIndustriesConnector, session, url, {"api_key": token}, **settings)


@pytest.fixture
async def small() -> AsyncIterator[str]:
    """A tenant of 230 users, served, with no server-side limit (tests of it turn it on)."""
    async with serve(ThoughtIndustriesSimulator(users=230, seed=5, token=TOKEN)) as url:
        async with aiohttp.ClientSession() as session:
            await configure(session, url, rate=None)
        yield url


async def held(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every user the simulator holds, by id."""
    return {str(user["id"]): user for user in (await sim_get(session, url, "users"))["users"]}


async def test_v2_is_the_default_and_pages_by_cursor(session: aiohttp.ClientSession) -> None:
    accounts, users, stats = await list_served(
        session, ThoughtIndustriesSimulator(users=1_050, seed=3, token=TOKEN), make
    )
    assert [account.raw for account in accounts] == users
    assert stats["query_keys"] == ["cursor"]  # the first page has no query at all
    assert {route["path"] for route in stats["by_route"]} == {V2_USERS}
    assert stats["requests"] - stats["throttled"] == 11  # 100 a page, the vendor's size
    assert stats["secret_in_url"] == 0
    inactive = [a for a in accounts if a.raw["active"] is False]
    assert inactive and all(a.status == "inactive" for a in inactive)


async def test_v1_pages_by_page_and_per_page_against_the_total(
    session: aiohttp.ClientSession, small: str
) -> None:
    accounts = [a async for a in make(session, small, api_version="v1").list_accounts()]
    assert [a.raw for a in accounts] == list((await held(session, small)).values())
    stats = await sim_get(session, small, "stats")
    assert stats["query_keys"] == ["page", "per_page"]
    assert {route["path"] for route in stats["by_route"]} == {V1_USERS}


async def test_each_generation_takes_only_its_own_credentials(
    session: aiohttp.ClientSession, small: str
) -> None:
    with pytest.raises(AuthenticationError, match=rf"GET {V1_USERS}/x -> HTTP 401"):
        await make(session, small, api_version="v1", auth_style="bearer").get_account("x")
    with pytest.raises(AuthenticationError, match=rf"GET {V2_USERS}/x -> HTTP 401"):
        await make(session, small, auth_style="api_key").get_account("x")


@VERSIONS
async def test_create_update_deactivate_round_trip_keeps_untouched_fields(
    session: aiohttp.ClientSession, small: str, version: str
) -> None:
    connector = make(session, small, api_version=version)
    created = await connector.create_account(
        {"email": "new.learner@example.com", "given_name": "New", "locale": "de", "title": "CTO"}
    )
    stored = (await held(session, small))[created.external_id]
    assert created.raw == stored
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
    async with session.put(f"{small}{V2_USERS}/{target}", json=body, headers=BEARER) as response:
        assert response.status == 200
        assert (await response.json())["firstName"] == "Only"  # v2 answers a bare user
    after = (await held(session, small))[target]
    assert not {"ssoId", "customFields", "lastName"} & set(after)
    assert after["createdAt"] == before["createdAt"]


@VERSIONS
async def test_duplicate_email_on_create_is_account_exists(
    session: aiohttp.ClientSession, small: str, version: str
) -> None:
    email = next(iter((await held(session, small)).values()))["email"]
    with pytest.raises(AccountExistsError, match="HTTP 409"):
        await make(session, small, api_version=version).create_account(
            {"email": email.upper(), "given_name": "X"}
        )
    assert len(await held(session, small)) == 230


@pytest.mark.parametrize(("version", "lookup_key"), [("v2", None), ("v1", "email")])
async def test_lookup_by_email_is_one_request(
    session: aiohttp.ClientSession, small: str, version: str, lookup_key: str | None
) -> None:
    connector = make(session, small, api_version=version)
    some_id, some = list((await held(session, small)).items())[200]
    found = await connector.find_by_email(f"  {str(some['email']).upper()} ")
    assert found is not None and found.external_id == some_id
    assert await connector.find_by_email("nobody@example.com") is None
    stats = await sim_get(session, small, "stats")
    assert stats["requests"] == 2  # no listing scan
    if lookup_key is None:  # v2: `GET /users/{email}`, as public v2 clients do
        assert stats["query_keys"] == []
        assert {r["path"] for r in stats["by_route"]} == {f"{V2_USERS}/{{id}}"}
    else:
        assert lookup_key in stats["query_keys"]


async def test_v2_lookup_answered_with_another_email_falls_back_to_a_scan(
    session: aiohttp.ClientSession, small: str
) -> None:
    # The id of one user is another person's address: the path lookup finds the wrong user.
    decoy = {"id": "real.person@example.com", "email": "someone.else@example.com"}
    async with session.post(f"{small}/_sim/users", json={"users": [decoy]}) as response:
        assert response.status == 200
    connector = make(session, small)
    assert await connector.find_by_email("real.person@example.com") is None
    stats = await sim_get(session, small, "stats")
    assert {r["path"] for r in stats["by_route"]} == {V2_USERS, f"{V2_USERS}/{{id}}"}


async def test_delete_only_when_allowed(session: aiohttp.ClientSession, small: str) -> None:
    some_id = next(iter(await held(session, small)))
    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await make(session, small).delete_account(some_id)
    assert some_id in await held(session, small)
    await make(session, small, allow_delete=True).delete_account(some_id)
    assert some_id not in await held(session, small)


@pytest.mark.parametrize(
    ("version", "faults", "reason"),
    [
        ("v2", {"repeat_page": 0}, "page 2 repeats an earlier page"),
        ("v1", {"repeat_page": 0}, "page 2 repeats an earlier page"),
        ("v1", {"truncate_after": 130}, "page 2 holds 30 records, 100 expected: cut short"),
    ],
)
async def test_listing_faults_end_in_incomplete_listing(
    session: aiohttp.ClientSession,
    small: str,
    version: str,
    faults: dict[str, object],
    reason: str,
) -> None:
    await configure(session, small, faults=faults)
    with pytest.raises(IncompleteListing, match=reason):
        [account async for account in make(session, small, api_version=version).list_accounts()]


@dataclass(frozen=True, kw_only=True)
class PageInfoSays(TokenCursorListing):
    """v2 pages whose `pageInfo` is replaced by what a test wants it to say."""

    info: dict[str, object] = field(default_factory=dict)

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return the real page with this `pageInfo`."""
        body = super().respond(request, view)
        assert isinstance(body, dict)
        return {**body, "pageInfo": self.info}


@pytest.mark.parametrize(
    ("users", "info", "reason"),
    [
        (230, {}, "response has no valid pageInfo.hasMore"),
        (230, {"hasMore": "yes", "cursor": "x"}, "response has no valid pageInfo.hasMore"),
        (230, {"hasMore": True}, "more records but no pageInfo.cursor"),
        (0, {"hasMore": True, "cursor": "x"}, "an empty page claims more records"),
    ],
)
async def test_v2_page_info_that_cannot_be_trusted_is_an_incomplete_listing(
    session: aiohttp.ClientSession, users: int, info: dict[str, object], reason: str
) -> None:
    broken = type(
        "BrokenPageInfo", (ThoughtIndustriesSimulator,), {"listing": PageInfoSays(info=info)}
    )
    async with serve(broken(users=users, seed=1, token=TOKEN)) as url:
        with pytest.raises(IncompleteListing, match=reason):
            [account async for account in make(session, url).list_accounts()]


def test_settings_are_checked(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConnectorConfigError, match="page_size is a v1 setting"):
        make(session, "http://127.0.0.1:1", page_size=50)
    with pytest.raises(ConnectorConfigError, match="page_size"):
        make(session, "http://127.0.0.1:1", api_version="v1", page_size=101)
    with pytest.raises(ConnectorConfigError, match="api_version must be v1 or v2"):
        make(session, "http://127.0.0.1:1", api_version="v3")
    with pytest.raises(ConnectorConfigError, match="exactly one"):
        make(session, "http://127.0.0.1:1", subdomain="acme")
    connector = ThoughtIndustriesConnector(
        name="ti", session=session, subdomain="acme", secrets={"api_key": TOKEN}
    )
    assert connector.users_path == V2_USERS and connector.auth_style == "bearer"
    assert connector.capabilities.put_replaces_object and connector.capabilities.email_filter
    v1 = make(session, "http://127.0.0.1:1", api_version="v1", page_size=50)
    assert (v1.users_path, v1.auth_style, v1.page_size) == (V1_USERS, "api_key", 50)


async def refusal(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, object]:
    """Send one request; return its status and JSON body."""
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


def errors(message: str, code: str = "invalid") -> dict[str, object]:
    """The vendor's error body."""
    return {"errors": [{"message": message, "code": code}]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"email": "a@example.com", "nickname": "x"}, 422, "unknown field 'nickname'"),
        ({"email": "a@example.com", "active": "no"}, 422, "'active' must be a boolean"),
        ({"email": "a@example.com", "role": "owner"}, 422, "'role' must be one of"),
        ({"email": "a@example.com", "groups": [1]}, 422, "groups must be a list of group ids"),
        ({"email": "a@example.com", "id": "x"}, 422, "'id' is read-only"),
        ({"email": "not-an-email"}, 422, "email is invalid"),
        ({"firstName": "No Email"}, 422, "missing required field(s): email"),
        ({"user": {"email": "w@example.com"}}, 422, "unknown field 'user'"),
        ([{"email": "a@example.com"}], 400, "expected a JSON object"),
    ],
)
async def test_simulator_refuses_bad_write_bodies(
    session: aiohttp.ClientSession, small: str, body: object, status: int, message: str
) -> None:
    url = f"{small}{V2_USERS}"
    got_status, got = await refusal(session, "POST", url, json=body, headers=BEARER)
    assert got_status == status
    assert isinstance(got, dict) and got["errors"][0]["message"].startswith(message)
    assert len(await held(session, small)) == 230


async def test_simulator_refuses_bad_requests_in_the_vendor_shape(
    session: aiohttp.ClientSession, small: str
) -> None:
    v1, v2 = f"{small}{V1_USERS}", f"{small}{V2_USERS}"
    key = {"X-API-Key": TOKEN}
    assert await refusal(session, "GET", v2) == (401, errors("unauthorized", "unauthorized"))
    assert (await refusal(session, "GET", v1, params={"apiKey": TOKEN}))[0] == 200  # documented
    assert await refusal(session, "GET", v1, headers=key, params={"per_page": "101"}) == (
        400,
        errors("per_page must be between 1 and 100"),
    )
    assert (await refusal(session, "GET", v1, headers=key, params={"page": "0"}))[0] == 400
    assert await refusal(session, "GET", v2, headers=BEARER, params={"cursor": "bogus"}) == (
        400,
        errors("invalid cursor"),
    )
    assert await refusal(session, "POST", v2, headers=BEARER, data="{}") == (
        415,
        errors("Content-Type must be application/json", "unsupported_media"),
    )
    malformed = {**BEARER, "Content-Type": "application/json"}
    assert await refusal(session, "POST", v2, headers=malformed, data="{") == (
        400,
        errors("malformed JSON", "malformed"),
    )
    assert await refusal(session, "GET", f"{v2}/nope", headers=BEARER) == (
        404,
        errors("user not found", "not_found"),
    )
    assert (await refusal(session, "PATCH", f"{v2}/nope", headers=BEARER, json={}))[0] == 405
    some = next(iter((await held(session, small)).values()))
    assert (await refusal(session, "GET", f"{v1}/{some['email']}", headers=key))[0] == 404


async def test_rate_limit_headers_and_retry_after_follow_auth(
    session: aiohttp.ClientSession, small: str
) -> None:
    await configure(session, small, rate=1, burst=2)
    url = f"{small}{V2_USERS}"
    async with session.get(url, headers=BEARER) as response:
        assert response.status == 200
        headers = response.headers
        assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("2", "1")
        assert time.time() - 1 <= int(headers["X-RateLimit-Reset"]) <= time.time() + 3
        assert "Retry-After" not in headers
    async with session.get(url, headers=BEARER) as response:
        assert response.status == 200 and response.headers["X-RateLimit-Remaining"] == "0"
    async with session.get(url) as response:
        assert response.status == 401  # authentication is checked before the limit
    async with session.get(url, headers=BEARER) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert await response.json() == errors("rate limited", "rate_limited")
