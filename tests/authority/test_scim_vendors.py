"""End to end: a SCIM hire and leaver reach the five vendor simulators through the engine."""

from __future__ import annotations

import aiohttp

from syncd.authority.scim import scim_app
from syncd.engine import Engine
from syncd.service.listeners import serve_app
from tests.authority.conftest import TOKEN, Scim
from tests.syncd import test_engine
from tests.syncd.test_authority import DEACTIVATING
from tests.syncd.test_engine import ENV, VENDOR_NAMES, World, by_email

world = test_engine.world  # the fixture: five simulators and an HR file


async def push_all(engine: Engine) -> None:
    """List every connector (complete listings), then push what was planned."""
    for name in engine.connectors:
        result = await engine.list_connector(name)
        assert result.complete, result.error
        await engine.push(name)


async def test_a_scim_hire_and_leaver_reach_every_vendor(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        app = scim_app(engine.store.db, engine, TOKEN, actor="okta")
        async with serve_app(app, name="scim") as base, aiohttp.ClientSession() as session:
            scim = Scim(f"{base}/scim/v2", session, engine, [])
            user = await scim.create_user(
                "grace@corp.example", name={"givenName": "Grace", "familyName": "Hopper"}
            )
            await push_all(engine)
            for name in VENDOR_NAMES:
                held = by_email(world, name)
                assert "grace@corp.example" in held, name
                assert world.active(name, held["grace@corp.example"]), name

            status, body = await scim.patch(
                f"/Users/{user['id']}", {"op": "replace", "value": {"active": False}}
            )
            assert status == 200, body
            for name in engine.connectors:
                await engine.push(name)
            for name in DEACTIVATING:
                account = by_email(world, name)["grace@corp.example"]
                assert not world.active(name, account), name
