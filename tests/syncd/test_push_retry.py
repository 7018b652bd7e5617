"""Nothing lost: failed lookups retry as lookups, dead creates are planned again."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from graph import outbox
from graph.models import operation_table
from syncd.cli.commands import run_status
from syncd.engine import Engine
from syncd.push import Pusher, RetryPolicy
from syncd.service.daemon import ConnectorHealth, Daemon
from tests.syncd.test_engine import ENV, PEOPLE, World, by_email, cycle, person, write_feed
from tests.syncd.test_engine import world as world  # the fixture

o = operation_table


async def creates(engine: Engine, name: str) -> list[dict[str, object]]:
    """Every create operation of a connector, as rows."""
    async with engine.store.db.read() as conn:
        rows = await conn.execute(
            sa.select(o).where(o.c.connector == name, o.c.op == "create").order_by(o.c.id)
        )
        return [dict(row._mapping) for row in rows]


async def crashed_mid_push(engine: Engine, name: str, reached: int) -> None:
    """Claim every create, let `reached` of them reach the vendor, then recover as after a crash."""
    await engine.apply_feed()
    result = await engine.list_connector(name)
    assert result.complete, result.error
    ops = await outbox.claim(engine.store.db, name, 100)
    assert len(ops) == PEOPLE
    for op in ops[:reached]:
        await engine.connectors[name].create_account(op.payload)
    assert await engine.recover() == PEOPLE


async def push_while_lookups_fail(
    engine: Engine, world: World, retry: RetryPolicy, rounds: int, pause: float = 0.0
) -> list[dict[str, object]]:
    """Crash mid-push at Partnerize, then drain while every lookup's listing is refused."""
    await crashed_mid_push(engine, "partnerize", 3)
    # The listing the lookup scans is refused (its total disagrees) on every try.
    world.sims["partnerize"].settings.faults.truncate_after = 0
    pusher = Pusher(engine.store.db, engine.connectors["partnerize"], retry=retry)
    for _ in range(rounds):
        await pusher.drain()
        await anyio.sleep(pause)
    return await creates(engine, "partnerize")


async def test_a_failed_lookup_is_retried_as_a_lookup(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        # About one try per round; a slow machine may fit more, so the cap is out of reach.
        retry = RetryPolicy(base_delay=0.2, max_delay=0.2, max_lookup_failures=1_000)
        # More rounds than a create has attempts.
        rows = await push_while_lookups_fail(engine, world, retry, rounds=8, pause=0.25)
        assert {row["state"] for row in rows} == {"pending"}
        assert all(row["attempts"] == 1 for row in rows)  # the create's own attempts are intact
        assert all(row["lookup_failures"] >= 5 for row in rows)
        assert all(row["error_kind"] == "lookup" for row in rows)
        assert all("lookup before create failed" in str(row["last_error"]) for row in rows)
        world.sims["partnerize"].settings.faults.truncate_after = None
        # A drain takes what is due: a create whose 0.2 s backoff began in the last round
        # (late, on a loaded machine) is taken by the next one.
        with anyio.fail_after(10):
            while {row["state"] for row in await creates(engine, "partnerize")} != {"done"}:
                await engine.push("partnerize")
                await anyio.sleep(0.05)
        emails = sorted(str(user["email"]) for user in world.users("partnerize"))
        assert emails == sorted(f"person{i}@corp.example" for i in range(PEOPLE))  # each once
        assert {row["state"] for row in await creates(engine, "partnerize")} == {"done"}


async def test_lookups_are_bounded_and_say_why(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        retry = RetryPolicy(base_delay=0.01, max_delay=0.02, max_lookup_failures=3)
        rows = await push_while_lookups_fail(engine, world, retry, rounds=5, pause=0.03)
        assert {row["state"] for row in rows} == {"dead"}
        assert all(row["lookup_failures"] == 3 for row in rows)
        assert all("failed 3 of 3 times" in str(row["last_error"]) for row in rows)


async def test_a_dead_create_is_planned_again_with_backoff(
    world: World, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        retry = RetryPolicy(base_delay=0.01, max_delay=0.02, max_lookup_failures=1)
        rows = await push_while_lookups_fail(engine, world, retry, rounds=1)
        assert {row["state"] for row in rows} == {"dead"}
        world.sims["partnerize"].settings.faults.truncate_after = None
        result = await engine.list_connector("partnerize")  # the 3 that got through link
        assert result.complete, result.error
        await engine.replan()
        again = [row for row in await creates(engine, "partnerize") if row["state"] == "pending"]
        assert len(again) == PEOPLE - 3  # a new generation for each hire still missing
        for row in again:
            assert row["attempts"] == 1  # tried before: it looks up before it creates
            assert row["next_attempt_at"] is not None  # after a backoff
        daemon = Daemon(Path("syncd.toml"))  # its /status, on this engine
        daemon.engine = engine
        daemon.health = {name: ConnectorHealth() for name in engine.connectors}
        connectors: Any = (await daemon.status())["connectors"]
        assert connectors["partnerize"]["retrying_dead_creates"] == PEOPLE - 3
        capsys.readouterr()
        await run_status(engine.config, argparse.Namespace(json=True))
        out = capsys.readouterr().out  # the test run's logs go to stdout too
        shown = json.loads(out[out.index('{\n  "authority"') :])["connectors"]["partnerize"]
        assert shown["retrying_dead_creates"] == PEOPLE - 3
        assert shown["dead_creates_need_operator"] == 0
        await engine.replan()  # planning again queues nothing more
        assert len(await creates(engine, "partnerize")) == 2 * PEOPLE - 3
        await anyio.sleep(0.15)
        await engine.push("partnerize")
        emails = sorted(str(user["email"]) for user in world.users("partnerize"))
        assert emails == sorted(f"person{i}@corp.example" for i in range(PEOPLE))  # each once
        assert "retrying_dead_creates" not in (await outbox.dead_creates(engine.store.db)).get(
            "partnerize", {}
        )


async def test_a_look_alike_create_is_not_planned_again(world: World, db_url: str) -> None:
    write_feed(world.feed, [person(0), person(1, email="jess@corp.example")])
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        assert (await engine.list_connector("partnerize")).complete
        ops = await outbox.claim(engine.store.db, "partnerize", 100)
        jess = next(op for op in ops if op.payload["email"] == "jess@corp.example")
        # An account whose address only looks like Jess's: the vendor's case-insensitive
        # match folds "ß" to "ss", so the lookup before the retried create finds it.
        await engine.connectors["partnerize"].create_account(
            {**jess.payload, "email": "jeß@corp.example"}
        )
        await engine.recover()
        await engine.push("partnerize")
        rows = {row["id"]: row for row in await creates(engine, "partnerize")}
        assert rows[jess.id]["state"] == "dead"
        assert rows[jess.id]["error_kind"] == "lookalike"
        assert (await engine.list_connector("partnerize")).complete
        await engine.replan()
        assert len(await creates(engine, "partnerize")) == 2  # not planned again
        dead = await outbox.dead_creates(engine.store.db)
        assert dead["partnerize"] == {"dead_creates_need_operator": 1}
        emails = sorted(str(user["email"]) for user in world.users("partnerize"))
        assert emails == ["jeß@corp.example", "person0@corp.example"]


async def test_a_create_the_vendor_refuses_is_not_planned_again(world: World, db_url: str) -> None:
    write_feed(world.feed, [person(0), person(1, given_name="", family_name="")])
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        assert (await engine.list_connector("influitive")).complete
        for _ in range(6):  # Influitive needs a first and last name: every attempt fails
            await engine.push("influitive")
            await anyio.sleep(0.06)
        rows = await creates(engine, "influitive")
        refused = [row for row in rows if row["state"] == "dead"]
        assert [row["error_kind"] for row in refused] == ["refused"]
        assert (await engine.list_connector("influitive")).complete
        await engine.replan()
        assert len(await creates(engine, "influitive")) == 2  # waits for the HR data, not a retry
        dead = await outbox.dead_creates(engine.store.db)
        assert dead["influitive"] == {"dead_creates_need_operator": 1}


async def test_a_403_on_a_write_is_dead_at_once_while_a_401_parks(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        for name in ("userflow", "partnerize"):
            assert (await engine.list_connector(name)).complete
        forbidden = world.sims["userflow"].settings.faults
        forbidden.server_error_share, forbidden.server_error_status = 1.0, 403
        world.sims["partnerize"].settings.faults.unauthorized = True
        refused = await engine.push("userflow")
        parked = await engine.push("partnerize")
        rows = await creates(engine, "userflow")
        assert {row["state"] for row in rows} == {"dead"}  # this write is not allowed
        assert all(row["attempts"] == 1 and row["error_kind"] == "refused" for row in rows)
        assert "HTTP 403" in str(rows[0]["last_error"])
        assert not refused.auth_failed
        assert parked.auth_failed  # the key itself is rejected: nothing dies, the connector parks
        assert {row["state"] for row in await creates(engine, "partnerize")} == {"pending"}


async def test_a_write_that_reached_the_vendor_before_a_crash_is_not_sent_again(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        rows[1] = person(1, title="Staff Engineer")
        rows[2] = person(2, status="terminated")
        write_feed(world.feed, rows)
        await engine.apply_feed()
        sim = world.sims["influitive"]
        ops = await outbox.claim(engine.store.db, "influitive", 10, token=1)
        assert sorted(op.op for op in ops) == ["deactivate", "update"]
        users = by_email(world, "influitive")
        for op in ops:  # each reached the vendor; the process died before it recorded that
            email = "person1@corp.example" if op.op == "update" else "person2@corp.example"
            external_id = str(users[email][sim.id_key])
            if op.op == "update":
                await engine.connectors["influitive"].update_account(external_id, op.payload)
            else:
                await engine.connectors["influitive"].deactivate_account(external_id)
        sent = len(sim.stats.writes)
        pusher = engine.pushers["influitive"]
        pusher.token = 2  # the next holder of the connector's lease
        stats = await pusher.drain()
        assert stats.done == 2
        assert len(sim.stats.writes) == sent  # it read each account, and sent nothing again
        assert sim.stats.duplicate_writes() == 0
        async with engine.store.db.read() as conn:
            states = (
                await conn.execute(sa.select(o.c.state).where(o.c.id.in_([op.id for op in ops])))
            ).scalars()
            assert set(states) == {"done"}


async def test_creates_left_in_flight_are_looked_up_in_one_scan(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await crashed_mid_push(engine, "partnerize", 3)  # no email filter: a lookup is a scan
        sim = world.sims["partnerize"]

        def reads() -> int:
            return sum(n for (method, _, _), n in sim.stats.requests.items() if method == "GET")

        before = reads()
        await engine.push("partnerize")
        assert reads() - before == 1  # one page holds everyone: one scan for all twelve
        emails = sorted(str(user["email"]) for user in world.users("partnerize"))
        assert emails == sorted(f"person{i}@corp.example" for i in range(PEOPLE))  # each once
