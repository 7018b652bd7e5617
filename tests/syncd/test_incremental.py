"""A listing plans only the people its changes touched; a full replan still plans everyone."""

from __future__ import annotations

from dataclasses import replace

from connectors.sim.base import SimPerson
from graph.records import PersonRecord
from syncd.engine import Engine
from tests.syncd.test_engine import ENV, PEOPLE, World, by_email, cycle, person, world

__all__ = ["world"]  # the fixture, used by name


def graph_record(index: int, title: str) -> PersonRecord:
    """Person `index` as the HR feed holds them, with another title."""
    row = person(index)
    return PersonRecord(
        email=row["email"],
        authority_id=row["employee_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        attributes={"title": title},
    )


async def settled(engine: Engine) -> None:
    """Two cycles: everyone provisioned, then a cycle that plans from changes only."""
    await cycle(engine)
    await cycle(engine)


async def test_an_unchanged_listing_plans_nobody_a_replan_plans_everyone(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await settled(engine)
        # The graph changes behind the planners' back: no account of person 3 changed.
        await engine.store.upsert_people([graph_record(3, "Principal")], "hr")
        result = await engine.list_connector("influitive")
        assert result.complete and result.plan.operations == []
        replan = await engine.replan(dry_run=True)
        assert {spec.person_id for spec in replan.operations} == {
            spec.person_id for spec in replan.operations if spec.op == "update"
        }
        assert len({spec.connector for spec in replan.operations}) >= 3
        # A reload keeps what each connector planned: the full pass after it plans everyone.
        planned = dict(engine.planned_since)
        engine.reload(engine.config)
        assert engine.planned_since == planned
        again = await engine.list_connector("influitive", dry_run=True)
        assert again.plan.operations == []


async def test_a_start_plans_everyone_in_one_pass_then_listings_plan_only_changes(
    world: World, db_url: str
) -> None:
    config = world.config(db_url)
    async with Engine.open(config, environ=ENV) as engine:
        await settled(engine)
        await engine.store.upsert_people([graph_record(3, "Principal")], "hr")
    async with Engine.open(config, environ=ENV) as engine:
        full = await engine.replan(start=True)
        updates = [(spec.connector, spec.op) for spec in full.operations]
        assert len(updates) == len(set(updates)) >= 3
        assert {op for _, op in updates} == {"update"} and full.queued == len(updates)
        assert {spec.person_id for spec in full.operations} == {full.operations[0].person_id}
        assert set(engine.planned_since) == set(engine.connectors)
        for name in engine.connectors:
            result = await engine.list_connector(name)
            assert result.complete and result.plan.operations == [], name


async def test_after_an_incomplete_listing_a_start_leaves_that_connector_to_plan_everyone(
    world: World, db_url: str
) -> None:
    config = world.config(db_url)
    async with Engine.open(config, environ=ENV) as engine:
        await settled(engine)
        world.sims["userflow"].settings.faults.unauthorized = True
        assert not (await engine.list_connector("userflow")).complete
        world.sims["userflow"].settings.faults.unauthorized = False
        await engine.store.upsert_people([graph_record(3, "Principal")], "hr")
    async with Engine.open(config, environ=ENV) as engine:
        full = await engine.replan(start=True)
        # Without a complete listing it may not create or deactivate, but it still updates.
        assert "userflow" in {spec.connector for spec in full.operations}
        assert "userflow" not in engine.planned_since
        assert set(engine.planned_since) == set(engine.connectors) - {"userflow"}


async def test_a_full_pass_holds_removals_past_the_guard_counted_over_everyone(
    world: World, db_url: str
) -> None:
    config = world.config(db_url, max_deactivations=3, max_deactivation_share=0.9)
    async with Engine.open(config, environ=ENV) as engine:
        await settled(engine)
        leavers = [
            replace(graph_record(index, "Engineer"), lifecycle="deprovisioned")
            for index in range(5)
        ]
        await engine.store.upsert_people(leavers, "hr")
        full = await engine.replan()
        removals = [spec for spec in full.operations if spec.op in ("deactivate", "delete")]
        removing = {spec.connector for spec in removals}
        assert len(removing) >= 3 and len(removals) == 5 * len(removing)
        # No batch of the pass went out on its own: every removal waits for an operator.
        assert full.held == dict.fromkeys(removing, 5)


async def test_a_changed_account_is_planned_and_only_its_person(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await settled(engine)
        await engine.store.upsert_people(
            [graph_record(4, "Principal"), graph_record(5, "Principal")], "hr"
        )
        # Person 4's account changes at the vendor; person 5's does not.
        by_email(world, "appxite")["person4@corp.example"]["JobTitle"] = "Drifted"
        result = await engine.list_connector("appxite")
        assert result.changed == 1
        assert [(spec.op, spec.payload.get("title")) for spec in result.plan.operations] == [
            ("update", "Principal")
        ]


async def test_a_missing_account_and_a_new_orphan_are_planned(world: World, db_url: str) -> None:
    config = world.config(db_url)
    connectors = dict(config.connectors)
    connectors["partnerize"] = connectors["partnerize"].model_copy(
        update={"deactivate_orphans": True}
    )
    config = config.model_copy(update={"connectors": connectors})
    async with Engine.open(config, environ=ENV) as engine:
        await settled(engine)
        sim = world.sims["partnerize"]
        gone = by_email(world, "partnerize")["person6@corp.example"]
        del sim.users[next(key for key, value in sim.users.items() if value is gone)]
        world.fleet["partnerize"].seed(
            [
                SimPerson(
                    index=PEOPLE + 50,
                    employee_id="X1",
                    email="stranger@elsewhere.example",
                    given_name="Stray",
                    family_name="Account",
                    title="None",
                )
            ]
        )
        result = await engine.list_connector("partnerize")
        assert result.complete, result.error
        ops = sorted(spec.op for spec in result.plan.operations)
        assert ops == ["create", "deactivate"], result.plan.operations
