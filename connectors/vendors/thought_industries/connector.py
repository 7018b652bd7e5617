"""Thought Industries: Bearer + cursor on v2 (default) or X-API-Key + page/total on v1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar, Literal, Unpack

from connectors.core.auth import Auth, BearerAuth, HeaderAuth
from connectors.core.base import Capabilities, ConnectorArgs
from connectors.core.endpoints import label_problem
from connectors.core.errors import (
    ConnectorConfigError,
    ConnectorError,
)
from connectors.core.mapping import full_name, renamed, text
from connectors.core.pagination import (
    ListingSource,
    PageTotalPaginator,
    Paginator,
    Record,
    TokenCursorPaginator,
)
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount
from connectors.core.replacing import ReplacingConnector

ApiVersion = Literal["v1", "v2"]
AuthStyle = Literal["api_key", "bearer"]
# v2 is what the vendor's docs and every public client use; v1 is only in a third-party summary.
API_PREFIX: dict[str, str] = {"v1": "/incoming/api/v1", "v2": "/incoming/v2"}
DEFAULT_AUTH: dict[str, AuthStyle] = {"v1": "api_key", "v2": "bearer"}
MAX_PAGE_SIZE = 100

_TO_VENDOR = {
    "email": "email",
    "given_name": "firstName",
    "family_name": "lastName",
    "locale": "language",
    "role": "role",
    "groups": "groups",
    "active": "active",
}
# Set by the vendor, never written back (lastActiveAt: the v2 docs' user object).
_SYSTEM_FIELDS = frozenset({"id", "createdAt", "updatedAt", "lastActiveAt"})


def tenant_url(subdomain: str) -> str:
    """Return the origin of the tenant with this subdomain."""
    return f"https://{subdomain}.thoughtindustries.com"


class ThoughtIndustriesConnector(ReplacingConnector):
    """Connector for Thought Industries users (`/incoming/v2/users` by default).

    v2 pages by `pageInfo.cursor` until `pageInfo.hasMore` is false and answers with bare
    users; v1 pages by `page` + `per_page` against `total` and wraps a user in `user`.
    PUT may replace the whole object, so every write reads the user, merges the change
    and writes the full object back; the vendor's other fields survive untouched.
    """

    vendor = "thought_industries"
    secret_names = ("api_key",)
    paginator: ClassVar[Paginator] = TokenCursorPaginator()
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR) - {"active"}
    # The reference names learner and admin (e.g.); the simulator also models manager and
    # refuses any other role, so no other value is sent.
    allowed_values: ClassVar[Mapping[str, frozenset[str]]] = {
        "role": frozenset({"learner", "manager", "admin"})
    }
    capabilities = Capabilities(put_replaces_object=True, email_filter=True)
    list_path = f"{API_PREFIX['v2']}/users"
    records_key: ClassVar[str | None] = "users"
    id_key = "id"
    label_settings: ClassVar[frozenset[str]] = frozenset({"subdomain"})
    server_fields = _SYSTEM_FIELDS
    deactivation: ClassVar[Mapping[str, object]] = {"active": False}

    def __init__(
        self,
        *,
        base_url: str | None = None,
        subdomain: str | None = None,
        api_version: ApiVersion = "v2",
        auth_style: AuthStyle | None = None,
        users_path: str | None = None,
        page_size: int | None = None,
        **common: Unpack[ConnectorArgs],
    ) -> None:
        name = common["name"]
        if (base_url is None) == (subdomain is None):
            raise ConnectorConfigError(
                self.vendor, f"{name!r}: set exactly one of base_url, subdomain"
            )
        if subdomain is not None and (problem := label_problem(subdomain)) is not None:
            raise ConnectorConfigError(self.vendor, f"{name!r}: subdomain {problem}")
        if api_version not in API_PREFIX:
            raise ConnectorConfigError(
                self.vendor, f"api_version must be v1 or v2, not {api_version!r}"
            )
        style = auth_style or DEFAULT_AUTH[api_version]
        if style not in ("api_key", "bearer"):
            raise ConnectorConfigError(
                self.vendor, f"auth_style must be api_key or bearer, not {style!r}"
            )
        if page_size is not None and api_version == "v2":
            raise ConnectorConfigError(
                self.vendor, "page_size is a v1 setting: v2 pages by cursor at the vendor's size"
            )
        size = MAX_PAGE_SIZE if page_size is None else page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConnectorConfigError(self.vendor, f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.api_version: ApiVersion = api_version
        self.auth_style: AuthStyle = style
        self.users_path = "/" + (users_path or f"{API_PREFIX[api_version]}/users").strip("/")
        self.page_size = size
        self.wrapper_key = "user" if api_version == "v1" else None
        super().__init__(
            base_url=base_url if base_url is not None else tenant_url(str(subdomain)), **common
        )
        if api_version == "v1":
            self.list_paginator = PageTotalPaginator(
                page_param="page", size_param="per_page", size=size
            )

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `X-API-Key: KEY` or `Authorization: Bearer KEY`; never the apiKey parameter."""
        if self.auth_style == "bearer":
            return BearerAuth(secrets["api_key"])
        return HeaderAuth({"X-API-Key": secrets["api_key"]})

    def listing_source(self) -> ListingSource:
        """Describe the user listing at the configured path."""
        return replace(super().listing_source(), path=self.users_path)

    def to_account(self, raw: Record) -> VendorAccount:
        """Map a Thought Industries user to an account."""
        given, family = text(raw.get("firstName")), text(raw.get("lastName"))
        active = raw.get("active") is not False  # the field is optional; absent means active
        groups = raw.get("groups")
        attributes: dict[str, object] = {
            "email": text(raw.get("email")),
            "given_name": given,
            "family_name": family,
            "display_name": full_name(given, family),
            "locale": text(raw.get("language")),
            "role": text(raw.get("role")),
            "groups": [str(g) for g in groups] if isinstance(groups, list) else [],
            "active": active,
        }
        return self._account(raw, attributes, "active" if active else "inactive")

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to user fields (title, company, timezone have none)."""
        fields = renamed(attributes, _TO_VENDOR)
        if "active" in fields:
            fields["active"] = bool(fields["active"])
        custom = attributes.get("custom_fields")
        if isinstance(custom, Mapping):
            fields["customFields"] = {str(key): value for key, value in custom.items()}
        return fields

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the user with this email, verified; one request on either generation."""
        if self.api_version == "v2":
            return await self._find_by_email_v2(email)
        params = {"email": email.strip(), "page": "1", "per_page": str(self.page_size)}
        return await self._find_by_filter(email, params)

    async def _find_by_email_v2(self, email: str) -> VendorAccount | None:
        """`GET /users/{email}`, as public v2 clients look a user up; the answer is checked."""
        wanted = email.strip().casefold()
        raw = await self._read(email.strip(), Priority.READ)
        if raw is None:
            return None
        account = self.to_account(raw)
        if (account.email or "").strip().casefold() != wanted:
            # Whatever the tenant matched on, only a user with this very email is an answer.
            self.log.warning("thought_industries.email_lookup_mismatch")
            return await self._scan_for_email(email)
        return account

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create a user; AccountExistsError if the email is taken (409)."""
        fields = self.to_vendor(attributes)
        if not fields.get("email"):
            raise ConnectorError(self.vendor, "creating a user needs an email")
        return self.to_account(await self._write("POST", self.users_path, fields))

    def _merged(self, current: Record, changes: Record) -> Record:
        """Return the whole object to PUT; custom fields merge key by key."""
        held = current.get("customFields")
        custom = changes.get("customFields")
        if isinstance(held, dict) and isinstance(custom, dict):
            changes = {**changes, "customFields": {**held, **custom}}
        return super()._merged(current, changes)
