"""Orphans, leavers' collisions, vendor ids, deletes and email-change holds, end to end."""
# ruff: noqa: F811  (the `world` fixture is imported, and tests take it by name)

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from connectors.core.errors import InvalidIdentifierError, UnsupportedOperation
from graph import outbox
from graph.models import account_table, operation_table
from graph.writeback import link
from syncd.cli.commands import run_status
from syncd.config import Config
from syncd.engine import Engine
from syncd.reconcile import (
    HELD_CONFLICT,
    HELD_EMAIL_CHANGES,
    HELD_NEW_DOMAIN,
    HELD_UNLINKED,
)
from syncd.service.daemon import ConnectorHealth, Daemon
from tests.syncd.test_engine import (
    ENV,
    PEOPLE,
    VENDOR_NAMES,
    World,
    by_email,
    cycle,
    person,
    world,  # noqa: F401  (the fixture, used by name)
    write_feed,
)

EMAIL_CHANGING = [name for name in VENDOR_NAMES if name != "influitive"]  # its API cannot
LOOSE_GUARD = {"max_deactivations": 100, "max_deactivation_share": 1.0}


def configured(world: World, db_url: str, guard: dict[str, Any], **connectors: Any) -> Config:
    """The world's config with connector settings added (e.g. deactivate_orphans)."""
    data = world.config(db_url, **guard).model_dump()
    for name, extra in connectors.items():
        data["connectors"][name].update(extra)
    return Config.model_validate(data)


def advocate(external_id: int | str, email: str, status: str = "active") -> dict[str, Any]:
    """An Influitive advocate as the hub stores it."""
    return {
        "id": external_id,
        "email": email,
        "first_name": "Look",
        "last_name": "Alike",
        "status": status,
    }


async def operations(engine: Engine, connector: str) -> list[Any]:
    """Every operation queued for a connector, with its account's external id."""
    o, a = operation_table, account_table
    async with engine.store.db.read() as conn:
        rows = await conn.execute(
            sa.select(o.c.op, o.c.state, o.c.last_error, o.c.payload_json, a.c.external_id)
            .join(a, a.c.id == o.c.account_id, isouter=True)
            .where(o.c.connector == connector)
            .order_by(o.c.id)
        )
        return list(rows)


async def test_conflicts_and_look_alikes_are_never_orphans(world: World, db_url: str) -> None:
    config = configured(world, db_url, LOOSE_GUARD, influitive={"deactivate_orphans": True})
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        sim = world.sims["influitive"]
        look_alikes = {
            "999001": "person3@corp.example",  # a second account: a second_account conflict
            "999002": " PERSON3@Corp.Example ",  # case and spaces
            "999003": "person3\u200b@corp.example",  # an invisible character: an invalid email
            "999004": "\uff50erson3@corp.example",  # a fullwidth letter
        }
        for external_id, email in look_alikes.items():
            sim.add_user(advocate(int(external_id), email))
        sim.add_user(advocate(999005, "stranger@elsewhere.example"))
        result = await engine.list_connector("influitive")
        assert result.complete, result.error
        await engine.push("influitive")
        users = {str(user["id"]): user for user in world.users("influitive")}
        for external_id in look_alikes:
            assert world.active("influitive", users[external_id]), external_id
        assert not world.active("influitive", users["999005"])  # a true orphan still goes
        assert world.active("influitive", by_email(world, "influitive")["person3@corp.example"])
        targeted = {row.external_id for row in await operations(engine, "influitive")}
        assert targeted.isdisjoint(look_alikes)


async def test_a_leavers_accounts_in_conflicts_are_held_not_left(
    world: World, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outsiders = [
        {**person(100), "email": "x@partner.example"},
        {**person(101), "email": "y@partner.example"},
    ]
    rows = [person(i) for i in range(PEOPLE)]
    write_feed(world.feed, rows + outsiders)
    sim = world.sims["influitive"]
    sim.add_user(advocate(998001, "x@partner.example"))  # x's only accounts: both in a conflict
    sim.add_user(advocate(998002, "x@partner.example"))
    sim.add_user(advocate(998003, "y@partner.example"))  # y's, linked by email
    config = configured(world, db_url, LOOSE_GUARD)
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        sim.add_user(advocate(5000004, "person5@corp.example"))  # a second account for person5
        await cycle(engine)

        leavers = {5, 100, 101}
        terminated = [
            {**row, "status": "terminated"} if i in leavers else row
            for i, row in zip([*range(PEOPLE), 100, 101], rows + outsiders, strict=True)
        ]
        write_feed(world.feed, terminated)
        await engine.apply_feed()
        for name in engine.connectors:
            await engine.push(name)

        users = {str(user["id"]): user for user in world.users("influitive")}
        assert not world.active("influitive", users["998003"])  # linked: goes at once
        [own] = [
            user
            for key, user in users.items()
            if user["email"] == "person5@corp.example" and key != "5000004"
        ]
        assert not world.active("influitive", own)  # linked: goes at once
        for held in ("998001", "998002", "5000004"):
            assert world.active("influitive", users[held]), held
        states = {
            row.external_id: (row.state, row.last_error)
            for row in await operations(engine, "influitive")
        }
        assert states["998001"] == states["998002"] == states["5000004"] == ("held", HELD_CONFLICT)

        # Both status views say what is held and why, and how many conflicts are open.
        capsys.readouterr()  # what the log printed so far
        await run_status(config, argparse.Namespace(json=True))
        status = json.loads(capsys.readouterr().out)["connectors"]["influitive"]
        assert status["held_reasons"] == {HELD_CONFLICT: 3}
        assert status["open_conflicts"] == 3
        daemon = Daemon(world.feed)
        daemon.engine = engine
        daemon.health = {name: ConnectorHealth() for name in engine.connectors}
        live = (await daemon.status())["connectors"]
        assert isinstance(live, dict)
        assert live["influitive"]["held_reasons"] == {HELD_CONFLICT: 3}
        assert live["influitive"]["open_conflicts"] == 3

        # An operator approves: they go.
        await outbox.release_held(engine.store.db, approve=True, actor="t")
        await engine.push("influitive")
        users = {str(user["id"]): user for user in world.users("influitive")}
        for held in ("998001", "998002", "5000004"):
            assert not world.active("influitive", users[held]), held


async def test_a_held_collision_does_not_hold_the_leavers_own_account(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:  # the default guard
        await cycle(engine)
        world.sims["influitive"].add_user(advocate(5000005, "person5@corp.example"))
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        rows[5] = person(5, status="terminated")
        write_feed(world.feed, rows)
        await engine.apply_feed()
        states = {
            row.external_id: (row.op, row.state, row.last_error)
            for row in await operations(engine, "influitive")
            if row.op == "deactivate"
        }
        assert states.pop("5000005") == ("deactivate", "held", HELD_CONFLICT)
        assert list(states.values()) == [("deactivate", "pending", None)]


async def test_every_account_linked_to_a_leaver_goes(world: World, db_url: str) -> None:
    async with Engine.open(configured(world, db_url, LOOSE_GUARD), environ=ENV) as engine:
        await cycle(engine)
        world.sims["influitive"].add_user(advocate(5000006, "p6-old@elsewhere.example"))
        await cycle(engine)
        async with engine.store.db.write() as conn:  # as `syncd link` does
            await link(conn, "influitive", "5000006", "person6@corp.example")
        rows = [person(i) for i in range(PEOPLE)]
        rows[6] = person(6, status="terminated")
        write_feed(world.feed, rows)
        await engine.apply_feed()
        await engine.push("influitive")
        users = [user for user in world.users("influitive") if user["id"] == 5000006]
        users += [by_email(world, "influitive")["person6@corp.example"]]
        assert [world.active("influitive", user) for user in users] == [False, False]


async def test_a_leavers_account_whose_email_drifted_is_held(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        [own] = [u for u in world.users("influitive") if u["email"] == "person7@corp.example"]
        own["email"] = "someone@else.example"  # changed at the vendor: an email_drift conflict
        await engine.list_connector("influitive")
        rows = [person(i) for i in range(PEOPLE)]
        rows[7] = person(7, status="terminated")
        write_feed(world.feed, rows)
        await engine.apply_feed()
        states = [
            (row.state, row.last_error)
            for row in await operations(engine, "influitive")
            if row.op == "deactivate"
        ]
        assert states == [("held", HELD_CONFLICT)]


async def test_an_unlinked_account_with_a_leavers_email_is_held(world: World, db_url: str) -> None:
    world.sims["influitive"].add_user(advocate(997001, "z@partner.example"))
    config = configured(world, db_url, LOOSE_GUARD)
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)  # nobody has that email yet: an orphan
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(
            world.feed, [*rows, {**person(102, status="terminated"), "email": "z@partner.example"}]
        )
        await engine.apply_feed()
        states = {
            row.external_id: (row.state, row.last_error)
            for row in await operations(engine, "influitive")
        }
        assert states["997001"] == ("held", HELD_UNLINKED)
        # Linked to the leaver since (an operator's link, or a create found by its lookup):
        # the reason to hold is gone, and the next plan lets the deactivation go.
        async with engine.store.db.write() as conn:
            await link(conn, "influitive", "997001", "z@partner.example")
        await engine.replan()
        after = {row.external_id: row.state for row in await operations(engine, "influitive")}
        assert after["997001"] == "pending"
        await engine.push("influitive")
        [stray] = [user for user in world.users("influitive") if user["id"] == 997001]
        assert not world.active("influitive", stray)


async def test_bad_vendor_ids_are_rejected_and_never_reach_a_url(world: World, db_url: str) -> None:
    async with Engine.open(configured(world, db_url, {}), environ=ENV) as engine:
        await cycle(engine)
        sim = world.sims["influitive"]
        bad = ["", ".", "..", "a/b", "a\\b", "x?y", "x#y", "5%", "tab\there", "x" * 300]
        for index, external_id in enumerate(bad):
            sim.users[f"bad{index}"] = advocate(external_id, f"bad{index}@elsewhere.example")
        with capture_logs() as logs:
            result = await engine.list_connector("influitive")
        assert result.complete, result.error
        rejected = [entry for entry in logs if entry["event"] == "ingest.rejected"]
        assert rejected and rejected[0]["count"] == len(bad)
        assert len(await engine.store.orphans("influitive")) == 0
        assert result.accounts == PEOPLE

        # Whatever a connector is handed, a write never lands on a collection.
        for name, connector in engine.connectors.items():
            stats = world.sims[name].stats
            before = sum(stats.requests.values())
            for external_id in ("", ".", ".."):
                with pytest.raises(InvalidIdentifierError):
                    await connector.get_account(external_id)
                with pytest.raises(InvalidIdentifierError):
                    await connector.update_account(external_id, {"title": "x"})
                with pytest.raises((InvalidIdentifierError, UnsupportedOperation)):
                    await connector.deactivate_account(external_id)
            assert sum(stats.requests.values()) == before, name


async def test_allow_delete_deletes_a_leaver_where_there_is_no_deactivate(
    world: World, db_url: str
) -> None:
    config = configured(world, db_url, {"max_deactivations": 2}, userflow={"allow_delete": True})
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        rows[11] = person(11, status="terminated")
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert "userflow: cannot deactivate" not in feed.plan.unsupported
        await engine.push("userflow")
        assert "person11@corp.example" not in by_email(world, "userflow")

        # Deletes count toward the mass-deactivation guard like deactivations.
        write_feed(
            world.feed,
            [person(i, status="terminated") if i >= 8 else rows[i] for i in range(PEOPLE)],
        )
        feed = await engine.apply_feed()
        assert feed.plan.held.get("userflow") == 3
        await engine.push("userflow")
        assert {f"person{i}@corp.example" for i in range(8, 11)} <= set(by_email(world, "userflow"))


async def test_without_allow_delete_a_leaver_is_only_reported(world: World, db_url: str) -> None:
    async with Engine.open(configured(world, db_url, {}), environ=ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        rows[11] = person(11, status="terminated")
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert feed.plan.unsupported == ["userflow: cannot deactivate"]
        await engine.push("userflow")
        assert "person11@corp.example" in by_email(world, "userflow")
        deletes = [key for key in world.sims["userflow"].stats.requests if key[0] == "DELETE"]
        assert deletes == []


async def test_email_changes_to_a_new_domain_or_past_the_guard_are_held(
    world: World, db_url: str
) -> None:
    # Both domains are provisioned: the guard, not the provision rule, is what holds them.
    provision = {"provision": {"domains": ["corp.example", "newco.example"]}}
    config = configured(
        world, db_url, {"max_email_changes": 2}, **dict.fromkeys(world.urls, provision)
    )
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]

        # A login email moving to a domain the authority never used waits for an operator.
        # Two people moving there together do not vouch for each other.
        rows[2] = person(2, email="person2@newco.example")
        rows[8] = person(8, email="person8@newco.example")
        write_feed(world.feed, rows)
        with capture_logs() as logs:
            feed = await engine.apply_feed()
        assert feed.plan.held == dict.fromkeys(EMAIL_CHANGING, 2)
        held = [entry for entry in logs if entry["event"] == "guard.held"]
        assert {entry["reason"] for entry in held} == {HELD_NEW_DOMAIN}
        for name in engine.connectors:
            await engine.push(name)
        assert "person2@corp.example" in by_email(world, "thought_industries")
        await outbox.release_held(engine.store.db, approve=True, actor="t")
        for name in engine.connectors:
            await engine.push(name)
        assert "person2@newco.example" in by_email(world, "thought_industries")

        # Within the guard, on a known domain: straight through.
        rows[3] = person(3, email="renamed3@corp.example")
        rows[4] = person(4, email="renamed4@corp.example")
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert feed.plan.held == {}

        # More people changing login email than the guard allows: all held.
        for i in (5, 6, 7):
            rows[i] = person(i, email=f"renamed{i}@corp.example")
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert feed.plan.held == dict.fromkeys(EMAIL_CHANGING, 3)
        reasons = {
            row.last_error for row in await operations(engine, "partnerize") if row.state == "held"
        }
        assert reasons == {HELD_EMAIL_CHANGES}
