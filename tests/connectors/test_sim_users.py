"""Simulator listings are kept between changes and rebuilt by every change to the users."""

from __future__ import annotations

from connectors.sim.base import VendorSimulator
from connectors.sim.listing import ListingView, Record
from connectors.sim.settings import Faults
from connectors.sim.users import Users
from connectors.vendors.example.simulator import ExampleSimulator

PAGE = 25


def table(sim: VendorSimulator) -> Users:
    """The simulator's users, as the mapping that keeps its listings."""
    assert isinstance(sim.users, Users)
    return sim.users


def scanned(sim: VendorSimulator) -> list[Record]:
    """Every user in listing order, from a fresh scan."""
    return list(sim.users.values())


def assert_pages_match_a_scan(sim: VendorSimulator) -> None:
    """Every page and every cursor position is what a fresh scan of the users gives."""
    view, users = sim.listing_view(), scanned(sim)
    assert view.total == len(users)
    for start in range(0, len(users) + PAGE, PAGE):
        assert view.page(start, PAGE) == users[start : start + PAGE]
    for index, user in enumerate(users, start=1):
        assert view.position_after(view.record_id(user)) == index


def test_a_change_between_pages_shows_on_the_next_page() -> None:
    sim = ExampleSimulator(users=120, seed=2)
    first = sim.listing_view().page(0, PAGE)
    assert sim.listing_view().page(0, PAGE) is not first  # a page is a fresh list
    ids = list(sim.users)
    sim.users[ids[30]] = {**sim.users[ids[30]], "email": "changed@example.com"}
    assert sim.listing_view().page(PAGE, PAGE)[5]["email"] == "changed@example.com"
    del sim.users[ids[26]]
    assert ids[26] not in [user["id"] for user in sim.listing_view().page(PAGE, PAGE)]
    assert sim.listing_view().position_after(ids[26]) is None
    added = sim.add_user({"email": "new@example.com"})
    assert sim.listing_view().page(100, PAGE)[-1] is added
    assert_pages_match_a_scan(sim)
    sim.users.pop(ids[0])
    sim.users.update({ids[1]: {"id": ids[1], "email": "updated@example.com"}})
    assert_pages_match_a_scan(sim)
    sim.reset()
    assert_pages_match_a_scan(sim)


def test_a_listing_is_built_once_between_changes() -> None:
    sim = ExampleSimulator(users=10, seed=2)
    view = sim.listing_view()
    assert view.position_after("u000004") == 4
    assert table(sim).listed() is table(sim).listed()
    kept = table(sim).listed()
    sim.users["u000004"] = dict(sim.users["u000004"])
    assert table(sim).listed() is not kept


def test_faults_apply_to_kept_listings_as_they_did_to_a_scan() -> None:
    sim = ExampleSimulator(users=100, seed=2)
    users = scanned(sim)
    for truncate in (0, 10, 30, 99, 100, 150):
        view = ListingView(table(sim).listed(), Faults(truncate_after=truncate))
        for start in range(0, 125, PAGE):
            assert view.page(start, PAGE) == users[:truncate][start : start + PAGE]
        assert view.total == 100
    view = ListingView(table(sim).listed(), Faults(repeat_page=1))
    assert view.page(2 * PAGE, PAGE) == users[PAGE : 2 * PAGE]
