"""Influitive AdvocateHub: `Token token=KEY`, page-only listing, `advocate` wrapper, PUT merges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

import aiohttp

from connectors.core.auth import Auth, HeaderAuth
from connectors.core.base import Capabilities, Connector
from connectors.core.budget import RateBudget
from connectors.core.endpoints import label_problem
from connectors.core.errors import (
    ConnectorConfigError,
    ConnectorError,
    MalformedResponseError,
    VendorHTTPError,
)
from connectors.core.mapping import text, unwrap
from connectors.core.pagination import ListingSource, PageNumberPaginator, Paginator, Record
from connectors.core.paths import segment
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount
from connectors.core.retry import RetryPolicy

DEFAULT_ADVOCATES_PATH = "/api/v1/advocates"

_TO_VENDOR = {
    "email": "email",
    "given_name": "first_name",
    "family_name": "last_name",
    "title": "title",
    "company": "company",
    "groups": "groups",
}


def hub_url(hub: str) -> str:
    """Return the API origin of the AdvocateHub with this subdomain."""
    return f"https://{hub}.influitive.com"


class InfluitiveConnector(Connector):
    """Connector for Influitive advocates (`/api/v1/advocates`).

    The hub silently ignores custom field keys its admin has not configured; the
    connector logs `influitive.custom_fields_ignored` for every write that loses some.
    Locale, timezone and role have no native field: `custom_field_map` may name hub
    custom fields for them (canonical attribute -> custom field key).
    """

    vendor = "influitive"
    secret_names = ("api_key",)
    # The page size is undocumented, so only an empty page proves the end.
    paginator: ClassVar[Paginator] = PageNumberPaginator(page_param="page", max_pages=100_000)
    writable: ClassVar[frozenset[str]] = frozenset(_TO_VENDOR)
    capabilities = Capabilities(
        put_replaces_object=False,
        upsert_only=False,
        has_deactivate=True,
        has_delete=True,
        bulk_invite=False,
        create_needs_password=False,
        email_filter=False,  # undocumented; see `email_filter_param`
    )
    list_path = DEFAULT_ADVOCATES_PATH
    records_key: ClassVar[str | None] = "advocates"
    id_key = "id"
    label_settings: ClassVar[frozenset[str]] = frozenset({"hub"})

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        secrets: Mapping[str, str],
        base_url: str | None = None,
        hub: str | None = None,
        advocates_path: str = DEFAULT_ADVOCATES_PATH,
        custom_field_map: Mapping[str, str] | None = None,
        email_filter_param: str | None = None,
        allow_delete: bool = False,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if (base_url is None) == (hub is None):
            raise ConnectorConfigError(self.vendor, f"{name!r}: set exactly one of base_url, hub")
        if hub is not None and (problem := label_problem(hub)) is not None:
            raise ConnectorConfigError(self.vendor, f"{name!r}: hub {problem}")
        self.advocates_path = "/" + advocates_path.strip("/")
        self.custom_field_map = dict(custom_field_map or {})
        self.email_filter_param = email_filter_param
        self.allow_delete = allow_delete
        self.hub_custom_fields: set[str] = set()  # keys seen on the hub's own records
        super().__init__(
            name=name,
            session=session,
            base_url=base_url if base_url is not None else hub_url(str(hub)),
            secrets=secrets,
            budget=budget,
            retry=retry,
            timeout=timeout,
        )

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Token token=KEY`."""
        return HeaderAuth({"Authorization": f"Token token={secrets['api_key']}"})

    def listing_source(self) -> ListingSource:
        """Describe the advocate listing at the configured path."""
        return replace(super().listing_source(), path=self.advocates_path)

    def to_account(self, raw: Record) -> VendorAccount:
        """Map an advocate to an account, noting which custom field keys the hub has."""
        custom = raw.get("custom_fields")
        custom = custom if isinstance(custom, dict) else {}
        self.hub_custom_fields.update(custom)
        email = text(raw.get("email"))
        given, family = text(raw.get("first_name")), text(raw.get("last_name"))
        status = text(raw.get("status")) or "active"
        groups = raw.get("groups")
        attributes: dict[str, object] = {
            "email": email,
            "given_name": given,
            "family_name": family,
            "display_name": " ".join(part for part in (given, family) if part) or None,
            "title": text(raw.get("title")),
            "company": text(raw.get("company")),
            "groups": [str(g) for g in groups] if isinstance(groups, list) else [],
            "active": status == "active",
        }
        for attribute, key in self.custom_field_map.items():
            attributes[attribute] = custom.get(key)
        return VendorAccount(
            external_id=str(raw["id"]),
            email=email,
            status=status,
            attributes=attributes,
            raw=raw,
        )

    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes (and an optional `custom_fields` object) to advocate fields."""
        fields: Record = {
            field: attributes[key] for key, field in _TO_VENDOR.items() if key in attributes
        }
        if "active" in attributes:
            fields["status"] = "active" if attributes["active"] else "inactive"
        custom: dict[str, object] = {}
        extra = attributes.get("custom_fields")
        if isinstance(extra, Mapping):
            custom.update({str(key): value for key, value in extra.items()})
        for attribute, key in self.custom_field_map.items():
            if attribute in attributes:
                custom[key] = attributes[attribute]
        if custom:
            fields["custom_fields"] = custom
        return fields

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the advocate with this email: one filtered request if configured, else a scan."""
        if self.email_filter_param is None:
            return await super().find_by_email(email)
        wanted = email.strip().casefold()
        params = {self.email_filter_param: email.strip(), "page": "1"}
        body = await self.http.request("GET", self.advocates_path, params=params)
        records = body.get("advocates") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponseError(
                self.vendor, "GET", self.advocates_path, "no 'advocates' list in the body"
            )
        accounts = [self.to_account(record) for record in records]
        if any((a.email or "").strip().casefold() != wanted for a in accounts):
            # A hub that ignores the filter answers with everyone: only a scan is proof.
            self.log.warning("influitive.email_filter_ignored", param=self.email_filter_param)
            return await super().find_by_email(email)
        return accounts[0] if accounts else None

    async def get_account(self, external_id: str) -> VendorAccount | None:
        """Return one advocate, or None on 404."""
        raw = await self._read(external_id, Priority.READ)
        return None if raw is None else self.to_account(raw)

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create an advocate; the hub requires email, first and last name."""
        fields = self.to_vendor(attributes)
        display = text(attributes.get("display_name"))
        if display and not (fields.get("first_name") and fields.get("last_name")):
            given, _, family = display.partition(" ")
            fields.setdefault("first_name", given)
            fields.setdefault("last_name", family or given)
        missing = [key for key in ("email", "first_name", "last_name") if not fields.get(key)]
        if missing:
            raise ConnectorError(self.vendor, f"creating an advocate needs {', '.join(missing)}")
        body = await self.http.request(
            "POST", self.advocates_path, json={"advocate": fields}, priority=Priority.WRITE
        )
        raw = self._unwrap(body, "POST", self.advocates_path)
        self._check_custom_fields(fields, raw)
        return self.to_account(raw)

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """PUT only the changed attributes; custom fields are sent merged with the current ones."""
        return await self._write(external_id, self.to_vendor(attributes), Priority.WRITE)

    async def deactivate_account(self, external_id: str) -> None:
        """PUT `status: inactive`, ahead of routine reads."""
        await self._write(external_id, {"status": "inactive"}, Priority.DEACTIVATE)

    async def delete_account(self, external_id: str) -> None:
        """Delete the advocate, only when this connector's config allows it."""
        self.require_delete_allowed()
        await self.http.request("DELETE", self._path(external_id), priority=Priority.WRITE)

    async def _write(self, external_id: str, fields: Record, priority: Priority) -> VendorAccount:
        """PUT `{"advocate": fields}`; a hub may replace custom_fields whole, so send them all."""
        path = self._path(external_id)
        changes = fields.get("custom_fields")
        if isinstance(changes, dict):
            current = await self._read(external_id, priority)
            if current is None:
                raise VendorHTTPError(self.vendor, "GET", path, 404)
            self.to_account(current)  # learns the hub's custom field keys
            held = current.get("custom_fields")
            fields = {
                **fields,
                "custom_fields": {**(held if isinstance(held, dict) else {}), **changes},
            }
        body = await self.http.request("PUT", path, json={"advocate": fields}, priority=priority)
        raw = self._unwrap(body, "PUT", path)
        self._check_custom_fields(fields, raw)
        return self.to_account(raw)

    def _check_custom_fields(self, sent: Record, raw: Record) -> None:
        """Warn about custom field keys the hub dropped (it answers 200 all the same)."""
        custom = sent.get("custom_fields")
        if not isinstance(custom, dict):
            return
        returned = raw.get("custom_fields")
        known = set(returned) if isinstance(returned, dict) else self.hub_custom_fields
        ignored = sorted(key for key in custom if key not in known)
        if ignored:
            self.log.warning(
                "influitive.custom_fields_ignored",
                advocate=str(raw.get("id")),
                keys=ignored,
                known=sorted(known),
            )

    async def _read(self, external_id: str, priority: Priority) -> Record | None:
        """Return one advocate's record, or None on 404."""
        path = self._path(external_id)
        body = await self.http.get_or_none(path, priority=priority)
        return None if body is None else self._unwrap(body, "GET", path)

    def _path(self, external_id: str) -> str:
        """Return the path of one advocate."""
        return f"{self.advocates_path}/{segment(self.vendor, external_id)}"

    def _unwrap(self, body: object, method: str, path: str) -> Record:
        """Return the record inside an `{"advocate": {...}}` body."""
        return unwrap(self.vendor, body, "advocate", method, path)
