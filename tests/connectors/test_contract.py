"""One contract every vendor keeps: listing, faults, 401, paging loops, writes, lookup.

Each case runs against every vendor in the registry, its connector built from the fleet's
config (the simulator's own `connection()`), as syncd builds it. Vendors differ only where
their declared capabilities say so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
import anyio
import pytest

from connectors import (
    AuthenticationError,
    IncompleteListing,
    MalformedResponseError,
    RateBudget,
    UnsupportedOperation,
    VendorServerError,
    VendorUnavailableError,
)
from connectors.core.base import Connector
from connectors.core.records import VendorAccount
from connectors.registry import VENDORS, vendor
from connectors.sim.base import CLIENT_GONE, SimPerson
from connectors.sim.fleet import FleetMember, simulator_fleet
from tests.connectors.conftest import build_connector, configure, sim_get

SEVERAL_PAGES = 250  # more than one page at every vendor's page size
WHOLE_PAGES = 200  # a whole number of pages at page sizes 20, 25, 50 and 100
FEW = 30
CLIENT_RATE = 100.0
DEADLINE = 20.0  # a listing that loops forever fails the test instead of hanging it
DOMAIN = "contract.example"


def person(index: int, email: str | None = None) -> SimPerson:
    """A person the fleet seeds into any vendor."""
    return SimPerson(
        index=900_000 + index,
        employee_id=f"C{index:05d}",
        email=email or f"person{index}@{DOMAIN}",
        given_name=f"Given{index}",
        family_name=f"Family{index}",
        title="Engineer",
    )


@pytest.fixture(params=sorted(VENDORS))
def vendor_name(request: pytest.FixtureRequest) -> str:
    """Every registered vendor, one at a time."""
    return str(request.param)


@asynccontextmanager
async def running(
    name: str, *, users: int = 0, people: tuple[SimPerson, ...] = ()
) -> AsyncIterator[FleetMember]:
    """One vendor's simulator from the fleet, seeded."""
    async with simulator_fleet([name], users=users, people=people, seed=5) as fleet:
        yield fleet[name]


def connect(
    session: aiohttp.ClientSession,
    member: FleetMember,
    *,
    timeout: float = 2.0,
    secrets: Mapping[str, str] | None = None,
) -> Connector:
    """Build the vendor's connector from the fleet config, as syncd does, with fast retries."""
    connection = member.connection
    return build_connector(
        vendor(member.vendor).connector,
        session,
        member.url,
        connection.secrets if secrets is None else secrets,
        budget=RateBudget(CLIENT_RATE),
        timeout=timeout,
        **connection.settings,
    )


async def listed(connector: Connector) -> list[VendorAccount]:
    """Every account the connector lists."""
    with anyio.fail_after(DEADLINE):
        return [account async for account in connector.list_accounts()]


async def listed_until(connector: Connector, error: type[Exception]) -> list[str]:
    """The ids listed before the listing fails with `error` (the test fails if it does not)."""
    seen: list[str] = []
    with anyio.fail_after(DEADLINE), pytest.raises(error):
        async for account in connector.list_accounts():
            seen.append(account.external_id)
    return seen


def stored_ids(member: FleetMember) -> list[str]:
    """The ids of every user the simulator holds."""
    sim = member.simulator
    return sorted(str(user[sim.id_key]) for user in sim.users.values())


def answered(member: FleetMember, status: int) -> int:
    """How many vendor requests the simulator answered with this status."""
    return sum(n for (_, _, code), n in member.simulator.stats.requests.items() if code == status)


def assert_lists_every_user(member: FleetMember, accounts: list[VendorAccount]) -> None:
    """The listing holds each stored user once, with the email the vendor stores."""
    ids = [account.external_id for account in accounts]
    assert sorted(ids) == stored_ids(member)
    emails = {account.external_id: (account.email or "").casefold() for account in accounts}
    sim = member.simulator
    for user in sim.users.values():
        assert emails[str(user[sim.id_key])] == (sim.view(user).email or "").casefold()


def create_attributes(who: SimPerson) -> dict[str, object]:
    """Canonical attributes for a new account; the employee id serves vendors keyed by it."""
    return {
        "email": who.email,
        "given_name": who.given_name,
        "family_name": who.family_name,
        "title": who.title,
        "employee_id": who.employee_id,
    }


# -- listing --------------------------------------------------------------------------------


async def test_full_listing_over_several_pages(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    async with running(vendor_name, users=SEVERAL_PAGES) as member:
        accounts = await listed(connect(session, member))
        assert len(accounts) == SEVERAL_PAGES
        assert_lists_every_user(member, accounts)
        assert answered(member, 200) >= 2  # it took more than one page


async def test_a_listing_after_changes_shows_them(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    async with running(vendor_name, users=SEVERAL_PAGES) as member:
        connector = connect(session, member)
        assert_lists_every_user(member, await listed(connector))
        sim = member.simulator
        first, *_, gone, last = list(sim.users)
        renamed = sim.user_for(person(1, f"renamed@{DOMAIN}"))
        sim.users[last] = {**renamed, sim.id_key: sim.users[last][sim.id_key]}
        del sim.users[gone]
        added = str(sim.add_user(sim.user_for(person(2)))[sim.id_key])
        accounts = await listed(connector)
        assert_lists_every_user(member, accounts)  # the renamed email too
        ids = {account.external_id for account in accounts}
        assert {first, last, added} <= ids and gone not in ids


@pytest.mark.parametrize("users", [0, WHOLE_PAGES])
async def test_listing_ends_on_an_empty_vendor_and_on_a_full_last_page(
    session: aiohttp.ClientSession, vendor_name: str, users: int
) -> None:
    async with running(vendor_name, users=users) as member:
        accounts = await listed(connect(session, member))
        assert len(accounts) == users
        assert_lists_every_user(member, accounts)
        # At most one request past the last page: no trailing loop over empty pages.
        assert answered(member, 200) <= max(users // 20, 1) + 1


# -- throttling and transient faults --------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["seconds", "none"])
async def test_a_429_is_waited_out(
    session: aiohttp.ClientSession, vendor_name: str, retry_after: str
) -> None:
    async with running(vendor_name, users=FEW) as member:
        await configure(session, member.url, rate=4, burst=1, retry_after=retry_after)
        connector = connect(session, member)
        for _ in range(2):  # the second listing starts with an empty bucket
            assert_lists_every_user(member, await listed(connector))
        throttled = member.simulator.stats.throttled
        assert throttled >= 1
        if retry_after == "seconds":
            # Waiting as told, every 429 is followed by an answer: never two in a row.
            assert throttled <= answered(member, 200)


async def test_a_timeout_is_retried_and_a_lasting_one_fails_the_listing(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    async with running(vendor_name, users=FEW) as member:
        faults = {"timeout_share": 1.0, "timeout_delay": 2.0, "limit": 1}
        await configure(session, member.url, faults=faults)
        connector = connect(session, member, timeout=0.5)
        assert_lists_every_user(member, await listed(connector))
        with anyio.fail_after(2):
            while answered(member, CLIENT_GONE) < 1:  # noqa: ASYNC110  (the server side)
                await anyio.sleep(0.02)

        await configure(session, member.url, faults={"limit": None})
        assert await listed_until(connector, VendorUnavailableError) == []


@pytest.mark.parametrize(
    ("fault", "limit", "error"),
    [
        ("server_error_share", 2, VendorServerError),
        ("reset_share", 1, VendorUnavailableError),  # the connection is dropped
        ("malformed_share", 1, MalformedResponseError),  # never read as accounts
    ],
)
async def test_a_transient_fault_is_retried_and_a_lasting_one_fails_the_listing(
    session: aiohttp.ClientSession,
    vendor_name: str,
    fault: str,
    limit: int,
    error: type[Exception],
) -> None:
    async with running(vendor_name, users=FEW) as member:
        await configure(session, member.url, faults={fault: 1.0, "limit": limit})
        connector = connect(session, member)
        assert_lists_every_user(member, await listed(connector))
        if fault == "server_error_share":
            assert answered(member, 503) == limit

        await configure(session, member.url, faults={fault: 1.0, "limit": None})
        assert await listed_until(connector, error) == []


async def test_a_401_lists_nothing(session: aiohttp.ClientSession, vendor_name: str) -> None:
    async with running(vendor_name, users=FEW) as member:
        wrong = {name: f"wrong-{value}" for name, value in member.connection.secrets.items()}
        assert (
            await listed_until(connect(session, member, secrets=wrong), AuthenticationError) == []
        )

        await configure(session, member.url, faults={"unauthorized": True})
        assert await listed_until(connect(session, member), AuthenticationError) == []
        assert member.simulator.stats.throttled == 0


async def test_a_paging_loop_ends_the_listing_incomplete(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    async with running(vendor_name, users=SEVERAL_PAGES) as member:
        await configure(session, member.url, faults={"repeat_page": 0})
        seen = await listed_until(connect(session, member), IncompleteListing)
        assert len(seen) == len(set(seen))  # no account twice
        assert len(seen) < SEVERAL_PAGES


# -- writes ---------------------------------------------------------------------------------


async def test_create_is_visible_at_the_vendor(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    async with running(vendor_name, users=FEW) as member:
        connector = connect(session, member)
        who = person(1)
        created = await connector.create_account(create_attributes(who))
        assert created.email is not None and created.email.casefold() == who.email
        held = (await sim_get(session, member.url, "users"))["users"]
        views = [member.simulator.view(user) for user in held]
        assert [view.active for view in views if view.email == who.email] == [True]
        assert created.external_id in stored_ids(member)
        assert len(held) == FEW + 1


async def test_update_is_visible_at_the_vendor(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    who = person(2)
    async with running(vendor_name, users=FEW, people=(who,)) as member:
        connector = connect(session, member)
        wanted = {"title": "Staff Engineer", "given_name": "Renamed"}
        changes = {key: value for key, value in wanted.items() if key in connector.writable}
        assert changes, "the vendor can change neither title nor given name"
        found = await connector.find_by_email(who.email)
        assert found is not None
        await connector.update_account(found.external_id, changes)

        again = await connector.find_by_email(who.email)
        assert again is not None and again.external_id == found.external_id
        for key, value in changes.items():
            assert again.attributes.get(key) == value, key
        if "title" in changes:
            assert [view.title for view in member.holding(who.email)] == ["Staff Engineer"]
        assert len(member.simulator.users) == FEW + 1


async def test_deactivate_is_visible_or_refused_as_unsupported(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    leaver, stayer = person(3), person(4)
    async with running(vendor_name, people=(leaver, stayer)) as member:
        connector = connect(session, member)
        found = await connector.find_by_email(leaver.email)
        assert found is not None
        if connector.capabilities.has_deactivate:
            await connector.deactivate_account(found.external_id)
            assert [view.active for view in member.holding(leaver.email)] == [False]
        else:
            with pytest.raises(UnsupportedOperation):
                await connector.deactivate_account(found.external_id)
            assert [view.active for view in member.holding(leaver.email)] == [True]
        assert [view.active for view in member.holding(stayer.email)] == [True]
        assert len(member.simulator.users) == 2


async def test_lookup_before_create_finds_only_the_exact_email(
    session: aiohttp.ClientSession, vendor_name: str
) -> None:
    target = f"person5@{DOMAIN}"
    look_alikes = (
        person(6, f"xperson5@{DOMAIN}"),
        person(7, f"person5@{DOMAIN}.evil"),
        person(8, f"person5+x@{DOMAIN}"),
    )
    async with running(vendor_name, users=FEW, people=look_alikes) as member:
        connector = connect(session, member)
        assert await connector.find_by_email(target) is None

        member.seed([person(5)])
        found = await connector.find_by_email(target.upper())
        assert found is not None
        assert found.email is not None and found.email.casefold() == target
        assert [view.email for view in member.holding(target)] == [target]
