"""A live SCIM endpoint on 127.0.0.1 over a real graph, with the Engine as its sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from syncd.authority.scim import scim_app
from syncd.config import Config, DatabaseConfig
from syncd.engine import Engine
from syncd.service.listeners import serve_app

TOKEN = "test-scim-token-7f3a"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Scim:
    """A client of the live endpoint, and the engine behind it."""

    url: str
    session: aiohttp.ClientSession
    engine: Engine
    wakes: list[int]

    async def call(
        self, method: str, path: str, body: Any = None, **headers: str
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """Send one request with the token; the status, JSON body (or None) and headers."""
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}", **headers},
        ) as response:
            text = await response.text()
            payload = await response.json(content_type=None) if text else None
            return response.status, payload, response.headers

    async def create_user(self, user_name: str, **fields: Any) -> dict[str, Any]:
        """POST a user (see user_body); its body."""
        status, created, _ = await self.call("POST", "/Users", user_body(user_name, **fields))
        assert status == 201, created
        return dict(created)

    async def post(self, endpoint: str, **fields: Any) -> tuple[int, Any]:
        """POST a resource made of these fields; the status and body."""
        status, answer, _ = await self.call("POST", endpoint, fields)
        return status, answer

    async def patch(self, path: str, *operations: dict[str, Any]) -> tuple[int, Any]:
        """PATCH these operations; the status and body."""
        status, answer, _ = await self.call("PATCH", path, ops(*operations))
        return status, answer

    async def search(self, endpoint: str, text: str) -> tuple[int, Any]:
        """GET /Users or /Groups with this filter; the status and body."""
        async with self.session.get(
            f"{self.url}/{endpoint}",
            params={"filter": text},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            return response.status, await response.json(content_type=None)


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH], "Operations": list(operations)}


def user_body(user_name: str, **fields: Any) -> dict[str, Any]:
    """A User payload whose work email is its userName, with more fields."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        **fields,
    }


@pytest.fixture
async def scim(db_url: str) -> AsyncIterator[Scim]:
    """The SCIM app served over an Engine with no connectors."""
    async with Engine.open(Config(database=DatabaseConfig(url=db_url))) as engine:
        wakes: list[int] = []
        engine.on_commit = lambda: wakes.append(1)
        app = scim_app(engine.store.db, engine, TOKEN)
        async with serve_app(app, name="scim") as base, aiohttp.ClientSession() as session:
            yield Scim(f"{base}/scim/v2", session, engine, wakes)
