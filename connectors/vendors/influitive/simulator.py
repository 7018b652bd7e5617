"""Influitive simulator: `Token KEY` (+ `X_ORG_ID`), `/contacts` by `links.next`, `/members`."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterable
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import (
    SimConnection,
    SimPerson,
    SimView,
    VendorSimulator,
    json_response,
)
from connectors.sim.errors import VendorError
from connectors.sim.listing import ListingStyle, NextLinkListing, Record
from connectors.sim.schema import Field, Schema
from connectors.sim.webhooks import WebhookSender

# The custom fields this hub's admin configured (read-only through the API).
HUB_CUSTOM_FIELDS = ("salesforce_id", "region", "language", "time_zone", "persona")
# Rails' token parser takes `Token KEY` (the public clients) and `Token token="KEY"`.
_TOKEN = re.compile(r'^Token (?:token=)?"?([^"]*)"?$')
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FILTER = re.compile(r"^q\[(\w+)\]$")

_PROFILE = {
    "title": Field(nullable=True),
    "company": Field(nullable=True),
    "salesforce_id": Field(nullable=True),
    "crm_contact_id": Field(nullable=True),
    "external_ids": Field(types=(dict,)),
    "match_criteria": Field(types=(dict,)),
}
CREATE = Schema(
    {
        "email": Field(required=True),
        "name": Field(required=True),
        "source": Field(),
        "type": Field(choices=("Nominee", "Advocate")),
        **_PROFILE,
    }
)
UPDATE = Schema({"email": Field(read_only=True), "name": Field(), **_PROFILE})

_COMPANIES = ("Initech", "Globex", "Umbrella", "Hooli", "Stark Industries")
_TITLES = ("Engineer", "Marketing Manager", "VP Sales", "Customer Success Lead", None)
_LEVELS = ("Insider", "Advocate", "Champion", "Legend")

STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded members were created
LOCKED_AT = "2025-01-01T00:00:00Z"


class InfluitiveSimulator(VendorSimulator):
    """Simulates Influitive's member API, hub generation, or platform with `org_id` set.

    Members are flat JSON objects (no wrapper); writes are `POST /members` and `PATCH
    /members/{id}`; `POST /members/{id}/lock|unlock` is the only deactivation; there is no
    delete. A 401 is empty with `WWW-Authenticate: Token realm=Api`, as Influitive's own
    OpenAPI shows; other refusals are `{"errors": [message]}` (inferred).
    """

    vendor = "influitive"
    credentials = "Authorization: Token TOKEN (the platform generation also sends X_ORG_ID)"
    listing: ClassVar[ListingStyle] = NextLinkListing(records_key="contacts")
    users_path = "/members"
    schema = CREATE

    def configure(
        self,
        *,
        org_id: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_via: str = "header",
    ) -> None:
        """Take the platform generation's org id (None: the hub) and a webhook target."""
        self.org_id = org_id
        self.webhooks = WebhookSender(webhook_url, webhook_secret, webhook_via)

    def changed_by_control(self, user: Record, created: bool) -> None:
        """Announce `advocate.created` or `advocate.updated` with the member's id and email."""
        event = "advocate.created" if created else "advocate.updated"
        data = {key: user.get(key) for key in ("id", "uuid", "email", "name", "type")}
        self.webhooks.send(event, data)

    def authorized(self, request: web.Request) -> bool:
        """Accept the token (and, on the platform generation, the matching `X_ORG_ID`)."""
        match = _TOKEN.match(request.headers.get("Authorization", ""))
        if match is None or match.group(1) != self.token:
            return False
        return self.org_id is None or request.headers.get("X_ORG_ID") == self.org_id

    def connection(self) -> SimConnection:
        """Return the API key and the generation setting (with the org id on the platform)."""
        settings: dict[str, object] = {"api": "hub"}
        if self.org_id is not None:
            settings = {"api": "platform", "org_id": self.org_id}
        return SimConnection(secrets={"api_key": self.token}, settings=settings)

    def view(self, user: Record) -> SimView:
        """Read a member: active unless locked."""
        email = user.get("email")
        return SimView(
            email=email if isinstance(email, str) else None,
            title=user.get("title"),
            active=user.get("locked_at") is None,
        )

    def error_response(self, error: VendorError) -> web.Response:
        """Answer 401 empty with the Rails token challenge; other refusals as JSON errors."""
        if error.status == 401:
            headers = {"WWW-Authenticate": "Token realm=Api"}
            return web.Response(status=401, headers=headers, content_type="text/plain")
        return json_response({"errors": [error.message]}, error.status)

    def user_for(self, person: SimPerson) -> Record:
        """Return an active member for this person."""
        return self._member(
            person.index + 1,
            person.email,
            person.given_name,
            person.family_name,
            title=person.title,
            created_at=STAMP,
        )

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded member number `index`: integer id, custom fields, some locked."""
        name = self.seed_name(index, rng)
        member = self._member(
            index + 1,
            name.email("example.com"),
            name.given,
            name.family,
            title=rng.choice(_TITLES),
            created_at=f"2023-{index % 12 + 1:02d}-01T09:00:00Z",
        )
        custom = dict.fromkeys(HUB_CUSTOM_FIELDS)
        custom["language"] = rng.choice(("en-US", "en-GB", "fr-FR", "de-DE", None))
        custom["region"] = rng.choice(("EMEA", "AMER", "APAC", None))
        member.update(
            company=rng.choice(_COMPANIES),
            type=rng.choice(("Advocate", "Nominee")),
            level={"id": 1, "name": rng.choice(_LEVELS)},
            current_points=rng.randrange(20_000),
            custom_fields=custom,
            locked_at=LOCKED_AT if rng.random() < 0.08 else None,
        )
        return member

    def routes(self) -> list[web.RouteDef]:
        """Return the member routes: listing, lookup, create, read, patch, lock, unlock."""
        one = f"{self.users_path}/{{id}}"
        return [
            web.get("/contacts", self.handle_list),
            web.get(self.users_path, self.handle_lookup),
            web.post(self.users_path, self.handle_create),
            web.get(one, self.handle_get),
            web.patch(one, self.handle_update),
            web.post(f"{one}/lock", self.handle_lock),
            web.post(f"{one}/unlock", self.handle_lock),
            web.post("/events", self.handle_event),
        ]

    async def handle_list(self, request: web.Request) -> web.Response:
        """List members; `q[status]=all` includes locked ones, `q[FIELD]=V` filters (inferred)."""
        filters: list[tuple[str, str]] = []
        for key, value in request.query.items():
            match = _FILTER.match(key)
            if match is None:
                continue
            field = match.group(1)
            if field == "status" and value not in ("all", "active", "locked"):
                raise VendorError(400, "q[status] must be all, active or locked", "invalid")
            filters.append((field, value))
        if "q[status]" not in request.query:
            filters.append(("status", "active"))
        kept = tuple(filters)
        view = self.listing_view(kept, lambda users: _filtered(users, kept))
        return json_response(self.listing.respond(request, view))

    async def handle_lookup(self, request: web.Request) -> web.Response:
        """`GET /members?email=` answers a list of the members with that email."""
        email = request.query.get("email")
        if not email:
            raise VendorError(400, "email is required", "invalid")
        wanted = email.strip().casefold()
        found = [u for u in self.users.values() if str(u.get("email", "")).casefold() == wanted]
        return json_response(found)

    async def handle_get(self, request: web.Request) -> web.Response:
        """Return one member by id or uuid, or 404."""
        return json_response(self._stored(request))

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a member; 422 on an invalid email, 409 if the email is taken (inferred)."""
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        if not _EMAIL.match(str(fields["email"])):
            raise VendorError(422, "email is invalid", "invalid")
        if self._email_taken(str(fields["email"])):
            raise VendorError(409, "email has already been taken", "conflict")
        user = self.add_user(self.new_user(fields))
        return json_response(user, status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Merge the given fields; `name` also sets first and last name."""
        stored = self._stored(request)
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=False)
        user = self.apply_update(stored, {**fields, **_split(fields.get("name"))})
        self.users[str(user[self.id_key])] = user
        return json_response(user)

    async def handle_lock(self, request: web.Request) -> web.Response:
        """Lock or unlock the member named in the path."""
        stored = self._stored(request)
        locking = request.path.endswith("/lock")
        stamp = (stored.get("locked_at") or LOCKED_AT) if locking else None
        self.users[str(stored[self.id_key])] = {**stored, "locked_at": stamp}
        return json_response({"success": "ok"})

    async def handle_event(self, request: web.Request) -> web.Response:
        """Log an event; an unknown email silently creates a profile (why we never call it)."""
        body = await self._body(request)
        contact = body.get("contact") if isinstance(body, dict) else None
        email = contact.get("email") if isinstance(contact, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise VendorError(422, "contact email is invalid", "invalid")
        if not self._email_taken(email):
            self.add_user(self.new_user({"email": email, "name": email.split("@")[0]}))
        return json_response({"id": 1, "points": 0}, status=201)

    def check(self, fields: Record, *, creating: bool) -> None:
        """Refuse unknown fields, wrong types, missing ones; `email` cannot be changed."""
        problem = (CREATE if creating else UPDATE).problem(fields, creating=creating)
        if problem is not None:
            raise VendorError(self.invalid_status, problem, "invalid")

    def new_user(self, fields: Record) -> Record:
        """Return a created member with the next integer id, uninvited unless typed."""
        next_id = max((int(key) for key in self.users if key.isdigit()), default=0) + 1
        parts = _split(fields.get("name"))
        member = self._member(
            next_id,
            str(fields["email"]),
            parts.get("first_name"),
            parts.get("last_name"),
            title=None,
            created_at="2025-06-01T00:00:00Z",
        )
        return {**member, **fields, "custom_fields": dict.fromkeys(HUB_CUSTOM_FIELDS)}

    def _member(
        self,
        member_id: int,
        email: str,
        given: object,
        family: object,
        *,
        title: object,
        created_at: str,
    ) -> Record:
        """Return a member record as the API shows it (the Go client's `Member` fields)."""
        name = " ".join(str(part) for part in (given, family) if part)
        return {
            "id": member_id,
            "uuid": str(uuid.UUID(int=self.seed * 10**9 + member_id)),
            "email": email,
            "name": name,
            "first_name": given,
            "last_name": family,
            "title": title,
            "company": None,
            "type": "Nominee",
            "source": None,
            "created_at": created_at,
            "joined_at": None,
            "locked_at": None,
            "custom_fields": {},
            "current_points": 0,
            "lifetime_points": 0,
            "level": {"id": 1, "name": "Insider"},
        }

    def _stored(self, request: web.Request) -> Record:
        """Return the member named in the path by id or uuid, or raise 404."""
        key = request.match_info["id"]
        user = self.users.get(key) or next(
            (u for u in self.users.values() if u.get("uuid") == key), None
        )
        if user is None:
            raise VendorError(404, "not found", "not_found")
        return user


def _filtered(users: Iterable[Record], filters: tuple[tuple[str, str], ...]) -> list[Record]:
    """Return the members every filter keeps: `status` by lock, any other field by its text."""
    kept = list(users)
    for field, value in filters:
        if field != "status":
            kept = [u for u in kept if str(u.get(field)) == value]
        elif value != "all":
            kept = [u for u in kept if (u.get("locked_at") is None) == (value == "active")]
    return kept


def _split(name: object) -> dict[str, object]:
    """Return first and last name from a full `name` (first word, then the rest)."""
    if not isinstance(name, str) or not name.strip():
        return {}
    given, _, family = name.strip().partition(" ")
    return {"first_name": given, "last_name": family or None}
