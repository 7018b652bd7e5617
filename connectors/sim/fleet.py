"""A simulator fleet: any set of vendor simulators on 127.0.0.1, seeded, and how to reach each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from connectors.registry import vendor
from connectors.sim.base import SimConnection, SimPerson, SimView, VendorSimulator
from connectors.sim.listing import Record
from connectors.sim.serve import serve

# What to start under each connector name: a vendor name, or a simulator built by the caller.
FleetSpec = Iterable[str] | Mapping[str, str | VendorSimulator]


@dataclass(frozen=True, slots=True)
class FleetMember:
    """One running simulator: the connector name it serves, its URL and the simulator."""

    name: str
    url: str
    simulator: VendorSimulator

    @property
    def vendor(self) -> str:
        """Return the vendor the simulator plays."""
        return self.simulator.vendor

    @property
    def connection(self) -> SimConnection:
        """Return the secrets and settings a connector needs to talk to this simulator."""
        return self.simulator.connection()

    def config(self) -> dict[str, object]:
        """Return the connector config: vendor, base_url, secrets (the values) and settings."""
        connection = self.connection
        return {
            "vendor": self.vendor,
            "base_url": self.url,
            "secrets": dict(connection.secrets),
            "settings": dict(connection.settings),
        }

    def seed(self, people: Iterable[SimPerson]) -> list[str]:
        """Store an active user for each person; return their ids in order.

        A person whose id is taken (by a seeded user or another person) is a ValueError:
        storing it would silently replace that user.
        """
        sim = self.simulator
        ids = []
        for person in people:
            user = sim.user_for(person)
            user_id = str(user[sim.id_key])
            if user_id in sim.users:
                raise ValueError(f"{self.name}: person {person.index} would replace user {user_id}")
            ids.append(str(sim.add_user(user)[sim.id_key]))
        return ids

    def users(self) -> list[Record]:
        """Return every user as the vendor stores it."""
        return list(self.simulator.users.values())

    def views(self) -> list[SimView]:
        """Return every stored user read the vendor-neutral way."""
        return [self.simulator.view(user) for user in self.simulator.users.values()]

    def holding(self, email: str) -> list[SimView]:
        """Return the stored users with this email, ignoring case."""
        wanted = email.casefold()
        return [view for view in self.views() if (view.email or "").casefold() == wanted]


class Fleet(Mapping[str, FleetMember]):
    """Running simulators by connector name."""

    def __init__(self, members: Mapping[str, FleetMember]) -> None:
        self._members = dict(members)

    def __getitem__(self, name: str) -> FleetMember:
        return self._members[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    @property
    def simulators(self) -> dict[str, VendorSimulator]:
        """Return each simulator by connector name."""
        return {name: member.simulator for name, member in self._members.items()}

    @property
    def urls(self) -> dict[str, str]:
        """Return each simulator's base URL by connector name."""
        return {name: member.url for name, member in self._members.items()}

    def seed(self, people: Iterable[SimPerson]) -> dict[str, list[str]]:
        """Store an active user for each person at every simulator; return ids by name."""
        everyone = list(people)
        return {name: member.seed(everyone) for name, member in self._members.items()}


def build_simulators(
    spec: FleetSpec, *, users: int = 0, seed: int = 0, token: str | None = None
) -> dict[str, VendorSimulator]:
    """Build each named vendor's simulator (seed + its position) and take given ones as they are."""
    wanted = spec if isinstance(spec, Mapping) else {name: name for name in spec}
    built: dict[str, VendorSimulator] = {}
    for position, (name, what) in enumerate(wanted.items()):
        if isinstance(what, VendorSimulator):
            built[name] = what
        else:
            simulator = vendor(what).simulator
            built[name] = simulator(users=users, seed=seed + position, token=token)
    return built


@asynccontextmanager
async def simulator_fleet(
    spec: FleetSpec,
    *,
    users: int = 0,
    people: Sequence[SimPerson] = (),
    seed: int = 0,
    token: str | None = None,
) -> AsyncIterator[Fleet]:
    """Serve the simulators on 127.0.0.1, seeded with `users` random users and `people`.

    `spec` names vendors (each is also its connector name) or maps connector names to a
    vendor name or a ready simulator; `token` (default: a random one each) is what every
    built simulator accepts.
    """
    simulators = build_simulators(spec, users=users, seed=seed, token=token)
    async with AsyncExitStack() as stack:
        members = {
            name: FleetMember(name, await stack.enter_async_context(serve(sim)), sim)
            for name, sim in simulators.items()
        }
        fleet = Fleet(members)
        fleet.seed(people)
        yield fleet
