"""The Userflow simulator: Bearer key + `Userflow-Version`, cursor listing, upsert-only users."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import (
    Handler,
    SimConnection,
    SimPerson,
    SimView,
    VendorSimulator,
    json_response,
)
from connectors.sim.listing import CursorListing, ListingStyle, ListingView, Record

API_VERSION = "2020-01-03"
MAX_LIMIT = 100
_UPSERT_KEYS = frozenset({"attributes", "group_id", "group_attributes"})
_GIVEN = ("Noor", "Olek", "Priya", "Quinn", "Rafa", "Sanne", "Tariq", "Ulla", "Viktor", "Wen")
_FAMILY = ("Abara", "Brandt", "Castillo", "Dube", "Eriksen", "Fujita", "Gallo", "Horvat")
_PLANS = ("free", "starter", "pro", "enterprise")
_GROUPS = ("acme", "globex", "initech", "umbrella")


def _now() -> str:
    """Return the current time as the vendor writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, code: str, message: str) -> web.Response:
    """Return a Userflow-style error body."""
    return json_response({"error": {"code": code, "message": message}}, status=status)


def _field(user: Record, name: str) -> object:
    """Return the value a listing orders by: a top-level field or an attribute."""
    if name in ("id", "created_at"):
        return user.get(name)
    attributes = user.get("attributes")
    return attributes.get(name) if isinstance(attributes, dict) else None


def _sort_key(value: object) -> tuple[bool, str]:
    """Order values as text, nulls last."""
    return (value is None, "" if value is None else str(value))


STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


class UserflowSimulator(VendorSimulator):
    """Simulates Userflow users.

    Listing: `limit` 1..100 (else 400), `starting_after`, `order_by` (+ `sort` asc/desc),
    `expand=memberships`; ordering by a field that is null on the cursor record is a 500,
    as on the real API. Writes: `POST /users/{id}` upserts (omitted attributes kept, null
    clears), DELETE removes; there is no POST /users and no status.
    """

    vendor = "userflow"
    listing: ClassVar[ListingStyle] = CursorListing(default_limit=20, max_limit=MAX_LIMIT)
    users_path = "/users"
    id_key = "id"
    unique_email = False

    def authorized(self, request: web.Request) -> bool:
        """Accept `Authorization: Bearer KEY`."""
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def connection(self) -> SimConnection:
        """Return the API key; users are keyed by the HR employee id."""
        return SimConnection(
            secrets={"api_key": self.token}, settings={"id_attribute": "employee_id"}
        )

    def view(self, user: Record) -> SimView:
        """Read a user: email and title live in `attributes`; there is no inactive state."""
        attributes = user.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        email = attributes.get("email")
        return SimView(email if isinstance(email, str) else None, attributes.get("title"), True)

    def user_for(self, person: SimPerson) -> Record:
        """Return a user for this person, keyed by their employee id."""
        return {
            "id": person.employee_id,
            "object": "user",
            "created_at": STAMP,
            "attributes": {
                "email": person.email,
                "name": f"{person.given_name} {person.family_name}",
                "first_name": person.given_name,
                "last_name": person.family_name,
                "title": person.title,
            },
            "memberships": [],
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`; some lack `signed_up_at`, as real data does."""
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        number = index + 1
        attributes: Record = {
            "email": f"{given.lower()}.{family.lower()}.{number}@app.example",
            "name": f"{given} {family}",
            "first_name": given,
            "last_name": family,
            "role": rng.choice(("member", "member", "owner")),
            "locale": rng.choice(("en-US", "en-GB", "nl-NL")),
            "plan": rng.choice(_PLANS),
            "signed_up_at": None if rng.random() < 0.05 else f"2024-02-{number % 28 + 1:02d}",
        }
        group = rng.choice(_GROUPS)
        return {
            "id": f"usr_{number:06d}",
            "object": "user",
            "created_at": f"2024-01-01T00:00:00.{number:06d}Z",
            "attributes": {key: value for key, value in attributes.items() if value is not None},
            "memberships": [
                {
                    "object": "group_membership",
                    "group": {"object": "group", "id": group, "attributes": {"name": group}},
                }
            ],
        }

    def routes(self) -> list[web.RouteDef]:
        """Return list, get, upsert and delete; each checks the API version header."""
        one = f"{self.users_path}/{{id}}"
        return [
            web.get(self.users_path, self._versioned(self.handle_list)),
            web.get(one, self._versioned(self.handle_get)),
            web.post(one, self._versioned(self.handle_upsert)),
            web.delete(one, self._versioned(self.handle_delete)),
        ]

    def _versioned(self, handler: Handler) -> Handler:
        """Wrap a handler: 400 unless `Userflow-Version` names the supported version."""

        async def versioned(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Userflow-Version") != API_VERSION:
                return _error(400, "invalid_version", f"send Userflow-Version: {API_VERSION}")
            return await handler(request)

        return versioned

    async def handle_list(self, request: web.Request) -> web.Response:
        """List users after the cursor, ordered as asked."""
        raw_limit = request.query.get("limit")
        if raw_limit is not None and not (raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
            return _error(400, "invalid_limit", f"limit must be 1 to {MAX_LIMIT}")
        users = list(self.users.values())
        order_by = request.query.get("order_by")
        sort = request.query.get("sort", "asc")
        if sort not in ("asc", "desc"):
            return _error(400, "invalid_sort", "sort must be asc or desc")
        if order_by:
            users.sort(key=lambda user: _sort_key(_field(user, order_by)), reverse=sort == "desc")
            cursor = self.users.get(request.query.get("starting_after", ""))
            if cursor is not None and _field(cursor, order_by) is None:
                return _error(500, "internal_error", "internal server error")
        body = self.listing.respond(request, ListingView(users, self.id_key, self.settings.faults))
        expand = request.query.get("expand", "").split(",")
        if "memberships" not in expand and isinstance(body, dict):
            body["data"] = [
                {key: value for key, value in user.items() if key != "memberships"}
                for user in body["data"]
            ]
        return json_response(body)

    async def handle_upsert(self, request: web.Request) -> web.Response:
        """Create or update: given attributes are set, null clears one, omitted are kept."""
        body = await self._body(request)
        if not isinstance(body, dict):
            return _error(400, "invalid_body", "expected a JSON object")
        unknown = sorted(set(body) - _UPSERT_KEYS)
        if unknown:
            return _error(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
        changes = body.get("attributes", {})
        if not isinstance(changes, dict):
            return _error(400, "invalid_body", "attributes must be an object")
        user_id = request.match_info["id"]
        stored = self.users.get(user_id) or {
            "id": user_id,
            "object": "user",
            "created_at": _now(),
            "attributes": {},
            "memberships": [],
        }
        attributes = dict(stored["attributes"]) if isinstance(stored["attributes"], dict) else {}
        for key, value in changes.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        memberships = list(stored["memberships"]) if isinstance(stored["memberships"], list) else []
        group_id = body.get("group_id")
        if isinstance(group_id, str) and group_id not in _groups(memberships):
            group_attributes = body.get("group_attributes")
            memberships.append(
                {
                    "object": "group_membership",
                    "group": {
                        "object": "group",
                        "id": group_id,
                        "attributes": group_attributes
                        if isinstance(group_attributes, dict)
                        else {},
                    },
                }
            )
        user = {**stored, "attributes": attributes, "memberships": memberships}
        self.users[user_id] = user
        return json_response(user)

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user for good."""
        stored = self._stored(request)
        del self.users[str(stored["id"])]
        return json_response({"object": "deleted", "id": stored["id"], "deleted": True})


def _groups(memberships: list[object]) -> set[str]:
    """Return the group ids of a membership list."""
    ids = set()
    for membership in memberships:
        group = membership.get("group") if isinstance(membership, dict) else None
        if isinstance(group, dict) and isinstance(group.get("id"), str):
            ids.add(str(group["id"]))
    return ids
