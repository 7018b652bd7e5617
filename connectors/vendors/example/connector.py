"""The example vendor: Bearer auth, page + per_page + total listing, `user` wrapper key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.core.auth import Auth, BearerAuth
from connectors.core.base import Connector
from connectors.core.mapping import full_name, text, texts, with_status
from connectors.core.pagination import PageTotalPaginator, Paginator, Record
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount

_TO_VENDOR = {
    "email": "email",
    "given_name": "first_name",
    "family_name": "last_name",
    "role": "role",
}


class ExampleConnector(Connector):
    """Connector for the example vendor that the simulator base ships with."""

    vendor = "example"
    secret_names = ("token",)
    paginator: ClassVar[Paginator] = PageTotalPaginator(
        page_param="page", size_param="per_page", size=100
    )
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR)
    list_path = "/users"
    records_key: ClassVar[str | None] = "users"
    wrapper_key = "user"

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Bearer TOKEN`."""
        return BearerAuth(secrets["token"])

    def to_account(self, raw: Record) -> VendorAccount:
        """Map an example user to an account."""
        status = text(raw.get("status")) or "active"
        attributes = texts(raw, _TO_VENDOR)
        attributes["display_name"] = full_name(attributes["given_name"], attributes["family_name"])
        attributes["active"] = status == "active"
        return self._account(raw, attributes, status)

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to example user fields."""
        return with_status(attributes, _TO_VENDOR)

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create a user; AccountExistsError if the email is taken (409)."""
        body = {"user": self.to_vendor(attributes)}
        return self.to_account(await self._write("POST", self.users_path, body))

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Change a user's fields (PATCH merges)."""
        body = {"user": self.to_vendor(attributes)}
        return self.to_account(await self._write("PATCH", self._item_path(external_id), body))

    async def deactivate_account(self, external_id: str) -> None:
        """Set the user's status to inactive, ahead of routine reads."""
        body = {"user": {"status": "inactive"}}
        await self._send_write("PATCH", self._item_path(external_id), body, Priority.DEACTIVATE)
