"""An authority that is not a file (SCIM): its people reach the vendors, guarded over a window."""

# ruff: noqa: F811  (the `world` fixture is imported, and tests take it by name)
from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from graph.models import event_table, operation_table, person_table
from graph.people import PeopleStats
from graph.records import PersonRecord
from syncd.cli.commands import run_release, run_status
from syncd.config import Config
from syncd.engine import Engine
from syncd.reconcile import HELD_AUTHORITY_MASS_DEPROVISION
from syncd.service.daemon import ConnectorHealth, Daemon
from syncd.service.health import health_app
from syncd.service.listeners import serve_app
from tests.syncd import test_engine as base
from tests.syncd.test_engine import World, by_email, world  # noqa: F401  (a fixture, by name)

IDP = "idp"
DEACTIVATING = tuple(name for name in base.VENDOR_NAMES if name != "userflow")  # it cannot


def record(index: int, lifecycle: str = "active", **attributes: object) -> PersonRecord:
    """Person `index` as the IdP describes them."""
    return PersonRecord(
        email=f"person{index}@corp.example",
        authority_id=f"scim-{index}",
        given_name=f"Given{index}",
        family_name=f"Family{index}",
        lifecycle=lifecycle,
        attributes={"title": "Engineer", **attributes},
    )


async def scim(engine: Engine, records: Sequence[PersonRecord]) -> PeopleStats:
    """Apply records as the SCIM server does: one transaction, then wake the pushers."""
    async with engine.store.db.write() as conn:
        stats = await engine.apply_people(conn, records, "scim", IDP)
    engine.committed()
    return stats


async def push_all(engine: Engine) -> None:
    """Drain every connector's outbox."""
    for name in engine.connectors:
        await engine.push(name)


def guarded(world: World, db_url: str, allowed: int, **guard: Any) -> Config:
    """The world's deployment, its guard allowing this many deactivations (any share)."""
    return world.config(db_url, max_deactivations=allowed, max_deactivation_share=1.0, **guard)


@asynccontextmanager
async def provisioned(config: Config, people: int) -> AsyncIterator[Engine]:
    """An engine on `config` whose IdP has provisioned `people` people at every vendor."""
    async with Engine.open(config, environ=base.ENV) as engine:
        await provision(engine, people)
        yield engine


async def provision(engine: Engine, people: int) -> None:
    """List the (empty) vendors, then let the IdP provision `people` people, pushed."""
    for name in engine.connectors:
        assert (await engine.list_connector(name)).complete
    await scim(engine, [record(i) for i in range(people)])
    await push_all(engine)


async def leave(engine: Engine, *indexes: int) -> None:
    """The IdP deactivates these people, one SCIM call each, as IdPs do."""
    for index in indexes:
        await scim(engine, [record(index, "deprovisioned")])
    await push_all(engine)


def active_at(world: World, name: str, index: int) -> bool:
    """Whether person `index` is active at the vendor."""
    return world.active(name, by_email(world, name)[f"person{index}@corp.example"])


async def held(engine: Engine) -> list[tuple[str, str | None]]:
    """Every held operation's (connector, reason)."""
    o = operation_table
    async with engine.store.db.read() as conn:
        rows = await conn.execute(
            sa.select(o.c.connector, o.c.last_error).where(o.c.state == "held")
        )
        return [(row.connector, row.last_error) for row in rows]


def daemon_on(engine: Engine) -> Daemon:
    """A daemon's health source over this engine (its /readyz and /status)."""
    daemon = Daemon(Path("syncd.toml"))
    daemon.engine = engine
    daemon.health = {name: ConnectorHealth() for name in engine.connectors}
    return daemon


async def test_an_idp_hire_and_leaver_reach_every_vendor_with_the_idp_as_actor(
    world: World, db_url: str
) -> None:
    async with provisioned(world.config(db_url), 3) as engine:
        for name in base.VENDOR_NAMES:
            assert {f"person{i}@corp.example" for i in range(3)} <= set(by_email(world, name))

        await leave(engine, 1)
        for name in DEACTIVATING:
            assert not active_at(world, name, 1), name
            assert active_at(world, name, 0), name
        assert await held(engine) == []

        e = event_table
        async with engine.store.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(e.c.kind, e.c.actor, e.c.source).where(e.c.subject == "person")
                )
            ).all()
        assert {(row.kind, row.actor, row.source) for row in rows} == {
            ("person.created", IDP, "scim"),
            ("person.deprovisioned", IDP, "scim"),
        }


async def test_a_burst_of_leavers_is_held_flagged_and_released_by_approve(
    world: World, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = guarded(world, db_url, 2)
    async with provisioned(config, 8) as engine:
        daemon = daemon_on(engine)
        assert (await daemon.readiness())["deprovisions"].ok

        with capture_logs() as logs:
            await leave(engine, 0, 1, 2, 3, 4)
        # The first two are within the guard and went; from the third on, held everywhere.
        for name in DEACTIVATING:
            assert not active_at(world, name, 0) and not active_at(world, name, 1), name
            for index in (2, 3, 4):
                assert active_at(world, name, index), (name, index)
        assert sorted(await held(engine)) == sorted(
            (name, HELD_AUTHORITY_MASS_DEPROVISION) for name in DEACTIVATING for _ in range(3)
        )
        events = [entry["event"] for entry in logs]
        assert events.count("authority.mass_deprovision_held") == 1

        async with (
            serve_app(health_app(daemon, daemon.metrics)) as url,
            aiohttp.ClientSession() as client,
        ):
            async with client.get(f"{url}/readyz") as response:
                assert response.status == 503
                check = (await response.json())["checks"]["deprovisions"]
            async with client.get(f"{url}/status") as response:
                live = (await response.json())["deprovisions"]
        assert not check["ok"]
        assert check["reason"].startswith(
            f"12 vendor deactivations held: {HELD_AUTHORITY_MASS_DEPROVISION}"
        )
        assert live["held_operations"] == 12
        assert live["reason"] == HELD_AUTHORITY_MASS_DEPROVISION
        capsys.readouterr()
        await run_status(config, argparse.Namespace(json=False))
        assert "deprovisions: HELD 12 vendor deactivations" in capsys.readouterr().out

        common = {"authority": False, "connector": None, "ids": None, "person": None}
        await run_release(config, argparse.Namespace(command="approve", json=True, **common))
        out = capsys.readouterr().out
        assert json.loads(out[out.index('{\n  "approved"') :])["approved"] == 12
        await push_all(engine)
        for name in DEACTIVATING:
            assert not any(active_at(world, name, index) for index in (2, 3, 4)), name
        assert (await daemon.readiness())["deprovisions"].ok

        # The approved burst goes on: later leavers in the same window are not held again.
        await leave(engine, 5, 6)
        assert await held(engine) == []
        for name in DEACTIVATING:
            assert not active_at(world, name, 5) and not active_at(world, name, 6), name


async def test_a_rejected_burst_is_never_sent_and_the_guard_stays_armed(
    world: World, db_url: str
) -> None:
    config = guarded(world, db_url, 1)
    async with provisioned(config, 4) as engine:
        await leave(engine, 0, 1)
        common = {"authority": False, "connector": None, "ids": None, "person": None}
        await run_release(config, argparse.Namespace(command="reject", json=True, **common))
        await push_all(engine)
        assert await held(engine) == []
        for name in DEACTIVATING:
            assert active_at(world, name, 1), name
        await leave(engine, 2)  # still inside the window: held
        assert len(await held(engine)) == len(DEACTIVATING)
        assert not (await daemon_on(engine).readiness())["deprovisions"].ok


async def test_leavers_within_the_guard_or_spread_past_the_window_are_not_held(
    world: World, db_url: str
) -> None:
    async with provisioned(guarded(world, db_url, 2, deprovision_window=1.0), 6) as engine:
        await leave(engine, 0, 1)
        assert await held(engine) == []
        await anyio.sleep(1.2)  # the window moves on: those two no longer count
        await leave(engine, 2, 3)
        assert await held(engine) == []
        for name in DEACTIVATING:
            assert not any(active_at(world, name, index) for index in range(4)), name


async def lifecycle_of(engine: Engine, index: int) -> list[str]:
    """Every person row holding person `index`'s email, by lifecycle (one row, or a bug)."""
    p = person_table
    async with engine.store.db.read() as conn:
        rows = await conn.execute(
            sa.select(p.c.lifecycle).where(p.c.primary_email == f"person{index}@corp.example")
        )
        return list(rows.scalars())


def titles(world: World, index: int) -> dict[str, object]:
    """Person `index`'s title at every vendor that keeps one."""
    found = {}
    for name in base.VENDOR_NAMES:
        title = world.title(name, by_email(world, name)[f"person{index}@corp.example"])
        if title is not None:
            found[name] = title
    return found


async def test_the_hr_file_and_the_idp_share_a_person_with_precedence_per_attribute(
    world: World, db_url: str
) -> None:
    config = world.config(db_url).model_copy(update={"precedence": {"title": ["hr", "scim"]}})
    async with Engine.open(config, environ=base.ENV) as engine:
        await base.cycle(engine)
        assert set(titles(world, 1).values()) == {"Engineer"}
        stats = await scim(engine, [record(1, title="Staff"), record(2, title="Lead")])
        assert stats.rejected == 0 and stats.created == 0
        assert await lifecycle_of(engine, 1) == ["active"]
        await push_all(engine)
        assert set(titles(world, 1).values()) == {"Engineer"}  # the HR file's, first

        engine.reload(config.model_copy(update={"precedence": {"title": ["scim", "hr"]}}))
        await engine.replan()
        await push_all(engine)
        assert set(titles(world, 1).values()) == {"Staff"}  # now the IdP's
        assert len(titles(world, 1)) >= 2

        # The IdP deprovisions: that wins over the HR file still listing them as active.
        await leave(engine, 1)
        base.write_feed(world.feed, [base.person(i, title="Manager") for i in range(base.PEOPLE)])
        await engine.apply_feed()
        assert await lifecycle_of(engine, 1) == ["deprovisioned"]
        for name in DEACTIVATING:
            assert not active_at(world, name, 1), name
        # Only the authority that deprovisioned can bring them back.
        await scim(engine, [record(1, title="Staff")])
        assert await lifecycle_of(engine, 1) == ["active"]

        # And the other way round: the HR file ends person 2, the IdP still says active.
        rows = [base.person(i, title="Manager") for i in range(base.PEOPLE)]
        rows[2] = base.person(2, title="Manager", status="terminated")
        base.write_feed(world.feed, rows)
        await engine.apply_feed()
        await scim(engine, [record(2, title="Principal")])
        assert await lifecycle_of(engine, 2) == ["deprovisioned"]
        await push_all(engine)
        for name in DEACTIVATING:
            assert not active_at(world, name, 2), name

        # Leaving the HR file also ends an HR person the IdP last wrote.
        base.write_feed(
            world.feed, [base.person(i, title="Manager") for i in range(base.PEOPLE) if i != 1]
        )
        feed = await engine.apply_feed()
        assert feed.refused is None and feed.deprovisioned == 1
        assert await lifecycle_of(engine, 1) == ["deprovisioned"]
