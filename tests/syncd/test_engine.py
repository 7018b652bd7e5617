"""The sync engine end to end: five vendor simulators, an HR file, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from connectors.sim.base import VendorSimulator
from connectors.sim.fleet import Fleet, build_simulators, simulator_fleet
from graph import outbox
from graph.linked import save_learned_rate
from syncd.cli.simfleet import connection_environ, fleet_config, secret_references
from syncd.config import Config
from syncd.engine import Engine

TOKEN = "engine-Secret-token-0001"  # every test simulator accepts it for every secret
VENDOR_NAMES = ("influitive", "thought_industries", "partnerize", "userflow", "appxite")
# What any fleet of these vendors with this token offers connectors; only URLs vary by test.
CONNECTIONS = {
    name: sim.connection() for name, sim in build_simulators(VENDOR_NAMES, token=TOKEN).items()
}
ENV = connection_environ(CONNECTIONS)
SECRETS = {name: secret_references(name, connection) for name, connection in CONNECTIONS.items()}
SETTINGS = {name: dict(connection.settings) for name, connection in CONNECTIONS.items()}
PEOPLE = 12
FIELDS = ["employee_id", "email", "given_name", "family_name", "title", "status"]


def person(index: int, **changes: str) -> dict[str, str]:
    """One HR row."""
    row = {
        "employee_id": f"E{index:03d}",
        "email": f"person{index}@corp.example",
        "given_name": f"Given{index}",
        "family_name": f"Family{index}",
        "title": "Engineer",
        "status": "active",
    }
    return {**row, **changes}


def write_feed(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the HR export."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


@asynccontextmanager
async def serving(name: str) -> AsyncIterator[tuple[VendorSimulator, str]]:
    """One empty simulator of this vendor that accepts TOKEN, and its URL."""
    async with simulator_fleet([name], token=TOKEN) as fleet:
        yield fleet[name].simulator, fleet[name].url


class World:
    """Running simulators, an HR file, and a config that points at them."""

    def __init__(self, fleet: Fleet, feed: Path) -> None:
        self.fleet, self.feed = fleet, feed
        self.sims = fleet.simulators
        self.urls = fleet.urls

    def config(self, db_url: str, **guard: Any) -> Config:
        """The deployment's config."""
        document = {
            "database": {"url": db_url},
            "authority": {"hr_feed": str(self.feed)},
            "guard": guard or {},
            "push": {"base_delay": 0.01, "max_delay": 0.05},
        }
        return fleet_config(self.fleet, document, rate=200, provision={"domains": ["corp.example"]})

    def users(self, name: str) -> list[dict[str, Any]]:
        """Every user the vendor simulator holds."""
        return self.fleet[name].users()

    def active(self, name: str, user: dict[str, Any]) -> bool:
        """Whether a vendor user is active, in that vendor's terms."""
        return self.sims[name].view(user).active

    def title(self, name: str, user: dict[str, Any]) -> object:
        """A vendor user's title, wherever the vendor keeps it."""
        return self.sims[name].view(user).title


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Five empty vendors and an HR feed of PEOPLE people."""
    async with simulator_fleet(VENDOR_NAMES, token=TOKEN) as fleet:
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(PEOPLE)])
        yield World(fleet, feed)


async def cycle(engine: Engine) -> None:
    """Feed, then list and push every connector."""
    await engine.recover()
    await engine.apply_feed()
    for name in engine.connectors:
        result = await engine.list_connector(name)
        assert result.complete, result.error
        await engine.push(name)
    for name in engine.connectors:
        await engine.push(name)


def by_email(world: World, name: str) -> dict[str, dict[str, Any]]:
    """A vendor's users by lowercased email, whatever the vendor calls the field."""
    sim = world.sims[name]
    return {str(sim.view(user).email).lower(): user for user in world.users(name)}


async def test_hires_changes_leavers_and_guards(world: World, db_url: str) -> None:
    config = world.config(db_url, max_deactivations=3, max_deactivation_share=0.5)
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        # A new hire (everyone is new here) gets an account at every vendor the rule names.
        for name in VENDOR_NAMES:
            held = by_email(world, name)
            assert {f"person{i}@corp.example" for i in range(PEOPLE)} <= set(held), name
        count_before = {name: len(world.users(name)) for name in VENDOR_NAMES}

        # A second cycle changes nothing and creates no duplicate.
        await cycle(engine)
        assert {name: len(world.users(name)) for name in VENDOR_NAMES} == count_before

        # A title change reaches every vendor that has a title, leaving other fields alone.
        rows = [person(i) for i in range(PEOPLE)]
        rows[1] = person(1, title="Staff Engineer")
        write_feed(world.feed, rows)
        await engine.apply_feed()
        for name in engine.connectors:
            await engine.push(name)
        for name in ("influitive", "userflow", "appxite"):
            assert (
                world.title(name, by_email(world, name)["person1@corp.example"]) == "Staff Engineer"
            )

        # A leaver is deactivated everywhere that can deactivate; Userflow cannot.
        write_feed(world.feed, rows[:-1])
        feed = await engine.apply_feed()
        assert feed.deprovisioned == 1
        assert "userflow: cannot deactivate" in feed.plan.unsupported
        for name in engine.connectors:
            await engine.push(name)
        leaver = f"person{PEOPLE - 1}@corp.example"
        for name in ("influitive", "thought_industries", "partnerize", "appxite"):
            assert not world.active(name, by_email(world, name)[leaver]), name

        # A truncated feed deprovisions nobody.
        write_feed(world.feed, rows[:3])
        feed = await engine.apply_feed()
        assert feed.refused is not None and feed.deprovisioned == 0

        # A mass termination past the guard is held until approved.
        terminated = [person(i, status="terminated") if i >= 5 else rows[i] for i in range(11)]
        write_feed(world.feed, terminated)
        feed = await engine.apply_feed()
        assert feed.plan.held.get("influitive") == 6
        await engine.push("influitive")
        still = by_email(world, "influitive")
        assert all(
            world.active("influitive", still[f"person{i}@corp.example"]) for i in range(5, 11)
        )


async def test_a_rehire_is_reactivated(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(world.feed, [*rows[:-1], person(PEOPLE - 1, status="terminated")])
        await cycle(engine)
        who = f"person{PEOPLE - 1}@corp.example"
        assert not world.active("partnerize", by_email(world, "partnerize")[who])
        write_feed(world.feed, rows)
        await cycle(engine)
        assert world.active("partnerize", by_email(world, "partnerize")[who])
        assert world.active("appxite", by_email(world, "appxite")[who])


async def test_a_vendor_401_or_cut_listing_deactivates_nobody(world: World, db_url: str) -> None:
    config = world.config(db_url)
    async with Engine.open(config, environ=ENV) as engine:
        await cycle(engine)
        sim = world.sims["influitive"]
        sim.token = "rotated-elsewhere"
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(world.feed, [*rows[:-1], person(PEOPLE - 1, status="terminated")])
        await engine.apply_feed()
        result = await engine.list_connector("influitive")
        assert not result.complete and result.error and "credentials" in result.error
        assert TOKEN not in result.error
        assert result.plan.operations == []


async def test_an_email_change_reaches_vendors_without_a_new_account(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await cycle(engine)
        counts = {name: len(world.users(name)) for name in VENDOR_NAMES}
        rows = [person(i) for i in range(PEOPLE)]
        rows[2] = person(2, email="renamed2@corp.example")
        write_feed(world.feed, rows)
        await cycle(engine)
        assert {name: len(world.users(name)) for name in VENDOR_NAMES} == counts
        assert "renamed2@corp.example" in by_email(world, "thought_industries")
        assert "person2@corp.example" not in by_email(world, "thought_industries")
        # Influitive cannot change a member's email: the account keeps the old one.
        assert "person2@corp.example" in by_email(world, "influitive")


async def test_a_create_retried_after_a_crash_finds_the_account(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        await engine.list_connector("thought_industries")
        # The process dies after the vendor created the account but before it was recorded:
        # claim the operations, create directly at the vendor, then recover.
        ops = await outbox.claim(engine.store.db, "thought_industries", 100)
        assert len(ops) == PEOPLE
        connector = engine.connectors["thought_industries"]
        for op in ops[:5]:
            await connector.create_account(op.payload)
        assert await engine.recover() == PEOPLE
        await engine.push("thought_industries")
        assert len(world.users("thought_industries")) == PEOPLE
        await engine.list_connector("thought_industries")
        await engine.push("thought_industries")
        assert len(world.users("thought_industries")) == PEOPLE


async def test_a_learned_rate_survives_a_restart(world: World, db_url: str) -> None:
    config = world.config(db_url)
    async with Engine.open(config, environ=ENV) as engine:
        await engine.list_connector("influitive")
        await engine.save_learned_rate("influitive")
        async with engine.store.db.write() as conn:
            await save_learned_rate(conn, "influitive", 7.5)  # as if 429s had taught it
    async with Engine.open(config, environ=ENV) as engine:
        assert engine.connectors["influitive"].budget.rate == 7.5
        assert engine.connectors["partnerize"].budget.rate == 200
