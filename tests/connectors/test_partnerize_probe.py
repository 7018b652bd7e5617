"""A Partnerize client written from the evidence, not from our connector, against the simulator.

It imitates Airbyte's `source-partnerize` (airbytehq/airbyte,
airbyte-integrations/connectors/source-partnerize/manifest.yaml): HTTP Basic with
`application_key` as user and `user_api_key` as password; a collection read from its plural
key with each record wrapped in its singular key; the next request is the path in
`hypermedia.pagination.next_page` until that is null; 429 and 5xx retried with backoff (the
CDK's default). The writes no public client makes follow the reference's scenarios
(shared/vendors/partnerize.md): POST a user with a password, GET it before a PUT because a
PUT resets omitted fields, deactivate with `status: inactive`.
"""

from __future__ import annotations

import asyncio
from base64 import b64encode
from typing import Any

import aiohttp

from connectors.sim import serve
from connectors.vendors.partnerize.simulator import PartnerizeSimulator
from tests.connectors.conftest import sim_get
from tests.connectors.probe import PlainClient

APPLICATION_KEY = "probe-application-key"
USER_API_KEY = "probe-user-api-key"
BASIC = b64encode(f"{APPLICATION_KEY}:{USER_API_KEY}".encode()).decode()
HEADERS = {"Authorization": f"Basic {BASIC}", "Accept": "application/json"}


class EvidenceClient(PlainClient):
    """The requests a public Partnerize client sends, in plain aiohttp."""

    async def call(self, method: str, path: str, body: object = None) -> Any:
        """Send one request, retrying 429 and 5xx with exponential backoff."""
        for attempt in range(8):
            async with self.session.request(
                method, self.base + path, json=body, headers=self.headers
            ) as response:
                if response.status == 429 or response.status >= 500:
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue
                response.raise_for_status()
                return await response.json()
        raise AssertionError(f"{method} {path} kept failing")

    async def users(self) -> list[dict[str, Any]]:
        """Read the whole collection by following `hypermedia.pagination.next_page`."""
        records: list[dict[str, Any]] = []
        path: str | None = "/user"
        while path:
            body = await self.call("GET", path)
            records += [item["user"] for item in body["users"]]
            path = body.get("hypermedia", {}).get("pagination", {}).get("next_page")
        return records


async def test_a_client_written_from_the_evidence_works_unchanged(
    session: aiohttp.ClientSession,
) -> None:
    simulator = PartnerizeSimulator(users=250, seed=2, token=f"{APPLICATION_KEY}:{USER_API_KEY}")
    async with serve(simulator) as base:
        client = EvidenceClient(session, base, HEADERS)
        listed = await client.users()
        assert listed == (await sim_get(session, base, "users"))["users"]

        wanted = str(listed[137]["email"])
        found = [user for user in await client.users() if user["email"] == wanted]
        assert [user["user_id"] for user in found] == [listed[137]["user_id"]]

        created = (
            await client.call(
                "POST",
                "/user",
                {
                    "firstname": "John",
                    "lastname": "Smith",
                    "email": "john@example.com",
                    "password": "SecurePass1!",
                },
            )
        )["user"]
        user_id = created["user_id"]
        assert created["status"] == "active"

        current = (await client.call("GET", f"/user/{user_id}"))["user"]
        writable = {
            k: v for k, v in current.items() if k not in ("user_id", "created_at", "updated_at")
        }
        await client.call("PUT", f"/user/{user_id}", {**writable, "timezone": "Europe/London"})
        await client.call(
            "PUT",
            f"/user/{user_id}",
            {**writable, "timezone": "Europe/London", "status": "inactive"},
        )

        final = (await client.call("GET", f"/user/{user_id}"))["user"]
        assert final["status"] == "inactive" and final["timezone"] == "Europe/London"
        assert final["email"] == "john@example.com" and final["firstname"] == "John"
        stats = await sim_get(session, base, "stats")
        assert stats["secret_in_url"] == 0
        assert stats["query_keys"] == ["limit", "offset"]  # only from the next_page links
