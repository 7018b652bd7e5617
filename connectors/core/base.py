"""The connector base: a vendor is a declaration on top of the shared HTTP layer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
import structlog

from connectors.core.auth import Auth
from connectors.core.budget import RateBudget
from connectors.core.errors import ConnectorConfigError, UnsupportedOperation
from connectors.core.http import VendorHttp
from connectors.core.pagination import ListingSource, Paginator, Record
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


class Connector(ABC):
    """One configured vendor instance: declaration (class attributes) plus shared plumbing.

    Subclasses declare `vendor`, `secret_names`, `paginator`, the listing shape and
    `capabilities`, and implement `build_auth` and `to_account`; write operations they
    support override the methods that raise UnsupportedOperation here.
    """

    vendor: ClassVar[str]
    secret_names: ClassVar[tuple[str, ...]]
    paginator: ClassVar[Paginator]
    capabilities: ClassVar[Capabilities] = Capabilities()
    list_path: ClassVar[str] = "/users"
    list_params: ClassVar[Mapping[str, str]] = {}
    records_key: ClassVar[str | None] = None
    id_key: ClassVar[str] = "id"
    extra_headers: ClassVar[Mapping[str, str]] = {}
    allow_delete: bool = False  # from the connector's config; deletes are refused without it
    # Settings that become a label of the vendor's hostname (checked by connectors.core.endpoints).
    label_settings: ClassVar[frozenset[str]] = frozenset()
    # Canonical attributes an update can change (the others are derived or read-only).
    writable: ClassVar[frozenset[str]] = frozenset(CANONICAL_ATTRIBUTES) - {"active"}

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        base_url: str,
        secrets: Mapping[str, str],
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        missing = [key for key in self.secret_names if not secrets.get(key)]
        if missing:
            raise ConnectorConfigError(
                self.vendor, f"connector {name!r} is missing secret(s): {', '.join(missing)}"
            )
        self.name = name
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
        async with aclosing(self.paginator.pages(self.listing_source())) as pages:
            async for page in pages:
                yield [self.to_account(raw) for raw in page]

    async def list_accounts(self) -> AsyncGenerator[VendorAccount, None]:
        """Yield every account; IncompleteListing if the listing cannot finish cleanly."""
        async with aclosing(self.list_pages()) as pages:
            async for page in pages:
                for account in page:
                    yield account

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the account with this email (case-insensitive), scanning the listing.

        Vendors with an email filter override this with one request.
        """
        wanted = email.strip().casefold()
        async with aclosing(self.list_accounts()) as accounts:
            async for account in accounts:
                if account.email is not None and account.email.strip().casefold() == wanted:
                    return account
        return None

    async def get_account(self, external_id: str) -> VendorAccount | None:
        """Return one account, or None if the vendor does not know it."""
        raise UnsupportedOperation(self.vendor, "reading one account is not supported")

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
        """Delete an account for good."""
        raise UnsupportedOperation(self.vendor, "deleting accounts is not supported")

    async def _fetch_page(self, path: str, params: Mapping[str, str]) -> object:
        """Fetch one listing page as a routine read."""
        return await self.http.request("GET", path, params=params)
