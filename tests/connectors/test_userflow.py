"""Userflow's own quirks, connector against simulator on 127.0.0.1.

The generic behaviours (listing, 429s, 5xx, timeouts, malformed bodies, 401, paging
loops, writes, lookup before create) are covered for every vendor by the contract suite.
"""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors import (
    ConnectorError,
    UnsupportedOperation,
    VendorHTTPError,
    VendorServerError,
)
from connectors.core.errors import InvalidIdentifierError
from connectors.sim import serve
from connectors.vendors.userflow.connector import UserflowConnector
from connectors.vendors.userflow.simulator import LinkStyle, UserflowSimulator
from tests.connectors.conftest import build_connector, configure, list_served, sim_get

KEY = "uf-live-Secret-5150-abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}", "Userflow-Version": "2020-01-03"}
EVERY_ID = [f"usr_{index:06d}" for index in range(1, 1001)]


@pytest.fixture
def simulator() -> UserflowSimulator:
    """A Userflow simulator with 1,000 seeded users."""
    return UserflowSimulator(users=1000, seed=5, token=KEY)


def connect(session: aiohttp.ClientSession, url: str, **settings: Any) -> UserflowConnector:
    """Build a Userflow connector against the simulator."""
    return build_connector(UserflowConnector, session, url, {"api_key": KEY}, **settings)


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] = HEADERS,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Send one raw request; return its status and decoded JSON body."""
    async with session.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("style", ["path", "absolute"])
async def test_the_listing_follows_path_and_absolute_links_to_the_end(
    session: aiohttp.ClientSession, style: LinkStyle
) -> None:
    simulator = UserflowSimulator(users=2500, seed=2, token=KEY, next_page_url=style)
    accounts, held, stats = await list_served(session, simulator, connect)
    assert [account.raw for account in accounts] == held
    assert stats["requests"] - stats["throttled"] == 25
    assert stats["query_keys"] == ["expand", "limit", "starting_after"]
    assert stats["secret_in_url"] == 0
    assert accounts[0].attributes["groups"] and accounts[0].attributes["active"] is True


@pytest.mark.parametrize("style", ["path", "absolute"])
async def test_next_page_url_repeats_the_query_with_starting_after_last(
    session: aiohttp.ClientSession, style: LinkStyle
) -> None:
    async with serve(UserflowSimulator(users=10, token=KEY, next_page_url=style)) as url:
        prefix = url if style == "absolute" else ""
        query = "starting_after=usr_000002&expand%5B%5D=memberships&expand%5B%5D=groups&limit=2"
        status, body = await call(session, "GET", f"{url}/users?{query}")
        assert status == 200 and body["object"] == "list" and body["has_more"] is True
        assert [user["id"] for user in body["data"]] == ["usr_000003", "usr_000004"]
        assert body["data"][0]["groups"] == [m["group"] for m in body["data"][0]["memberships"]]
        rest = "expand%5B%5D=memberships&expand%5B%5D=groups&limit=2"
        assert body["next_page_url"] == f"{prefix}/users?{rest}&starting_after=usr_000004"

        _, default = await call(session, "GET", f"{url}/users?order_by=created_at")
        assert len(default["data"]) == 10 and default["next_page_url"] is None
        _, small = await call(session, "GET", f"{url}/users?limit=9")
        assert small["next_page_url"] == f"{prefix}/users?limit=9&starting_after=usr_000009"
        assert "memberships" not in small["data"][0]  # only when expanded
        _, last = await call(session, "GET", f"{url}{small['next_page_url'].removeprefix(url)}")
        assert last["has_more"] is False and last["next_page_url"] is None


async def test_refusals_come_in_userflows_error_shape(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    async def refused(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        status, body = await call(session, method, f"{url}{path}", **kwargs)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        return status, body["error"]["code"]

    assert await refused("GET", "/users?limit=101") == (400, "invalid_params")
    assert await refused("GET", "/users?limit=0") == (400, "invalid_params")
    assert await refused("GET", "/users?page=2") == (400, "invalid_params")
    assert await refused("GET", "/users?expand=content") == (400, "invalid_params")
    assert await refused("GET", "/users?sort=up") == (400, "invalid_params")
    assert await refused("GET", "/users?starting_after=usr_999999") == (400, "invalid_params")
    no_version = {"Authorization": f"Bearer {KEY}"}
    assert await refused("GET", "/users", headers=no_version) == (400, "invalid_version")
    old = {**HEADERS, "Userflow-Version": "2019-01-01"}
    assert await refused("GET", "/users", headers=old) == (400, "invalid_version")
    bad_key = {**HEADERS, "Authorization": "Bearer nope-nope"}
    assert await refused("GET", "/users", headers=bad_key) == (401, "unauthorized")
    assert await refused("GET", "/users/usr_999999") == (404, "not_found")
    null_one = next(
        uid
        for uid, user in simulator.users.items()
        if "signed_up_at" not in user["attributes"]  # type: ignore[operator]
    )
    path = f"/users?order_by=signed_up_at&starting_after={null_one}"
    assert await refused("GET", path) == (500, "internal_error")

    def upsert(body: object) -> Any:
        return refused("POST", "/users", json=body)

    by_path = await refused("POST", "/users/usr_000001", json={"attributes": {}})
    assert by_path == (405, "method_not_allowed")  # the reference's path form is not simulated
    assert await upsert({"attributes": {"name": "x"}}) == (400, "invalid_params")  # no id
    assert await upsert({"id": 7}) == (400, "invalid_params")
    assert await upsert({"id": "u-1", "attributes": "x"}) == (400, "invalid_params")
    assert await upsert({"id": "u-1", "status": "inactive"}) == (400, "invalid_params")
    assert await upsert({"id": "u-1", "group_id": "acme"}) == (400, "invalid_params")
    assert await upsert({"id": "u-1", "attributes": {"a": {"b": 1}}}) == (400, "invalid_params")
    assert await upsert({"id": "u-1", "groups": [{"name": "acme"}]}) == (400, "invalid_params")
    both = {"id": "u-1", "groups": [{"id": "g"}], "memberships": [{"group": {"id": "g"}}]}
    assert await upsert(both) == (400, "invalid_params")
    assert await upsert([{"id": "u-1"}]) == (400, "invalid_params")
    text = {**HEADERS, "Content-Type": "text/plain"}
    status = await refused("POST", "/users", data=b'{"id": "u-1"}', headers=text)
    assert status == (415, "unsupported_media")
    assert "u-1" not in simulator.users


async def test_authentication_is_checked_before_the_rate_limit(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=1, burst=1)
    bad_key = {**HEADERS, "Authorization": "Bearer nope-nope"}
    statuses = [(await call(session, "GET", f"{url}/users", headers=bad_key))[0] for _ in range(3)]
    assert statuses == [401, 401, 401]
    throttled = [(await call(session, "GET", f"{url}/users?limit=1"))[0] for _ in range(3)]
    assert 429 in throttled
    async with session.get(f"{url}/users?limit=1", headers=HEADERS) as response:
        assert response.status == 429 and "Retry-After" not in response.headers


async def test_upsert_groups_add_memberships_and_prune_replaces_them(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    first = {"id": "u-9", "groups": [{"id": "acme", "attributes": {"name": "Acme"}}]}
    assert (await call(session, "POST", f"{url}/users", json=first))[0] == 200
    again = {"id": "u-9", "memberships": [{"group": {"id": "globex"}}]}
    _, user = await call(session, "POST", f"{url}/users", json=again)
    assert [m["group"]["id"] for m in user["memberships"]] == ["acme", "globex"]
    pruned = {"id": "u-9", "groups": [{"id": "initech"}], "prune_memberships": True}
    _, user = await call(session, "POST", f"{url}/users", json=pruned)
    assert [m["group"]["id"] for m in user["memberships"]] == ["initech"]
    assert simulator.users["u-9"]["attributes"] == {}


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
    routes = {(r["method"], r["path"]) for r in (await sim_get(session, url, "stats"))["by_route"]}
    assert ("POST", "/users") in routes  # the id travels in the body, as real clients send it


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
    with pytest.raises(InvalidIdentifierError):
        await connect(session, url).create_account({"app_user_id": ".."})
    by_email = connect(session, url, id_attribute="email")
    created = await by_email.create_account({"email": "a+b/c@app.example"})
    assert created.external_id == "a+b/c@app.example" and "a+b/c@app.example" in simulator.users
    fetched = await by_email.get_account("a+b/c@app.example")
    assert fetched is not None and fetched.email == "a+b/c@app.example"


async def test_find_by_email_is_one_filtered_request(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    connector = connect(session, url)
    email = str(simulator.users["usr_000500"]["attributes"]["email"]).title()  # type: ignore[index]
    found = await connector.find_by_email(email)
    assert found is not None and found.external_id == "usr_000500"
    assert await connector.find_by_email("nobody@app.example") is None
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 2 and "email" in stats["query_keys"]


class _FilterIgnoringSimulator(UserflowSimulator):
    """A Userflow that answers an `email` filter with every user."""

    async def handle_list(self, request: web.Request) -> web.Response:
        """List as if no email were given."""
        query = [(key, value) for key, value in request.query.items() if key != "email"]
        return await super().handle_list(request.clone(rel_url=request.rel_url.with_query(query)))


async def test_an_ignored_email_filter_falls_back_to_a_scan(
    session: aiohttp.ClientSession,
) -> None:
    simulator = _FilterIgnoringSimulator(users=250, seed=3, token=KEY)
    last_email = str(simulator.users["usr_000250"]["attributes"]["email"])  # type: ignore[index]
    async with serve(simulator) as url:
        connector = connect(session, url)
        assert await connector.find_by_email("nobody@app.example") is None
        found = await connector.find_by_email(last_email.upper())
        stats = await sim_get(session, url, "stats")
    assert found is not None and found.external_id == "usr_000250"
    assert stats["requests"] - stats["throttled"] == (1 + 3) * 2  # filter, then a full scan


async def test_get_deactivate_and_delete(
    session: aiohttp.ClientSession, url: str, simulator: UserflowSimulator
) -> None:
    connector = connect(session, url)
    assert await connector.get_account("usr_999999") is None
    one = await connector.get_account("usr_000007")
    assert one is not None and one.raw == simulator.users["usr_000007"]

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
