"""A SCIM client written from RFC 7644 alone (not from our connector) against the simulator.

Every request below is one the RFC shows: discovery (§4), listing with startIndex/count
(§3.4.2.4), a userName filter (§3.4.2.2), create (§3.3), PATCH (§3.5.2) with If-Match
(§3.14), deactivation with `active` (RFC 7643 §4.1.1), delete (§3.6) and errors (§3.12).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from connectors.sim import serve
from connectors.vendors.scim.simulator import ScimSimulator
from tests.connectors.probe import PlainClient

TOKEN = "probe-token-7644"
SCIM = "application/scim+json"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": SCIM}


class Probe(PlainClient):
    """The smallest RFC 7644 client: Bearer token, SCIM media type, JSON bodies."""

    async def call(
        self, method: str, path: str, *, body: Any = None, **kwargs: Any
    ) -> tuple[int, CIMultiDict[str], Any]:
        """Send one request; return the status, headers (any case) and decoded body."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if body is not None:
            headers["Content-Type"] = SCIM
        async with self.session.request(
            method, self.base + path, json=body, headers=headers, **kwargs
        ) as response:
            text = await response.text()
            decoded = await response.json(content_type=None) if text else None
            return response.status, CIMultiDict(response.headers), decoded


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    """A probe against a simulator of 57 users, at the `/v2` SCIM root."""
    simulator = ScimSimulator(users=57, seed=11, token=TOKEN)
    async with serve(simulator) as url, aiohttp.ClientSession() as session:
        yield Probe(session, f"{url}/v2", HEADERS)


async def test_discovery_announces_patch_filter_and_etags(probe: Probe) -> None:
    status, _, config = await probe.call("GET", "/ServiceProviderConfig")
    assert status == 200
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert config["etag"]["supported"]
    status, _, types = await probe.call("GET", "/ResourceTypes")
    assert status == 200 and "/Users" in {t["endpoint"] for t in types["Resources"]}


async def test_paging_by_start_index_and_count_reaches_every_user(probe: Probe) -> None:
    ids: list[str] = []
    start = 1
    while True:
        status, headers, page = await probe.call(
            "GET", "/Users", params={"startIndex": str(start), "count": "20"}
        )
        assert status == 200 and headers["Content-Type"].startswith(SCIM)
        assert page["schemas"] == [LIST] and page["startIndex"] == start
        resources = page.get("Resources", [])
        assert page["itemsPerPage"] == len(resources)
        ids += [user["id"] for user in resources]
        start += len(resources)
        if not resources or start > page["totalResults"]:
            break
    assert len(ids) == len(set(ids)) == 57


async def test_a_count_past_the_maximum_is_answered_with_fewer(probe: Probe) -> None:
    _, _, page = await probe.call("GET", "/Users", params={"count": "5000"})
    assert page["totalResults"] == 57 and page["itemsPerPage"] == len(page["Resources"]) == 57
    async with serve(ScimSimulator(users=150, seed=1, token=TOKEN)) as url:
        big = Probe(probe.session, url, HEADERS)
        _, _, page = await big.call("GET", "/Users", params={"count": "5000"})
    assert page["totalResults"] == 150 and page["itemsPerPage"] < 150


async def test_user_lifecycle_create_filter_patch_deactivate_delete(probe: Probe) -> None:
    user = {
        "schemas": [USER],
        "userName": "rfc.probe@example.com",
        "name": {"givenName": "Rfc", "familyName": "Probe"},
        "emails": [{"value": "rfc.probe@example.com", "type": "work", "primary": True}],
        "active": True,
    }
    status, headers, created = await probe.call("POST", "/Users", body=user)
    assert status == 201 and created["id"] and headers["Location"].endswith(created["id"])
    etag = headers["ETag"]
    assert etag == created["meta"]["version"]

    status, _, again = await probe.call("POST", "/Users", body=user)
    assert status == 409 and again["schemas"] == [ERROR] and again["scimType"] == "uniqueness"

    status, _, found = await probe.call(
        "GET", "/Users", params={"filter": 'userName eq "RFC.Probe@example.com"'}
    )
    assert status == 200 and [u["id"] for u in found["Resources"]] == [created["id"]]

    one = f"/Users/{created['id']}"
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": "Renamed"}],
    }
    status, headers, _ = await probe.call("PATCH", one, body=rename, headers={"If-Match": etag})
    assert status in (200, 204) and headers["ETag"] != etag
    status, _, stale = await probe.call("PATCH", one, body=rename, headers={"If-Match": etag})
    assert status == 412 and stale["schemas"] == [ERROR] and stale["status"] == "412"

    off = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    status, _, _ = await probe.call("PATCH", one, body=off)
    assert status in (200, 204)
    status, _, read = await probe.call("GET", one)
    assert read["active"] is False and read["name"]["givenName"] == "Renamed"

    status, _, _ = await probe.call("DELETE", one)
    assert status == 204
    status, _, gone = await probe.call("GET", one)
    assert status == 404 and gone["schemas"] == [ERROR] and gone["status"] == "404"


async def test_a_request_without_the_token_gets_a_scim_error(probe: Probe) -> None:
    async with probe.session.get(f"{probe.base}/Users") as response:
        body = await response.json(content_type=None)
    assert response.status == 401
    assert body["schemas"] == [ERROR] and body["status"] == "401" and body["detail"]
