"""Userflow: Bearer key plus API version, cursor listing, upsert-only writes keyed by app id.

The evidence behind each choice is in this folder's README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar, Unpack

from connectors.core.auth import Auth, BearerAuth, CombinedAuth, StaticHeaders
from connectors.core.base import Capabilities, Connector, ConnectorArgs
from connectors.core.errors import (
    ConnectorError,
    MalformedResponseError,
    UnsupportedOperation,
)
from connectors.core.pagination import CursorPaginator, ListingSource, Paginator, Record
from connectors.core.paths import segment
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount

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
    capabilities = Capabilities(upsert_only=True, has_deactivate=False, email_filter=True)
    list_path = "/users"
    records_key: ClassVar[str | None] = "data"
    id_key = "id"
    default_base_url = DEFAULT_BASE_URL

    def __init__(
        self,
        *,
        api_version: str = API_VERSION,
        users_path: str = "/users",
        id_attribute: str = "app_user_id",
        order_by: str | None = None,
        **common: Unpack[ConnectorArgs],
    ) -> None:
        self.api_version = api_version
        self.users_path = users_path.rstrip("/")
        self.id_attribute = id_attribute
        # Ordering by a field that is null on a page's last record makes Userflow answer
        # 500, so the default leaves the order to the vendor.
        self.order_by = order_by
        super().__init__(**common)

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Bearer KEY` plus `Userflow-Version`."""
        version = StaticHeaders({"Userflow-Version": self.api_version})  # not a credential
        return CombinedAuth(BearerAuth(secrets["api_key"]), version)

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
        return self._account(raw, attributes, "active")

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
        return await self._find_by_filter(email, {"email": email.strip(), "limit": "100"})

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
        await self._existing(external_id, Priority.WRITE)
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

    async def _upsert(self, external_id: str, attributes: Mapping[str, object]) -> VendorAccount:
        """POST the user's id and mapped attributes to the users collection."""
        payload = {"id": external_id, **self.to_vendor(attributes)}
        user = await self._write("POST", self.users_path, payload)
        if str(user["id"]) != external_id:
            raise MalformedResponseError(
                self.vendor, "POST", self.users_path, "the upsert answered with another user"
            )
        return self.to_account(user)

    def _unwrap(self, body: object, method: str, path: str) -> Record:
        """Return a user body, or fail if it is not one."""
        if isinstance(body, dict) and body.get("object") == "user":
            return super()._unwrap(body, method, path)
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
