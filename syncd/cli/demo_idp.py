"""The demo's identity provider: SCIM calls to the daemon's listener, as Okta sends them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import aiohttp

BEARER_VARIABLE = "SYNCD_DEMO_SCIM_TOKEN"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim_table() -> dict[str, object]:
    """The demo config's [scim] table: a free loopback port, the token by env: reference."""
    return {"port": 0, "token": f"env:{BEARER_VARIABLE}", "actor": "okta"}


def token_environ() -> dict[str, str]:
    """A fresh random token in the variable the [scim] table names."""
    return {BEARER_VARIABLE: secrets.token_urlsafe(32)}


class IdentityProvider:
    """Sends SCIM requests with the bearer token; says what it sent."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.token = token
        self.session = session

    async def _send(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method, f"{self.url}{path}", json=body, headers=headers
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 300:
                raise RuntimeError(f"SCIM {method} {path} answered {response.status}: {answer}")
            return answer

    async def create(self, person: Mapping[str, str]) -> tuple[str, str]:
        """POST the person as a new User; their SCIM id and what was sent, as one line."""
        body = {
            "schemas": [USER_SCHEMA],
            "userName": person["email"],
            "name": {"givenName": person["given_name"], "familyName": person["family_name"]},
            "emails": [{"value": person["email"], "type": "work", "primary": True}],
            "title": person["title"],
            "active": True,
        }
        created = await self._send("POST", "/Users", body)
        return str(created["id"]), f"POST /scim/v2/Users {json.dumps(body)}"

    async def replace(self, user_id: str, value: Mapping[str, object]) -> str:
        """PATCH replace these attributes of the User; what was sent, as one line."""
        body = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": value}]}
        await self._send("PATCH", f"/Users/{user_id}", body)
        return f"PATCH /scim/v2/Users/{user_id} {json.dumps(body['Operations'])}"
