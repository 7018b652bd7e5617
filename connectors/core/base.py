"""The connector base: a vendor is a declaration on top of the shared HTTP layer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import ClassVar, Required, TypedDict

import aiohttp
import structlog

from connectors.core.auth import Auth
from connectors.core.budget import RateBudget
from connectors.core.errors import (
    AccountExistsError,
    ConnectorConfigError,
    MalformedResponseError,
    UnsupportedOperation,
    VendorHTTPError,
)
from connectors.core.http import VendorHttp
from connectors.core.mapping import text, unwrap
from connectors.core.pagination import ListingSource, Paginator, Record
from connectors.core.paths import segment
from connectors.core.priority import Priority
from connectors.core.records import CANONICAL_ATTRIBUTES, VendorAccount
from connectors.core.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a vendor's user API can do; the planner picks operations from these."""

    put_replaces_object: bool = False  # PUT resets omitted fields: read, merge, then write
    upsert_only: bool = False  # one call creates or updates; no separate create
    has_deactivate: bool = True
    has_delete: bool = True
    bulk_invite: bool = False
    create_needs_password: bool = False
    email_filter: bool = False  # the vendor can look a user up by email without a listing


class ConnectorArgs(TypedDict, total=False):
    """The constructor settings every connector takes; a vendor adds its own beside them."""

    name: Required[str]
    session: Required[aiohttp.ClientSession]
    secrets: Required[Mapping[str, str]]
    allow_delete: bool
    budget: RateBudget | None
    retry: RetryPolicy | None
    timeout: float


class Connector(ABC):
    """One configured vendor instance: declaration (class attributes) plus shared plumbing.

    Subclasses declare `vendor`, `secret_names`, `paginator`, the listing shape and
    `capabilities`, and implement `build_auth` and `to_account`; write operations they
    support override the methods that raise UnsupportedOperation here. Reads and
    writes of one account go through `_item_path`, `_read`, `_write` and `_unwrap`,
    driven by `users_path`, `wrapper_key` and `id_key`; settings of its own a vendor
    takes as keywords of its constructor, beside `**common: Unpack[ConnectorArgs]`.
    """

    vendor: ClassVar[str]
    secret_names: ClassVar[tuple[str, ...]]
    paginator: ClassVar[Paginator]
    capabilities: ClassVar[Capabilities] = Capabilities()
    list_path: ClassVar[str] = "/users"
    list_params: ClassVar[Mapping[str, str]] = {}
    records_key: ClassVar[str | None] = None
    id_key: ClassVar[str] = "id"
    default_base_url: ClassVar[str | None] = None
    users_path: str = "/users"  # where accounts are created and each one is addressed
    wrapper_key: str | None = None  # a single account's body is `{wrapper_key: {...}}`
    # Fields the vendor sets: never written back when a PUT sends the whole object.
    server_fields: ClassVar[frozenset[str]] = frozenset()
    extra_headers: ClassVar[Mapping[str, str]] = {}
    allow_delete: bool = False  # from the connector's config; deletes are refused without it
    # Settings that become a label of the vendor's hostname (checked by connectors.core.endpoints).
    label_settings: ClassVar[frozenset[str]] = frozenset()
    # Canonical attributes an update can change (the others are derived or read-only).
    writable: ClassVar[frozenset[str]] = frozenset(CANONICAL_ATTRIBUTES) - {"active"}
    # The values of an attribute (role, groups) the vendor's reference lists as the only ones
    # it accepts; an attribute absent here takes any value.
    allowed_values: ClassVar[Mapping[str, frozenset[str]]] = {}

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        secrets: Mapping[str, str],
        base_url: str | None = None,
        allow_delete: bool = False,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        **unknown: object,
    ) -> None:
        if unknown:  # a vendor's own settings are its constructor's keywords
            raise TypeError(f"unexpected setting {', '.join(map(repr, unknown))}")
        base_url = self.default_base_url if base_url is None else base_url
        if base_url is None:
            raise ConnectorConfigError(self.vendor, f"connector {name!r} needs base_url")
        missing = [key for key in self.secret_names if not secrets.get(key)]
        if missing:
            raise ConnectorConfigError(
                self.vendor, f"connector {name!r} is missing secret(s): {', '.join(missing)}"
            )
        self.name = name
        self.allow_delete = allow_delete
        self.budget = budget or RateBudget(name=name)
        if not self.budget.name:
            self.budget.bind(name)
        self.http = VendorHttp(
            vendor=self.vendor,
            connector=name,
            session=session,
            base_url=base_url,
            auth=self.build_auth(secrets),
            budget=self.budget,
            retry=retry,
            timeout=timeout,
            headers=self.extra_headers,
        )
        self.log = structlog.get_logger(f"connectors.{self.vendor}", connector=name)
        # A vendor whose paging is a setting replaces this after construction.
        self.list_paginator: Paginator = self.paginator

    @abstractmethod
    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return the header credentials built from this connector's secrets."""

    @abstractmethod
    def to_account(self, raw: Record) -> VendorAccount:
        """Map one vendor record to an account with canonical attributes."""

    def listing_source(self) -> ListingSource:
        """Describe the user listing for the paginator."""
        return ListingSource(
            vendor=self.vendor,
            path=self.list_path,
            fetch=self._fetch_page,
            params=self.list_params,
            records_key=self.records_key,
            id_key=self.id_key,
            resolve_link=self.http.resolve_link,
        )

    async def list_pages(self) -> AsyncGenerator[list[VendorAccount], None]:
        """Yield every account, a page at a time; IncompleteListing if it cannot finish."""
        async with aclosing(self.list_paginator.pages(self.listing_source())) as pages:
            async for page in pages:
                yield [self.to_account(raw) for raw in page]

    async def list_accounts(self) -> AsyncGenerator[VendorAccount, None]:
        """Yield every account; IncompleteListing if the listing cannot finish cleanly."""
        async with aclosing(self.list_pages()) as pages:
            async for page in pages:
                for account in page:
                    yield account

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the account with this email (case-insensitive).

        Vendors with an email filter override this with one request.
        """
        return await self._scan_for_email(email)

    async def _scan_for_email(self, email: str) -> VendorAccount | None:
        """Return the account with this email (case-insensitive), scanning the listing."""
        wanted = email.strip().casefold()
        async with aclosing(self.list_accounts()) as accounts:
            async for account in accounts:
                if account.email is not None and account.email.strip().casefold() == wanted:
                    return account
        return None

    async def _find_by_filter(self, email: str, params: Mapping[str, str]) -> VendorAccount | None:
        """Look an email up with the listing's filter `params`, verified; scan if ignored."""
        wanted = email.strip().casefold()
        path, key = self.listing_source().path, str(self.records_key)
        body = await self.http.request("GET", path, params=params)
        records = body.get(key) if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponseError(self.vendor, "GET", path, f"no {key!r} list in the body")
        accounts = [self.to_account(record) for record in records]
        if any((a.email or "").strip().casefold() != wanted for a in accounts):
            # An API that ignored the filter answers with everyone: only a scan is proof.
            self.log.warning(f"{self.vendor}.email_filter_ignored")
            return await self._scan_for_email(email)
        return accounts[0] if accounts else None

    async def get_account(self, external_id: str) -> VendorAccount | None:
        """Return one account, or None if the vendor does not know it (404)."""
        raw = await self._read(external_id, Priority.READ)
        return None if raw is None else self.to_account(raw)

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create an account from canonical attributes."""
        raise UnsupportedOperation(self.vendor, "creating accounts is not supported")

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Change an account's canonical attributes."""
        raise UnsupportedOperation(self.vendor, "updating accounts is not supported")

    async def deactivate_account(self, external_id: str) -> None:
        """Deactivate an account (ahead of routine reads)."""
        raise UnsupportedOperation(self.vendor, "deactivating accounts is not supported")

    def require_delete_allowed(self) -> None:
        """Refuse a delete unless this connector's config enables deletes (safety rule 2)."""
        if not self.allow_delete:
            raise UnsupportedOperation(
                self.vendor, f"deleting is disabled for {self.name!r} (set allow_delete)"
            )

    async def delete_account(self, external_id: str) -> None:
        """Delete an account for good, only when this connector's config allows it."""
        if not self.capabilities.has_delete:
            raise UnsupportedOperation(self.vendor, "deleting accounts is not supported")
        self.require_delete_allowed()
        await self._delete(external_id, Priority.WRITE)

    async def _delete(self, external_id: str, priority: Priority) -> None:
        """Send the DELETE of one account."""
        await self.http.request("DELETE", self._item_path(external_id), priority=priority)

    async def _fetch_page(self, path: str, params: Mapping[str, str]) -> object:
        """Fetch one listing page as a routine read."""
        return await self.http.request("GET", path, params=params)

    def _item_path(self, external_id: str) -> str:
        """Return the path of one account."""
        return f"{self.users_path}/{segment(self.vendor, external_id)}"

    def _unwrap(self, body: object, method: str, path: str) -> Record:
        """Return the account record of a single-account body, or fail if it holds none."""
        if self.wrapper_key is not None:
            return unwrap(self.vendor, body, self.wrapper_key, method, path)
        if isinstance(body, dict) and body.get(self.id_key) not in (None, ""):
            return dict(body)
        raise MalformedResponseError(self.vendor, method, path, "no user object in the body")

    def _account(self, raw: Record, attributes: dict[str, object], status: str) -> VendorAccount:
        """Return the account of a record whose canonical attributes are mapped."""
        return VendorAccount(
            external_id=str(raw[self.id_key]),
            email=text(attributes.get("email")),
            status=status,
            attributes=attributes,
            raw=raw,
        )

    async def _read(self, external_id: str, priority: Priority) -> Record | None:
        """Return one account's record, or None on 404."""
        path = self._item_path(external_id)
        body = await self.http.get_or_none(path, priority=priority)
        return None if body is None else self._unwrap(body, "GET", path)

    async def _existing(self, external_id: str, priority: Priority) -> Record:
        """Return one account's record; VendorHTTPError 404 if the vendor does not know it."""
        raw = await self._read(external_id, priority)
        if raw is None:
            raise VendorHTTPError(self.vendor, "GET", self._item_path(external_id), 404)
        return raw

    async def _send_write(
        self,
        method: str,
        path: str,
        body: object = None,
        priority: Priority = Priority.WRITE,
        headers: Mapping[str, str] | None = None,
    ) -> object:
        """Send a write; a 409 (the account or its email exists) is AccountExistsError."""
        try:
            return await self.http.request(
                method, path, json=body, priority=priority, headers=headers
            )
        except VendorHTTPError as error:
            if error.status == 409:
                raise AccountExistsError(self.vendor, method, path, 409, error.reason) from None
            raise

    async def _write(
        self, method: str, path: str, body: object, priority: Priority = Priority.WRITE
    ) -> Record:
        """Send a write and return the account record the vendor answers with."""
        return self._unwrap(await self._send_write(method, path, body, priority), method, path)

    def _merged(self, current: Record, changes: Record) -> Record:
        """Return the whole object to PUT: the current one, less server fields, changed."""
        kept = {key: value for key, value in current.items() if key not in self.server_fields}
        return kept | changes

    async def _merge_write(self, external_id: str, changes: Record, priority: Priority) -> Record:
        """Read the account, apply `changes` and PUT the whole object (PUT replaces)."""
        current = await self._existing(external_id, priority)
        path = self._item_path(external_id)
        return await self._write("PUT", path, self._merged(current, changes), priority)
