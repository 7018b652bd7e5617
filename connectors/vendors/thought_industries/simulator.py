"""Thought Industries simulator: X-API-Key (v1) or Bearer (v2), page + per_page, PUT replaces."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import SimPerson, SimView, VendorSimulator, json_response
from connectors.sim.listing import ListingStyle, ListingView, PageTotalListing, Record

V1 = "/incoming/api/v1"
V2 = "/incoming/v2"
READ_ONLY = frozenset({"id", "createdAt", "updatedAt", "lastActiveAt"})
WRITABLE = frozenset(
    {
        "email",
        "firstName",
        "lastName",
        "password",
        "role",
        "groups",
        "customFields",
        "active",
        "ssoId",
        "avatarUrl",
        "language",
        "clientId",
    }
)
ROLES = ("learner", "manager", "admin")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_FAMILY = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_GROUPS = ("grp-sales", "grp-support", "grp-partners", "grp-onboarding")


def _error(status: int, message: str) -> web.Response:
    """Return a JSON error body."""
    return json_response({"error": message}, status=status)


@dataclass(frozen=True, kw_only=True)
class StrictPageTotalListing(PageTotalListing):
    """`page` + `per_page` + `total`; what the vendor rejects is a 400, not clamped."""

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return page N of SIZE and the total; 400 for a bad page or a per_page over the max."""
        for name, low, high in (
            (self.page_param, self.start, 10**9),
            (self.size_param, 1, self.max_size),
        ):
            raw = request.query.get(name)
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
            if not low <= value <= high:
                raise web.HTTPBadRequest(text=f"{name} must be between {low} and {high}")
        return super().respond(request, view)


STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


class ThoughtIndustriesSimulator(VendorSimulator):
    """Simulates Thought Industries users on both `/incoming/api/v1` and `/incoming/v2`.

    Write bodies are the bare user object (a `{"user": ...}` wrapper or any unknown field
    is 422); responses wrap it in `user`. PUT replaces every writable field: omitted ones
    are reset. A duplicate email is 409; an unknown id is 404; PATCH is not offered.
    """

    vendor = "thought_industries"
    listing: ClassVar[ListingStyle] = StrictPageTotalListing(
        page_param="page", size_param="per_page", default_size=25, max_size=100
    )
    users_path = f"{V1}/users"
    wrapper_key = "user"

    def reset(self) -> None:
        """Restore the seeded users and restart the simulated clock."""
        self._clock = 0
        super().reset()

    def authorized(self, request: web.Request) -> bool:
        """v2: `Authorization: Bearer KEY`; v1: `X-API-Key: KEY` or the `apiKey` parameter."""
        if request.path.startswith(V2 + "/"):
            return request.headers.get("Authorization") == f"Bearer {self.token}"
        given = request.headers.get("X-API-Key") or request.query.get("apiKey")
        return given == self.token

    def view(self, user: Record) -> SimView:
        """Read a user: `active` false means deactivated; there is no title."""
        email = user.get("email")
        return SimView(
            email if isinstance(email, str) else None, None, user.get("active") is not False
        )

    def user_for(self, person: SimPerson) -> Record:
        """Return an active learner for this person."""
        return {
            "id": f"ti{person.index:010d}",
            "email": person.email,
            "firstName": person.given_name,
            "lastName": person.family_name,
            "role": "learner",
            "groups": [],
            "customFields": {},
            "active": True,
            "ssoId": None,
            "avatarUrl": None,
            "language": None,
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "lastActiveAt": None,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index` with vendor-only fields the connector never maps."""
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        stamp = f"2024-{index % 12 + 1:02d}-{index % 28 + 1:02d}T08:00:00.000Z"
        return {
            "id": f"{rng.getrandbits(48):012x}{index:06d}",
            "email": f"{given.lower()}.{family.lower()}.{index + 1}@example.com",
            "firstName": given,
            "lastName": family,
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

    def routes(self) -> list[web.RouteDef]:
        """Return list/get/create/update(PUT)/delete under both API prefixes."""
        routes: list[web.RouteDef] = []
        for prefix in (V1, V2):
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
        """List users; `email` filters to that address (case-insensitive)."""
        email = request.query.get("email")
        users = list(self.users.values())
        if email is not None:
            wanted = email.strip().casefold()
            users = [u for u in users if str(u.get("email", "")).casefold() == wanted]
        view = ListingView(users, self.id_key, self.settings.faults)
        return json_response(self.listing.respond(request, view))

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a user from a bare object; 422 if invalid, 409 if the email is taken."""
        fields, problem = self._writable(await self._body(request))
        if problem is None and not fields.get("email"):
            problem = "email is required"
        if problem is not None:
            return _error(422, problem)
        if self._email_taken(str(fields["email"])):
            return _error(409, "a user with this email already exists")
        stamp = self._now()
        user: Record = {
            "id": f"{self._rng.getrandbits(48):012x}{len(self.users):06d}",
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
        self.add_user(user)
        return json_response(self.wrap(user), status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Replace the user's writable fields with the body's; omitted ones are reset."""
        stored = self._stored(request)
        fields, problem = self._writable(await self._body(request))
        if problem is None and not fields.get("email"):
            problem = "email is required"
        if problem is not None:
            return _error(422, problem)
        email = str(fields["email"]).casefold()
        if any(
            str(u.get("email", "")).casefold() == email and u["id"] != stored["id"]
            for u in self.users.values()
        ):
            return _error(409, "a user with this email already exists")
        user: Record = {key: stored[key] for key in READ_ONLY if key in stored}
        user.update(fields)
        user["updatedAt"] = self._now()
        self.users[str(user["id"])] = user
        return json_response(self.wrap(user))

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user for good; answer `{"success": true}`."""
        stored = self._stored(request)
        del self.users[str(stored["id"])]
        return json_response({"success": True})

    def _writable(self, body: object) -> tuple[Record, str | None]:
        """Return the body's writable fields, or a 422 reason for what the vendor rejects."""
        if not isinstance(body, dict):
            return {}, "expected a JSON object"
        unknown = sorted(set(body) - WRITABLE - READ_ONLY)
        if unknown:
            return {}, f"unknown field(s): {', '.join(unknown)}"
        fields = {key: value for key, value in body.items() if key in WRITABLE}
        password = fields.pop("password", None)  # write-only: never stored in view or echoed
        if password is not None and not isinstance(password, str):
            return {}, "password must be a string"
        email = fields.get("email")
        if "email" in fields and not (isinstance(email, str) and _EMAIL.match(email)):
            return {}, "email is invalid"
        if "active" in fields and not isinstance(fields["active"], bool):
            return {}, "active must be true or false"
        if "role" in fields and fields["role"] not in ROLES:
            return {}, f"role must be one of {', '.join(ROLES)}"
        groups = fields.get("groups")
        if "groups" in fields and not (
            isinstance(groups, list) and all(isinstance(g, str) for g in groups)
        ):
            return {}, "groups must be a list of group ids"
        if "customFields" in fields and not isinstance(fields["customFields"], dict):
            return {}, "customFields must be an object"
        return fields, None

    def _now(self) -> str:
        """Return a deterministic, increasing ISO 8601 timestamp."""
        self._clock += 1
        return f"2025-06-01T00:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}.000Z"
