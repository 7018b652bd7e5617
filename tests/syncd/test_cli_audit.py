"""The audit trail from the command line: history, verify against tampering, export."""

from __future__ import annotations

import csv
import getpass
import io
import itertools
import json
import re
import sqlite3
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from tests.syncd.test_cli import fed_config, one_line, sqlite_config, syncd, write_config
from tests.syncd.test_engine import person, serving, write_feed

PEOPLE = 12


async def test_history_shows_a_hire_a_title_change_a_leaver_and_who_linked(
    tmp_path: Path,
) -> None:
    rows = [person(i) for i in range(PEOPLE)]
    async with serving("influitive") as (sim, url):
        config = fed_config(tmp_path, rows, urls={"influitive": url})
        args = ("--config", str(config))
        first = await syncd("once", "--log-level", "info", *args)
        assert first.returncode == 0, first.stderr
        pushed = [line for line in first.stderr.splitlines() if "push.done" in line]
        assert len(pushed) == PEOPLE
        assert all("external_id" in line and "@" not in line for line in pushed)
        write_feed(tmp_path / "hr.csv", [person(0, title="Director"), *rows[1:]])
        assert (await syncd("once", *args)).returncode == 0
        write_feed(tmp_path / "hr.csv", [person(0, status="terminated"), *rows[1:]])
        assert (await syncd("once", *args)).returncode == 0
        assert not sim.view(next(iter(sim.users.values()))).active
        with sqlite3.connect(tmp_path / "g.db") as conn:
            (external_id,) = conn.execute(
                "SELECT a.external_id FROM account a JOIN person p ON p.id = a.person_id"
                " WHERE p.primary_email = 'person0@corp.example'"
            ).fetchone()
        unlinked = await syncd("unlink", "influitive", external_id, *args)
        assert unlinked.returncode == 0, unlinked.stderr
        linked = await syncd("link", "influitive", external_id, "person0@corp.example", *args)
        assert linked.returncode == 0, linked.stderr

        history = await syncd("history", "Person0@corp.example", "--json", *args)
        text = await syncd("history", "person0@corp.example", *args)
        nobody = await syncd("history", "nobody@corp.example", *args)

    assert history.returncode == 0, history.stderr
    events = json.loads(history.stdout)
    steps = [(event["kind"], event["outcome"]) for event in events]
    for step in [
        ("person.created", None),
        ("operation.create", "done"),
        ("person.updated", None),
        ("person.deprovisioned", None),
        ("operation.update", "done"),
        ("operation.deactivate", "done"),
        ("account.unlinked", None),
        ("account.linked_manually", None),
    ]:
        assert step in steps, steps
    (title,) = (event for event in events if event["kind"] == "person.updated")
    (leaver,) = (event for event in events if event["kind"] == "person.deprovisioned")
    assert title["old"]["attributes"] == {"title": "Engineer"}
    assert title["new"]["attributes"] == {"title": "Director"}
    assert leaver["new"]["lifecycle"] == "deprovisioned"
    assert events.index(leaver) < steps.index(("operation.deactivate", "done"))
    create = next(event for event in events if event["kind"] == "operation.create")
    assert create["connector"] == "influitive" and create["actor"] == "syncd"
    assert create["new"]["email"] == "person0@corp.example"  # the payload that was sent
    manual = [event for event in events if event["source"] == "operator"]
    assert {event["actor"] for event in manual} == {getpass.getuser()}
    lines = text.stdout.splitlines()
    assert any("operation.deactivate  influitive" in line and "done" in line for line in lines)
    assert any("attributes.title: 'Engineer' → 'Director'" in line for line in lines)
    assert nobody.returncode == 1
    assert one_line(nobody) == "syncd history: no person has the email nobody@corp.example"


async def _story(config: Path) -> None:
    """A cycle, and an operator approving what a guard held (nothing): events to chain."""
    once = await syncd("once", "--config", str(config))
    assert once.returncode == 0, once.stderr


async def test_audit_verify_accepts_the_chain_then_names_a_row_altered_by_sql(
    tmp_path: Path, db_url: str
) -> None:
    async with serving("influitive") as (_, url):
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(3)])
        database = make_url(db_url).render_as_string(hide_password=False)
        config = write_config(
            tmp_path / "syncd.toml", database=database, feed=feed, urls={"influitive": url}
        )
        await _story(config)
    good = await syncd("audit", "verify", "--config", str(config), "--json")
    assert good.returncode == 0, good.stderr
    verified = json.loads(good.stdout)
    assert verified["ok"] and verified["events"] >= 9  # 3 people, 3 creates, 3 accounts

    tamper = 'UPDATE event SET new_json = \'{"title":"CEO"}\' WHERE id = 4'
    if db_url.startswith("sqlite"):
        with sqlite3.connect(make_url(db_url).database or "") as conn:
            conn.execute(tamper)
    else:
        conn = await asyncpg.connect(
            make_url(database).set(drivername="postgresql").render_as_string(False)
        )
        try:
            await conn.execute(tamper)
        finally:
            await conn.close()
    bad = await syncd("audit", "verify", "--config", str(config))
    assert bad.returncode == 65
    # The chain is in commit order: on PostgreSQL a concurrent writer's events may commit
    # between an event's id and its place, so only the altered event's id is certain.
    assert re.match(r"audit chain BROKEN at event 4 \(#\d+ in the chain\)", bad.stdout)
    assert "content was changed" in bad.stdout


async def test_audit_export_writes_jsonl_or_csv_since_a_time(tmp_path: Path) -> None:
    async with serving("influitive") as (_, url):
        config = fed_config(tmp_path, [person(i) for i in range(3)], urls={"influitive": url})
        await _story(config)
    args = ("--config", str(config))
    jsonl = await syncd("audit", "export", "--since", "1h", "--format", "jsonl", *args)
    out = tmp_path / "audit.csv"
    written = await syncd("audit", "export", "--format", "csv", "--output", str(out), *args)
    future = await syncd("audit", "export", "--since", "2999-01-01", *args)
    wrong = await syncd("audit", "export", "--since", "yesterday", *args)

    assert jsonl.returncode == 0, jsonl.stderr
    events = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert all(event["prev_hash"] == before["hash"] for before, event in itertools.pairwise(events))
    assert written.returncode == 0 and f"to {out}" in written.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["hash"] for row in table] == [event["hash"] for event in events]
    assert future.returncode == 0 and future.stdout == ""
    assert wrong.returncode == 2 and "neither a duration" in one_line(wrong)


async def test_verify_on_an_empty_graph_is_intact(tmp_path: Path) -> None:
    result = await syncd("audit", "verify", "--config", str(sqlite_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "audit chain intact: 0 events verified\n"
