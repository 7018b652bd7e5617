"""Value maps: our role and group names become the values a vendor accepts, or stay out."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import anyio
import pytest

from syncd.plan import Account, Person, Target, plan_person
from syncd.values import ValueMap
from tests.syncd.test_cli_engine import run
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import person, serving

PZ = "partnerize"
PZ_ROLES = frozenset({"admin", "standard"})
FIELDS = ["employee_id", "email", "given_name", "family_name", "status", "role"]


def write_feed(path: Path, roles: list[str]) -> None:
    """An HR export of one person per role."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(person(i, role=role) for i, role in enumerate(roles))


def write_config(tmp_path: Path, url: str, values: str) -> Path:
    """A Partnerize deployment with these `[connectors.partnerize.values]` lines."""
    text = config_text(tmp_path / "g.db", tmp_path / "hr.csv", {PZ: url}, free_port())
    config = tmp_path / "syncd.toml"
    config.write_text(f"{text}\n[connectors.{PZ}.values]\n{values}\n")
    return config


async def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line without blocking the simulator on this event loop."""
    return await anyio.to_thread.run_sync(lambda: run(*args))


@pytest.mark.parametrize(
    ("command", "values", "line"),
    [
        (
            "doctor",
            'role = { "Engineering Manager" = "manager", "*" = "standard" }',
            "syncd: bad config: connectors.partnerize.values.role.Engineering Manager: "
            "'manager' is not a role the vendor accepts (admin, standard)",
        ),
        (
            "once",
            'role = { "*" = "" }',
            "syncd: bad config: connectors.partnerize.values.role.*: must not be empty",
        ),
        (
            "plan",
            'title = { "Engineer" = "eng" }',
            "syncd: bad config: connectors.partnerize.values.title: only role and groups can be "
            "mapped",
        ),
    ],
)
def test_a_value_the_vendor_does_not_accept_stops_the_start(
    tmp_path: Path, command: str, values: str, line: str
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", values)
    result = run(command, "--config", str(config))
    assert result.returncode == 78
    assert result.stderr.strip() == line


async def test_roles_are_mapped_defaulted_or_left_out_at_partnerize(tmp_path: Path) -> None:
    async with serving(PZ) as (sim, url):
        roles = ["Engineering Manager", "Sales", "admin"]
        write_feed(tmp_path / "hr.csv", roles)
        mapped = 'role = { "Engineering Manager" = "admin" }'
        config = write_config(tmp_path, url, mapped)
        once = await syncd("once", "--config", str(config), "--json", "--log-level", "warning")
        assert once.returncode == 0, once.stderr
        assert json.loads(once.stdout)["connectors"][PZ]["pushed"] == 3
        held = {user["email"]: user.get("role") for user in sim.users.values()}
        # Mapped; unmapped with no default: created without a role (the vendor's default);
        # "admin" is a Partnerize role but the map, once there, alone decides.
        assert held == {
            "person0@corp.example": "admin",
            "person1@corp.example": "standard",
            "person2@corp.example": "standard",
        }
        unmapped = [json.loads(line) for line in once.stderr.splitlines() if "unmapped" in line]
        assert sorted(event["value"] for event in unmapped) == ["Sales", "admin"]  # each once
        plan = await syncd("plan", "--config", str(config), "--json")
        assert plan.returncode == 0, plan.stderr
        report = json.loads(plan.stdout)
        assert report["operations"] == []  # the mapped role already matches: no update loop
        assert f"{PZ}: role 'Sales' has no value map entry: role left out" in report["unsupported"]

        # A default maps the rest; a changed map is an update of the linked accounts.
        config = write_config(tmp_path, url, 'role = { "Sales" = "admin", "*" = "standard" }')
        once = await syncd("once", "--config", str(config), "--json")
        assert once.returncode == 0, once.stderr
        held = {user["email"]: user.get("role") for user in sim.users.values()}
        assert held == {
            "person0@corp.example": "standard",
            "person1@corp.example": "admin",
            "person2@corp.example": "standard",
        }


async def test_without_a_map_only_the_vendors_own_values_are_sent(tmp_path: Path) -> None:
    async with serving(PZ) as (sim, url):
        write_feed(tmp_path / "hr.csv", ["Engineering Manager", "admin"])
        config = write_config(tmp_path, url, "")
        once = await syncd("once", "--config", str(config), "--json")
        assert once.returncode == 0, once.stderr
        # Before value maps the first create died of the vendor's 400 after five attempts.
        assert json.loads(once.stdout)["connectors"][PZ]["pushed"] == 2
        held = {user["email"]: user.get("role") for user in sim.users.values()}
        assert held == {"person0@corp.example": "standard", "person1@corp.example": "admin"}


def test_a_group_without_a_mapping_leaves_the_whole_list_out() -> None:
    values = ValueMap("lms", {"groups": {"Sales": "sales-team", "Ops": "ops"}})
    mapped, problems = values.apply({"groups": ["Sales", "Ops", "Sales"], "title": "X"})
    assert mapped == {"groups": ["sales-team", "ops"], "title": "X"}
    assert problems == []
    partial, problems = values.apply({"groups": ["Sales", "Legal"]})
    assert "groups" not in partial  # a partial list would take Legal away at the vendor
    assert problems == ["lms: groups 'Legal' has no value map entry: groups left out"]


def test_a_mapped_role_is_still_withheld_from_an_unconfirmed_link() -> None:
    values = ValueMap(PZ, {"role": {"Engineering Manager": "admin"}}, {"role": PZ_ROLES})
    target = Target(PZ, provision=lambda _: True, values=values)
    boss = Person(1, "boss@corp.example", "active", 1, {"role": "Engineering Manager"})
    held = {"email": "boss@corp.example", "role": "standard"}
    by_email = {PZ: Account(7, True, held, link_method="email")}
    plan = plan_person(boss, by_email, [target])
    assert plan.operations == []
    assert any("needs a confirmed link: no role" in item for item in plan.unsupported)
    confirmed = {PZ: Account(7, True, held, link_method="manual")}
    [update] = plan_person(boss, confirmed, [target]).operations
    assert dict(update.payload) == {"role": "admin"}
