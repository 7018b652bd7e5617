"""Influitive members: `Token KEY`, `/contacts` paged by `links.next`, writes on `/members`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Unpack

from connectors.core.auth import Auth, CombinedAuth, HeaderAuth, StaticHeaders
from connectors.core.base import Capabilities, Connector, ConnectorArgs
from connectors.core.endpoints import label_problem
from connectors.core.errors import (
    ConnectorConfigError,
    ConnectorError,
    MalformedResponseError,
    UnsupportedOperation,
)
from connectors.core.mapping import full_name, text
from connectors.core.pagination import NextLinkPaginator, Paginator, Record
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount

PLATFORM_URL = "https://api.influitive.com"
GENERATIONS = ("hub", "platform")
MEMBERS = "/members"
_PARTS = frozenset({"given_name", "family_name"})  # the halves of a member's `name`
_ORG_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_RETIRED = {
    "advocates_path": "the /api/v1/advocates shape is not Influitive's API",
    "email_filter_param": "lookups always use GET /members?email=",
}


def hub_url(hub: str) -> str:
    """Return the API root of the AdvocateHub with this subdomain (the hub generation)."""
    return f"https://{hub}.influitive.com/api"


class InfluitiveConnector(Connector):
    """Connector for Influitive members, hub (`HUB.influitive.com/api`) or platform generation.

    Deactivation locks the member (`POST /members/{id}/lock`); the API has no delete and
    cannot change a member's email. Locale, timezone and role have no native field:
    `custom_field_map` may name hub custom fields to read them from.
    """

    vendor = "influitive"
    secret_names = ("api_key",)
    paginator: ClassVar[Paginator] = NextLinkPaginator(max_pages=100_000)
    writable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "display_name", "title", "company"}
    )
    capabilities = Capabilities(has_delete=False, email_filter=True)
    list_path = "/contacts"
    # Without it the listing leaves some members out; the Go client asks for all.
    list_params: ClassVar[Mapping[str, str]] = {"q[status]": "all"}
    records_key: ClassVar[str | None] = "contacts"
    id_key = "id"
    label_settings: ClassVar[frozenset[str]] = frozenset({"hub"})
    users_path = MEMBERS

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api: str = "hub",
        hub: str | None = None,
        org_id: str | None = None,
        custom_field_map: Mapping[str, str] | None = None,
        advocates_path: object = None,
        email_filter_param: object = None,
        **common: Unpack[ConnectorArgs],
    ) -> None:
        self.api = api
        self.org_id = org_id
        given = {"advocates_path": advocates_path, "email_filter_param": email_filter_param}
        retired = [key for key, value in given.items() if value is not None]
        root = self._root(common["name"], base_url, hub, retired)
        self.custom_field_map = dict(custom_field_map or {})
        super().__init__(base_url=root, **common)

    def _root(self, name: str, base_url: str | None, hub: str | None, retired: list[str]) -> str:
        """Check the settings and return the API root they name."""

        def refuse(problem: str) -> ConnectorConfigError:
            return ConnectorConfigError(self.vendor, f"{name!r}: {problem}")

        for key in retired:
            raise refuse(f"{key} is no longer a setting ({_RETIRED[key]}); choose settings.api")
        if self.api not in GENERATIONS:
            raise refuse(f"api must be one of {', '.join(GENERATIONS)}, not {self.api!r}")
        if self.org_id is not None and (
            not isinstance(self.org_id, str) or not _ORG_ID.fullmatch(self.org_id)
        ):
            raise refuse("org_id must be 1 to 64 letters, digits, '-' or '_'")
        if self.api == "platform":
            if hub is not None:
                raise refuse("hub is for api = 'hub'; api = 'platform' talks to " + PLATFORM_URL)
            if self.org_id is None:
                raise refuse("api = 'platform' needs org_id (sent as X_ORG_ID)")
            return base_url or PLATFORM_URL
        if (base_url is None) == (hub is None):
            raise refuse("set exactly one of base_url, hub")
        if hub is not None and (problem := label_problem(hub)) is not None:
            raise refuse(f"hub {problem}")
        return base_url if base_url is not None else hub_url(str(hub))

    def build_auth(self, secrets: Mapping[str, str]) -> Auth:
        """Return `Authorization: Token KEY`, plus `X_ORG_ID` when an org id is set."""
        token = HeaderAuth({"Authorization": f"Token {secrets['api_key']}"})
        if self.org_id is None:
            return token
        return CombinedAuth(token, StaticHeaders({"X_ORG_ID": self.org_id}))  # an id, no secret

    def to_account(self, raw: Record) -> VendorAccount:
        """Map a member to an account; a locked member is inactive."""
        custom = raw.get("custom_fields")
        custom = custom if isinstance(custom, dict) else {}
        email = text(raw.get("email"))
        given, family = text(raw.get("first_name")), text(raw.get("last_name"))
        locked = raw.get("locked_at") is not None
        display = text(raw.get("name")) or full_name(given, family)
        attributes: dict[str, object] = {
            "email": email,
            "given_name": given,
            "family_name": family,
            "display_name": display,
            "title": text(raw.get("title")),
            "company": text(raw.get("company")),
            "active": not locked,
        }
        for attribute, key in self.custom_field_map.items():
            attributes[attribute] = custom.get(key)
        return self._account(raw, attributes, "inactive" if locked else "active")

    async def find_by_email(self, email: str) -> VendorAccount | None:
        """Look a member up with `GET /members?email=`; two members with it is an error."""
        wanted = email.strip().casefold()
        body = await self.http.get_or_none(MEMBERS, params={"email": email.strip()})
        # The Go client reads a list; the Elixir client's fixture is one member object.
        records = [body] if isinstance(body, dict) and "id" in body else body
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponseError(self.vendor, "GET", MEMBERS, "no list of members")
        found = [
            account
            for account in map(self.to_account, records)
            if (account.email or "").strip().casefold() == wanted
        ]
        if len(found) > 1:
            ids = ", ".join(account.external_id for account in found)
            raise ConnectorError(self.vendor, f"members {ids} share one email: not guessing")
        return found[0] if found else None

    async def create_account(self, attributes: Mapping[str, object]) -> VendorAccount:
        """Create an uninvited member (`type: Nominee`), as both public clients do."""
        email = text(attributes.get("email"))
        full_name = self._name(attributes, {})
        if email is None or full_name is None:
            raise ConnectorError(self.vendor, "creating a member needs an email and a full name")
        fields: Record = {"email": email, "name": full_name, "type": "Nominee", "source": "syncd"}
        fields.update(self._profile(attributes))
        return self.to_account(await self._write("POST", MEMBERS, fields))

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """PATCH the changed profile fields; `active` locks or unlocks; email cannot change."""
        if "email" in attributes:
            raise UnsupportedOperation(self.vendor, "Influitive cannot change a member's email")
        if "active" in attributes:
            action = "unlock" if attributes["active"] else "lock"
            await self._post_action(external_id, action, Priority.WRITE)
        fields = self._profile(attributes)
        current: Record = {}
        if _PARTS & set(attributes) and not set(attributes) >= _PARTS:
            current = await self._existing(external_id, Priority.WRITE)
        if (_PARTS | {"display_name"}) & set(attributes):
            full_name = self._name(attributes, current)
            if full_name is not None:
                fields["name"] = full_name
        if not fields:
            return self.to_account(await self._existing(external_id, Priority.READ))
        path = self._item_path(external_id)
        return self.to_account(await self._write("PATCH", path, fields))

    async def deactivate_account(self, external_id: str) -> None:
        """Lock the member's profile (reversible with unlock), ahead of routine reads."""
        await self._post_action(external_id, "lock", Priority.DEACTIVATE)

    async def delete_account(self, external_id: str) -> None:
        """Refuse: Influitive's API has no way to delete a member (syncd locks instead)."""
        raise UnsupportedOperation(self.vendor, "Influitive has no delete; members are locked")

    @staticmethod
    def _profile(attributes: Mapping[str, object]) -> Record:
        """Return the title and company among the attributes, as member fields."""
        return {key: attributes[key] for key in ("title", "company") if key in attributes}

    @staticmethod
    def _name(attributes: Mapping[str, object], current: Record) -> str | None:
        """Return the member's full name from the attributes, completed from `current`."""
        if not _PARTS & set(attributes):
            return text(attributes.get("display_name"))
        given = text(attributes.get("given_name", current.get("first_name")))
        family = text(attributes.get("family_name", current.get("last_name")))
        if given and family:
            return f"{given} {family}"
        return text(attributes.get("display_name"))

    async def _post_action(self, external_id: str, action: str, priority: Priority) -> None:
        """POST `/members/{id}/{action}` (lock or unlock)."""
        path = f"{self._item_path(external_id)}/{action}"
        await self.http.request("POST", path, priority=priority)
