"""A client written from AppXite's public documentation, run unchanged against the simulator.

No public client of AppXite's user-management API exists (see the evidence table in
connectors/vendors/appxite/README.md), so this probe imitates what the vendor itself
documents: developer.appxite.com/Docs (REST + JSON; GET, POST, PUT and DELETE only; the
`Ocp-Apim-Subscription-Key` header plus a Bearer token) and the support article "User
Management via APIs" (list users per platform or customer; roles with Id, Name, Weight;
identity providers with Id, Name, Prefix, Enabled; one invite call carrying a `Users`
array and `OrganizationIds`; states New, Active, Blocked), on the paths the reference
README prescribes. It uses plain aiohttp, none of our connector classes, and honours
Retry-After on a 429 as Azure API Management's docs say to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors.sim import serve
from connectors.vendors.appxite.simulator import AppXiteSimulator
from tests.connectors.probe import PlainClient

TOKEN = "probe-bearer-token"
KEY = "probe-subscription-key"
PLATFORM = "platform-1"
HEADERS = {"Ocp-Apim-Subscription-Key": KEY, "Authorization": f"Bearer {TOKEN}"}


class DocumentedClient(PlainClient):
    """The AppXite calls the public documentation describes, and nothing more."""

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; wait out a 429 for as long as Retry-After says."""
        while True:
            async with self.session.request(
                method, self.base + path, headers=self.headers, **kwargs
            ) as reply:
                if reply.status == 429:
                    await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                    continue
                body = await reply.json() if reply.content_length != 0 else None
                assert reply.status < 300, (method, path, reply.status, body)
                return body

    async def users(self) -> list[dict[str, Any]]:
        """List every user of the platform, 100 a page, until TotalCount is reached."""
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"platformId": PLATFORM, "page": str(page), "pageSize": "100"}
            body = await self.call("GET", "/users", params=params)
            users.extend(body["Items"])
            if not body["Items"] or len(users) >= body["TotalCount"]:
                return users
            page += 1

    async def by_email(self, email: str) -> dict[str, Any] | None:
        """Find a user by email in the listing (the API documents no email filter)."""
        wanted = email.casefold()
        return next((u for u in await self.users() if u["Email"].casefold() == wanted), None)


@pytest.fixture
async def client() -> AsyncIterator[tuple[DocumentedClient, AppXiteSimulator]]:
    """The documented client against a simulator with 230 users."""
    simulator = AppXiteSimulator(users=230, seed=4, token=TOKEN, subscription_key=KEY)
    async with serve(simulator) as base, aiohttp.ClientSession() as session:
        yield DocumentedClient(session, f"{base}/v1", HEADERS), simulator


async def test_the_documented_client_works_unchanged(
    client: tuple[DocumentedClient, AppXiteSimulator],
) -> None:
    api, simulator = client
    listed = await api.users()
    assert [u["Id"] for u in listed] == list(simulator.users)
    assert {u["State"] for u in listed} == {"New", "Active", "Blocked"}

    roles = await api.call("GET", "/roles")
    assert all({"Id", "Name", "Weight"} <= set(role) for role in roles)
    member = next(role["Id"] for role in roles if role["Name"] == "Member")
    providers = await api.call("GET", "/identity-providers")
    assert all({"Id", "Name", "Prefix", "Enabled"} <= set(p) for p in providers)
    provider = next(p["Id"] for p in providers if p["Enabled"])

    assert await api.by_email("Ada.Probe@Example.com") is None  # look up before inviting
    invited = await api.call(
        "POST",
        "/users/invite",
        json={
            "Users": [
                {
                    "Email": "ada.probe@example.com",
                    "FirstName": "Ada",
                    "LastName": "Probe",
                    "RoleId": member,
                    "IdentityProviderId": provider,
                },
                {"Email": "bo.probe@example.com", "FirstName": "Bo"},
            ],
            "OrganizationIds": [PLATFORM],
        },
    )
    assert [u["State"] for u in invited["Users"]] == ["New", "New"]
    ada = await api.by_email("ADA.PROBE@example.com")
    assert ada is not None and ada["RoleName"] == "Member"

    active = next(u for u in listed if u["State"] == "Active")
    current = await api.call("GET", f"/users/{active['Id']}")
    writable = ("Email", "FirstName", "LastName", "DisplayName", "JobTitle", "CompanyName",
                "Language", "TimeZone", "RoleId", "IdentityProviderId", "PhoneNumber",
                "ExternalReference")  # fmt: skip
    profile = {key: current[key] for key in writable} | {"JobTitle": "Probe Lead"}
    updated = await api.call("PUT", f"/users/{active['Id']}", json=profile)
    assert updated["JobTitle"] == "Probe Lead"
    assert updated["PhoneNumber"] == current["PhoneNumber"]

    blocked = await api.call("PUT", f"/users/{active['Id']}/status", json={"State": "Blocked"})
    assert (blocked["State"], blocked["IsAccessible"]) == ("Blocked", False)
    again = await api.call("GET", f"/users/{active['Id']}")
    assert again["State"] == "Blocked" and again["JobTitle"] == "Probe Lead"
    assert len(await api.users()) == 232
