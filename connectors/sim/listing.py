"""How a simulated vendor pages its user listing; one small class per pagination style."""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlencode

from aiohttp import web

from connectors.sim.errors import VendorError
from connectors.sim.settings import Faults

Record = dict[str, object]


class Listed:
    """Users in listing order, each id's position found once, when a cursor first needs it."""

    def __init__(self, users: Sequence[Record], id_key: str) -> None:
        self.users = users
        self.id_key = id_key

    @cached_property
    def positions(self) -> dict[str, int]:
        """Return the position just after each id (its first user's, as a scan would find)."""
        positions: dict[str, int] = {}
        for index, user in enumerate(self.users, start=1):
            positions.setdefault(str(user.get(self.id_key)), index)
        return positions


class ListingView:
    """The users one listing request sees, with the repeat-page and truncate faults applied."""

    def __init__(self, listed: Listed, faults: Faults) -> None:
        self._listed = listed
        self._faults = faults

    @property
    def total(self) -> int:
        """Return how many users the vendor holds (what it reports, even when truncating)."""
        return len(self._listed.users)

    def page(self, start: int, size: int) -> list[Record]:
        """Return up to `size` users from position `start`."""
        repeat = self._faults.repeat_page
        if repeat is not None and size > 0 and start // size == repeat + 1:
            start -= size
        end = start + size
        if self._faults.truncate_after is not None:
            end = min(end, self._faults.truncate_after)
        return list(self._listed.users[start:end])

    def record_id(self, record: Record) -> str:
        """Return a user's id as a string."""
        return str(record.get(self._listed.id_key))

    def position_after(self, record_id: str) -> int | None:
        """Return the position just after the user with this id, or None if unknown."""
        return self._listed.positions.get(record_id)


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """Read an integer query parameter; 400 if it is not a number in [low, high]."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise VendorError(400, f"{name} must be an integer", "invalid") from None
    if not low <= value <= high:
        raise VendorError(400, f"{name} must be between {low} and {high}", "invalid")
    return value


def _envelope(records_key: str | None, records: list[Record], **extra: object) -> object:
    """Return the records bare or under their key, with extra body fields."""
    if records_key is None:
        return records
    return {**extra, records_key: records}


class ListingStyle(ABC):
    """One way of paging a listing."""

    @abstractmethod
    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return the JSON body for one listing request."""


@dataclass(frozen=True, kw_only=True)
class PagedListing(ListingStyle):
    """`?page=N` from `start` and a page size if the vendor takes one; subclasses write the body."""

    page_param: str = "page"
    size_param: str | None = None  # None: every page has `default_size` users
    default_size: int = 25
    max_size: int = 100
    start: int = 1

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Read the page number and size (400 if out of range), then answer that page."""
        number = int_param(request, self.page_param, self.start, self.start, 10**9)
        size = self.default_size
        if self.size_param is not None:
            size = int_param(request, self.size_param, self.default_size, 1, self.max_size)
        return self.page_body(request, view, number, size)

    def offset(self, number: int, size: int) -> int:
        """Return the position of page `number`'s first user."""
        return (number - self.start) * size

    @abstractmethod
    def page_body(self, request: web.Request, view: ListingView, number: int, size: int) -> object:
        """Return the JSON body for page `number` of `size` users."""


@dataclass(frozen=True, kw_only=True)
class PageNumberListing(PagedListing):
    """`?page=N` with an undocumented page size; past the end, an empty page."""

    records_key: str | None = None
    total_key: str | None = None  # where the body reports the vendor's total, if it does

    def page_body(self, request: web.Request, view: ListingView, number: int, size: int) -> object:
        """Return page N, under `records_key`, with the total if the vendor sends one."""
        records = view.page(self.offset(number, size), size)
        extra = {} if self.total_key is None else {self.total_key: view.total}
        return _envelope(self.records_key, records, **extra)


@dataclass(frozen=True, kw_only=True)
class PageCountListing(PageNumberListing):
    """`?page=N&count=SIZE`; the last page is short."""

    size_param: str | None = "count"


@dataclass(frozen=True, kw_only=True)
class PageTotalListing(PageNumberListing):
    """`?page=N&per_page=SIZE` with the vendor's total in the body."""

    size_param: str | None = "per_page"
    records_key: str | None = "users"
    total_key: str | None = "total"


@dataclass(frozen=True, kw_only=True)
class CursorListing(ListingStyle):
    """`?limit=N&starting_after=ID` with `has_more` and a `next_page_url` carrying the query."""

    limit_param: str = "limit"
    cursor_param: str = "starting_after"
    default_limit: int = 20
    max_limit: int = 100
    records_key: str = "data"
    has_more_key: str = "has_more"
    next_url_key: str | None = "next_page_url"
    envelope: Mapping[str, object] = field(default_factory=lambda: {"object": "list"})

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return the page after the cursor, and how to get the next one."""
        limit = int_param(request, self.limit_param, self.default_limit, 1, self.max_limit)
        start = 0
        cursor = request.query.get(self.cursor_param)
        if cursor is not None:
            position = view.position_after(cursor)
            if position is None:
                raise VendorError(400, f"unknown {self.cursor_param}", "invalid")
            start = position
        records = view.page(start, limit)
        has_more = start + limit < view.total
        body: dict[str, object] = {**self.envelope, self.records_key: records}
        body[self.has_more_key] = has_more
        if self.next_url_key is not None:
            body[self.next_url_key] = None
            if has_more and records:
                query = dict(request.query)
                query[self.limit_param] = str(limit)
                query[self.cursor_param] = view.record_id(records[-1])
                body[self.next_url_key] = f"{request.path}?{urlencode(query)}"
        return body


@dataclass(frozen=True, kw_only=True)
class TokenCursorListing(ListingStyle):
    """`?cursor=TOKEN` with a fixed page size; the body's `pageInfo` has `hasMore` and `cursor`."""

    cursor_param: str = "cursor"
    size: int = 100
    records_key: str = "users"
    info_key: str = "pageInfo"
    has_more_key: str = "hasMore"
    cursor_key: str = "cursor"

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return the page after the cursor and the opaque cursor of the next one."""
        start = 0
        token = request.query.get(self.cursor_param)
        if token is not None:
            position = view.position_after(_cursor_id(token))
            if position is None:
                raise VendorError(400, f"invalid {self.cursor_param}", "invalid")
            start = position
        records = view.page(start, self.size)
        has_more = start + self.size < view.total
        info: dict[str, object] = {self.has_more_key: has_more}
        if has_more and records:
            last = view.record_id(records[-1]).encode()
            info[self.cursor_key] = base64.urlsafe_b64encode(last).decode().rstrip("=")
        return {self.records_key: records, self.info_key: info}


def _cursor_id(token: str) -> str:
    """Return the record id an opaque cursor stands for ("" if it is not one of ours)."""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True, kw_only=True)
class NextLinkListing(PagedListing):
    """`?page=N` with `{"links": {"self": URL, "next": URL or null}}`: absolute next-page URLs."""

    size_param: str | None = "per_page"
    records_key: str = "data"

    def page_body(self, request: web.Request, view: ListingView, number: int, size: int) -> object:
        """Return page N and the absolute URL of the next page while there is one."""
        start = self.offset(number, size)
        following = None
        if start + size < view.total:
            following = str(request.url.update_query({self.page_param: str(number + 1)}))
        links = {"self": str(request.url), "next": following}
        return {self.records_key: view.page(start, size), "links": links}
