"""Userflow: Bearer key plus API version, cursor listing, upsert-only writes keyed by app id.

The evidence behind each choice is in this folder's README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

import aiohttp

from connectors.core.auth import Auth, BearerAuth, CombinedAuth
from connectors.core.base import Capabilities, Connector
from connectors.core.budget import RateBudget
from connectors.core.errors import (
    ConnectorError,
    MalformedResponseError,
    UnsupportedOperation,
    VendorHTTPError,
)
from connectors.core.mapping import text
from connectors.core.pagination import CursorPaginator, ListingSource, Paginator, Record
from connectors.core.paths import segment
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount
from connectors.core.retry import RetryPolicy

DEFAULT_BASE_URL = "https://api.userflow.com"
API_VERSION = "2020-01-03"

# Canonical attribute -> Userflow attribute. Attributes are schemaless: only `name` and
# `email` are Userflow's own, the rest are conventional custom attribute names.
ATTRIBUTE_NAMES: Mapping[str, str] = {
    "email": "email",
    "display_name": "name",
    "given_name": "first_name",
    "family_name": "last_name",
    "title": "title",
    "company": "company_name",
    "locale": "locale",
    "timezone": "timezone",
    "role": "role",
}


class _VersionHeader:
    """The `Userflow-Version` header: not a credential, so not registered for redaction."""

    def __init__(self, version: str) -> None:
        self._headers = {"Userflow-Version": version}

    def headers(self) -> Mapping[str, str]:
        """Return the version header."""
        return self._headers


class UserflowConnector(Connector):
    """Connector for Userflow users (`/users`).

    A Userflow user id is the customer's own app user id (what `userflow.js identify()`
    gets). It is read from the canonical attribute named by `id_attribute`, by default
    `app_user_id`: creating with a guessed id (say, the email) would silently make a
    second user beside the one the app identifies, so a missing id fails loudly instead.
    """

    vendor = "userflow"
    secret_names = ("api_key",)
    paginator: ClassVar[Paginator] = CursorPaginator(limit=100)
    writable: ClassVar[frozenset[str]] = frozenset(ATTRIBUTE_NAMES)
    capabilities = Capabilities(
        put_replaces_object=False,
        upsert_only=True,
        has_deactivate=False,
        has_delete=True,
        bulk_invite=False,
        create_needs_password=False,
        email_filter=True,
    )
    list_path = "/users"
    records_key: ClassVar[str | None] = "data"
    id_key = "id"

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        secrets: Mapping[str, str],
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = API_VERSION,
        users_path: str = "/users",
        id_attribute: str = "app_user_id",
        order_by: str | None = None,
        allow_delete: bool = False,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_version = api_version
        self.users_path = users_path.rstrip("/")
        self.id_attribute = id_attribute
        # Ordering by a field that is null on a page's last record makes Userflow answer
        # 500, so the default leaves the order to the vendor.
        self.order_by = order_by
        self.allow_delete = allow_delete
        super().__init__(
            name=name,
            session=session,
            base_url=base_url,
            secrets=secrets,
            budget=budget,
            retry=retry,
            timeout=timeout,
        )

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Bearer KEY` plus `Userflow-Version`."""
        return CombinedAuth(BearerAuth(secrets["api_key"]), _VersionHeader(self.api_version))

    def listing_source(self) -> ListingSource:
        """Describe the listing: memberships expanded, optional ordering."""
        params = {"expand": "memberships"}
        if self.order_by:
            params["order_by"] = self.order_by
        return replace(super().listing_source(), path=self.users_path, params=params)

    def to_account(self, raw: Record) -> VendorAccount:
        """Map a Userflow user to an account; every Userflow user is active."""
        found = raw.get("attributes")
        vendor_attributes: Mapping[str, object] = found if isinstance(found, dict) else {}
        attributes: dict[str, object] = {
            canonical: vendor_attributes.get(field) for canonical, field in ATTRIBUTE_NAMES.items()
        }
        attributes["groups"] = _group_ids(raw.get("memberships"))
        attributes["active"] = True
        return VendorAccount(
            external_id=str(raw["id"]),
            email=text(attributes["email"]),
            status="active",
            attributes=attributes,
            raw=raw,
        )

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to an upsert body; None becomes null, which clears.

        `groups` and `active` have no attribute: memberships are not written here and
        Userflow has no account state.
        """
        changes = {
            field: attributes[canonical]
            for canonical, field in ATTRIBUTE_NAMES.items()
            if canonical in attributes
        }
        return {"attributes": changes}

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the user with this email through the `email` filter, verified."""
        wanted = email.strip().casefold()
        params = {"email": email.strip(), "limit": "100"}
        body = await self.http.request("GET", self.users_path, params=params)
        records = body.get("data") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponseError(
                self.vendor, "GET", self.users_path, "no 'data' list in the body"
            )
        accounts = [self.to_account(record) for record in records]
        if any((a.email or "").strip().casefold() != wanted for a in accounts):
            # An API that ignored the filter answers with everyone: only a scan is proof.
            self.log.warning("userflow.email_filter_ignored")
            return await super().find_by_email(email)
        return accounts[0] if accounts else None

    async def get_account(self, external_id: str) -> VendorAccount | None:
        """Return one user, or None on 404."""
        path = self._user_path(external_id)
        body = await self.http.get_or_none(path)
        return None if body is None else self.to_account(self._checked(body, "GET", path))

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Upsert a user under the app user id taken from `id_attribute`."""
        external_id = attributes.get(self.id_attribute)
        if not isinstance(external_id, str) or not external_id.strip():
            raise ConnectorError(
                self.vendor, f"creating a user needs its app user id in {self.id_attribute!r}"
            )
        segment(self.vendor, external_id)  # refuse now an id no URL could address later
        return await self._upsert(external_id, attributes)

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Upsert only the given attributes (omitted ones are kept); never resurrect a user."""
        if await self.get_account(external_id) is None:
            raise VendorHTTPError(self.vendor, "GET", self._user_path(external_id), 404)
        return await self._upsert(external_id, attributes)

    async def deactivate_account(self, external_id: str) -> None:
        """Userflow cannot deactivate; with allow_delete the user is deleted instead."""
        if not self.allow_delete:
            raise UnsupportedOperation(
                self.vendor,
                "Userflow has no deactivate; users can only be deleted, which is disabled "
                f"for {self.name!r} (set allow_delete to delete instead)",
            )
        await self._delete(external_id, Priority.DEACTIVATE)

    async def delete_account(self, external_id: str) -> None:
        """Delete the user, only when this connector's config allows it."""
        self.require_delete_allowed()
        await self._delete(external_id, Priority.WRITE)

    async def _upsert(self, external_id: str, attributes: Mapping[str, object]) -> VendorAccount:
        """POST the user's id and mapped attributes to the users collection."""
        payload = {"id": external_id, **self.to_vendor(attributes)}
        body = await self.http.request(
            "POST", self.users_path, json=payload, priority=Priority.WRITE
        )
        user = self._checked(body, "POST", self.users_path)
        if str(user["id"]) != external_id:
            raise MalformedResponseError(
                self.vendor, "POST", self.users_path, "the upsert answered with another user"
            )
        return self.to_account(user)

    async def _delete(self, external_id: str, priority: Priority) -> None:
        """DELETE the user."""
        await self.http.request("DELETE", self._user_path(external_id), priority=priority)

    def _user_path(self, external_id: str) -> str:
        """Return the path of one user."""
        return f"{self.users_path}/{segment(self.vendor, external_id)}"

    def _checked(self, body: object, method: str, path: str) -> Record:
        """Return a user body, or fail if it is not one."""
        if isinstance(body, dict) and body.get("object") == "user" and body.get("id"):
            return dict(body)
        raise MalformedResponseError(self.vendor, method, path, "the body is not a user object")


def _group_ids(memberships: object) -> list[str]:
    """Return the ids of the groups in a user's memberships."""
    if not isinstance(memberships, list):
        return []
    ids = []
    for membership in memberships:
        group = membership.get("group") if isinstance(membership, dict) else None
        group_id = group.get("id") if isinstance(group, dict) else None
        if isinstance(group_id, str):
            ids.append(group_id)
    return ids
