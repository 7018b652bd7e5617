"""Hints against real simulators and both databases: a re-fetch, never a deactivation, bounded."""
# ruff: noqa: F811  (the `world` fixture is imported, and tests take it by name)

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import sqlalchemy as sa

from connectors.sim.base import VendorSimulator
from graph.models import account_table, operation_table, person_table
from syncd.engine import Engine
from syncd.service.hints import DROPPED, QUEUED, Hint, HintQueue, work_hints
from tests.syncd.test_engine import (
    ENV,
    World,
    by_email,
    cycle,
    world,  # noqa: F401  (the fixture, used by name)
)

MEMBER = ("GET", "/members/{id}")


def reads(sim: VendorSimulator, route: tuple[str, str]) -> int:
    """How many requests of this method and route the simulator answered, any status."""
    return sum(n for (method, path, _), n in sim.stats.requests.items() if (method, path) == route)


async def account(engine: Engine, name: str, external_id: str) -> Any:
    async with engine.store.db.read() as conn:
        return (
            await conn.execute(
                sa.select(account_table).where(
                    account_table.c.connector == name, account_table.c.external_id == external_id
                )
            )
        ).one()


async def operations(engine: Engine) -> list[tuple[str, str]]:
    async with engine.store.db.read() as conn:
        rows = await conn.execute(
            sa.select(operation_table.c.connector, operation_table.c.op).order_by(
                operation_table.c.id
            )
        )
        return [(row.connector, row.op) for row in rows]


async def lifecycles(engine: Engine) -> set[str]:
    async with engine.store.db.read() as conn:
        return set((await conn.execute(sa.select(person_table.c.lifecycle))).scalars())


async def test_a_hint_refetches_stores_and_plans(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        woken: list[bool] = []
        engine.on_commit = lambda: woken.append(True)
        sim = world.sims["influitive"]
        member = by_email(world, "influitive")["person1@corp.example"]
        key = str(member["id"])
        sim.users[key] = {**member, "title": "Changed at the vendor"}
        before, ops = reads(sim, MEMBER), len(await operations(engine))

        assert await engine.refetch("influitive", key) == "refetched"
        assert reads(sim, MEMBER) == before + 1
        stored = await account(engine, "influitive", key)
        assert json.loads(stored.attributes_json)["title"] == "Changed at the vendor"
        assert woken == [True]
        # HR owns the title: the person's plan puts it back at the vendor.
        assert (await operations(engine))[ops:] == [("influitive", "update")]
        await engine.push("influitive")
        assert sim.users[key]["title"] == "Engineer"

        # The push stored what it wrote: a hint about it writes nothing and wakes nobody.
        assert await engine.refetch("influitive", key) == "unchanged"
        assert len(woken) == 1

        # A hint that only knows an email is looked up by email (one request).
        ti = world.sims["thought_industries"]
        user = by_email(world, "thought_industries")["person2@corp.example"]
        ti.users[str(user["id"])] = {**user, "firstName": "Renamed"}
        assert await engine.refetch("thought_industries", email="PERSON2@corp.example") == (
            "refetched"
        )
        stored = await account(engine, "thought_industries", str(user["id"]))
        assert json.loads(stored.attributes_json)["given_name"] == "Renamed"


async def test_a_hint_never_deactivates_anyone(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        sim = world.sims["influitive"]
        members = by_email(world, "influitive")
        ops = await operations(engine)

        # The vendor deleted the member: 404 on the re-fetch, and nothing happens.
        gone = str(members["person3@corp.example"]["id"])
        del sim.users[gone]
        assert await engine.refetch("influitive", gone) == "not_found"
        assert await engine.refetch("influitive", "no-such-member") == "not_found"
        assert await engine.refetch("influitive", "../members") == "not_found"  # one quoted segment
        assert await engine.refetch("influitive", "..") == "failed"  # no request at all
        assert (await account(engine, "influitive", gone)).missing_since is None
        assert await operations(engine) == ops

        # The vendor locked a member: recorded as observed; the person stays active, and
        # no vendor is told to deactivate them.
        locked = str(members["person4@corp.example"]["id"])
        sim.users[locked] = {**sim.users[locked], "locked_at": "2026-01-01T00:00:00Z"}
        assert await engine.refetch("influitive", locked) == "refetched"
        assert (await account(engine, "influitive", locked)).status == "inactive"
        assert await lifecycles(engine) == {"active"}
        new = (await operations(engine))[len(ops) :]
        assert not [op for _, op in new if op in ("deactivate", "delete")], new

        # A vendor that refuses the re-fetch: counted as failed, nothing stored, no crash.
        sim.settings.faults.unauthorized = True
        assert await engine.refetch("influitive", locked) == "failed"


async def test_a_flood_of_hints_is_bounded_by_the_queue_and_the_budget(
    world: World, db_url: str
) -> None:
    config = world.config(db_url)
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
    rate, limit = 4.0, 8
    slow = config.connectors["influitive"].model_copy(update={"rate": rate, "burst": 1})
    config = config.model_copy(update={"connectors": {**config.connectors, "influitive": slow}})
    sim = world.sims["influitive"]
    ids = [str(user["id"]) for user in world.users("influitive")]
    queue = HintQueue(limit)
    offered = [queue.offer(Hint(key)) for _ in range(50) for key in [*ids, "9990", "9991"]]
    assert offered.count(QUEUED) == limit
    assert offered.count(DROPPED) == (len(ids) + 2 - limit) * 50
    before = reads(sim, MEMBER)
    outcomes: list[str] = []
    async with Engine.open(config, environ=ENV) as engine:
        started = time.monotonic()
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tasks:

                def observe(outcome: str) -> None:
                    outcomes.append(outcome)
                    if len(outcomes) == limit:
                        tasks.cancel_scope.cancel()

                tasks.start_soon(
                    work_hints,
                    queue,
                    lambda hint: engine.refetch("influitive", hint.external_id),
                    observe,
                )
        elapsed = time.monotonic() - started
    assert reads(sim, MEMBER) - before == limit  # one GET per distinct user, no more
    assert set(outcomes) <= {"unchanged", "refetched"}
    assert elapsed >= (limit - 1) / rate * 0.8  # the budget spaced them
