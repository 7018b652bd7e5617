"""Unchanged HR rows are not applied again, yet the feed applies exactly as a full read."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from syncd.authority.hrfeed import read_feed
from syncd.engine import Engine
from tests.syncd import test_engine
from tests.syncd.test_engine import ENV, PEOPLE, World, person, write_feed

world = test_engine.world  # the fixture: five simulators and an HR file


async def scalar(engine: Engine, sql: str) -> object:
    """One value read from the graph."""
    async with engine.store.db.read() as conn:
        return (await conn.execute(text(sql))).scalar()


def test_a_known_row_is_kept_unparsed_once_and_admitted_in_order(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    write_feed(path, [person(0), person(1), person(2), person(1)])
    hashes = read_feed(path, salt="salt").hashes
    assert hashes[1] == hashes[3] and len(set(hashes)) == 3
    feed = read_feed(path, {hashes[0], hashes[1]}, "salt")
    assert feed.kept == {hashes[0]: 2, hashes[1]: 3}
    assert feed.lines == [4, 5] and feed.rows == 4  # the repeat of row 1 is parsed
    feed.admit([hashes[0]])
    assert feed.lines == [2, 4, 5] and feed.hashes == [hashes[0], hashes[2], hashes[1]]
    assert feed.people[0].authority_id == "E000"
    assert read_feed(path, {hashes[0]}, "other salt").kept == {}


async def test_a_leaver_after_a_restart_applies_only_what_changed(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        first = await engine.apply_feed()
        assert first.created == PEOPLE
        assert await scalar(engine, "SELECT count(*) FROM authority_row") == PEOPLE
    write_feed(world.feed, [person(i) for i in range(1, PEOPLE)])
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        result = await engine.apply_feed()
        assert (result.people, result.created, result.updated) == (PEOPLE - 1, 0, 0)
        assert result.deprovisioned == 1 and result.refused is None
        assert await scalar(engine, "SELECT count(*) FROM authority_row") == PEOPLE - 1
        lifecycle = "SELECT lifecycle FROM person WHERE authority_id = 'E000'"
        assert await scalar(engine, lifecycle) == "deprovisioned"


async def test_a_second_row_for_a_kept_person_is_rejected_as_in_a_full_read(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        # Row 0 is unchanged; a new row names the same employee: both are rejected, as when
        # neither had been read before, and two invalid rows of thirteen refuse the file.
        write_feed(world.feed, [person(i) for i in range(PEOPLE)] + [person(0, title="CEO")])
        result = await engine.apply_feed()
        assert result.rejected_rows == 2 and result.refused is not None
        assert "rows are invalid" in result.refused
        title = "SELECT attributes_json FROM person WHERE authority_id = 'E000'"
        assert "CEO" not in str(await scalar(engine, title))


async def test_a_person_changed_since_gets_their_unchanged_row_again(
    world: World, db_url: str
) -> None:
    async with Engine.open(world.config(db_url), environ=ENV) as engine:
        await engine.apply_feed()
        async with engine.store.db.write() as conn:
            await conn.execute(
                text(
                    "UPDATE person SET given_name = 'Changed', version = version + 1"
                    " WHERE authority_id = 'E003'"
                )
            )
        result = await engine.apply_feed()
        assert (result.people, result.updated, result.deprovisioned) == (PEOPLE, 1, 0)
        name = "SELECT given_name FROM person WHERE authority_id = 'E003'"
        assert await scalar(engine, name) == "Given3"
