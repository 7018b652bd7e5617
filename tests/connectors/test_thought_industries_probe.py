"""A client written from public Thought Industries v2 clients, run against our simulator.

It imitates, with plain aiohttp and none of our connector code:
- GitLab's Level Up extractor (gitlab-data/analytics,
  extract/level_up_thought_industries/src/thought_industries_api.py): `GET
  /incoming/v2/users` with `Authorization: Bearer KEY`, then `?cursor=` from
  `pageInfo.cursor` while `pageInfo.hasMore`; records under `users`;
- a public React Native TI client (its `TIApi` class): `GET /incoming/v2/users/{email}`
  to look a learner up, `POST /incoming/v2/users` with `email, firstName, lastName,
  externalCustomerId, sendInvite`, `PUT /incoming/v2/users/{id}` with the user minus its
  id; answers are bare users, failures `{"errors": [{"message": ...}]}`;
- a public Ruby TI client that on 429 sleeps `Retry-After` (else 30 s) and logs
  `X-RateLimit-Limit/Remaining/Reset`.
Deactivation is the reference's `active: false` through that same PUT.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from connectors.sim import serve
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from tests.connectors.conftest import TOKEN, configure, sim_get
from tests.connectors.probe import PlainClient


@dataclass
class EvidenceClient(PlainClient):
    """The public clients' calls, nothing more."""

    limits: list[dict[str, str | None]] = field(default_factory=list)

    async def call(self, method: str, path: str, body: object = None) -> Any:
        """Send one request; on 429 wait `Retry-After` seconds and send it again."""
        while True:
            async with self.session.request(
                method, self.base + path, json=body, headers=self.headers
            ) as response:
                self.limits.append(
                    {
                        name: response.headers.get(f"X-RateLimit-{name}")
                        for name in ("Limit", "Remaining", "Reset")
                    }
                )
                if response.status == 429:
                    await asyncio.sleep(int(response.headers.get("Retry-After") or 30))
                    continue
                data = await response.json()
                if isinstance(data, dict) and data.get("errors"):
                    raise LookupError(data["errors"][0]["message"])
                response.raise_for_status()
                return data

    async def all_users(self) -> list[dict[str, Any]]:
        """GitLab's CursorEndpoint: follow `pageInfo.cursor` while `pageInfo.hasMore`."""
        users: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = await self.call("GET", f"/users?cursor={cursor}" if cursor else "/users")
            users += page.get("users") or []
            if not page["pageInfo"]["hasMore"]:
                return users
            cursor = page["pageInfo"]["cursor"]

    async def user_details(self, email: str) -> Any:
        """TIApi.userDetails: the user with this email, or LookupError."""
        return await self.call("GET", f"/users/{email}")

    async def create_user(self, first_name: str, last_name: str, email: str) -> Any:
        """TIApi.createUser."""
        body = {
            "firstName": first_name,
            "lastName": last_name,
            "email": email,
            "externalCustomerId": email,
            "sendInvite": True,
        }
        return await self.call("POST", "/users", body)

    async def update_user(self, user: dict[str, Any]) -> Any:
        """TIApi.updateUser: PUT the user without its id."""
        return await self.call("PUT", f"/users/{user['id']}", _omit(user, "id"))


def _omit(user: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The user without these keys."""
    return {key: value for key, value in user.items() if key not in keys}


async def test_a_client_written_from_public_v2_clients_works_unchanged(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(ThoughtIndustriesSimulator(users=250, seed=4, token=TOKEN)) as url:
        await configure(session, url, rate=5, burst=3)  # the probe meets the limit
        client = EvidenceClient(session, f"{url}/incoming/v2", {"Authorization": f"Bearer {TOKEN}"})

        users = await client.all_users()
        assert users == (await sim_get(session, url, "users"))["users"]
        assert len({user["id"] for user in users}) == 250

        known = users[17]
        assert (await client.user_details(known["email"]))["id"] == known["id"]
        try:
            await client.user_details("nobody@example.com")
        except LookupError as error:
            assert str(error) == "user not found"
        else:
            raise AssertionError("an unknown email was found")

        created = await client.create_user("Probe", "Learner", "probe.learner@example.com")
        assert created["email"] == "probe.learner@example.com" and created["active"] is True
        assert created["externalCustomerId"] == "probe.learner@example.com"
        assert "sendInvite" not in created

        # The read-only fields go too: the vendor sets them (public clients PUT just a few).
        writable = _omit(created, "createdAt", "updatedAt", "lastActiveAt")
        updated = await client.update_user({**writable, "firstName": "Renamed"})
        assert updated["firstName"] == "Renamed" and updated["lastName"] == "Learner"

        current = _omit(await client.user_details(created["id"]), "createdAt", "updatedAt")
        current = _omit(current, "lastActiveAt")
        deactivated = await client.update_user({**current, "active": False})
        assert deactivated["active"] is False
        assert (await client.user_details("PROBE.LEARNER@example.com"))["active"] is False

        stats = await sim_get(session, url, "stats")
    assert stats["throttled"] >= 1 and stats["secret_in_url"] == 0
    assert all(limit["Limit"] == "3" and limit["Reset"] for limit in client.limits)
