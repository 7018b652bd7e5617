"""Paginators against simulators of each pagination style: data, streaming, loops, caps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
import anyio
import pytest
from aiohttp import web

from connectors import (
    CursorPaginator,
    IncompleteListing,
    PageCountPaginator,
    PageNumberPaginator,
    PageTotalPaginator,
    Paginator,
)
from connectors.sim import (
    CursorListing,
    ListingStyle,
    ListingView,
    PageCountListing,
    PageNumberListing,
    serve,
)
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import TOKEN, configure, make_connector, sim_get


class NumberSimulator(ExampleSimulator):
    """Pages of an undocumented seven users: `?page=N`, a bare list."""

    listing: ClassVar[ListingStyle] = PageNumberListing(default_size=7)


class NumberConnector(ExampleConnector):
    """Reads NumberSimulator."""

    paginator: ClassVar[Paginator] = PageNumberPaginator(page_param="page")
    records_key: ClassVar[str | None] = None


class CountSimulator(ExampleSimulator):
    """`?page=N&count=SIZE`, users under `users`."""

    listing: ClassVar[ListingStyle] = PageCountListing(records_key="users")


class CountConnector(ExampleConnector):
    """Reads CountSimulator ten at a time."""

    paginator: ClassVar[Paginator] = PageCountPaginator(size_param="count", size=10)


class CursorSimulator(ExampleSimulator):
    """`?limit=N&starting_after=ID` with `has_more` and `next_page_url`."""

    listing: ClassVar[ListingStyle] = CursorListing()


class CursorConnector(ExampleConnector):
    """Reads CursorSimulator by following next_page_url."""

    paginator: ClassVar[Paginator] = CursorPaginator(limit=10)
    records_key: ClassVar[str | None] = "data"
    list_params: ClassVar[dict[str, str]] = {"order_by": "created_at"}


class BareCursorSimulator(ExampleSimulator):
    """Cursor pages with `has_more` only, no next-page link."""

    listing: ClassVar[ListingStyle] = CursorListing(next_url_key=None)


class BareCursorConnector(CursorConnector):
    """Reads BareCursorSimulator by passing the last id as starting_after."""

    paginator: ClassVar[Paginator] = CursorPaginator(limit=10, next_url_key=None)


# Each listing style: a simulator serving it and a connector reading it.
STYLES: dict[str, tuple[type[ExampleSimulator], type[ExampleConnector]]] = {
    "number": (NumberSimulator, NumberConnector),
    "count": (CountSimulator, CountConnector),
    "total": (ExampleSimulator, ExampleConnector),
    "cursor": (CursorSimulator, CursorConnector),
    "bare-cursor": (BareCursorSimulator, BareCursorConnector),
}


def styles(*names: str) -> pytest.MarkDecorator:
    """Run a test once for each named listing style."""
    return pytest.mark.parametrize("style", names)


@asynccontextmanager
async def serving_style(
    session: aiohttp.ClientSession, style: str, users: int, **faults: object
) -> AsyncIterator[tuple[str, ExampleConnector]]:
    """Serve `users` in a listing style, with these faults, and a connector that reads it."""
    simulator_class, connector_class = STYLES[style]
    async with serve(simulator_class(users=users, seed=1, token=TOKEN)) as url:
        if faults:
            await configure(session, url, faults=faults)
        yield url, make_connector(session, url, connector_class=connector_class)


@dataclass(frozen=True, kw_only=True)
class FixedLinkListing(CursorListing):
    """A broken vendor: every page's next-page link is the same one."""

    next_link: str

    def respond(self, request: web.Request, view: ListingView) -> object:
        body = super().respond(request, view)
        assert isinstance(body, dict)
        body["next_page_url"] = self.next_link
        return body


def linking_to(next_link: str) -> ExampleSimulator:
    """A cursor simulator of 50 users whose every page links to `next_link`."""
    listing = FixedLinkListing(next_link=next_link)
    fixed: type[ExampleSimulator] = type("Fixed", (ExampleSimulator,), {"listing": listing})
    return fixed(users=50, seed=1, token=TOKEN)


async def _ids(connector: ExampleConnector) -> list[str]:
    return [account.external_id async for account in connector.list_accounts()]


def _expected(count: int) -> list[str]:
    return [f"u{index:06d}" for index in range(1, count + 1)]


async def _listing_requests(session: aiohttp.ClientSession, url: str) -> int:
    stats = await sim_get(session, url, "stats")
    return sum(r["count"] for r in stats["by_route"] if r["path"] == "/users")


@pytest.mark.parametrize(
    ("style", "users", "requests", "query_keys"),
    [
        ("number", 30, 6, ["page"]),  # five pages, then the empty one
        ("count", 35, 4, ["count", "page"]),  # the short page ends it
        ("count", 40, 5, ["count", "page"]),  # an exact multiple reads one empty page
        ("cursor", 45, 5, ["limit", "order_by", "starting_after"]),  # follows next_page_url
        ("bare-cursor", 25, 3, ["limit", "order_by", "starting_after"]),  # the last id
    ],
)
async def test_each_style_lists_every_user_and_stops(
    session: aiohttp.ClientSession, style: str, users: int, requests: int, query_keys: list[str]
) -> None:
    async with serving_style(session, style, users) as (url, connector):
        assert await _ids(connector) == _expected(users)
        assert await _listing_requests(session, url) == requests
        assert (await sim_get(session, url, "stats"))["query_keys"] == query_keys


async def test_page_total_reads_every_page(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    assert await _ids(connector) == _expected(250)
    assert await _listing_requests(session, url) == 3
    stats = await sim_get(session, url, "stats")
    assert stats["query_keys"] == ["page", "per_page"]


async def test_page_total_fetches_the_rest_concurrently(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, latency_ms=150)
    started = anyio.current_time()
    assert len(await _ids(connector)) == 250
    # Three pages of 150 ms one after another would take 0.45 s; pages 2 and 3 overlap.
    assert anyio.current_time() - started < 0.42


async def test_page_total_of_an_empty_vendor(session: aiohttp.ClientSession) -> None:
    async with serve(ExampleSimulator(users=0, seed=1, token=TOKEN)) as url:
        assert await _ids(make_connector(session, url)) == []


@styles("number", "count", "total", "cursor")
async def test_listings_stream_page_by_page(session: aiohttp.ClientSession, style: str) -> None:
    async with serving_style(session, style, 300) as (url, connector):
        async with aclosing(connector.list_pages()) as pages:
            first = await anext(pages)
        assert first and first[0].external_id == "u000001"
        # Only the first page was fetched: nothing accumulated ahead of the consumer.
        assert await _listing_requests(session, url) == 1


@styles(*STYLES)
async def test_a_repeated_page_is_an_incomplete_listing(
    session: aiohttp.ClientSession, style: str
) -> None:
    async with serving_style(session, style, 200, repeat_page=0) as (_, connector):
        with pytest.raises(IncompleteListing, match="repeats an earlier page") as caught:
            await _ids(connector)
    assert caught.value.path == "/users"
    assert caught.value.pages == 1


async def test_a_cursor_seen_twice_is_an_incomplete_listing(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(linking_to("/users?limit=10&starting_after=u000005")) as url:
        connector = make_connector(session, url, connector_class=CursorConnector)
        with pytest.raises(IncompleteListing, match="cursor seen twice"):
            await _ids(connector)
        assert await _listing_requests(session, url) == 2


async def test_a_link_to_another_origin_is_not_followed(session: aiohttp.ClientSession) -> None:
    async with serve(linking_to("http://elsewhere.invalid/users?limit=10&starting_after=x")) as url:
        connector = make_connector(session, url, connector_class=CursorConnector)
        with pytest.raises(IncompleteListing, match="another origin"):
            await _ids(connector)


class CappedNumberConnector(NumberConnector):
    """Allows three pages."""

    paginator: ClassVar[Paginator] = PageNumberPaginator(max_pages=3)


class CappedTotalConnector(ExampleConnector):
    """Allows two pages."""

    paginator: ClassVar[Paginator] = PageTotalPaginator(size=100, max_pages=2)


async def test_the_page_cap_is_an_incomplete_listing(session: aiohttp.ClientSession) -> None:
    async with serve(NumberSimulator(users=30, seed=1, token=TOKEN)) as url:
        connector = make_connector(session, url, connector_class=CappedNumberConnector)
        with pytest.raises(IncompleteListing, match="page cap of 3"):
            await _ids(connector)


async def test_a_total_beyond_the_cap_fails_before_fetching_more(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make_connector(session, url, connector_class=CappedTotalConnector)
    with pytest.raises(IncompleteListing, match="more than 2 pages"):
        await _ids(connector)
    assert await _listing_requests(session, url) == 1


@styles("total", "cursor")
async def test_a_listing_cut_short_is_incomplete_where_it_can_be_told(
    session: aiohttp.ClientSession, style: str
) -> None:
    async with serving_style(session, style, 120, truncate_after=60) as (_, connector):
        with pytest.raises(IncompleteListing, match=r"cut short|claims more"):
            await _ids(connector)


def test_paginators_are_declarations() -> None:
    paginator: Paginator = PageTotalPaginator(size=50, window=4)
    assert paginator.max_pages == 10_000
    with pytest.raises(AttributeError):
        paginator.max_pages = 1  # type: ignore[misc]
