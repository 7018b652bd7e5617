"""Paginators: small classes that stream a vendor listing page by page and detect loops."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio

from connectors.core.errors import IncompleteListing

Record = dict[str, object]
Page = list[Record]
FetchJSON = Callable[[str, Mapping[str, str]], Awaitable[object]]
ResolveLink = Callable[[str], tuple[str, Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class ListingSource:
    """Where one listing comes from and how its response bodies are shaped."""

    vendor: str
    path: str
    fetch: FetchJSON
    params: Mapping[str, str] = field(default_factory=dict)
    records_key: str | None = None  # None: the body itself is the list of records
    id_key: str = "id"
    resolve_link: ResolveLink | None = None


class _Guard:
    """Counts pages and records of one listing and stops it on a loop or the page cap."""

    def __init__(self, source: ListingSource, max_pages: int) -> None:
        self._source = source
        self._max_pages = max_pages
        self._fingerprints: set[int] = set()
        self._cursors: set[str] = set()
        self.pages = 0
        self.records = 0

    def incomplete(self, reason: str) -> IncompleteListing:
        """Build the error that ends this listing."""
        return IncompleteListing(
            self._source.vendor,
            self._source.path,
            reason,
            pages=self.pages,
            records=self.records,
        )

    def extract(self, body: object) -> Page:
        """Return the records of one response body, or fail on an unexpected shape."""
        key = self._source.records_key
        container = body.get(key) if key is not None and isinstance(body, dict) else body
        if key is not None and not isinstance(body, dict):
            container = None
        if not isinstance(container, list) or not all(isinstance(r, dict) for r in container):
            raise self.incomplete("unexpected response shape")
        return container

    def take(self, body: object, label: str | None = None) -> Page:
        """Return and count the records of the next page (labelled by its number if unnamed)."""
        records = self.extract(body)
        self.accept(records, label or f"page {self.pages + 1}")
        return records

    def accept(self, records: Sequence[Record], label: str) -> None:
        """Count a page; fail if it is past the cap or repeats an earlier page."""
        if self.pages >= self._max_pages:
            raise self.incomplete(f"page cap of {self._max_pages} reached")
        ids = tuple(self.record_id(record) for record in records)
        if ids:
            fingerprint = hash(ids)
            if fingerprint in self._fingerprints:
                raise self.incomplete(f"{label} repeats an earlier page")
            self._fingerprints.add(fingerprint)
        self.pages += 1
        self.records += len(records)

    def cursor(self, cursor: str) -> None:
        """Fail if a cursor or next-page link comes round a second time."""
        if cursor in self._cursors:
            raise self.incomplete("cursor seen twice")
        self._cursors.add(cursor)

    def record_id(self, record: Record) -> str:
        """Return a record's id, or fail if it has none (a bad id is the graph's to reject)."""
        value = record.get(self._source.id_key)
        if value is None:
            raise self.incomplete(f"a record has no {self._source.id_key!r}")
        return str(value)


@dataclass(frozen=True, kw_only=True)
class Paginator(ABC):
    """Streams a listing as pages of records; a loop or the page cap is IncompleteListing."""

    max_pages: int = 10_000

    @abstractmethod
    def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield the listing's pages in order; never hold more than a bounded number."""


@dataclass(frozen=True, kw_only=True)
class PageNumberPaginator(Paginator):
    """`?page=N` counting from `start`; the page size is unknown, so an empty page ends it."""

    page_param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = None

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until the vendor answers with an empty one."""
        guard = _Guard(source, self.max_pages)
        number = self.start
        while True:
            params = {**source.params, self.page_param: str(number)}
            if self.size_param is not None and self.size is not None:
                params[self.size_param] = str(self.size)
            records = guard.extract(await source.fetch(source.path, params))
            if not records:
                return
            guard.accept(records, f"page {number}")
            yield records
            number += 1


@dataclass(frozen=True, kw_only=True)
class ShortPagePaginator(Paginator):
    """Pages of `size` records asked by position; a page shorter than `size` is the last one."""

    size: int = 100

    @abstractmethod
    def _position(self, index: int) -> tuple[dict[str, str], str]:
        """Return the query that asks for page `index` (from 0) and the page's label."""

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until one holds fewer than `size` records."""
        guard = _Guard(source, self.max_pages)
        while True:
            position, label = self._position(guard.pages)
            body = await source.fetch(source.path, {**source.params, **position})
            records = guard.take(body, label)
            if records:
                yield records
            if len(records) < self.size:
                return


@dataclass(frozen=True, kw_only=True)
class PageCountPaginator(ShortPagePaginator):
    """`?page=N&count=SIZE`; a page shorter than SIZE is the last one."""

    page_param: str = "page"
    size_param: str = "count"
    start: int = 1

    def _position(self, index: int) -> tuple[dict[str, str], str]:
        """Return `page` and `count` for page `index`."""
        number = self.start + index
        return {self.page_param: str(number), self.size_param: str(self.size)}, f"page {number}"


@dataclass(frozen=True, kw_only=True)
class OffsetLimitPaginator(ShortPagePaginator):
    """`?limit=SIZE&offset=N` from offset 0; a page shorter than SIZE is the last one."""

    limit_param: str = "limit"
    offset_param: str = "offset"

    def _position(self, index: int) -> tuple[dict[str, str], str]:
        """Return `limit` and `offset` for page `index`."""
        query = {self.limit_param: str(self.size), self.offset_param: str(index * self.size)}
        return query, f"page {index + 1}"


@dataclass(frozen=True, kw_only=True)
class PageTotalPaginator(Paginator):
    """`?page=N&per_page=SIZE` with a `total` in the body: the rest is fetched concurrently.

    Pages after the first are fetched `window` at a time (the budget paces them) and
    yielded in order; every page must hold exactly what the total implies.
    """

    page_param: str = "page"
    size_param: str = "per_page"
    size: int = 100
    total_key: str = "total"
    start: int = 1
    window: int = 32

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield the first page, then the remaining pages window by window."""
        guard = _Guard(source, self.max_pages)
        first = await source.fetch(source.path, self._params(source, self.start))
        total = self._total(first, guard)
        page_count = math.ceil(total / self.size)
        if page_count > self.max_pages:
            raise guard.incomplete(f"{total} records need more than {self.max_pages} pages")
        last = self.start + max(page_count, 1) - 1
        yield self._checked(first, self.start, total, last, guard)
        for batch_start in range(self.start + 1, last + 1, self.window):
            batch = range(batch_start, min(batch_start + self.window, last + 1))
            bodies = await self._fetch_batch(source, batch)
            for number in batch:
                yield self._checked(bodies[number], number, total, last, guard)

    def _params(self, source: ListingSource, number: int) -> dict[str, str]:
        """Return the query for page `number`."""
        return {**source.params, self.page_param: str(number), self.size_param: str(self.size)}

    def _total(self, body: object, guard: _Guard) -> int:
        """Return the body's total, or fail if it has none."""
        total = body.get(self.total_key) if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise guard.incomplete(f"response has no valid {self.total_key!r}")
        return total

    def _checked(self, body: object, number: int, total: int, last: int, guard: _Guard) -> Page:
        """Return page `number`'s records if they are exactly what the total implies."""
        if self._total(body, guard) != total:
            raise guard.incomplete("the total changed during the listing")
        records = guard.extract(body)
        expected = self.size if number < last else total - (last - self.start) * self.size
        if len(records) != expected:
            raise guard.incomplete(
                f"page {number} holds {len(records)} records, {expected} expected: cut short"
            )
        guard.accept(records, f"page {number}")
        return records

    async def _fetch_batch(self, source: ListingSource, batch: range) -> dict[int, object]:
        """Fetch every page of a batch concurrently; the first failure cancels the rest."""
        bodies: dict[int, object] = {}
        failures: list[Exception] = []

        async def fetch(number: int) -> None:
            try:
                bodies[number] = await source.fetch(source.path, self._params(source, number))
            except Exception as exc:
                failures.append(exc)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for number in batch:
                group.start_soon(fetch, number)
        if failures:
            raise failures[0]
        return bodies


@dataclass(frozen=True, kw_only=True)
class StartIndexPaginator(Paginator):
    """`?startIndex=N&count=SIZE` with a total in the body (SCIM, RFC 7644 §3.4.2.4).

    A server may answer with fewer records than asked, so each page starts after the
    records actually received; the listing ends once the total is reached. A total that
    changes, an empty page before the total, more records than the total, or a record
    seen twice (an offset listing shifted under a concurrent write) is IncompleteListing.
    """

    index_param: str = "startIndex"
    size_param: str = "count"
    size: int = 100
    total_key: str = "totalResults"
    start: int = 1

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until the records received reach the total."""
        guard = _Guard(source, self.max_pages)
        seen: set[str] = set()
        total: int | None = None
        while total is None or guard.records < total:
            index = self.start + guard.records
            params = {
                **source.params,
                self.index_param: str(index),
                self.size_param: str(self.size),
            }
            body = await source.fetch(source.path, params)
            page_total = body.get(self.total_key) if isinstance(body, dict) else None
            if not isinstance(page_total, int) or isinstance(page_total, bool) or page_total < 0:
                raise guard.incomplete(f"response has no valid {self.total_key!r}")
            if total is not None and page_total != total:
                raise guard.incomplete("the total changed during the listing")
            total = page_total
            if total == 0:
                return  # the records key may be absent when there are none
            records = guard.extract(body)
            if not records:
                raise guard.incomplete(
                    f"an empty page at {self.index_param}={index} before the total"
                )
            if guard.records + len(records) > total:
                raise guard.incomplete("more records than the total")
            for record in records:
                record_id = guard.record_id(record)
                if record_id in seen:
                    raise guard.incomplete(f"record {record_id!r} seen twice: the listing shifted")
                seen.add(record_id)
            guard.accept(records, f"the page at {self.index_param}={index}")
            yield records


@dataclass(frozen=True, kw_only=True)
class CursorPaginator(Paginator):
    """`?limit=N&starting_after=ID` with `has_more`, following `next_page_url` when given."""

    limit_param: str = "limit"
    limit: int = 100
    cursor_param: str = "starting_after"
    has_more_key: str = "has_more"
    next_url_key: str | None = "next_page_url"

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until the vendor says there are no more."""
        guard = _Guard(source, self.max_pages)
        path: str = source.path
        params: Mapping[str, str] = {**source.params, self.limit_param: str(self.limit)}
        while True:
            body = await source.fetch(path, params)
            records = guard.take(body)
            if records:
                yield records
            fields = body if isinstance(body, dict) else {}
            more = fields.get(self.has_more_key)
            link = fields.get(self.next_url_key) if self.next_url_key else None
            if more is False or (more is None and not link):
                return
            if not records:
                raise guard.incomplete("an empty page claims more records")
            if isinstance(link, str) and link:
                guard.cursor(link)
                path, params = self._follow(link, source, guard)
            else:
                cursor = guard.record_id(records[-1])
                guard.cursor(cursor)
                params = {**params, self.cursor_param: cursor}

    def _follow(
        self, link: str, source: ListingSource, guard: _Guard
    ) -> tuple[str, Mapping[str, str]]:
        """Return the path and query of a next-page link on the vendor's own origin."""
        if source.resolve_link is None:
            raise guard.incomplete("a next-page link was given but cannot be followed")
        try:
            return source.resolve_link(link)
        except ValueError:
            raise guard.incomplete("the next-page link points to another origin") from None


@dataclass(frozen=True, kw_only=True)
class TokenCursorPaginator(Paginator):
    """`?cursor=TOKEN` where the body's `pageInfo` holds `hasMore` and the next opaque `cursor`."""

    cursor_param: str = "cursor"
    info_key: str = "pageInfo"
    has_more_key: str = "hasMore"
    cursor_key: str = "cursor"

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until the body's page info says there are no more."""
        guard = _Guard(source, self.max_pages)
        params: Mapping[str, str] = dict(source.params)
        while True:
            body = await source.fetch(source.path, params)
            records = guard.take(body)
            if records:
                yield records
            info = body.get(self.info_key) if isinstance(body, dict) else None
            more = info.get(self.has_more_key) if isinstance(info, dict) else None
            if not isinstance(more, bool):
                raise guard.incomplete(f"response has no valid {self.info_key}.{self.has_more_key}")
            if not more:
                return
            if not records:
                raise guard.incomplete("an empty page claims more records")
            cursor = info.get(self.cursor_key) if isinstance(info, dict) else None
            if not isinstance(cursor, str) or not cursor:
                raise guard.incomplete(f"more records but no {self.info_key}.{self.cursor_key}")
            guard.cursor(cursor)
            params = {**source.params, self.cursor_param: cursor}


@dataclass(frozen=True, kw_only=True)
class NextLinkPaginator(Paginator):
    """Follows a next-page link nested in the body (e.g. `links.next`) until it is empty."""

    link_keys: tuple[str, ...] = ("links", "next")

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages until a body carries no next-page link (absent, null or "")."""
        guard = _Guard(source, self.max_pages)
        path: str = source.path
        params: Mapping[str, str] = source.params
        while True:
            body = await source.fetch(path, params)
            records = guard.take(body)
            if records:
                yield records
            link = self._link(body)
            if link is None or link == "":
                return
            if not isinstance(link, str):
                raise guard.incomplete("the next-page link is not a string")
            if not records:
                raise guard.incomplete("an empty page links to a next one")
            guard.cursor(link)
            if source.resolve_link is None:
                raise guard.incomplete("a next-page link was given but cannot be followed")
            try:
                path, params = source.resolve_link(link)
            except ValueError:
                raise guard.incomplete("the next-page link points to another origin") from None

    def _link(self, body: object) -> object:
        """Return the value at `link_keys` in the body, or None where the path ends early."""
        value = body
        for key in self.link_keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value
