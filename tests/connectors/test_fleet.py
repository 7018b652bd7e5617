"""The simulator fleet: any set of simulators, seeded, each with how to reach it."""

from __future__ import annotations

import aiohttp
import pytest

from connectors.registry import VENDORS
from connectors.sim.base import SimPerson
from connectors.sim.fleet import simulator_fleet
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import sim_get

ADA = SimPerson(1001, "E1001", "ada@corp.example", "Ada", "Lovelace", "Engineer")
GRACE = SimPerson(1002, "E1002", "grace@corp.example", "Grace", "Hopper")


async def test_every_vendor_starts_seeded_with_users_and_people(
    session: aiohttp.ClientSession,
) -> None:
    async with simulator_fleet(list(VENDORS), users=3, people=(ADA, GRACE)) as fleet:
        assert list(fleet) == list(VENDORS)
        for name, member in fleet.items():
            assert member.vendor == name
            held = await sim_get(session, member.url, "users")
            assert len(held["users"]) == 5, name
            [ada] = member.holding("ADA@corp.example")
            assert ada.active and ada.email == ADA.email
            config = member.config()
            assert config["base_url"] == member.url
            assert config["secrets"] == member.simulator.connection().secrets


async def test_given_simulators_serve_under_their_connector_names(
    session: aiohttp.ClientSession,
) -> None:
    mine = ExampleSimulator(users=2, seed=1, token="given-token")
    spec = {"ours": mine, "theirs": "example"}
    async with simulator_fleet(spec, users=4, token="fleet-token") as fleet:
        assert fleet["ours"].simulator is mine
        assert len(fleet["ours"].users()) == 2  # a given simulator is taken as it is
        assert len(fleet["theirs"].users()) == 4
        assert fleet["ours"].connection.secrets == {"token": "given-token"}
        assert fleet["theirs"].connection.secrets == {"token": "fleet-token"}
        assert fleet.urls["ours"] != fleet.urls["theirs"]
        stats = await sim_get(session, fleet.urls["theirs"], "stats")
        assert stats["requests"] == 0


async def test_seeding_returns_the_stored_ids_in_order() -> None:
    async with simulator_fleet(["example", "userflow"]) as fleet:
        ids = fleet.seed([ADA, GRACE])
        assert ids["userflow"] == ["E1001", "E1002"]  # Userflow keys users by employee id
        for name, member in fleet.items():
            users = member.simulator.users
            assert [member.simulator.view(users[i]).email for i in ids[name]] == [
                ADA.email,
                GRACE.email,
            ]


async def test_a_person_who_would_replace_a_user_is_refused() -> None:
    async with simulator_fleet(["example"], users=3) as fleet:
        clash = SimPerson(0, "E0", "clash@corp.example", "Clash", "Example")
        with pytest.raises(ValueError, match="example: person 0 would replace user u000001"):
            fleet.seed([clash])
        assert len(fleet["example"].users()) == 3
