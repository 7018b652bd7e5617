"""SCIM 2.0 connector against its simulator (scim2-server) on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    IncompleteListing,
    ListingSource,
    StartIndexPaginator,
    UnsupportedOperation,
)
from connectors.core.errors import AccountExistsError
from connectors.sim import serve
from connectors.vendors.scim.connector import (
    ENTERPRISE_SCHEMA,
    PATCH_SCHEMA,
    PreconditionFailedError,
    ScimConnector,
)
from connectors.vendors.scim.filter import equals
from connectors.vendors.scim.simulator import MAX_RESULTS, ScimSimulator
from tests.connectors.conftest import TOKEN, LogLines, build_connector, configure, sim_get

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class RecordingSimulator(ScimSimulator):
    """The SCIM simulator, keeping every request it serves; `meddle` runs before a PATCH."""

    def __init__(self, **kwargs: Any) -> None:
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []
        self.meddle_times = 0
        super().__init__(**kwargs)

    async def handle_scim(self, request: web.Request) -> web.Response:
        """Record the request, change the user first if told to, then serve it."""
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        self.seen.append((request.method, request.path, dict(request.headers), body))
        if request.method == "PATCH" and self.meddle_times > 0:
            self.meddle_times -= 1
            user_id = request.match_info["resource_id"]
            self.users[user_id] = {**self.users[user_id], "nickName": f"x{self.meddle_times}"}
        return await super().handle_scim(request)

    def sent(self, method: str) -> list[tuple[str, dict[str, str], Any]]:
        """Return the path, headers and body of every request with this method."""
        return [(path, headers, body) for m, path, headers, body in self.seen if m == method]


def make(
    session: aiohttp.ClientSession, url: str, token: str = TOKEN, **settings: Any
) -> ScimConnector:
    """Build a SCIM connector against a simulator."""
    return build_connector(ScimConnector, session, url, {"token": token}, **settings)


@pytest.fixture
def simulator() -> RecordingSimulator:
    """A SCIM service provider with 230 seeded users."""
    return RecordingSimulator(users=230, seed=5, token=TOKEN)


async def test_lists_every_user_with_start_index_and_count(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    accounts = [a async for a in make(session, url).list_accounts()]
    assert len(accounts) == 230
    assert len({a.external_id for a in accounts}) == 230
    for account in accounts:
        view = simulator.view(simulator.users[account.external_id])
        assert account.email == view.email
        assert account.status == ("active" if view.active else "inactive")
    assert {a.status for a in accounts} == {"active", "inactive"}
    assert len(simulator.sent("GET")) == 3
    assert (await sim_get(session, url, "stats"))["query_keys"] == ["count", "startIndex"]


async def test_a_server_answering_fewer_than_asked_is_listed_to_the_end(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    connector = make(session, url, page_size=250)
    pages = [len(page) async for page in connector.list_pages()]
    assert pages == [MAX_RESULTS, MAX_RESULTS, 30]
    assert len(simulator.sent("GET")) == 3


async def test_maps_scim_attributes_to_canonical_ones(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    simulator.users["u000001"] = {
        "schemas": [USER, ENTERPRISE_SCHEMA],
        "userName": "jdoe",
        "name": {"givenName": "Jo", "familyName": "Doe"},
        "displayName": "Jo Doe",
        "emails": [
            {"value": "old@corp.example", "type": "home"},
            {"value": "jo.doe@corp.example", "type": "work", "primary": True},
        ],
        "title": "CTO",
        "locale": "nl-NL",
        "timezone": "Europe/Amsterdam",
        "roles": [{"value": "admin", "primary": True}],
        "active": False,
        ENTERPRISE_SCHEMA: {"organization": "Corp"},
    }
    account = await make(session, url).get_account("u000001")
    assert account is not None
    assert account.email == "jo.doe@corp.example"
    assert account.status == "inactive"
    assert account.attributes == {
        "email": "jo.doe@corp.example",
        "given_name": "Jo",
        "family_name": "Doe",
        "display_name": "Jo Doe",
        "title": "CTO",
        "locale": "nl-NL",
        "timezone": "Europe/Amsterdam",
        "company": "Corp",
        "role": "admin",
        "groups": [],
        "active": False,
    }
    assert await make(session, url).get_account("nobody") is None


@pytest.mark.parametrize("page_size", [100, 250])
@pytest.mark.parametrize("fault", [{"truncate_after": 150}, {"repeat_page": 1}])
async def test_a_listing_cut_short_or_repeated_is_incomplete(
    session: aiohttp.ClientSession, url: str, fault: dict[str, int], page_size: int
) -> None:
    await configure(session, url, faults=fault)
    with pytest.raises(IncompleteListing):
        [a async for a in make(session, url, page_size=page_size).list_accounts()]


async def test_a_listing_shifted_by_writes_during_it_is_caught(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    connector = make(session, url)
    with pytest.raises(IncompleteListing, match="seen twice"):
        async with aclosing(connector.list_pages()) as pages:
            async for _ in pages:
                # One user in ahead of the read ones, one out at the end: the total holds
                # and every later user moves one place on (scim2-server sorts by id).
                simulator.add_user(
                    {"schemas": [USER], "id": "u000000", "userName": "early@x.example"}
                )
                del simulator.users["u000230"]


def scripted(*bodies: object) -> ListingSource:
    """A listing whose server answers with these bodies in turn, whatever is asked."""
    answers = iter(bodies)

    async def fetch(path: str, params: Mapping[str, str]) -> object:
        return next(answers)

    return ListingSource(vendor="scim", path="/Users", fetch=fetch, records_key="Resources")


def users(*ids: str) -> list[dict[str, object]]:
    """SCIM users with these ids."""
    return [{"id": user_id, "userName": f"{user_id}@x.example"} for user_id in ids]


@pytest.mark.parametrize(
    ("bodies", "reason"),
    [
        (
            [{"totalResults": 3, "Resources": users("a", "b")}, {"totalResults": 4}],
            "the total changed",
        ),
        (
            [{"totalResults": 3, "Resources": users("a", "b")}, {"totalResults": 3}],
            "unexpected response shape",
        ),
        (
            [
                {"totalResults": 3, "Resources": users("a", "b")},
                {"totalResults": 3, "Resources": []},
            ],
            "empty page",
        ),
        ([{"totalResults": 1, "Resources": users("a", "b")}], "more records than the total"),
        ([{"Resources": users("a")}], "no valid 'totalResults'"),
    ],
)
async def test_start_index_paging_fails_loudly(bodies: list[object], reason: str) -> None:
    with pytest.raises(IncompleteListing, match=reason):
        [page async for page in StartIndexPaginator().pages(scripted(*bodies))]


async def test_start_index_paging_of_nobody_needs_no_resources() -> None:
    source = scripted({"totalResults": 0, "itemsPerPage": 0})
    assert [page async for page in StartIndexPaginator().pages(source)] == []


def test_the_filter_value_is_a_json_string() -> None:
    assert equals("userName", 'a"b\\c@x.example') == 'userName eq "a\\"b\\\\c@x.example"'
    assert equals("userName", "zoë@x.example") == 'userName eq "zoë@x.example"'


async def test_find_by_email_filters_on_user_name_with_escaping(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    tricky = '"a\\"b"@x.example'
    simulator.add_user({"schemas": [USER], "userName": tricky, "emails": [{"value": tricky}]})
    connector = make(session, url)
    found = await connector.find_by_email(tricky.upper())
    assert found is not None and found.email == tricky
    assert await connector.find_by_email('"a\\"b"@x.exampl') is None
    assert await connector.find_by_email('" or userName pr or "') is None
    assert len(simulator.sent("GET")) == 3  # one request each: no listing scan


class FilterIgnoringSimulator(ScimSimulator):
    """A SCIM server that answers a filtered search with everyone, as broken servers do."""

    async def handle_scim(self, request: web.Request) -> web.Response:
        """Serve the request without its filter."""
        unfiltered = request.rel_url.without_query_params("filter")
        return await super().handle_scim(request.clone(rel_url=unfiltered))


async def test_a_server_ignoring_the_filter_is_caught_and_a_scan_decides(
    session: aiohttp.ClientSession, logs: LogLines
) -> None:
    simulator = FilterIgnoringSimulator(users=30, seed=2, token=TOKEN)
    async with serve(simulator) as base:
        connector = make(session, base)
        wanted = simulator.view(simulator.users["u000017"]).email
        assert wanted is not None
        found = await connector.find_by_email(wanted)
        assert found is not None and found.external_id == "u000017"
        assert await connector.find_by_email("nobody@corp.example") is None
    assert len(logs.named("scim.user_name_filter_ignored")) == 2


async def test_create_posts_a_scim_user(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    connector = make(session, url)
    account = await connector.create_account(
        {
            "email": "new.person@corp.example",
            "given_name": "New",
            "family_name": "Person",
            "title": "Analyst",
            "company": "Corp",
            "employee_id": "E777",
            "role": "admin",
        }
    )
    ((path, headers, body),) = simulator.sent("POST")
    assert path == "/Users" and headers["Content-Type"] == "application/scim+json"
    assert body == {
        "schemas": [USER, ENTERPRISE_SCHEMA],
        "userName": "new.person@corp.example",
        "name": {"givenName": "New", "familyName": "Person"},
        "title": "Analyst",
        ENTERPRISE_SCHEMA: {"organization": "Corp"},
        "emails": [{"value": "new.person@corp.example", "type": "work", "primary": True}],
        "active": True,
        "externalId": "E777",
    }
    stored = simulator.users[account.external_id]
    assert (
        simulator.view(stored).email == "new.person@corp.example" and stored["externalId"] == "E777"
    )
    assert "roles" not in stored
    with pytest.raises(AccountExistsError):
        await connector.create_account({"email": "NEW.person@corp.example"})


async def test_update_patches_with_replace_and_remove_under_if_match(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    simulator.users["u000002"] = {
        **simulator.users["u000002"],
        "title": "Old",
        "displayName": "Same",
    }
    version = simulator.users["u000002"]["meta"]["version"]
    account = await make(session, url).update_account(
        "u000002",
        {"given_name": "Renamed", "title": None, "display_name": "Same", "role": "owner"},
    )
    ((path, headers, body),) = simulator.sent("PATCH")
    assert path == "/Users/u000002"
    assert headers["If-Match"] == version
    assert headers["Content-Type"] == "application/scim+json"
    assert body == {
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {"op": "replace", "path": "name.givenName", "value": "Renamed"},
            {"op": "remove", "path": "title"},
        ],
    }
    assert account.attributes["given_name"] == "Renamed" and account.attributes["title"] is None
    stored = simulator.users["u000002"]
    assert stored["name"]["givenName"] == "Renamed" and "title" not in stored
    assert "roles" not in stored


async def test_an_email_change_keeps_the_other_emails(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    simulator.users["u000003"] = {
        **simulator.users["u000003"],
        "emails": [{"value": "alias@corp.example"}, {"value": "a@corp.example", "primary": True}],
    }
    await make(session, url).update_account("u000003", {"email": "b@corp.example"})
    stored = simulator.users["u000003"]
    assert stored["userName"] == "b@corp.example"
    assert stored["emails"] == [
        {"value": "alias@corp.example"},
        {"value": "b@corp.example", "primary": True},
    ]


async def test_a_concurrent_change_is_read_again_and_retried_once(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    simulator.meddle_times = 1
    account = await make(session, url).update_account("u000004", {"title": "Lead"})
    assert account.attributes["title"] == "Lead"
    versions = [headers["If-Match"] for _, headers, _ in simulator.sent("PATCH")]
    assert len(versions) == 2 and versions[0] != versions[1]
    stats = await sim_get(session, url, "stats")
    statuses = {(r["method"], r["status"]) for r in stats["by_route"]}
    assert ("PATCH", 412) in statuses


async def test_a_user_changing_under_every_write_is_a_clear_retryable_error(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    active = next(i for i, u in simulator.users.items() if simulator.view(u).active)
    simulator.meddle_times = 5
    with pytest.raises(PreconditionFailedError, match="changed at the vendor") as caught:
        await make(session, url).deactivate_account(active)
    assert caught.value.retryable
    assert len(simulator.sent("PATCH")) == 2
    assert simulator.view(simulator.users[active]).active is True


async def test_deactivate_sets_active_false_once(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    active = next(i for i, u in simulator.users.items() if simulator.view(u).active)
    connector = make(session, url)
    await connector.deactivate_account(active)
    assert simulator.view(simulator.users[active]).active is False
    ((_, _, body),) = simulator.sent("PATCH")
    assert body["Operations"] == [{"op": "replace", "path": "active", "value": False}]
    await connector.deactivate_account(active)
    assert len(simulator.sent("PATCH")) == 1  # already inactive: nothing sent


async def test_delete_needs_allow_delete(
    session: aiohttp.ClientSession, url: str, simulator: RecordingSimulator
) -> None:
    with pytest.raises(UnsupportedOperation):
        await make(session, url).delete_account("u000006")
    await make(session, url, allow_delete=True).delete_account("u000006")
    assert "u000006" not in simulator.users


async def test_refusals_use_the_scim_error_schema(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(f"{url}/Users", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
        assert await r.json() == {"schemas": [ERROR], "status": "401", "detail": "unauthorized"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"{url}/Users/nobody", headers=auth) as r:
        body = await r.json(content_type=None)
        assert r.status == 404 and body["schemas"] == [ERROR] and body["status"] == "404"
    await configure(session, url, rate=1, burst=1)
    statuses = []
    for _ in range(3):
        async with session.get(f"{url}/Users", headers=auth) as r:
            statuses.append(r.status)
            body = await r.json(content_type=None)
    assert statuses[-1] == 429 and body == {
        "schemas": [ERROR],
        "status": "429",
        "detail": "rate limited",
    }
    with pytest.raises(AuthenticationError):
        await make(session, url, token="wrong-token-123").get_account("u000001")


def test_page_size_is_checked(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConnectorConfigError, match="page_size"):
        make(session, "https://scim.example/v2", page_size=0)


async def test_the_token_never_reaches_a_url(session: aiohttp.ClientSession, url: str) -> None:
    connector = make(session, url)
    [a async for a in connector.list_accounts()]
    with pytest.raises(ValueError, match="secret in a URL"):
        await connector.find_by_email(TOKEN)
    assert (await sim_get(session, url, "stats"))["secret_in_url"] == 0


def test_syncd_sim_serves_scim() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "syncd.cli.main", "sim", "scim",
        "--port", str(port), "--users", "3", "--seed", "1", "--token", TOKEN,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"scim simulator on http://127.0.0.1:{port}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/Users?count=2",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            page = json.load(reply)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert page["totalResults"] == 3 and len(page["Resources"]) == 2
