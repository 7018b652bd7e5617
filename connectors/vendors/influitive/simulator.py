"""Influitive AdvocateHub simulator: `Token token=KEY`, page-only listing, `advocate` wrapper."""

from __future__ import annotations

import random
import re
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import SimPerson, VendorSimulator, json_response
from connectors.sim.listing import ListingStyle, PageNumberListing, Record, int_param

API = "/api/v1"
# The custom fields this hub's admin configured; writes to any other key vanish silently.
HUB_CUSTOM_FIELDS = ("salesforce_id", "region", "language", "time_zone", "persona")
WRITABLE = frozenset(
    {"email", "first_name", "last_name", "title", "company", "status", "groups", "custom_fields"}
)
STATUSES = ("active", "inactive")
_TOKEN = re.compile(r'^Token token="?([^"]*)"?$')
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_FAMILY = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_COMPANIES = ("Initech", "Globex", "Umbrella", "Hooli", "Stark Industries")
_TITLES = ("Engineer", "Marketing Manager", "VP Sales", "Customer Success Lead", None)
_GROUPS = ("Champions", "Beta Testers", "Speakers", "Reference Customers")
_LEVELS = ("Insider", "Advocate", "Champion", "Legend")


STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


class InfluitiveSimulator(VendorSimulator):
    """Simulates an AdvocateHub: `{"advocates": [...]}` pages of 25 until an empty one.

    Writes are Rails-like: the body must be `{"advocate": {...}}` (else 400), unpermitted
    attributes are dropped, PUT/PATCH merge the given attributes, validation fails with 422.
    """

    vendor = "influitive"
    listing: ClassVar[ListingStyle] = PageNumberListing(
        page_param="page", default_size=25, records_key="advocates"
    )
    users_path = f"{API}/advocates"
    wrapper_key = "advocate"
    unique_email = False  # checked in `_validate`, answered 422 like a Rails validation

    def authorized(self, request: web.Request) -> bool:
        """Accept `Authorization: Token token=KEY` (the key optionally quoted)."""
        match = _TOKEN.match(request.headers.get("Authorization", ""))
        return match is not None and match.group(1) == self.token

    def user_for(self, person: SimPerson) -> Record:
        """Return an active advocate for this person."""
        return {
            "id": person.index + 1,
            "email": person.email,
            "first_name": person.given_name,
            "last_name": person.family_name,
            "title": person.title,
            "company": None,
            "status": "active",
            "groups": [],
            "custom_fields": dict.fromkeys(HUB_CUSTOM_FIELDS),
            "level": "Insider",
            "points": 0,
            "created_at": STAMP,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded advocate number `index`: integer id, custom fields, hub-only fields."""
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        custom: dict[str, object] = dict.fromkeys(HUB_CUSTOM_FIELDS)
        custom["salesforce_id"] = f"003{rng.randrange(10**12):012d}"
        custom["region"] = rng.choice(("EMEA", "AMER", "APAC", None))
        custom["language"] = rng.choice(("en-US", "en-GB", "fr-FR", "de-DE", None))
        return {
            "id": index + 1,
            "email": f"{given.lower()}.{family.lower()}.{index + 1}@example.com",
            "first_name": given,
            "last_name": family,
            "title": rng.choice(_TITLES),
            "company": rng.choice(_COMPANIES),
            "status": rng.choices(STATUSES, weights=(92, 8))[0],
            "groups": sorted(rng.sample(_GROUPS, rng.randrange(3))),
            "custom_fields": custom,
            "level": rng.choice(_LEVELS),
            "points": rng.randrange(20_000),
            "created_at": f"2023-{index % 12 + 1:02d}-01T09:00:00Z",
        }

    def routes(self) -> list[web.RouteDef]:
        """Return the advocate routes, plus the events endpoint that upserts by email."""
        return [*super().routes(), web.post(f"{API}/events", self.handle_event)]

    async def handle_list(self, request: web.Request) -> web.Response:
        """List advocates; an `email` query narrows to that advocate (as real hubs do)."""
        email = request.query.get("email")
        if email is None:
            return await super().handle_list(request)
        wanted = email.strip().casefold()
        found = [u for u in self.users.values() if str(u.get("email", "")).casefold() == wanted]
        page = int_param(request, "page", 1, 1, 10**9)
        return json_response({"advocates": found if page == 1 else []})

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create an advocate; 422 if email, first or last name is missing or taken."""
        fields = self._permitted(self.unwrap(await self._body(request)))
        fields.setdefault("status", "active")
        errors = self._validate(fields, None)
        for key in ("email", "first_name", "last_name"):
            if not fields.get(key):
                errors.setdefault(key, []).append("can't be blank")
        if errors:
            return json_response({"errors": errors}, status=422)
        user = self.new_user(fields)
        self.add_user(user)
        return json_response(self.wrap(user), status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Merge the permitted attributes into the advocate; 422 on invalid values."""
        stored = self._stored(request)
        fields = self._permitted(self.unwrap(await self._body(request)))
        errors = self._validate(fields, str(stored["id"]))
        if errors:
            return json_response({"errors": errors}, status=422)
        given = fields.get("custom_fields")
        if isinstance(given, dict):
            current = stored.get("custom_fields")
            fields["custom_fields"] = {**(current if isinstance(current, dict) else {}), **given}
        user = self.apply_update(stored, fields)
        self.users[str(user["id"])] = user
        return json_response(self.wrap(user))

    async def handle_event(self, request: web.Request) -> web.Response:
        """Record an event; an unknown email silently creates a profile (why we never call it)."""
        body = await self._body(request)
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            return json_response({"errors": {"email": ["is invalid"]}}, status=422)
        if not self._email_taken(email):
            self.add_user(self.new_user({"email": email, "status": "active"}))
        return json_response({"ok": True}, status=201)

    def new_user(self, fields: Record) -> Record:
        """Return a created advocate with the next integer id and every hub custom field."""
        next_id = max((int(key) for key in self.users), default=0) + 1
        custom: dict[str, object] = dict.fromkeys(HUB_CUSTOM_FIELDS)
        given = fields.get("custom_fields")
        if isinstance(given, dict):
            custom.update(given)
        return {
            "id": next_id,
            "title": None,
            "company": None,
            "groups": [],
            **fields,
            "custom_fields": custom,
            "level": "Insider",
            "points": 0,
            "created_at": "2025-01-01T00:00:00Z",
        }

    def _permitted(self, fields: Record) -> Record:
        """Keep permitted attributes and configured custom fields; drop the rest silently."""
        permitted = {key: value for key, value in fields.items() if key in WRITABLE}
        custom = permitted.get("custom_fields")
        if "custom_fields" in permitted:
            if not isinstance(custom, dict):
                raise web.HTTPUnprocessableEntity(
                    text='{"errors": {"custom_fields": ["must be an object"]}}',
                    content_type="application/json",
                )
            permitted["custom_fields"] = {k: v for k, v in custom.items() if k in HUB_CUSTOM_FIELDS}
        return permitted

    def _validate(self, fields: Record, own_id: str | None) -> dict[str, list[str]]:
        """Return Rails-style validation errors for the given attributes."""
        errors: dict[str, list[str]] = {}
        if "email" in fields:
            email = fields["email"]
            if not isinstance(email, str) or not _EMAIL.match(email):
                errors["email"] = ["is invalid"]
            elif any(
                str(user.get("email", "")).casefold() == email.casefold() and key != own_id
                for key, user in self.users.items()
            ):
                errors["email"] = ["has already been taken"]
        if "status" in fields and fields["status"] not in STATUSES:
            errors["status"] = ["is not included in the list"]
        groups = fields.get("groups")
        if "groups" in fields and (
            not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)
        ):
            errors["groups"] = ["must be a list of group names"]
        for key in ("first_name", "last_name"):
            if key in fields and not (isinstance(fields[key], str) and fields[key]):
                errors[key] = ["can't be blank"]
        return errors
