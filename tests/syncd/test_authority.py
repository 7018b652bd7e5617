"""The authority never invents a leaver: damaged HR input through the real engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from graph.authority import approve_refused, authority_state
from syncd.authority.hrfeed import FeedChanging, FeedError, read_feed
from syncd.config import Config
from syncd.engine import AUTHORITY_SOURCE, Engine
from tests.syncd import test_engine
from tests.syncd.test_engine import (
    ENV,
    PEOPLE,
    World,
    by_email,
    cycle,
    person,
    write_feed,
)

world = test_engine.world  # the fixture: five simulators and an HR file

DEACTIVATING = ("influitive", "thought_industries", "partnerize", "appxite")


def configured(
    world: World, db_url: str, guard: dict[str, Any] | None = None, **authority: Any
) -> Config:
    """The world's config with authority (and guard) settings changed."""
    config = world.config(db_url, **(guard or {}))
    assert config.authority is not None
    return config.model_copy(update={"authority": config.authority.model_copy(update=authority)})


def rows_text(world: World, rows: list[dict[str, str]]) -> str:
    """The CSV text of these rows."""
    write_feed(world.feed, rows)
    return world.feed.read_text()


async def push_all(engine: Engine) -> None:
    """Drain every connector's outbox."""
    for name in engine.connectors:
        await engine.push(name)


def everyone_active(world: World) -> None:
    """Every person is still active, under their own email, at every vendor."""
    for name in DEACTIVATING:
        held = by_email(world, name)
        for i in range(PEOPLE):
            assert world.active(name, held[f"person{i}@corp.example"]), (name, i)
        assert len(held) == PEOPLE, name


async def queued(engine: Engine) -> int:
    """Operations in the outbox that are not done."""
    async with engine.store.db.read() as conn:
        rows = await conn.execute(text("SELECT count(*) FROM operation WHERE state != 'done'"))
        return int(rows.scalar_one())


DAMAGED = {
    "unknown status": "E003,person3@corp.example,Given3,Family3,Engineer,actve\n",
    "empty email": "E003,,Given3,Family3,Engineer,active\n",
    "malformed email": "E003,person3(at)corp.example,Given3,Family3,Engineer,active\n",
    "line cut short": "E003,person3@corp.example,Giv\n",
    "no id, known email, bad status": ",person3@corp.example,Given3,Family3,Engineer,actve\n",
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
async def test_an_invalid_row_keeps_its_person_as_they_were(
    world: World, db_url: str, damage: str
) -> None:
    async with Engine.open(configured(world, db_url, max_invalid_share=0.5), ENV) as engine:
        await cycle(engine)
        lines = rows_text(world, [person(i) for i in range(PEOPLE)]).splitlines(keepends=True)
        lines[4] = DAMAGED[damage]  # the header, then person 0..; this is person 3
        world.feed.write_text("".join(lines))
        feed = await engine.apply_feed()
        assert (feed.skipped_rows, feed.deprovisioned, feed.refused) == (1, 0, None)
        assert feed.plan.queued == 0 and await queued(engine) == 0
        await push_all(engine)
        everyone_active(world)
        view = await engine.store.person("person3@corp.example")
        assert view is not None and view.lifecycle == "active"


async def test_one_invalid_row_in_a_hundred_is_refused_whole_by_default(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        rows[1] = person(1, title="Staff Engineer")
        rows[3] = person(3, status="actve")
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert feed.refused is not None and "1 of 12 rows are invalid" in feed.refused
        assert (feed.updated, feed.deprovisioned, feed.plan.queued) == (0, 0, 0)
        view = await engine.store.person("person1@corp.example")
        assert view is not None and view.attributes.get("title") == "Engineer"
        async with engine.store.db.read() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
        assert state.refused_reason == feed.refused and state.refused_digest == feed.digest
        # The next good feed applies and clears the refusal.
        rows[3] = person(3)
        write_feed(world.feed, rows)
        feed = await engine.apply_feed()
        assert feed.refused is None and feed.updated == 1
        async with engine.store.db.read() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
        assert state.refused_reason is None and state.applied_digest == feed.digest


async def test_a_file_cut_off_mid_line_is_refused_whole(world: World, db_url: str) -> None:
    async with Engine.open(world.config(db_url), ENV) as engine:
        await cycle(engine)
        text = rows_text(world, [person(i) for i in range(PEOPLE)])
        cut = text.index("person11@corp.example") + len("person11@corp.ex")
        world.feed.write_text(text[:cut])
        feed = await engine.apply_feed()
        assert feed.refused is not None and "no newline" in feed.refused
        assert (feed.updated, feed.deprovisioned, feed.plan.queued) == (0, 0, 0)
        await push_all(engine)
        everyone_active(world)
        async with engine.store.db.read() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
        assert state.refused_reason == feed.refused and state.refused_since is not None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        ("employee_id,email\nE001,jos\xe9@corp.example\n".encode("latin-1"), "not UTF-8 at line 2"),
        (b"id,name\n1,Ann\n", "must name an 'email' column"),
        (None, "cannot read"),
    ],
)
async def test_an_unusable_file_is_refused_with_its_path_and_reason(
    world: World, db_url: str, content: bytes | None, reason: str
) -> None:
    async with Engine.open(world.config(db_url), ENV) as engine:
        await cycle(engine)
        if content is None:
            world.feed.unlink()
        else:
            world.feed.write_bytes(content)
        feed = await engine.apply_feed()
        assert feed.refused is not None and reason in feed.refused
        assert str(world.feed) in feed.refused
        assert feed.deprovisioned == 0
        await push_all(engine)
        everyone_active(world)


async def test_a_row_without_employee_id_never_takes_over_a_person(
    world: World, db_url: str
) -> None:
    async with Engine.open(configured(world, db_url, max_invalid_share=0.5), ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        impostor = person(2, employee_id="", given_name="Alice2", status="terminated")
        write_feed(world.feed, [impostor, *rows])
        feed = await engine.apply_feed()
        assert (feed.rejected_rows, feed.deprovisioned, feed.updated) == (1, 0, 0)
        assert feed.plan.queued == 0
        await push_all(engine)
        everyone_active(world)
        view = await engine.store.person("person2@corp.example")
        assert view is not None and (view.lifecycle, view.given_name) == ("active", "Given2")


async def test_two_rows_for_one_person_change_nobody(world: World, db_url: str) -> None:
    async with Engine.open(configured(world, db_url, max_invalid_share=0.5), ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        twin = person(2, email="person2.new@corp.example", status="terminated")
        write_feed(world.feed, [*rows, twin])
        feed = await engine.apply_feed()
        assert (feed.rejected_rows, feed.deprovisioned, feed.updated) == (2, 0, 0)
        await push_all(engine)
        everyone_active(world)


async def test_a_refused_shrink_applies_once_approved_for_that_version(
    world: World, db_url: str
) -> None:
    guard = {"max_deactivations": 100, "max_deactivation_share": 1.0}
    async with Engine.open(configured(world, db_url, guard), ENV) as engine:
        await cycle(engine)
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(world.feed, rows[:3])
        plan = await engine.apply_feed(dry_run=True)
        expected = sorted(f"person{i}@corp.example" for i in range(3, PEOPLE))
        assert plan.refused is not None and plan.would_deprovision == expected
        feed = await engine.apply_feed()
        assert feed.refused is not None and feed.deprovisioned == 0
        async with engine.store.db.write() as conn:
            approved = await approve_refused(conn, AUTHORITY_SOURCE)
        assert approved is not None and approved.refused_count == PEOPLE - 3
        # A newer file is another version: the approval does not cover it.
        write_feed(world.feed, rows[:4])
        feed = await engine.apply_feed()
        assert feed.refused is not None and feed.deprovisioned == 0
        write_feed(world.feed, rows[:3])
        feed = await engine.apply_feed()
        assert feed.refused is None and feed.deprovisioned == PEOPLE - 3
        await push_all(engine)
        assert not world.active("partnerize", by_email(world, "partnerize")["person5@corp.example"])
        async with engine.store.db.read() as conn:
            state = await authority_state(conn, AUTHORITY_SOURCE)
        assert state.refused_reason is None and state.approved_digest is None


def test_a_file_that_changes_while_read_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text("employee_id,email\n")
    stop = threading.Event()

    def grow() -> None:
        with path.open("a") as handle:
            i = 0
            while not stop.is_set():
                handle.write(f"E{i},p{i}@corp.example\n" * 50)
                handle.flush()
                i += 1

    writer = threading.Thread(target=grow)
    writer.start()
    seen = False
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            try:
                read_feed(path)
            except FeedChanging:
                seen = True
            except FeedError:
                pass  # caught mid-line: refused as cut off, which is also safe
    finally:
        stop.set()
        writer.join()
    assert seen
