"""The Userflow simulator: Bearer key + `Userflow-Version`, cursor listing, upsert-only users."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import ClassVar, Literal
from urllib.parse import urlencode

from aiohttp import web

from connectors.sim.base import (
    Handler,
    SimConnection,
    SimPerson,
    SimView,
    VendorSimulator,
    json_response,
)
from connectors.sim.errors import VendorError
from connectors.sim.listing import CursorListing, ListingStyle, ListingView, Record
from connectors.sim.schema import Field, Schema

API_VERSION = "2020-01-03"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LinkStyle = Literal["path", "absolute"]
# Query parameters the user listing knows; the real API's other filters are not simulated.
_LIST_PARAMS = frozenset(
    {"limit", "starting_after", "order_by", "order_by[]", "sort", "expand", "expand[]", "email"}
)
# Userflow's code for a bad parameter or body (seen in a real 400: `invalid_params`); the
# other codes are not public, so these are inferred.
_CODES = {"invalid": "invalid_params"}
_STATUS_CODES = {400: "invalid_params", 404: "not_found", 405: "method_not_allowed"}
_EXPANDABLE = frozenset({"memberships", "groups"})
_SCALARS = (str, int, float, bool)
_GIVEN = ("Noor", "Olek", "Priya", "Quinn", "Rafa", "Sanne", "Tariq", "Ulla", "Viktor", "Wen")
_FAMILY = ("Abara", "Brandt", "Castillo", "Dube", "Eriksen", "Fujita", "Gallo", "Horvat")
_PLANS = ("free", "starter", "pro", "enterprise")
_GROUPS = ("acme", "globex", "initech", "umbrella")
STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


def _now() -> str:
    """Return the current time as the vendor writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _field(user: Record, name: str) -> object:
    """Return the value a listing orders by: a top-level field or an attribute."""
    if name in ("id", "created_at"):
        return user.get(name)
    attributes = user.get("attributes")
    return attributes.get(name) if isinstance(attributes, dict) else None


def _sort_key(value: object) -> tuple[bool, str]:
    """Order values as text, nulls last."""
    return (value is None, "" if value is None else str(value))


def _email(user: Record) -> str | None:
    """Return a stored user's email attribute."""
    attributes = user.get("attributes")
    email = attributes.get("email") if isinstance(attributes, dict) else None
    return email if isinstance(email, str) else None


def _selected(
    users: Iterable[Record], email: str | None, keys: tuple[str, ...], descending: bool
) -> list[Record]:
    """Return the users with this email (all if None), ordered by `keys` if there are any."""
    kept = list(users)
    if email is not None:
        kept = [u for u in kept if (_email(u) or "").casefold() == email.casefold()]
    if not keys:
        return kept
    return sorted(
        kept, key=lambda user: [_sort_key(_field(user, key)) for key in keys], reverse=descending
    )


def _group(raw: object) -> Record:
    """Return a group object from a request's group (`{"id", "attributes"}`), or refuse it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise VendorError(400, "a group needs a string 'id'", "invalid_params")
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict):
        raise VendorError(400, "a group's 'attributes' must be an object", "invalid_params")
    return {"object": "group", "id": raw["id"], "attributes": attributes}


UPSERT_SCHEMA = Schema(
    {
        "id": Field((str,), required=True),
        "attributes": Field((dict,), nullable=True),
        "groups": Field((list,), nullable=True),
        "memberships": Field((list,), nullable=True),
        "prune_memberships": Field((bool,)),
    }
)


class UserflowSimulator(VendorSimulator):
    """Simulates Userflow users (API version 2020-01-03).

    Listing: `limit` 1..100 (else 400), `starting_after`, `order_by`/`order_by[]` (+ `sort`
    asc/desc), `expand`/`expand[]` (memberships, groups), `email`; any other parameter is
    a 400. Ordering by a field null on the cursor record is a 500, as on the real API.
    `next_page_url` repeats the query with `starting_after` last, as a path or an absolute
    URL (`next_page_url` style). Writes: `POST /users` with the id in the body upserts
    (omitted attributes kept, null clears); DELETE removes; there is no status.
    """

    vendor = "userflow"
    credentials = "Authorization: Bearer KEY"
    given_names = _GIVEN
    family_names = _FAMILY
    listing: ClassVar[ListingStyle] = CursorListing(
        default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT
    )
    users_path = "/users"
    id_key = "id"
    unique_email = False
    schema: ClassVar[Schema | None] = UPSERT_SCHEMA
    invalid_status: ClassVar[int] = 400

    def configure(self, *, next_page_url: LinkStyle = "path") -> None:
        """Take how `next_page_url` is written: a path or an absolute URL."""
        self.link_style: LinkStyle = next_page_url

    def authorized(self, request: web.Request) -> bool:
        """Accept `Authorization: Bearer KEY`."""
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, message: str, code: str) -> object:
        """Return Userflow's error shape: `{"error": {"code", "message"}}`."""
        code = _CODES.get(code, code) or _STATUS_CODES.get(status, "error")
        return {"error": {"code": code, "message": message}}

    def connection(self) -> SimConnection:
        """Return the API key; users are keyed by the HR employee id."""
        return SimConnection(
            secrets={"api_key": self.token}, settings={"id_attribute": "employee_id"}
        )

    def view(self, user: Record) -> SimView:
        """Read a user: email and title live in `attributes`; there is no inactive state."""
        attributes = user.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        return SimView(_email(user), attributes.get("title"), True)

    def user_for(self, person: SimPerson) -> Record:
        """Return a user for this person, keyed by their employee id."""
        return {
            "id": person.employee_id,
            "object": "user",
            "created_at": STAMP,
            "attributes": {
                "email": person.email,
                "name": person.full_name,
                "first_name": person.given_name,
                "last_name": person.family_name,
                "title": person.title,
            },
            "memberships": [],
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`; some lack `signed_up_at`, as real data does."""
        name = self.seed_name(index, rng)
        number = index + 1
        attributes: Record = {
            "email": name.email("app.example"),
            "name": name.full,
            "first_name": name.given,
            "last_name": name.family,
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
        """Return list, upsert, get and delete; each checks the API version header."""
        one = f"{self.users_path}/{{id}}"
        return [
            web.get(self.users_path, self._versioned(self.handle_list)),
            web.post(self.users_path, self._versioned(self.handle_upsert)),
            web.get(one, self._versioned(self.handle_get)),
            web.delete(one, self._versioned(self.handle_delete)),
        ]

    def _versioned(self, handler: Handler) -> Handler:
        """Wrap a handler: 400 unless `Userflow-Version` names the simulated version."""

        async def versioned(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Userflow-Version") != API_VERSION:
                raise VendorError(400, f"send Userflow-Version: {API_VERSION}", "invalid_version")
            return await handler(request)

        return versioned

    async def handle_list(self, request: web.Request) -> web.Response:
        """List users after the cursor, filtered and ordered as asked."""
        unknown = sorted(set(request.query) - _LIST_PARAMS)
        if unknown:
            raise VendorError(400, f"unknown parameter(s): {', '.join(unknown)}", "invalid_params")
        expand = self._expand(request)
        cursor = request.query.get("starting_after")
        if cursor is not None and cursor not in self.users:
            message = f"starting_after: User with id {cursor!r} not found"
            raise VendorError(400, message, "invalid_params")
        body = self.listing.respond(request, self._ordered(request))
        if not isinstance(body, dict):
            raise VendorError(500, "internal server error", "internal_error")
        records = body["data"]
        if isinstance(records, list):
            body["data"] = [self._expanded(user, expand) for user in records]
            if body.get("next_page_url") is not None and records:
                body["next_page_url"] = self._next_page_url(request, records[-1])
        return json_response(body)

    async def handle_upsert(self, request: web.Request) -> web.Response:
        """Create or update: given attributes are set, null clears one, omitted are kept."""
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        user_id = str(fields["id"])
        if not user_id.strip():
            raise VendorError(400, "'id' may not be empty", "invalid_params")
        given = fields.get("attributes")
        changes = given if isinstance(given, dict) else {}  # the schema allows only these
        for key, value in changes.items():
            if value is not None and not isinstance(value, (*_SCALARS, list)):
                raise VendorError(
                    400, f"attribute {key!r} has an unsupported value", "invalid_params"
                )
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
        memberships = self._memberships(stored, fields)
        user = {**stored, "attributes": attributes, "memberships": memberships}
        self.users[user_id] = user
        return json_response(user)

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user for good."""
        stored = self._stored(request)
        del self.users[str(stored["id"])]
        return json_response({"object": "deleted", "id": stored["id"], "deleted": True})

    def _expand(self, request: web.Request) -> set[str]:
        """Return the expansions asked for; 400 for one Userflow does not offer here."""
        asked = {
            part
            for key in ("expand", "expand[]")
            for value in request.query.getall(key, [])
            for part in value.split(",")
            if part
        }
        if asked - _EXPANDABLE:
            unknown = ", ".join(sorted(asked - _EXPANDABLE))
            raise VendorError(400, f"cannot expand {unknown}", "invalid_params")
        return asked

    def _ordered(self, request: web.Request) -> ListingView:
        """Filter by `email`, order by `order_by` (nulls last); a null on the cursor is a 500."""
        email = request.query.get("email")
        keys = tuple(request.query.getall("order_by", []) + request.query.getall("order_by[]", []))
        sort = request.query.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise VendorError(400, "sort must be asc or desc", "invalid_params")
        cursor = self.users.get(request.query.get("starting_after", ""))
        if keys and cursor is not None and any(_field(cursor, key) is None for key in keys):
            raise VendorError(500, "internal server error", "internal_error")
        return self.listing_view(
            (email, keys, sort), lambda users: _selected(users, email, keys, sort == "desc")
        )

    def _expanded(self, user: Record, expand: set[str]) -> Record:
        """Return a listed user with only the expansions asked for."""
        shown = {key: value for key, value in user.items() if key != "memberships"}
        memberships = user.get("memberships")
        memberships = memberships if isinstance(memberships, list) else []
        if "memberships" in expand:
            shown["memberships"] = memberships
        if "groups" in expand:
            shown["groups"] = _groups(memberships)
        return shown

    def _next_page_url(self, request: web.Request, last: Record) -> str:
        """Return the next page's link: the query as sent, `limit` kept, `starting_after` last."""
        query = [(key, value) for key, value in request.query.items() if key != "starting_after"]
        if "limit" not in request.query:
            query.append(("limit", str(DEFAULT_LIMIT)))
        query.append(("starting_after", str(last[self.id_key])))
        link = f"{request.path}?{urlencode(query)}"
        if self.link_style == "absolute":
            return f"{request.url.origin()}{link}"
        return link

    def _memberships(self, stored: Record, fields: Record) -> list[object]:
        """Return the memberships after an upsert's `groups` or `memberships` (not both)."""
        groups, memberships = fields.get("groups") or [], fields.get("memberships") or []
        if not isinstance(groups, list) or not isinstance(memberships, list):
            raise VendorError(400, "groups and memberships must be arrays", "invalid_params")
        if groups and memberships:
            raise VendorError(
                400, "only one of groups and memberships can be set", "invalid_params"
            )
        asked = [_group(raw) for raw in groups] + [
            _group(raw.get("group") if isinstance(raw, dict) else None) for raw in memberships
        ]
        current = stored.get("memberships")
        kept = [] if fields.get("prune_memberships") or not isinstance(current, list) else current
        known = {str(group["id"]) for group in _groups(kept)}
        added = [{"object": "group_membership", "group": g} for g in asked if g["id"] not in known]
        return [*kept, *added]


def _groups(memberships: list[object]) -> list[Record]:
    """Return the group objects of a membership list."""
    return [
        membership["group"]
        for membership in memberships
        if isinstance(membership, dict) and isinstance(membership.get("group"), dict)
    ]
