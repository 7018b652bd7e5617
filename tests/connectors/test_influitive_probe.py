"""A client written from the public evidence, not from our connector, against the simulator.

It imitates HokieGeek/go-influitive (influitive.go: `Token KEY`, `X_ORG_ID`, `Accept` and
`Content-Type: application/json` on every request; `GetAllMembers` follows `links.next`
from `/contacts`; `QueryMembersByField` adds `q[status]=all&q[FIELD]=V`; `GetMemberByEmail`
reads a JSON list; `CreateMemberByEmail` posts a flat Nominee and wants 201) and, for the
writes the Go client lacks, Health-Union/influitive (lib/influitive/members.ex: `PATCH
/members/{id}`, `POST /members/{id}/lock` and `/unlock` with an empty body).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from connectors.sim import serve
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from tests.connectors.probe import PlainClient

TOKEN = "probe-token-0042"
ORG = "12345"
HEADERS = {
    "Authorization": f"Token {TOKEN}",
    "X_ORG_ID": ORG,
    "Accept": "application/json",
    "Content-Type": "application/json",
}


class EvidenceClient(PlainClient):
    """The public clients' calls, as plain aiohttp requests."""

    async def call(self, method: str, url: str, body: str = "", want: int = 200) -> Any:
        """Send one request the Go way; fail unless the status is the wanted one."""
        async with self.session.request(method, url, data=body, headers=self.headers) as answer:
            assert answer.status == want, await answer.text()
            return await answer.json(content_type=None)

    async def query_members(self, field: str = "", value: str = "") -> list[dict[str, Any]]:
        """`QueryMembersByField`: `/contacts`, then every `links.next` until it is empty."""
        following = f"{self.base}/contacts"
        if field:
            following += "?" + urlencode({"q[status]": "all", f"q[{field}]": value})
        members: list[dict[str, Any]] = []
        while following:
            page = await self.call("GET", following)
            members += page["contacts"]
            following = page["links"].get("next") or ""
        return members

    async def member_by_email(self, email: str) -> list[dict[str, Any]]:
        """`GetMemberByEmail`: `GET /members?email=` answers a list."""
        found: list[dict[str, Any]] = await self.call(
            "GET", f"{self.base}/members?{urlencode({'email': email})}"
        )
        return found

    async def create_member(self, email: str, name: str, source: str) -> dict[str, Any]:
        """`CreateMemberByEmail`: a flat body with `type: Nominee`, answered 201."""
        body = {
            "email": email,
            "name": name,
            "source": source,
            "title": "",
            "company": "",
            "salesforce_id": "",
            "match_criteria": {},
            "type": "Nominee",
        }
        created: dict[str, Any] = await self.call(
            "POST", f"{self.base}/members", _json(body), want=201
        )
        return created

    async def update(self, member_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Elixir `Members.update/2`: `PATCH /members/{id}`."""
        updated: dict[str, Any] = await self.call(
            "PATCH", f"{self.base}/members/{member_id}", _json(fields)
        )
        return updated

    async def lock(self, member_id: int, action: str = "lock") -> None:
        """Elixir `Members.lock_profile/1` (or `unlock_profile/1`): an empty POST."""
        await self.call("POST", f"{self.base}/members/{member_id}/{action}")


def _json(body: dict[str, Any]) -> str:
    """Encode a body as the Go client's json.Marshal does."""
    return json.dumps(body)


async def test_a_client_written_from_the_evidence_works_unchanged() -> None:
    sim = InfluitiveSimulator(users=60, seed=5, token=TOKEN, org_id=ORG)
    async with serve(sim) as url, aiohttp.ClientSession() as session:
        client = EvidenceClient(session, url, HEADERS)
        unlocked = [user for user in sim.users.values() if user["locked_at"] is None]
        assert len(unlocked) < 60  # the seed holds locked members, which the default hides
        assert await client.query_members() == unlocked

        created = await client.create_member("sohm.dood@exam.ple", "Sohm Dood", "example")
        assert (created["type"], created["first_name"], created["last_name"]) == (
            "Nominee",
            "Sohm",
            "Dood",
        )
        [found] = await client.member_by_email("sohm.dood@exam.ple")
        assert found["id"] == created["id"]
        assert await client.member_by_email("nobody@exam.ple") == []

        updated = await client.update(created["id"], {"title": "CEO", "company": "Inc."})
        assert (updated["title"], updated["company"], updated["email"]) == (
            "CEO",
            "Inc.",
            "sohm.dood@exam.ple",
        )

        await client.lock(created["id"])
        assert await client.query_members("email", "sohm.dood@exam.ple") == [
            {**updated, "locked_at": sim.users[str(created["id"])]["locked_at"]}
        ]
        assert created["id"] not in [m["id"] for m in await client.query_members()]
        await client.lock(created["id"], "unlock")
        assert created["id"] in [m["id"] for m in await client.query_members()]
