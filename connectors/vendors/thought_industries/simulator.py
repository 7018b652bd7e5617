"""Thought Industries simulator: v2 (Bearer, cursor) and v1 (X-API-Key, page + total)."""

from __future__ import annotations

import math
import random
import re
import time
from typing import ClassVar

import anyio
from aiohttp import web

from connectors.sim.base import (
    CONTROL_PREFIX,
    Handler,
    SimPerson,
    SimView,
    VendorSimulator,
    json_response,
)
from connectors.sim.errors import VendorError
from connectors.sim.listing import (
    ListingStyle,
    PageTotalListing,
    Record,
    TokenCursorListing,
)
from connectors.sim.schema import Field, Schema
from connectors.sim.webhooks import WebhookSender

V1 = "/incoming/api/v1"
V2 = "/incoming/v2"
ROLES = ("learner", "manager", "admin")
WRITE_ONLY = ("password", "sendInvite")  # accepted in a write body, never stored or echoed
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT = Field(nullable=True)
USER_SCHEMA = Schema(
    {
        "email": Field(required=True),
        "firstName": _TEXT,
        "lastName": _TEXT,
        "password": Field(),
        "role": Field(choices=ROLES),
        "groups": Field(types=(list,)),
        "customFields": Field(types=(dict,)),
        "active": Field(types=(bool,)),
        "ssoId": _TEXT,
        "avatarUrl": _TEXT,
        "language": _TEXT,
        "clientId": _TEXT,
        "externalCustomerId": _TEXT,
        "sendInvite": Field(types=(bool,)),
        "id": Field(read_only=True),
        "createdAt": Field(read_only=True),
        "updatedAt": Field(read_only=True),
        "lastActiveAt": Field(read_only=True),
    }
)

_GROUPS = ("grp-sales", "grp-support", "grp-partners", "grp-onboarding")
STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


def is_v2(request: web.Request) -> bool:
    """Tell whether a request is for the v2 API."""
    return request.path.startswith(V2 + "/")


class ThoughtIndustriesSimulator(VendorSimulator):
    """Simulates Thought Industries users on `/incoming/v2` and `/incoming/api/v1`.

    v2 pages by an opaque `cursor` with `pageInfo: {hasMore, cursor}` and answers with
    bare user objects; v1 pages by `page` + `per_page` with a `total` and wraps a user in
    `user`. Write bodies are bare users checked against `USER_SCHEMA` (422); PUT replaces
    every writable field; a duplicate email is 409. Every answer carries `X-RateLimit-*`
    and a 429 carries `Retry-After`, as the vendor's docs say. Errors are
    `{"errors": [{"message", "code"}]}`, the shape public clients read.
    """

    vendor = "thought_industries"
    credentials = "Authorization: Bearer KEY (v2); X-API-Key: KEY (v1)"
    listing: ClassVar[ListingStyle] = TokenCursorListing(size=100)
    v1_listing: ClassVar[ListingStyle] = PageTotalListing()
    users_path = f"{V2}/users"
    schema = USER_SCHEMA
    default_retry_after = "seconds"

    def configure(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_via: str = "header",
    ) -> None:
        """Take a webhook target (none: no webhooks are sent)."""
        self.webhooks = WebhookSender(webhook_url, webhook_secret, webhook_via)

    def changed_by_control(self, user: Record, created: bool) -> None:
        """Announce `user.created` or `user.updated` with the user as the API shows it."""
        self.webhooks.send("user.created" if created else "user.updated", dict(user))

    def reset(self) -> None:
        """Restore the seeded users and restart the simulated clock."""
        self._clock = 0
        super().reset()

    def authorized(self, request: web.Request) -> bool:
        """v2: `Authorization: Bearer KEY`; v1: `X-API-Key: KEY` or the `apiKey` parameter."""
        if is_v2(request):
            return request.headers.get("Authorization") == f"Bearer {self.token}"
        given = request.headers.get("X-API-Key") or request.query.get("apiKey")
        return given == self.token

    def error_body(self, status: int, message: str, code: str) -> object:
        """Return `{"errors": [{"message": ..., "code": ...}]}`."""
        return {"errors": [{"message": message, "code": code or "error"}]}

    def view(self, user: Record) -> SimView:
        """Read a user: `active` false means deactivated; there is no title."""
        email = user.get("email")
        return SimView(
            email if isinstance(email, str) else None, None, user.get("active") is not False
        )

    def user_for(self, person: SimPerson) -> Record:
        """Return an active learner for this person."""
        names: Record = {
            "email": person.email,
            "firstName": person.given_name,
            "lastName": person.family_name,
        }
        return _new_user(f"ti{person.index:010d}", STAMP, names)

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index` with vendor-only fields the connector never maps."""
        name = self.seed_name(index, rng)
        stamp = f"2024-{index % 12 + 1:02d}-{index % 28 + 1:02d}T08:00:00.000Z"
        return {
            "id": f"{rng.getrandbits(48):012x}{index:06d}",
            "email": name.email("example.com"),
            "firstName": name.given,
            "lastName": name.family,
            "role": rng.choices(ROLES, weights=(85, 10, 5))[0],
            "groups": sorted(rng.sample(_GROUPS, rng.randrange(3))),
            "customFields": {
                "department": rng.choice(("R&D", "Sales", "Ops")),
                "cohort": index % 7,
            },
            "active": rng.random() > 0.06,
            "ssoId": f"sso-{index + 1}" if rng.random() < 0.5 else None,
            "avatarUrl": None,
            "language": rng.choice(("en", "en-GB", "fr", "de")),
            "clientId": rng.choice(("client-a", "client-b")),
            "createdAt": stamp,
            "updatedAt": stamp,
            "lastActiveAt": stamp,
        }

    def check(self, fields: Record, *, creating: bool) -> None:
        """Refuse what `USER_SCHEMA` refuses, a malformed email and non-string group ids."""
        super().check(fields, creating=True)  # PUT replaces, so it needs a whole user too
        email = fields.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise VendorError(422, "email is invalid", "invalid")
        groups = fields.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise VendorError(422, "groups must be a list of group ids", "invalid")

    def wrap_for(self, request: web.Request, user: Record) -> object:
        """Return one user as v2 answers it (bare) or as v1 does (`{"user": ...}`)."""
        return user if is_v2(request) else {"user": user}

    def app(self) -> web.Application:
        """The base app, with the rate-limit headers added to every vendor answer."""
        app = super().app()
        app.middlewares.insert(0, self._rate_limit_headers)
        return app

    @web.middleware
    async def _rate_limit_headers(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Add `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds) when limited."""
        response = await handler(request)
        bucket = self._bucket
        if request.path.startswith(CONTROL_PREFIX) or bucket is None:
            return response
        tokens = bucket.available(anyio.current_time())
        reset = math.ceil(time.time() + (bucket.burst - tokens) / bucket.rate)
        response.headers["X-RateLimit-Limit"] = str(math.floor(bucket.burst))
        response.headers["X-RateLimit-Remaining"] = str(math.floor(tokens))
        response.headers["X-RateLimit-Reset"] = str(reset)
        return response

    def routes(self) -> list[web.RouteDef]:
        """Return list/get/create/update(PUT)/delete under both API prefixes; no PATCH."""
        routes: list[web.RouteDef] = []
        for prefix in (V2, V1):
            many, one = f"{prefix}/users", f"{prefix}/users/{{id}}"
            routes += [
                web.get(many, self.handle_list),
                web.post(many, self.handle_create),
                web.get(one, self.handle_get),
                web.put(one, self.handle_update),
                web.delete(one, self.handle_delete),
            ]
        return routes

    async def handle_list(self, request: web.Request) -> web.Response:
        """List users: v2 by cursor; v1 by page, where `email` filters (case-insensitive)."""
        if is_v2(request):
            return json_response(self.listing.respond(request, self.listing_view()))
        email = request.query.get("email")
        if email is None:
            view = self.listing_view()
        else:
            wanted = email.strip().casefold()
            view = self.listing_view(
                ("email", wanted),
                lambda users: [u for u in users if str(u.get("email", "")).casefold() == wanted],
            )
        return json_response(self.v1_listing.respond(request, view))

    async def handle_get(self, request: web.Request) -> web.Response:
        """Return one user by id; v2 also finds a user by email in the id's place."""
        return json_response(self.wrap_for(request, self._stored(request)))

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a user from a bare object; 422 if invalid, 409 if the email is taken."""
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        if self._email_taken(str(fields["email"])):
            raise VendorError(409, "a user with this email already exists", "conflict")
        user_id = f"{self._rng.getrandbits(48):012x}{len(self.users):06d}"
        user = _new_user(user_id, self._now(), _stored_fields(fields))
        self.add_user(user)
        return json_response(self.wrap_for(request, user), status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Replace the user's writable fields with the body's; omitted ones are reset."""
        stored = self._stored(request)
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=False)
        email = str(fields["email"]).casefold()
        # A user keeping their own email cannot take another's: no scan of every user.
        if email != str(stored.get("email", "")).casefold() and any(
            str(u.get("email", "")).casefold() == email and u["id"] != stored["id"]
            for u in self.users.values()
        ):
            raise VendorError(409, "a user with this email already exists", "conflict")
        user: Record = {k: stored[k] for k in ("id", "createdAt", "lastActiveAt") if k in stored}
        user.update(_stored_fields(fields))
        user["updatedAt"] = self._now()
        self.users[str(user["id"])] = user
        return json_response(self.wrap_for(request, user))

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user for good; answer `{"success": true}`."""
        stored = self._stored(request)
        del self.users[str(stored["id"])]
        return json_response({"success": True})

    def _stored(self, request: web.Request) -> Record:
        """Return the user named in the path (v2: by id or email), or raise 404."""
        key = request.match_info["id"]
        user = self.users.get(key)
        if user is None and is_v2(request):
            wanted = key.casefold()
            user = next(
                (u for u in self.users.values() if str(u.get("email", "")).casefold() == wanted),
                None,
            )
        if user is None:
            raise VendorError(404, "user not found", "not_found")
        return user

    def _now(self) -> str:
        """Return a deterministic, increasing ISO 8601 timestamp."""
        self._clock += 1
        return f"2025-06-01T00:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}.000Z"


def _stored_fields(fields: Record) -> Record:
    """Return the fields of a checked write body that the vendor stores."""
    return {key: value for key, value in fields.items() if key not in WRITE_ONLY}


def _new_user(user_id: str, stamp: str, fields: Record) -> Record:
    """Return a new active learner: the vendor's defaults, then these fields, then the stamps."""
    return {
        "id": user_id,
        "firstName": None,
        "lastName": None,
        "role": "learner",
        "groups": [],
        "customFields": {},
        "active": True,
        "ssoId": None,
        "avatarUrl": None,
        "language": None,
        **fields,
        "createdAt": stamp,
        "updatedAt": stamp,
        "lastActiveAt": None,
    }
