"""Generic SCIM 2.0: Bearer token, startIndex + count listing, PatchOp writes with If-Match."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Unpack

from connectors.core.auth import Auth, BearerAuth
from connectors.core.base import Capabilities, Connector, ConnectorArgs
from connectors.core.errors import (
    ConnectorConfigError,
    ConnectorError,
    MalformedResponseError,
    VendorHTTPError,
)
from connectors.core.mapping import text
from connectors.core.pagination import Paginator, Record, StartIndexPaginator
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount
from connectors.vendors.scim.filter import equals

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA_TYPE = "application/scim+json"
MAX_PAGE_SIZE = 1000
LOOKUP_COUNT = 10  # userName is unique: more than one answer means the filter was ignored

# Canonical attribute -> SCIM attribute path (RFC 7643 §4.1, §4.3), for reads and PATCH.
ATTRIBUTE_PATHS: Mapping[str, str] = {
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "display_name": "displayName",
    "title": "title",
    "locale": "locale",
    "timezone": "timezone",
    "company": f"{ENTERPRISE_SCHEMA}:organization",
    "active": "active",
}
EXTERNAL_ID_ATTRIBUTE = "employee_id"  # the authority's id, sent as externalId on create


class PreconditionFailedError(ConnectorError):
    """The user changed at the vendor between our read and our write, twice (HTTP 412)."""

    retryable = True


class ScimConnector(Connector):
    """Connector for any SCIM 2.0 service provider's `/Users` (RFC 7643, RFC 7644).

    `base_url` is the SCIM root (e.g. `https://example.com/scim/v2`). Every write reads
    the user first: its `meta.version` goes out as `If-Match` where the server offers
    versions, the primary email is changed in place (other emails survive), and a
    deactivation of a user already inactive sends nothing.
    """

    vendor = "scim"
    secret_names = ("token",)
    paginator: ClassVar[Paginator] = StartIndexPaginator(size=100)
    # Roles and groups are never written: `roles` is an escalation path and SCIM groups
    # are changed on the Group resource.
    writable: ClassVar[frozenset[str]] = frozenset(ATTRIBUTE_PATHS) - {"active"} | {"email"}
    capabilities = Capabilities(email_filter=True)
    list_path = "/Users"
    users_path = "/Users"
    records_key: ClassVar[str | None] = "Resources"
    id_key = "id"
    extra_headers: ClassVar[Mapping[str, str]] = {"Accept": f"{MEDIA_TYPE}, application/json"}

    def __init__(self, *, page_size: int = 100, **common: Unpack[ConnectorArgs]) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConnectorConfigError(self.vendor, f"page_size must be 1..{MAX_PAGE_SIZE}")
        super().__init__(**common)
        self.list_paginator = StartIndexPaginator(size=page_size)

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Bearer TOKEN`."""
        return BearerAuth(secrets["token"])

    def to_account(self, raw: Record) -> VendorAccount:
        """Map a SCIM user; the email is the primary email, else an email-shaped userName."""
        email = _primary_email(raw)
        if email is None and "@" in (user_name := text(raw.get("userName")) or ""):
            email = user_name
        active = raw.get("active") is not False  # absent: the provider did not say otherwise
        attributes: dict[str, object] = {
            canonical: _value_at(raw, path) for canonical, path in ATTRIBUTE_PATHS.items()
        }
        attributes.update(
            email=email,
            role=_primary_value(raw.get("roles")),
            groups=_values(raw.get("groups")),
            active=active,
        )
        return self._account(raw, attributes, "active" if active else "inactive")

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Return the user whose userName is this email, by filter, checked exactly."""
        wanted = email.strip()
        params = {
            "filter": equals("userName", wanted),
            "startIndex": "1",
            "count": str(LOOKUP_COUNT),
        }
        body = await self.http.request("GET", self.list_path, params=params)
        records = body.get("Resources", []) if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponseError(self.vendor, "GET", self.list_path, "no Resources list")
        matches = [r for r in records if _same(r.get("userName"), wanted)]
        if len(matches) < len(records):
            # A server that ignores the filter answers with others: only a scan is proof.
            self.log.warning("scim.user_name_filter_ignored")
            return await super().find_by_email(email)
        return self.to_account(matches[0]) if matches else None

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """POST a user named by its email; AccountExistsError if the userName is taken (409)."""
        email = text(attributes.get("email"))
        if email is None:
            raise ConnectorError(self.vendor, "creating a user needs an email")
        user = self._new_user(email, attributes)
        body = await self._send_write("POST", self.users_path, user, headers=_SCIM_BODY)
        return self.to_account(self._unwrap(body, "POST", self.users_path))

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """PATCH `replace` (or `remove` for a cleared value) the given attributes."""
        return await self._patch(external_id, attributes, Priority.WRITE)

    async def deactivate_account(self, external_id: str) -> None:
        """PATCH `replace` active=false, ahead of routine reads."""
        await self._patch(external_id, {"active": False}, Priority.DEACTIVATE)

    def _new_user(self, email: str, attributes: Mapping[str, object]) -> Record:
        """Return the body of a create: userName and primary email are the email."""
        user: Record = {"schemas": [USER_SCHEMA], "userName": email}
        name = {
            key: attributes[canonical]
            for canonical, key in (("given_name", "givenName"), ("family_name", "familyName"))
            if attributes.get(canonical) is not None
        }
        if name:
            user["name"] = name
        for canonical in ("display_name", "title", "locale", "timezone"):
            if attributes.get(canonical) is not None:
                user[ATTRIBUTE_PATHS[canonical]] = attributes[canonical]
        if attributes.get("company") is not None:
            user["schemas"] = [USER_SCHEMA, ENTERPRISE_SCHEMA]
            user[ENTERPRISE_SCHEMA] = {"organization": attributes["company"]}
        user["emails"] = [{"value": email, "type": "work", "primary": True}]
        user["active"] = attributes.get("active") is not False
        if (external_id := text(attributes.get(EXTERNAL_ID_ATTRIBUTE))) is not None:
            user["externalId"] = external_id
        return user

    async def _patch(
        self, external_id: str, attributes: Mapping[str, object], priority: Priority
    ) -> VendorAccount:
        """Read, PATCH with If-Match; on 412 read again and retry once."""
        path = self._item_path(external_id)
        for attempt in (1, 2):
            current = await self._existing(external_id, priority)
            operations = _operations(current, attributes)
            if not operations:
                return self.to_account(current)
            headers = dict(_SCIM_BODY)
            if (version := _version(current)) is not None:
                headers["If-Match"] = version
            body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
            try:
                answer = await self._send_write("PATCH", path, body, priority, headers)
            except VendorHTTPError as error:
                if error.status != 412:
                    raise
                self.log.info("scim.precondition_failed", account=external_id, attempt=attempt)
                continue
            if answer is None:  # 204 No Content (RFC 7644 §3.5.2): read the result
                return self.to_account(await self._existing(external_id, priority))
            return self.to_account(self._unwrap(answer, "PATCH", path))
        raise PreconditionFailedError(
            self.vendor, f"PATCH {path}: the user changed at the vendor during the write (412)"
        )


_SCIM_BODY: Mapping[str, str] = {"Content-Type": MEDIA_TYPE}


def _operations(current: Record, attributes: Mapping[str, object]) -> list[Record]:
    """Return PatchOp operations: `replace` a changed value, `remove` a cleared one."""
    operations: list[Record] = []
    for canonical, value in attributes.items():
        if canonical == "email":
            operations.extend(_email_operations(current, value))
            continue
        path = ATTRIBUTE_PATHS.get(canonical)
        if path is None:
            continue  # roles, groups and anything unmapped are never written
        held = _value_at(current, path)
        if value is None:
            if held is not None:
                operations.append({"op": "remove", "path": path})
            continue
        wanted = bool(value) if canonical == "active" else value
        if wanted != held:
            operations.append({"op": "replace", "path": path, "value": wanted})
    return operations


def _email_operations(current: Record, email: object) -> list[Record]:
    """Return the operations that make `email` the userName and primary email."""
    if not isinstance(email, str) or not email.strip():
        return []  # a login name is never cleared
    held = current.get("emails")
    emails = [dict(e) for e in held if isinstance(e, dict)] if isinstance(held, list) else []
    primary = next((e for e in emails if e.get("primary") is True), None)
    if primary is None:
        emails.insert(0, {"value": email, "type": "work", "primary": True})
    else:
        primary["value"] = email
    return [
        {"op": "replace", "path": "userName", "value": email},
        {"op": "replace", "path": "emails", "value": emails},
    ]


def _value_at(record: Record, path: str) -> object:
    """Return the value at a SCIM attribute path (`a`, `a.b`, or `URN:a`)."""
    if path.startswith("urn:"):
        schema, _, attribute = path.rpartition(":")
        extension = record.get(schema)
        return extension.get(attribute) if isinstance(extension, dict) else None
    value: object = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _primary_email(raw: Record) -> str | None:
    """Return the primary email's value, or the first email's."""
    return text(_primary_value(raw.get("emails")))


def _primary_value(items: object) -> str | None:
    """Return the `value` of the primary item of a multi-valued attribute, else the first."""
    if not isinstance(items, list):
        return None
    found = [i for i in items if isinstance(i, dict) and isinstance(i.get("value"), str)]
    primary = [i for i in found if i.get("primary") is True]
    return next((str(i["value"]) for i in primary or found), None)


def _values(items: object) -> list[str]:
    """Return every `value` of a multi-valued attribute."""
    if not isinstance(items, list):
        return []
    return [str(i["value"]) for i in items if isinstance(i, dict) and i.get("value") is not None]


def _version(record: Record) -> str | None:
    """Return the user's `meta.version` (its ETag), if the server keeps versions."""
    meta = record.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else None


def _same(user_name: object, email: str) -> bool:
    """Tell whether a userName is this email, ignoring case (userName is caseExact=false)."""
    return isinstance(user_name, str) and user_name.strip().casefold() == email.casefold()
