"""AppXite: Azure API Management key plus Bearer token, scoped page listing, bulk invites.

AppXite's exact API is behind a partner login, so every path, the API version, the scope
of the listing and the paging parameters are settings. The vendor's docs name GET, POST,
PUT and DELETE as its only methods, so updates read, merge and PUT the profile. The
README in this folder holds the evidence and marks what is assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, Unpack
from urllib.parse import quote

from connectors.core.auth import Auth, BearerAuth, CombinedAuth, HeaderAuth
from connectors.core.base import Capabilities, Connector, ConnectorArgs
from connectors.core.errors import (
    ConnectorConfigError,
    MalformedResponseError,
)
from connectors.core.mapping import full_name, text, texts
from connectors.core.pagination import ListingSource, PageTotalPaginator, Paginator, Record
from connectors.core.paths import segment
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount

ScopeKind = Literal["platform", "customer"]

# Vendor state -> (normalized status, canonical active). A pending invitation is provisioned.
STATES: dict[str, tuple[str, bool]] = {
    "New": ("invited", True),
    "Active": ("active", True),
    "Blocked": ("inactive", False),
}
BLOCKED, ACTIVE = "Blocked", "Active"
# Fields the server owns: read back with a user, never written in a PUT.
SERVER_OWNED = frozenset(
    {"Id", "State", "IsAccessible", "OrganizationIds", "RoleName", "CreatedDate", "LastLoginDate"}
)

# Canonical attribute -> vendor field, for plain string fields.
_TO_VENDOR = {
    "email": "Email",
    "given_name": "FirstName",
    "family_name": "LastName",
    "display_name": "DisplayName",
    "title": "JobTitle",
    "company": "CompanyName",
    "locale": "Language",
    "timezone": "TimeZone",
}


@dataclass(frozen=True, slots=True)
class AppXitePaths:
    """Path templates; `{version}`, `{id}`, `{scope_kind}` and `{scope_id}` are filled in."""

    list_users: str = "/{version}/users"
    user: str = "/{version}/users/{id}"
    user_state: str = "/{version}/users/{id}/status"
    invite: str = "/{version}/users/invite"
    roles: str = "/{version}/roles"
    identity_providers: str = "/{version}/identity-providers"


_PLACEHOLDERS = {"version": "v", "id": "i", "scope_kind": "k", "scope_id": "s"}


def paths_setting(value: AppXitePaths | Mapping[str, object] | None) -> AppXitePaths:
    """Return the path templates a `paths` setting names; a bad one is a config error."""
    if isinstance(value, AppXitePaths):
        return value
    if value is not None and not isinstance(value, Mapping):
        raise ConnectorConfigError("appxite", "paths must be a table of path templates")
    try:
        paths = AppXitePaths(**dict(value or {}))  # type: ignore[arg-type]
    except TypeError:
        known = ", ".join(AppXitePaths.__dataclass_fields__)
        raise ConnectorConfigError("appxite", f"paths takes only: {known}") from None
    for name in AppXitePaths.__dataclass_fields__:
        template = getattr(paths, name)
        try:
            ok = isinstance(template, str) and template.startswith("/")
            ok = ok and bool(template.format(**_PLACEHOLDERS))
        except (KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            raise ConnectorConfigError(
                "appxite",
                f"paths.{name} must be a path starting with / whose only placeholders are "
                + ", ".join(f"{{{key}}}" for key in _PLACEHOLDERS),
            )
        if name in ("user", "user_state") and "{id}" not in template:
            raise ConnectorConfigError("appxite", f"paths.{name} needs {{id}}")
    return paths


@dataclass(frozen=True, slots=True)
class Role:
    """A platform role (the doc also calls it a group)."""

    id: str
    name: str
    weight: int | None


@dataclass(frozen=True, slots=True)
class IdentityProvider:
    """An identity provider configured for the platform."""

    id: str
    name: str
    prefix: str | None
    enabled: bool


def _items(body: object) -> list[Record]:
    """Return the records of a bare JSON array or of an `{"Items": [...]}` body."""
    if isinstance(body, dict):
        body = body.get("Items")
    if isinstance(body, list) and all(isinstance(item, dict) for item in body):
        return [dict(item) for item in body]
    raise ValueError("expected a JSON array of objects")


class AppXiteConnector(Connector):
    """Connector for AppXite's partner user-management API."""

    vendor = "appxite"
    secret_names = ("subscription_key", "token")
    paginator: ClassVar[Paginator] = PageTotalPaginator(
        page_param="page", size_param="pageSize", size=100, total_key="TotalCount"
    )
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR) | {"role"}
    capabilities = Capabilities(
        put_replaces_object=True,  # no PATCH: read, merge, then PUT the whole profile
        has_deactivate=True,  # deactivate = block
        has_delete=True,  # undocumented; refused unless allow_delete
        bulk_invite=True,
        email_filter=False,  # no documented email filter: find_by_email scans the listing
    )
    records_key: ClassVar[str | None] = "Items"
    id_key = "Id"
    server_fields = SERVER_OWNED

    def __init__(
        self,
        *,
        base_url: str,
        scope_id: str,
        scope_kind: ScopeKind = "platform",
        scope_in: Literal["query", "path"] = "query",
        api_version: str = "v1",
        paths: AppXitePaths | Mapping[str, object] | None = None,
        subscription_key_header: str = "Ocp-Apim-Subscription-Key",
        page_size: int = 100,
        list_paginator: Paginator | None = None,
        invite_batch_size: int = 100,
        organization_ids: Sequence[str] | None = None,
        identity_provider_id: str | None = None,
        **common: Unpack[ConnectorArgs],
    ) -> None:
        if scope_kind not in ("platform", "customer") or not scope_id:
            raise ConnectorConfigError(self.vendor, "scope_kind must be platform or customer")
        if invite_batch_size < 1 or page_size < 1:
            raise ConnectorConfigError(self.vendor, "batch and page sizes must be positive")
        self.paths = paths_setting(paths)
        if scope_in == "path" and "{scope_id}" not in self.paths.list_users:
            raise ConnectorConfigError(
                self.vendor, "scope_in='path' needs {scope_id} in paths.list_users"
            )
        self._subscription_key_header = subscription_key_header
        super().__init__(base_url=base_url, **common)
        self.scope_kind: ScopeKind = scope_kind
        self.scope_id = scope_id
        self.api_version = api_version
        self.list_paginator = list_paginator or PageTotalPaginator(
            page_param="page", size_param="pageSize", size=page_size, total_key="TotalCount"
        )
        self.invite_batch_size = invite_batch_size
        self.organization_ids = tuple(organization_ids or (scope_id,))
        self.identity_provider_id = identity_provider_id
        self._list_path = self._path(self.paths.list_users)
        self._list_params = {f"{scope_kind}Id": scope_id} if scope_in == "query" else {}
        self._roles: list[Role] | None = None

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return the APIM subscription key header plus `Authorization: Bearer TOKEN`."""
        return CombinedAuth(
            HeaderAuth({self._subscription_key_header: secrets["subscription_key"]}),
            BearerAuth(secrets["token"]),
        )

    # -- mapping -------------------------------------------------------------------------

    def to_account(self, raw: Record) -> VendorAccount:
        """Map an AppXite user to an account."""
        state = text(raw.get("State")) or ""
        status, active = STATES.get(state, (state.casefold() or "unknown", False))
        organizations = raw.get("OrganizationIds")
        attributes = texts(raw, _TO_VENDOR)
        attributes["display_name"] = attributes["display_name"] or full_name(
            attributes["given_name"], attributes["family_name"]
        )
        attributes["role"] = text(raw.get("RoleName")) or text(raw.get("RoleId"))
        attributes["groups"] = (
            [str(org) for org in organizations] if isinstance(organizations, list) else []
        )
        attributes["active"] = active
        return self._account(raw, attributes, status)

    async def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical profile attributes to AppXite fields (role names become role ids)."""
        fields: Record = {
            field: attributes[key] for key, field in _TO_VENDOR.items() if key in attributes
        }
        if "role" in attributes:
            fields["RoleId"] = await self._role_id(attributes["role"])
        return fields

    # -- listing -------------------------------------------------------------------------

    def listing_source(self) -> ListingSource:
        """Describe the scoped user listing for the paginator."""
        return replace(super().listing_source(), path=self._list_path, params=self._list_params)

    async def list_roles(self) -> list[Role]:
        """Return the platform's roles (id, name, weight)."""
        path = self._path(self.paths.roles)
        records = self._records(await self.http.request("GET", path), path)
        roles = [
            Role(
                id=str(record["Id"]),
                name=str(record.get("Name") or ""),
                weight=weight if isinstance(weight := record.get("Weight"), int) else None,
            )
            for record in records
        ]
        self._roles = roles
        return roles

    async def list_identity_providers(self) -> list[IdentityProvider]:
        """Return the platform's identity providers (id, name, prefix, enabled)."""
        path = self._path(self.paths.identity_providers)
        records = self._records(await self.http.request("GET", path), path)
        return [
            IdentityProvider(
                id=str(record["Id"]),
                name=str(record.get("Name") or ""),
                prefix=text(record.get("Prefix")),
                enabled=record.get("Enabled") is True,
            )
            for record in records
        ]

    # -- reads and writes ----------------------------------------------------------------

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Invite one user; the account starts as New (status "invited")."""
        return (await self.invite_accounts([attributes]))[0]

    async def invite_accounts(
        self, accounts: Sequence[Mapping[str, object]]
    ) -> list[VendorAccount]:
        """Invite users in as few calls as the batch size allows; return them in order.

        One call carries one `OrganizationIds` set, so users are grouped by their
        `groups` (or the configured organizations) before they are batched.
        """
        by_organizations: dict[tuple[str, ...], list[int]] = {}
        users: list[Record] = []
        for index, attributes in enumerate(accounts):
            if not text(attributes.get("email")):
                raise ValueError(f"invite {index} has no email")
            user = await self.to_vendor(attributes)
            if self.identity_provider_id is not None:
                user["IdentityProviderId"] = self.identity_provider_id
            users.append(user)
            by_organizations.setdefault(self._organizations(attributes), []).append(index)
        invited: dict[str, Record] = {}
        path = self._path(self.paths.invite)
        for organizations, indexes in by_organizations.items():
            for start in range(0, len(indexes), self.invite_batch_size):
                batch = [users[i] for i in indexes[start : start + self.invite_batch_size]]
                body = await self._send_write(
                    "POST", path, {"Users": batch, "OrganizationIds": list(organizations)}
                )
                for record in self._invited(body):
                    invited[str(record.get("Email", "")).casefold()] = record
        return await self._in_order(users, invited)

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Change a user's profile; `active` blocks or unblocks. Groups are set at invite only."""
        fields = await self.to_vendor(attributes)
        raw = await (
            self._merge_write(external_id, fields, Priority.WRITE)
            if fields
            else self._existing(external_id, Priority.WRITE)
        )
        active = attributes.get("active")
        state = raw.get("State")
        if active is False and state != BLOCKED:
            raw = await self._set_state(external_id, BLOCKED, Priority.WRITE)
        elif active is True and state == BLOCKED:
            raw = await self._set_state(external_id, ACTIVE, Priority.WRITE)
        return self.to_account(raw)

    async def deactivate_account(self, external_id: str) -> None:
        """Block the user, ahead of routine reads."""
        await self._set_state(external_id, BLOCKED, Priority.DEACTIVATE)

    # -- helpers -------------------------------------------------------------------------

    def _path(self, template: str, external_id: str | None = None) -> str:
        """Fill a path template with this connector's version, scope and a user id."""
        return template.format(
            version=quote(self.api_version, safe=""),
            scope_kind=self.scope_kind,
            scope_id=quote(self.scope_id, safe=""),
            id="" if external_id is None else segment(self.vendor, external_id),
        )

    def _item_path(self, external_id: str) -> str:
        """Return the path of one user."""
        return self._path(self.paths.user, external_id)

    def _organizations(self, attributes: Mapping[str, object]) -> tuple[str, ...]:
        """Return the organizations a user is invited to: its groups, else the configured ones."""
        groups = attributes.get("groups")
        if isinstance(groups, list | tuple) and groups:
            return tuple(sorted(str(group) for group in groups))
        return self.organization_ids

    async def _role_id(self, role: object) -> object:
        """Return the id of a role given by id or name; unknown values pass through as ids."""
        if not isinstance(role, str) or not role:
            return role
        for fresh in (False, True):  # a cached list may predate a new role: look once more
            if fresh or self._roles is None:
                await self.list_roles()
            roles = self._roles or []
            for candidate in roles:
                if role == candidate.id:
                    return candidate.id
            for candidate in roles:
                if role.casefold() == candidate.name.casefold():
                    return candidate.id
        return role

    async def _set_state(self, external_id: str, state: str, priority: Priority) -> Record:
        """Move a user to a state through the configured state endpoint; return the user."""
        path = self._path(self.paths.user_state, external_id)
        body = await self.http.request("PUT", path, json={"State": state}, priority=priority)
        if isinstance(body, dict) and body.get("Id") is not None:
            return dict(body)
        # The state endpoint answered without the user.
        return await self._existing(external_id, priority)

    def _invited(self, body: object) -> list[Record]:
        """Return the users an invite call echoed back (none when it answered without them)."""
        if isinstance(body, dict) and isinstance(body.get("Users"), list):
            return [dict(user) for user in body["Users"] if isinstance(user, dict)]
        return []

    async def _in_order(
        self, users: Sequence[Record], invited: dict[str, Record]
    ) -> list[VendorAccount]:
        """Return the invited accounts in request order, listing once for any not echoed."""
        wanted = [str(user["Email"]).casefold() for user in users]
        missing = {email for email in wanted if email not in invited}
        if missing:
            async with aclosing(self.list_accounts()) as accounts:
                async for account in accounts:
                    email = (account.email or "").casefold()
                    if email in missing:
                        invited[email] = account.raw
        absent = [email for email in wanted if email not in invited]
        if absent:
            path = self._path(self.paths.invite)
            raise MalformedResponseError(
                self.vendor, "POST", path, f"{len(absent)} invited user(s) not found afterwards"
            )
        return [self.to_account(invited[email]) for email in wanted]

    def _records(self, body: object, path: str) -> list[Record]:
        """Return the records of a roles or identity-provider body."""
        try:
            records = _items(body)
        except ValueError:
            raise MalformedResponseError(self.vendor, "GET", path, "not a list") from None
        if any(record.get("Id") is None for record in records):
            raise MalformedResponseError(self.vendor, "GET", path, "a record has no Id")
        return records
