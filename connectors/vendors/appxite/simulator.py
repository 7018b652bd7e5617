"""The AppXite simulator: APIM key plus Bearer token, scoped page listing, bulk invites.

What it does follows the evidence table in this folder's README: the vendor's methods are
GET, POST, PUT and DELETE only (no PATCH); errors come in Azure API Management's shape
`{"statusCode", "message"}`; a 429 carries Retry-After as APIM's rate-limit policy sends
it. What the public material leaves open is assumed and marked so in the README:
`?page=N&pageSize=S` (S at most 100) answered `{"Items", "TotalCount", "Page", "PageSize"}`,
PUT replaces a profile, states change through `/users/{id}/status`.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import SimConnection, SimPerson, SimView, VendorSimulator, json_response
from connectors.sim.errors import VendorError
from connectors.sim.listing import ListingStyle, ListingView, PagedListing, Record
from connectors.sim.schema import Field, Schema
from connectors.sim.stats import SimStats

_GIVEN = ("Mette", "Lars", "Ingrid", "Jonas", "Sofie", "Anders", "Freja", "Nikolaj", "Ida")
_FAMILY = ("Hansen", "Jensen", "Nielsen", "Larsen", "Olsen", "Berg", "Lund", "Dahl")
_LANGUAGES = ("en-US", "da-DK", "nb-NO", "sv-SE", "de-DE")
_ZONES = ("Europe/Copenhagen", "Europe/Oslo", "Europe/Stockholm", "Europe/Berlin", "UTC")
_TITLES = ("Buyer", "IT Manager", "Reseller Admin", "Accountant", None)
ROLES = (
    {"Id": "role-owner", "Name": "Owner", "Weight": 100},
    {"Id": "role-admin", "Name": "Administrator", "Weight": 50},
    {"Id": "role-member", "Name": "Member", "Weight": 10},
    {"Id": "role-billing", "Name": "Billing", "Weight": 5},
)
IDENTITY_PROVIDERS = (
    {"Id": "idp-local", "Name": "AppXite", "Prefix": None, "Enabled": True},
    {"Id": "idp-entra", "Name": "Microsoft Entra ID", "Prefix": "entra", "Enabled": True},
    {"Id": "idp-google", "Name": "Google", "Prefix": "google", "Enabled": False},
)
STATES = ("New", "Active", "Blocked")
_TEXT = Field(nullable=True)
# A user profile as a write may carry it; PUT replaces exactly the writable fields.
PROFILE = {
    "Email": Field(required=True),
    "FirstName": _TEXT,
    "LastName": _TEXT,
    "DisplayName": _TEXT,
    "JobTitle": _TEXT,
    "CompanyName": _TEXT,
    "Language": _TEXT,
    "TimeZone": _TEXT,
    "RoleId": _TEXT,
    "IdentityProviderId": _TEXT,
    "PhoneNumber": _TEXT,
    "ExternalReference": _TEXT,
}
WRITABLE = tuple(PROFILE)
# Server-owned fields: the vendor refuses them in a write body.
READ_ONLY = (
    "Id", "State", "IsAccessible", "OrganizationIds", "RoleName", "CreatedDate", "LastLoginDate",
)  # fmt: skip
USER_SCHEMA = Schema({**PROFILE, **{key: Field(read_only=True) for key in READ_ONLY}})
INVITE_SCHEMA = Schema(
    {
        "Users": Field(types=(list,), required=True),
        "OrganizationIds": Field(types=(list,), required=True),
    }
)
STATE_SCHEMA = Schema({"State": Field(required=True, choices=("Active", "Blocked"))})
MOVES = {("New", "Blocked"), ("Active", "Blocked"), ("Blocked", "Active")}
MAX_PAGE_SIZE = 100
CUSTOMERS = 12


def _member(user: Record, organization: str) -> bool:
    """Tell whether a user belongs to an organization."""
    organizations = user.get("OrganizationIds")
    return isinstance(organizations, list) and organization in organizations


STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


@dataclass(frozen=True, kw_only=True)
class StrictPageListing(PagedListing):
    """`?page=N&pageSize=S` from page 1, with the total; out of range is a 400."""

    size_param: str | None = "pageSize"
    max_size: int = MAX_PAGE_SIZE

    def page_body(self, request: web.Request, view: ListingView, number: int, size: int) -> object:
        """Return page N of S and the total."""
        return {
            "Items": view.page(self.offset(number, size), size),
            "TotalCount": view.total,
            "Page": number,
            "PageSize": size,
        }


class _Stats(SimStats):
    """Counts a request whose URL carries either of the two secrets."""

    def __init__(self, token: str, key: str) -> None:
        super().__init__(token)
        self._key = key

    def arrived(self, now: float, url: str, query_keys: list[str]) -> None:
        """Count the request, also when the subscription key is in its URL."""
        super().arrived(now, url, query_keys)
        if self._key in url and self._secret not in url:
            self.secret_in_url += 1


class AppXiteSimulator(VendorSimulator):
    """Simulates AppXite's partner user API under `/{version}`."""

    vendor = "appxite"
    credentials = "Ocp-Apim-Subscription-Key: TOKEN and Authorization: Bearer TOKEN"
    given_names = _GIVEN
    family_names = _FAMILY
    listing: ClassVar[ListingStyle] = StrictPageListing()
    id_key = "Id"
    key_header: ClassVar[str] = "Ocp-Apim-Subscription-Key"
    schema = USER_SCHEMA
    invalid_status = 400
    default_retry_after = "seconds"  # APIM's rate-limit policy sends Retry-After by default

    def configure(
        self,
        *,
        subscription_key: str | None = None,
        api_version: str = "v1",
        platform_id: str = "platform-1",
        echo_invites: bool = True,
    ) -> None:
        """Take the vendor's options; `syncd sim appxite --token T` accepts T as both secrets."""
        self.subscription_key = subscription_key or self.token
        self.api_version = api_version
        self.platform_id = platform_id
        self.customer_ids = [f"customer-{n:02d}" for n in range(1, CUSTOMERS + 1)]
        self.echo_invites = echo_invites

    def new_stats(self) -> SimStats:
        """Return statistics that also catch the subscription key in a URL."""
        return _Stats(self.token, self.subscription_key)

    # -- what the vendor declares ----------------------------------------------------------

    def authorized(self, request: web.Request) -> bool:
        """Accept only the subscription key header together with the Bearer token."""
        key = request.headers.get(self.key_header, "")
        bearer = request.headers.get("Authorization", "")
        return secrets.compare_digest(key, self.subscription_key) and secrets.compare_digest(
            bearer, f"Bearer {self.token}"
        )

    def error_body(self, status: int, message: str, code: str) -> object:
        """Answer in Azure API Management's error shape."""
        return {"statusCode": status, "message": message}

    def connection(self) -> SimConnection:
        """Return the Bearer token, the subscription key and the platform scope."""
        return SimConnection(
            secrets={"token": self.token, "subscription_key": self.subscription_key},
            settings={"scope_id": self.platform_id},
        )

    def view(self, user: Record) -> SimView:
        """Read a user: `Email`, `JobTitle`; Blocked means deactivated."""
        email = user.get("Email")
        active = user.get("State") != "Blocked"
        return SimView(email if isinstance(email, str) else None, user.get("JobTitle"), active)

    def user_for(self, person: SimPerson) -> Record:
        """Return an active platform user for this person."""
        return {
            "Id": f"00000000-0000-4000-8000-{person.index:012d}",
            "Email": person.email,
            "FirstName": person.given_name,
            "LastName": person.family_name,
            "DisplayName": person.full_name,
            "JobTitle": person.title,
            "CompanyName": None,
            "Language": None,
            "TimeZone": None,
            "RoleId": "role-member",
            "RoleName": "Member",
            "IdentityProviderId": None,
            "PhoneNumber": None,
            "ExternalReference": None,
            "State": "Active",
            "IsAccessible": True,
            "OrganizationIds": [self.platform_id],
            "CreatedDate": STAMP,
            "LastLoginDate": None,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`: mostly Active, some New, some Blocked."""
        name = self.seed_name(index, rng)
        state = rng.choices(STATES, weights=(12, 80, 8))[0]
        role = rng.choice(ROLES[1:])
        customer = rng.choice(self.customer_ids)
        return {
            "Id": self.allocate_id(),
            "Email": name.email(f"{customer}.example.com"),
            "FirstName": name.given,
            "LastName": name.family,
            "DisplayName": name.full,
            "JobTitle": rng.choice(_TITLES),
            "CompanyName": customer.replace("-", " ").title(),
            "Language": rng.choice(_LANGUAGES),
            "TimeZone": rng.choice(_ZONES),
            "RoleId": role["Id"],
            "RoleName": role["Name"],
            "IdentityProviderId": rng.choice(("idp-local", "idp-entra")),
            "PhoneNumber": f"+45 {rng.randrange(10**7, 10**8)}",
            "ExternalReference": f"crm-{rng.randrange(10**6):06d}",
            "State": state,
            "IsAccessible": state != "Blocked",
            "OrganizationIds": [customer],
            "CreatedDate": f"2023-{index % 12 + 1:02d}-{index % 28 + 1:02d}T08:00:00Z",
            "LastLoginDate": None if state == "New" else "2024-05-01T09:30:00Z",
        }

    def allocate_id(self) -> str:
        """Return a fresh user id: a GUID, deterministic per seed."""
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def reset(self) -> None:
        """Restore seeded users, roles and identity providers; clear statistics."""
        self._ids = random.Random(self.seed)  # noqa: S311
        self.roles: list[Record] = [dict(role) for role in ROLES]
        self.identity_providers: list[Record] = [dict(idp) for idp in IDENTITY_PROVIDERS]
        super().reset()

    def routes(self) -> list[web.RouteDef]:
        """Return AppXite's routes under the API version: GET, POST, PUT and DELETE only."""
        v = f"/{self.api_version}"
        return [
            web.get(f"{v}/users", self.handle_list),
            web.get(f"{v}/platforms/{{scope}}/users", self.handle_list),
            web.get(f"{v}/customers/{{scope}}/users", self.handle_list),
            web.post(f"{v}/users/invite", self.handle_invite),
            web.get(f"{v}/users/{{id}}", self.handle_get),
            web.put(f"{v}/users/{{id}}", self.handle_replace),
            web.delete(f"{v}/users/{{id}}", self.handle_delete),
            web.put(f"{v}/users/{{id}}/status", self.handle_state),
            web.get(f"{v}/roles", self.handle_roles),
            web.get(f"{v}/identity-providers", self.handle_identity_providers),
        ]

    # -- handlers --------------------------------------------------------------------------

    async def handle_list(self, request: web.Request) -> web.Response:
        """List the users of one platform or customer, a page at a time."""
        return json_response(self.listing.respond(request, self._scoped(request)))

    async def handle_invite(self, request: web.Request) -> web.Response:
        """Invite a batch of users to organizations; each starts as New."""
        body = await self._body(request)
        if not isinstance(body, dict):
            raise VendorError(400, "expected a JSON object")
        problem = INVITE_SCHEMA.problem(body, creating=True)
        if problem is not None:
            raise VendorError(400, problem)
        users, organizations = body["Users"], body["OrganizationIds"]
        if not users or not all(isinstance(u, dict) for u in users):
            raise VendorError(400, "Users must be a non-empty array of user objects")
        known = {self.platform_id, *self.customer_ids}
        if not organizations or not all(isinstance(o, str) and o in known for o in organizations):
            raise VendorError(400, "OrganizationIds must name known organizations")
        for user in users:
            self.check(user, creating=True)
        folded = [self._email(user).casefold() for user in users]
        if len(set(folded)) != len(folded):
            raise VendorError(400, "the same email is invited twice")
        existing = self._emails()
        taken = [email for email in folded if email in existing]
        if taken:
            raise VendorError(409, f"{len(taken)} user(s) already exist")
        profiles = [self._profile({}, user) for user in users]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        invited = [
            self.add_user(
                {
                    "Id": self.allocate_id(),
                    **profile,
                    "State": "New",
                    "IsAccessible": True,
                    "OrganizationIds": list(organizations),
                    "CreatedDate": now,
                    "LastLoginDate": None,
                }
            )
            for profile in profiles
        ]
        if not self.echo_invites:
            return web.Response(status=202)
        return json_response({"Users": invited}, status=201)

    async def handle_replace(self, request: web.Request) -> web.Response:
        """PUT: replace the whole profile; writable fields left out are cleared."""
        stored = self._stored(request)
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        kept = {key: value for key, value in stored.items() if key not in WRITABLE}
        self.users[str(stored["Id"])] = self._profile(kept, fields)
        return json_response(self.users[str(stored["Id"])])

    async def handle_state(self, request: web.Request) -> web.Response:
        """Move a user to another state: `{"State": "Blocked" | "Active"}`."""
        stored = self._stored(request)
        fields = self.unwrap(await self._body(request))
        problem = STATE_SCHEMA.problem(fields, creating=True)
        if problem is not None:
            raise VendorError(400, problem)
        user = self._moved(stored, str(fields["State"]))
        self.users[str(user["Id"])] = user
        return json_response(user)

    async def handle_roles(self, request: web.Request) -> web.Response:
        """Return the platform roles as a JSON array."""
        return json_response(self.roles)

    async def handle_identity_providers(self, request: web.Request) -> web.Response:
        """Return the identity providers as a JSON array."""
        return json_response(self.identity_providers)

    # -- rules -----------------------------------------------------------------------------

    def _scoped(self, request: web.Request) -> ListingView:
        """Return the users of the platform or customer the request names; 400/404 otherwise."""
        scope = request.match_info.get("scope")
        if scope is not None:
            kind = "platform" if "/platforms/" in request.path else "customer"
        else:
            named = [k for k in ("platformId", "customerId") if k in request.query]
            if len(named) != 1:
                raise VendorError(400, "give exactly one of platformId or customerId")
            kind, scope = named[0].removesuffix("Id"), request.query[named[0]]
        if kind == "platform" and scope == self.platform_id:
            return self.listing_view()
        if kind == "customer" and scope in self.customer_ids:
            customer = scope
            return self.listing_view(
                ("customer", customer), lambda users: [u for u in users if _member(u, customer)]
            )
        raise VendorError(404, "unknown scope")

    def _emails(self) -> set[str]:
        """Return every stored email, case-folded."""
        return {str(user.get("Email", "")).casefold() for user in self.users.values()}

    def _email(self, user: Record) -> str:
        """Return a user's email; 400 when it is not an address."""
        email = user.get("Email")
        if not isinstance(email, str) or "@" not in email.strip("@"):
            raise VendorError(400, "every user needs a valid Email")
        return email

    def _profile(self, base: Record, fields: Record) -> Record:
        """Return `base` with the (schema-checked) profile fields applied, after the rules."""
        profile = {**base, **fields}
        email = self._email(profile)
        others = (u for u in self.users.values() if u["Id"] != base.get("Id"))
        if any(str(u.get("Email", "")).casefold() == email.casefold() for u in others):
            raise VendorError(409, "email already exists")
        role = next((r for r in self.roles if r["Id"] == profile.get("RoleId")), None)
        if profile.get("RoleId") is not None and role is None:
            raise VendorError(400, "unknown RoleId")
        profile["RoleName"] = role["Name"] if role is not None else None
        idp_id = profile.get("IdentityProviderId")
        idp = next((i for i in self.identity_providers if i["Id"] == idp_id), None)
        if idp_id is not None and (idp is None or idp["Enabled"] is not True):
            raise VendorError(400, "unknown or disabled IdentityProviderId")
        return profile

    def _moved(self, stored: Record, state: str) -> Record:
        """Return the stored user in `state`, if that move is allowed."""
        if state == stored["State"]:
            return dict(stored)
        if (stored["State"], state) not in MOVES:
            raise VendorError(400, f"cannot move a user from {stored['State']} to {state}")
        return {**stored, "State": state, "IsAccessible": state != "Blocked"}
