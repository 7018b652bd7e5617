"""The authority feed's refusals and their approval, as an operator meets them on the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.syncd.test_cli_engine import syncd
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import person, serving, write_feed

PEOPLE = 12


async def test_refused_feeds_show_and_a_shrink_is_approved_by_version(tmp_path: Path) -> None:
    async with serving("influitive") as (sim, url):
        feed = tmp_path / "hr.csv"
        rows = [person(i) for i in range(PEOPLE)]
        write_feed(feed, rows)
        config = tmp_path / "syncd.toml"
        config.write_text(config_text(tmp_path / "g.db", feed, {"influitive": url}, free_port()))
        args = ("--config", str(config), "--json")
        once = await syncd("once", *args)
        assert once.returncode == 0, once.stderr
        assert len(sim.users) == PEOPLE

        # A file cut off mid-line: refused whole, visible in once, status and doctor.
        text = feed.read_text()
        feed.write_text(text[: text.index("person11@corp.example") + len("person11@corp.ex")])
        once = await syncd("once", *args)
        assert once.returncode == 65  # the file itself is unusable
        refused = json.loads(once.stdout)["authority"]["refused"]
        assert "no newline" in refused and str(feed) in refused
        status = json.loads((await syncd("status", *args)).stdout)["authority"]
        assert status["refused"] == refused and status["refused_since"] is not None
        text_status = await syncd("status", "--config", str(config))
        assert "authority: REFUSED since" in text_status.stdout
        doctor = await syncd("doctor", *args)
        assert doctor.returncode == 1 and "no newline" in json.loads(doctor.stdout)["authority"]
        cannot = await syncd("approve", "--authority", "--config", str(config))
        assert cannot.returncode == 1
        assert cannot.stderr.count("\n") == 1 and "cannot be approved" in cannot.stderr
        assert "Traceback" not in cannot.stderr

        # A shrink past max_missing_share: refused, listed by plan, approved by version.
        write_feed(feed, rows[:3])
        once = await syncd("once", *args)
        assert once.returncode == 1
        assert (
            json.loads(once.stdout)["authority"]["refused"]
            == "9 of 12 people would be deprovisioned"
        )
        assert all(sim.view(user).active for user in sim.users.values())
        plan = json.loads((await syncd("plan", *args)).stdout)
        leavers = sorted(f"person{i}@corp.example" for i in range(3, PEOPLE))
        assert plan["would_deprovision"] == leavers
        plan_text = (await syncd("plan", "--config", str(config))).stdout
        assert "person5@corp.example" in plan_text and "approve --authority" in plan_text
        approve = await syncd("approve", "--authority", "--config", str(config))
        assert approve.returncode == 0, approve.stderr
        digest = hashlib.sha256(feed.read_bytes()).hexdigest()
        assert "9 people" in approve.stdout and digest[:12] in approve.stdout
        once = await syncd("once", *args)
        assert once.returncode == 0, once.stderr
        assert json.loads(once.stdout)["authority"]["deprovisioned"] == 9
        status = json.loads((await syncd("status", *args)).stdout)["authority"]
        assert status["refused"] is None and status["applied_digest"] == digest[:12]

        # Nine deactivations are past the push guard: held, and plan shows them as held by
        # email, not as operations it would queue.
        plan = json.loads((await syncd("plan", *args)).stdout)
        held = [op for op in plan["operations"] if op["op"] == "deactivate"]
        assert sorted(op["email"] for op in held) == leavers
        assert {op["state"] for op in held} == {"held"}
        # Rejected, they are dead: plan shows them with that state.
        rejected = await syncd("reject", *args)
        dropped = json.loads(rejected.stdout)
        assert dropped["rejected"] == 9 and dropped["emails"] == sorted(leavers)
        plan = json.loads((await syncd("plan", *args)).stdout)
        dead = [op for op in plan["operations"] if op["op"] == "deactivate"]
        assert sorted(op["email"] for op in dead) == leavers
        assert {op["state"] for op in dead} == {"dead"}
        plan_text = (await syncd("plan", "--config", str(config))).stdout
        assert "0 operation(s) would be queued" in plan_text
        assert "person7@corp.example" in plan_text
        assert "(already in the outbox: dead)" in plan_text and "person " not in plan_text
        again = await syncd("approve", "--authority", "--config", str(config))
        assert again.returncode == 1 and "no refused feed to approve" in again.stderr


async def test_plan_all_queues_everyone_once_and_writes_nothing_outward(tmp_path: Path) -> None:
    async with serving("influitive") as (sim, url):
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(PEOPLE)])
        config = tmp_path / "syncd.toml"
        provisioning = config_text(tmp_path / "g.db", feed, {"influitive": url}, free_port())
        config.write_text(provisioning.replace('["corp.example"]', '["elsewhere.example"]'))
        args = ("--config", str(config), "--json")
        once = await syncd("once", *args)
        assert once.returncode == 0, once.stderr
        assert len(sim.users) == 0
        config.write_text(provisioning)  # a new rule: nobody and nothing else changed

        planned = await syncd("plan", "--all", *args)
        assert planned.returncode == 0, planned.stderr
        data = json.loads(planned.stdout)
        assert data["queued"] == PEOPLE and data["held"] == 0
        assert {(op["op"], op["state"]) for op in data["operations"]} == {("create", "pending")}
        assert len(sim.users) == 0  # queued for the pushers, not sent
        again = await syncd("plan", "--all", "--config", str(config))
        assert again.returncode == 0 and "0 operation(s) queued" in again.stdout
        once = await syncd("once", *args)
        assert once.returncode == 0, once.stderr
        assert len(sim.users) == PEOPLE
