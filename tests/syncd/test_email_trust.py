"""Strict email matching and untrusted links, end to end against the vendor simulators."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from graph.models import account_table, conflict_table, operation_table, person_table
from graph.writeback import link
from syncd.config import Config
from syncd.engine import Engine
from tests.syncd.test_engine import ENV, World, cycle, person
from tests.syncd.test_engine import world as world  # the fixture

TI = "thought_industries"
FIELDS = ["employee_id", "email", "aliases", "given_name", "family_name", "status", "role"]


def write_feed(path: Path, rows: list[dict[str, str]]) -> None:
    """An HR export with a role column."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def only(world: World, db_url: str, **settings: Any) -> Config:
    """The deployment with Thought Industries alone (role, groups, email and active)."""
    config = world.config(db_url)
    connector = config.connectors[TI].model_copy(update=settings)
    return config.model_copy(update={"connectors": {TI: connector}})


def seed(
    world: World, key: str, email: str, *, active: bool = False, role: str = "learner"
) -> None:
    """A user the vendor already holds, that syncd did not create."""
    world.sims[TI].add_user(
        {
            "id": key,
            "email": email,
            "firstName": "Old",
            "lastName": "Name",
            "role": role,
            "groups": [],
            "active": active,
        }
    )


async def rows(engine: Engine, query: Any) -> list[Any]:
    """Rows of a read query on the graph."""
    async with engine.store.db.read() as conn:
        return list((await conn.execute(query)).all())


async def test_lookalike_accounts_are_conflicts_never_links(world: World, db_url: str) -> None:
    bosses = {
        "ceo": "ｃｅｏ@corp.example",  # fullwidth
        "sam": "ſam@corp.example",  # long s
        "kim": "\u212aim@corp.example",  # Kelvin sign
        "cfo": "cfo@corp.exa\u034fmple",  # combining grapheme joiner in the domain
    }
    for name, email in bosses.items():
        seed(world, f"x-{name}", email)
    people = [
        person(i, email=f"{name}@corp.example", role="admin") for i, name in enumerate(bosses)
    ]
    write_feed(world.feed, people)
    async with Engine.open(only(world, db_url), environ=ENV) as engine:
        await cycle(engine)
        users = world.sims[TI].users
        for name, email in bosses.items():
            held = users[f"x-{name}"]
            assert (held["email"], held["role"], held["active"]) == (email, "learner", False)
        linked = await rows(
            engine,
            sa.select(account_table.c.external_id).where(account_table.c.person_id.is_not(None)),
        )
        assert not any(external_id.startswith("x-") for (external_id,) in linked)
        conflicts = await rows(
            engine,
            sa.select(account_table.c.external_id, person_table.c.primary_email)
            .select_from(conflict_table)
            .join(account_table, account_table.c.id == conflict_table.c.account_id)
            .join(person_table, person_table.c.id == conflict_table.c.person_id)
            .where(conflict_table.c.kind == "lookalike", conflict_table.c.state == "open"),
        )
        assert sorted(conflicts) == sorted((f"x-{n}", f"{n}@corp.example") for n in bosses)
        # Where the vendor answered "exists" for a look-alike, the create fails, unlinked.
        dead = await rows(
            engine,
            sa.select(operation_table.c.person_id, operation_table.c.last_error).where(
                operation_table.c.state == "dead"
            ),
        )
        assert len(dead) == 2  # sam and kim: the simulator folds case like the vendors do
        assert all("look-alike" in error and "not linked" in error for _, error in dead)
        assert all("@" not in error for _, error in dead)  # no address in the error

        # An operator confirms one: from then on it is the person's account, fully synced.
        async with engine.store.db.write() as conn:
            await link(conn, TI, "x-sam", "sam@corp.example")
        await cycle(engine)
        sam = users["x-sam"]
        assert (sam["email"], sam["role"], sam["active"]) == ("sam@corp.example", "admin", True)
        assert users["x-kim"]["role"] == "learner"


async def test_accounts_linked_by_email_wait_for_confirmation(world: World, db_url: str) -> None:
    seed(world, "x-1", "P1.Old@corp.example", active=False)  # dormant, found by a former address
    seed(world, "x-2", "person2@corp.example", active=True)
    rows_ = [person(i, role="admin") for i in range(4)]
    rows_[1]["aliases"] = "p1.old@corp.example"
    write_feed(world.feed, rows_)
    async with Engine.open(only(world, db_url), environ=ENV) as engine:
        await cycle(engine)
        users = world.sims[TI].users
        dormant = users["x-1"]
        # Ordinary profile fields follow the person; access and the login do not.
        assert (dormant["firstName"], dormant["role"], dormant["active"]) == (
            "Given1",
            "learner",
            False,
        )
        assert dormant["email"] == "P1.Old@corp.example"
        assert users["x-2"]["role"] == "learner"
        plan = await engine.replan(dry_run=True)
        assert any("needs a confirmed link" in item for item in plan.unsupported)
        created = [u for u in users.values() if not str(u["id"]).startswith("x-")]
        assert {u["role"] for u in created} == {"admin"}  # syncd's own creations are trusted

        # A leaver's untrusted account is still deactivated.
        write_feed(world.feed, [rows_[0], rows_[1], person(2, status="terminated"), rows_[3]])
        await cycle(engine)
        assert users["x-2"]["active"] is False

    # The switch an operator flips after reviewing the first plan.
    async with Engine.open(only(world, db_url, trust_email_links=True), environ=ENV) as engine:
        await cycle(engine)
        dormant = users["x-1"]
        assert (dormant["role"], dormant["active"]) == ("admin", True)
        assert dormant["email"] == "person1@corp.example"


async def test_an_account_a_create_finds_is_not_trusted(world: World, db_url: str) -> None:
    write_feed(world.feed, [person(i, role="admin") for i in range(3)])
    async with Engine.open(only(world, db_url), environ=ENV) as engine:
        await engine.apply_feed()
        assert (await engine.list_connector(TI)).complete
        # Between the listing and the push, someone makes the account at the vendor.
        seed(world, "x-1", "PERSON1@corp.example", active=True)
        seed(world, "x-2", "perſon2@corp.example", active=True)  # a long s: "exists" too
        await engine.push(TI)
        found = await rows(
            engine,
            sa.select(
                account_table.c.external_id, account_table.c.link_method, account_table.c.person_id
            ).where(account_table.c.external_id.like("x-%")),
        )
        assert [(key, method) for key, method, _ in found] == [("x-1", "email")]
        [(error,)] = await rows(
            engine, sa.select(operation_table.c.last_error).where(operation_table.c.state == "dead")
        )
        assert "x-2" in error and "look-alike" in error
        await cycle(engine)
        assert world.sims[TI].users["x-1"]["role"] == "learner"
        assert world.sims[TI].users["x-2"]["role"] == "learner"
        assert len(world.sims[TI].users) == 3
