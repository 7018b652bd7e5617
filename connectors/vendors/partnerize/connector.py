"""Partnerize: HTTP Basic key pair, `limit` + `offset` listing, PUT replaces the user object."""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, Unpack

from connectors.core.auth import Auth, BasicAuth
from connectors.core.base import Capabilities, ConnectorArgs
from connectors.core.errors import (
    ConnectorConfigError,
    ConnectorError,
    IncompleteListing,
)
from connectors.core.mapping import full_name, text, texts, with_status
from connectors.core.pagination import (
    ListingSource,
    OffsetLimitPaginator,
    Page,
    Paginator,
    Record,
)
from connectors.core.records import VendorAccount
from connectors.core.redaction import register_secret
from connectors.core.replacing import ReplacingConnector

DEFAULT_BASE_URL = "https://api.partnerize.com"
PAGE_SIZE = 100
AuthStyle = Literal["basic"]

_TO_VENDOR = {
    "email": "email",
    "given_name": "firstname",
    "family_name": "lastname",
    "locale": "locale",
    "timezone": "timezone",
    "role": "role",
}
# The vendor returns a new user's own API key with it: never kept, never written back.
_SECRET_FIELDS = frozenset({"password", "user_api_key"})
_SYSTEM_FIELDS = frozenset({"user_id", "created", "created_at", "updated_at"}) | _SECRET_FIELDS
_ITEM_KEY = "user"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@^_~"
_PASSWORD_LENGTH = 24


def generate_password() -> str:
    """Return a strong random password with every character class the vendor may demand."""
    while True:
        candidate = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


def unwrap_item(item: object) -> object:
    """Return a listed user: the vendor wraps each one as `{"user": {...}}`, the reference not."""
    if isinstance(item, dict) and set(item) == {_ITEM_KEY} and isinstance(item[_ITEM_KEY], dict):
        return item[_ITEM_KEY]
    return item


@dataclass(frozen=True, kw_only=True)
class CountCheckedPaginator(OffsetLimitPaginator):
    """OffsetLimitPaginator that also checks each body's `count`: a short page alone proves nothing.

    The vendor documents `count` as the total, the reference as the page's length; the
    listing stands if `count` fits either reading, so a listing cut short mid-page fails.
    """

    count_key: str = "count"

    async def pages(self, source: ListingSource) -> AsyncGenerator[Page, None]:
        """Yield pages as OffsetLimitPaginator does; IncompleteListing if `count` fits neither."""
        seen: list[tuple[object, int]] = []  # (count, records) of every page fetched

        async def fetch(path: str, params: Mapping[str, str]) -> object:
            body = await source.fetch(path, params)
            listed = body.get(str(source.records_key)) if isinstance(body, dict) else None
            if isinstance(body, dict) and isinstance(listed, list):
                seen.append((body.get(self.count_key), len(listed)))
            return body

        async with aclosing(super().pages(replace(source, fetch=fetch))) as stream:
            async for page in stream:
                yield page
        problem = count_problem(seen, self.count_key)
        if problem is not None:
            records = sum(length for _, length in seen)
            raise IncompleteListing(
                source.vendor, source.path, problem, pages=len(seen), records=records
            )


def count_problem(seen: list[tuple[object, int]], key: str) -> str | None:
    """Say why the pages' `count` values fit neither the total nor the page lengths, or None."""
    counts = [count for count, _ in seen]
    records = sum(length for _, length in seen)
    if any(not isinstance(count, int) or isinstance(count, bool) for count in counts):
        return f"response has no valid {key!r}"
    if all(count == length for count, length in seen):
        return None  # each page's own length, as the reference reads it
    if len(set(counts)) != 1:
        return f"the {key!r} changed during the listing"
    if counts[0] != records:
        return f"{records} records listed, the vendor reports {counts[0]}: cut short"
    return None


class PartnerizeConnector(ReplacingConnector):
    """Connector for Partnerize users (`/user`)."""

    vendor = "partnerize"
    secret_names = ("application_key", "user_api_key")
    paginator: ClassVar[Paginator] = CountCheckedPaginator(size=PAGE_SIZE)
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR)
    # The reference's user table: role "e.g., admin, standard"; an account may define others,
    # but only these two are documented, so only these are sent.
    allowed_values: ClassVar[Mapping[str, frozenset[str]]] = {
        "role": frozenset({"admin", "standard"})
    }
    capabilities = Capabilities(put_replaces_object=True, create_needs_password=True)
    list_path = "/user"
    records_key: ClassVar[str | None] = "users"
    id_key = "user_id"
    default_base_url = DEFAULT_BASE_URL
    wrapper_key = "user"
    server_fields = _SYSTEM_FIELDS
    deactivation: ClassVar[Mapping[str, object]] = {"status": "inactive"}

    def __init__(
        self,
        *,
        auth_style: AuthStyle = "basic",
        users_path: str = "/user",
        self_path: str = "/user/self",
        verify_total: bool = True,
        **common: Unpack[ConnectorArgs],
    ) -> None:
        if auth_style != "basic":
            raise ConnectorConfigError(
                self.vendor,
                f"auth_style must be basic, not {auth_style!r}: Partnerize documents only "
                "HTTP Basic (application_key:user_api_key); remove the setting",
            )
        self.users_path = users_path.rstrip("/")
        self.self_path = self_path
        super().__init__(**common)
        if not verify_total:
            self.list_paginator = OffsetLimitPaginator(size=PAGE_SIZE)

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return the key pair as HTTP Basic: application key as user, user API key as password."""
        return BasicAuth(secrets["application_key"], secrets["user_api_key"])

    def listing_source(self) -> ListingSource:
        """Describe the user listing at the configured path."""
        return replace(super().listing_source(), path=self.users_path)

    async def _fetch_page(self, path: str, params: Mapping[str, str]) -> object:
        """Fetch one listing page with each listed user unwrapped."""
        body = await super()._fetch_page(path, params)
        listed = body.get("users") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(listed, list):
            return {**body, "users": [unwrap_item(item) for item in listed]}
        return body

    def to_account(self, raw: Record) -> VendorAccount:
        """Map a Partnerize user to an account (the vendor's docs also name `email_address`)."""
        raw = {key: value for key, value in raw.items() if key not in _SECRET_FIELDS}
        status = text(raw.get("status")) or "active"
        attributes = texts(raw, _TO_VENDOR)
        attributes["email"] = attributes["email"] or text(raw.get("email_address"))
        attributes["display_name"] = full_name(attributes["given_name"], attributes["family_name"])
        attributes["active"] = status == "active"
        return self._account(raw, attributes, status)

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to Partnerize fields (title, company, groups have none)."""
        return with_status(attributes, _TO_VENDOR)

    async def check_credentials(self) -> VendorAccount:
        """Return the user the keys belong to; AuthenticationError if the vendor rejects them."""
        body = await self.http.request("GET", self.self_path)
        return self.to_account(self._unwrap(body, "GET", self.self_path))

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create a user with a generated password that is never logged or kept."""
        fields = self.to_vendor(attributes)
        display = text(attributes.get("display_name"))
        if display and not (fields.get("firstname") and fields.get("lastname")):
            given, _, family = display.partition(" ")
            fields.setdefault("firstname", given)
            fields.setdefault("lastname", family or given)
        missing = [key for key in ("firstname", "lastname", "email") if not fields.get(key)]
        if missing:
            raise ConnectorError(self.vendor, f"creating a user needs {', '.join(missing)}")
        password = generate_password()
        register_secret(password)
        record = await self._write("POST", self.users_path, {**fields, "password": password})
        issued = record.get("user_api_key")  # the new user's own key, redacted like ours
        if isinstance(issued, str) and issued:
            register_secret(issued)
        return self.to_account(record)
