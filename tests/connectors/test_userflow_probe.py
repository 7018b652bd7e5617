"""A client written from the public evidence, not from our connector, against the simulator.

It imitates kingalban/tap-userflow v1.2 (tap_userflow/client.py and streams.py, the
Singer tap): every request carries `Authorization: Bearer KEY` and
`Userflow-Version: 2020-01-03`; the users stream asks for `/users` with, in this order,
`starting_after` (from the second page), `sort=asc`, `order_by=created_at`, `limit=100`
and `expand=memberships`, stops when `has_more` is false and reads the next cursor with
`parse_qs(next_page_url)["starting_after"][0]`, which only works when `starting_after`
is not the first query parameter; errors are read from `error.code` and `error.message`.
Lookup and writes imitate PipedreamHQ/pipedream (components/userflow: find-user
`GET /users?email=`, create-update-user `POST /users` with `id` and `attributes`, getUser
`GET /users/{id}`); deletion is `DELETE /users/{id}` as public provider clients send it.
Userflow has no deactivate, so deleting is what they do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import aiohttp
import anyio
import pytest

from connectors.sim import serve
from connectors.vendors.userflow.simulator import LinkStyle, UserflowSimulator
from tests.connectors.probe import PlainClient

KEY = "uf-probe-Secret-0707-abcdef"
API_VERSION = "2020-01-03"
MAX_PAGE_SIZE = 100
HEADERS = {"Authorization": f"Bearer {KEY}", "Userflow-Version": API_VERSION}


class TapLikeClient(PlainClient):
    """The evidence's client: plain HTTP calls shaped like the Singer tap and Pipedream."""

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send one request, backing off on 429 as the Singer SDK does."""
        for attempt in range(10):
            url = f"{self.base}{path}"
            async with self.session.request(method, url, headers=self.headers, **kwargs) as r:
                if r.status != 429:
                    return r.status, await r.json(content_type=None)
            await anyio.sleep(0.05 * 2**attempt)
        raise AssertionError("still throttled")

    async def users(self) -> list[dict[str, Any]]:
        """Stream every user the way the tap's users stream does."""
        records: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {}
            if token:
                params["starting_after"] = token
            params["sort"] = "asc"
            params["order_by"] = "created_at"
            params["limit"] = MAX_PAGE_SIZE
            status, body = await self.request(
                "GET", f"/users?expand=memberships&{urlencode(params)}"
            )
            assert status == 200, body
            records.extend(body["data"])
            if not body.get("has_more"):
                return records
            token = parse_qs(body.get("next_page_url"))["starting_after"][0]

    async def find_user(self, email: str) -> dict[str, Any] | None:
        """Pipedream's find-user by email: the first user of a filtered listing."""
        status, body = await self.request("GET", f"/users?{urlencode({'email': email})}")
        assert status == 200, body
        return body["data"][0] if body["data"] else None

    async def upsert_user(self, user_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Pipedream's create-update-user."""
        status, body = await self.request(
            "POST", "/users", json={"id": user_id, "attributes": attributes}
        )
        assert status == 200, body
        return dict(body)

    async def get_user(self, user_id: str) -> tuple[int, Any]:
        """Pipedream's getUser."""
        return await self.request("GET", f"/users/{quote(user_id, safe='')}")

    async def delete_user(self, user_id: str) -> tuple[int, Any]:
        """DELETE one user by its encoded id."""
        return await self.request("DELETE", f"/users/{quote(user_id, safe='')}")


@pytest.mark.parametrize("style", ["path", "absolute"])
async def test_a_client_written_from_the_evidence_works_unchanged(
    session: aiohttp.ClientSession, style: LinkStyle
) -> None:
    simulator = UserflowSimulator(users=250, seed=11, token=KEY, next_page_url=style)
    async with serve(simulator) as base:
        client = TapLikeClient(session, base, HEADERS)

        listed = await client.users()
        assert [user["id"] for user in listed] == sorted(simulator.users)
        assert all(user["object"] == "user" and "memberships" in user for user in listed)

        email = listed[41]["attributes"]["email"]
        found = await client.find_user(email)
        assert found is not None and found["id"] == listed[41]["id"]
        assert await client.find_user("nobody@app.example") is None

        created = await client.upsert_user(
            "app/77", {"email": "mira@app.example", "name": "Mira Example", "plan": "pro"}
        )
        assert created["id"] == "app/77" and created["object"] == "user"
        updated = await client.upsert_user("app/77", {"plan": None, "role": "admin"})
        assert updated["attributes"] == {
            "email": "mira@app.example",
            "name": "Mira Example",
            "role": "admin",
        }
        status, fetched = await client.get_user("app/77")
        assert status == 200 and fetched["attributes"]["role"] == "admin"

        status, deleted = await client.delete_user("app/77")
        assert status == 200 and deleted["deleted"] is True
        status, missing = await client.get_user("app/77")
        assert status == 404
        assert missing["error"]["code"] and missing["error"]["message"]
        assert len(await client.users()) == 250
