"""The example vendor: Bearer auth, page + per_page + total listing, `user` wrapper key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.core.auth import Auth, BearerAuth
from connectors.core.base import Capabilities, Connector
from connectors.core.mapping import text, unwrap
from connectors.core.pagination import PageTotalPaginator, Paginator, Record
from connectors.core.paths import segment
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
    capabilities = Capabilities(has_deactivate=True, has_delete=True)
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR)
    list_path = "/users"
    records_key: ClassVar[str | None] = "users"
    id_key = "id"

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Bearer TOKEN`."""
        return BearerAuth(secrets["token"])

    def to_account(self, raw: Record) -> VendorAccount:
        """Map an example user to an account."""
        email = text(raw.get("email"))
        given, family = text(raw.get("first_name")), text(raw.get("last_name"))
        status = text(raw.get("status")) or "active"
        attributes: dict[str, object] = {
            "email": email,
            "given_name": given,
            "family_name": family,
            "display_name": " ".join(part for part in (given, family) if part) or None,
            "role": text(raw.get("role")),
            "active": status == "active",
        }
        return VendorAccount(
            external_id=str(raw["id"]),
            email=email,
            status=status,
            attributes=attributes,
            raw=raw,
        )

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to example user fields."""
        fields: Record = {
            field: attributes[key] for key, field in _TO_VENDOR.items() if key in attributes
        }
        if "active" in attributes:
            fields["status"] = "active" if attributes["active"] else "inactive"
        return fields

    async def get_account(self, external_id: str) -> VendorAccount | None:
        """Return one user, or None on 404."""
        body = await self.http.get_or_none(self._user_path(external_id))
        if body is None:
            return None
        return self.to_account(self._unwrap(body, "GET", self._user_path(external_id)))

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create a user."""
        body = await self.http.request(
            "POST", "/users", json={"user": self.to_vendor(attributes)}, priority=Priority.WRITE
        )
        return self.to_account(self._unwrap(body, "POST", "/users"))

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Change a user's fields (PATCH merges)."""
        body = await self.http.request(
            "PATCH",
            self._user_path(external_id),
            json={"user": self.to_vendor(attributes)},
            priority=Priority.WRITE,
        )
        return self.to_account(self._unwrap(body, "PATCH", self._user_path(external_id)))

    async def deactivate_account(self, external_id: str) -> None:
        """Set the user's status to inactive, ahead of routine reads."""
        await self.http.request(
            "PATCH",
            self._user_path(external_id),
            json={"user": {"status": "inactive"}},
            priority=Priority.DEACTIVATE,
        )

    async def delete_account(self, external_id: str) -> None:
        """Delete the user."""
        await self.http.request("DELETE", self._user_path(external_id), priority=Priority.WRITE)

    def _user_path(self, external_id: str) -> str:
        """Return the path of one user."""
        return f"/users/{segment(self.vendor, external_id)}"

    def _unwrap(self, body: object, method: str, path: str) -> Record:
        """Return the record inside a `{"user": {...}}` body."""
        return unwrap(self.vendor, body, "user", method, path)
