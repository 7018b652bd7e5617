"""`syncd ops`, `approve` and `reject` as an operator runs them, against a real simulator."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from connectors.sim.schema import Field, Schema
from connectors.vendors.thought_industries.simulator import USER_SCHEMA
from tests.syncd.test_cli import one_line
from tests.syncd.test_cli_engine import run, syncd
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import FIELDS, person, serving

TI = "thought_industries"
REASON = "'role' must be one of learner, admin"


def write_roles_feed(path: Path, rows: list[dict[str, str]]) -> None:
    """An HR export with a role column."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*FIELDS, "role"])
        writer.writeheader()
        writer.writerows(rows)


def sql(db: Path, statement: str, *params: object) -> None:
    """Change the graph as another process would (the daemon, or someone with SQL)."""
    with sqlite3.connect(db) as conn:
        conn.execute(statement, params)


async def test_a_refused_create_is_dead_at_once_with_the_vendor_reason_then_retried(
    tmp_path: Path,
) -> None:
    async with serving(TI) as (sim, url):
        feed, db = tmp_path / "hr.csv", tmp_path / "g.db"
        # A role the connector may send but this tenant does not have (yet): a 422 with a reason.
        sim.schema = Schema({**USER_SCHEMA.fields, "role": Field(choices=("learner", "admin"))})
        rows = [person(0, role="manager"), person(1, role="learner"), person(2, role="manager")]
        write_roles_feed(feed, rows)
        config = tmp_path / "syncd.toml"
        config.write_text(config_text(db, feed, {TI: url}, free_port()))
        with_config = ("--config", str(config))

        once = await syncd("once", *with_config)
        assert once.returncode == 1 and "2 operation(s) dead" in once.stderr
        listed = await syncd("ops", "--state", "dead", "--json", *with_config)
        assert listed.returncode == 0, listed.stderr
        dead = json.loads(listed.stdout)
        assert [op["email"] for op in dead] == ["person0@corp.example", "person2@corp.example"]
        assert all(op["attempts"] == 1 and REASON in op["last_error"] for op in dead)
        table = await syncd("ops", "--state", "dead", "--connector", TI, *with_config)
        assert "person0@corp.example" in table.stdout and REASON in table.stdout

        first, second = dead[0]["id"], dead[1]["id"]
        shown = json.loads((await syncd("ops", "show", str(first), "--json", *with_config)).stdout)
        assert shown["payload"]["role"] == "manager"
        [attempt] = shown["history"]
        assert (attempt["status"], attempt["outcome"], attempt["message"]) == (422, "dead", REASON)
        text = (await syncd("ops", "show", str(first), *with_config)).stdout
        assert "HTTP 422" in text and REASON in text

        # The daemon holds it right now: neither command touches it.
        sql(db, "UPDATE operation SET state = 'in_flight' WHERE id = ?", first)
        busy = await syncd("ops", "retry", str(first), *with_config)
        assert busy.returncode == 75 and "in flight" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
        busy = await syncd("ops", "cancel", str(first), *with_config)
        assert busy.returncode == 75 and "in flight" in busy.stderr
        sql(db, "UPDATE operation SET state = 'dead' WHERE id = ?", first)

        # The vendor's admin adds the role; the operator retries one and cancels the other.
        sim.schema = USER_SCHEMA
        retried = await syncd("ops", "retry", str(first), "--json", *with_config)
        assert retried.returncode == 0 and json.loads(retried.stdout) == {"retried": [first]}
        cancelled = await syncd("ops", "cancel", str(second), *with_config)
        assert cancelled.returncode == 0 and f"cancelled: {second}" in cancelled.stdout
        again = await syncd("ops", "cancel", str(second), "999", *with_config)
        assert again.returncode == 1 and "it is cancelled" in again.stderr
        assert "999 (no such operation)" in again.stderr

        once = await syncd("once", *with_config)
        assert once.returncode == 0, once.stderr
        emails = sorted(sim.view(user).email or "" for user in sim.users.values())
        assert emails == ["person0@corp.example", "person1@corp.example"]
        shown = json.loads((await syncd("ops", "show", str(first), "--json", *with_config)).stdout)
        assert shown["state"] == "done" and shown["finished_at"] is not None
        outcomes = [item["outcome"] for item in shown["history"]]
        assert outcomes == ["dead", "retried", "done"]
        mine = await syncd("ops", "--person", "PERSON2@corp.example", "--json", *with_config)
        assert [op["state"] for op in json.loads(mine.stdout)] == ["cancelled"]
        recent = await syncd("ops", "--since", "1h", "--state", "done", "--json", *with_config)
        done = json.loads(recent.stdout)
        held_ids = {str(user["id"]) for user in sim.users.values()}
        assert len(done) == 2 and {op["external_id"] for op in done} == held_ids


async def test_approve_and_reject_name_what_they_release(tmp_path: Path) -> None:
    async with serving(TI) as (sim, url):
        feed, db = tmp_path / "hr.csv", tmp_path / "g.db"
        write_roles_feed(feed, [person(i) for i in range(3)])
        config = tmp_path / "syncd.toml"
        guard = "[guard]\nmax_deactivations = 0\nmax_deactivation_share = 0\n"
        config.write_text(config_text(db, feed, {TI: url}, free_port()) + guard)
        with_config = ("--config", str(config))
        assert (await syncd("once", *with_config)).returncode == 0
        leavers = [person(0, status="terminated"), person(1, status="terminated"), person(2)]
        write_roles_feed(feed, leavers)
        await syncd("once", *with_config)
        held = json.loads((await syncd("ops", "--state", "held", "--json", *with_config)).stdout)
        assert sorted(op["email"] for op in held) == [
            "person0@corp.example",
            "person1@corp.example",
        ]

        nobody = await syncd("approve", "--person", "person2@corp.example", "--json", *with_config)
        assert json.loads(nobody.stdout)["approved"] == 0
        one = await syncd("approve", "--person", "person0@corp.example", *with_config)
        assert one.returncode == 0, one.stderr
        assert one.stdout.splitlines() == [
            "1 held operation(s) approved",
            f"  {TI}: 1 deactivate",
            "  person0@corp.example",
        ]
        other = [op["id"] for op in held if op["email"] == "person1@corp.example"]
        dropped = await syncd("reject", "--id", str(other[0]), "--json", *with_config)
        assert json.loads(dropped.stdout) == {
            "rejected": 1,
            "operations": other,
            "by_connector": {TI: {"deactivate": 1}},
            "emails": ["person1@corp.example"],
        }
        shown = json.loads(
            (await syncd("ops", "show", str(other[0]), "--json", *with_config)).stdout
        )
        assert shown["state"] == "dead" and shown["history"][-1]["outcome"] == "rejected"
        assert len(sim.users) == 3


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["ops", "retry"], 2, "name operation ids, or --dead"),
        (["ops", "retry", "3", "--dead"], 2, "name operation ids, or --dead"),
        (["ops", "retry", "3", "--connector", "x"], 2, "unknown connector 'x'"),
        (["ops", "--since", "5 parsecs"], 2, "is not a duration"),
        (["ops", "--person", "nobody"], 2, "is not an email address"),
        (["ops", "show", "0"], 2, "is not an operation id"),
        (["ops", "show", "42"], 1, "no operation 42"),
        (["ops", "cancel", "42"], 1, "42 (no such operation)"),
        (["approve", "--id", "x"], 2, "is not an operation id"),
    ],
)
def test_mistakes_are_one_line_and_an_exit_code(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "g.db"}"\n')
    result = run(*args, "--config", str(config))
    assert result.returncode == code and says in one_line(result)
