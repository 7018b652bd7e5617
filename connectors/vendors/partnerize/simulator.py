"""The Partnerize simulator: HTTP Basic keys, `limit` + `offset` (max 100), PUT resets fields."""

from __future__ import annotations

import base64
import binascii
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urlencode

from aiohttp import web

from connectors.sim.base import SimConnection, SimPerson, VendorSimulator, json_response
from connectors.sim.errors import VendorError
from connectors.sim.listing import ListingStyle, ListingView, Record, int_param
from connectors.sim.schema import Field, Schema
from connectors.sim.stats import SimStats

_GIVEN = ("Amara", "Bjorn", "Chiara", "Dev", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas")
_FAMILY = ("Okafor", "Lindqvist", "Rossi", "Patel", "Yilmaz", "Haddad", "Novak", "Sato")
_TIMEZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin")
_LOCALES = ("en_GB", "en_US", "ja_JP", "de_DE")
_COUNTRIES = ("GB", "US", "JP", "DE")
STATUSES = ("active", "inactive")
ROLES = ("admin", "standard")  # the reference's roles; an account with others is not modelled
_PUT_DEFAULTS: Record = {"status": "active", "role": "standard"}
_ID_BASE = 1_000_000
STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created

# What a user body may hold (reference field table; `phone` and `country` from the
# vendor's user schema). Unknown fields, wrong types and system fields are a 400.
USER_SCHEMA = Schema(
    {
        "firstname": Field(required=True),
        "lastname": Field(required=True),
        "email": Field(required=True),
        "password": Field(required=True),
        "status": Field(choices=STATUSES),
        "role": Field(choices=ROLES),
        "timezone": Field(),
        "locale": Field(),
        "phone": Field(),
        "country": Field(),
        "user_id": Field(read_only=True),
        "created_at": Field(read_only=True),
        "updated_at": Field(read_only=True),
        "user_api_key": Field(read_only=True),
    }
)


def _now() -> str:
    """Return the current time as the vendor writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_id(number: int) -> str:
    """Return a user id in the vendor's alphanumeric style (`1l1000003`), never a number."""
    return f"1l{_ID_BASE + number}"


def strong_enough(password: str) -> bool:
    """Tell whether a password meets the (undocumented, so strict) policy."""
    return (
        len(password) >= 12
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(c.isdigit() for c in password)
        and any(not c.isalnum() for c in password)
    )


@dataclass(frozen=True, kw_only=True)
class PartnerizeListing(ListingStyle):
    """The vendor's standard pagination: `?limit=N&offset=K`, `count` the total, hypermedia.

    Each user is wrapped as `{"user": {...}}`; any other query parameter is a 400.
    """

    default_limit: int = 100
    max_limit: int = 100

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return `limit` users from `offset`, the total and the next page's link."""
        unknown = sorted(set(request.query) - {"limit", "offset"})
        if unknown:
            raise VendorError(400, f"unknown parameter(s): {', '.join(unknown)}", "invalid")
        limit = int_param(request, "limit", self.default_limit, 1, self.max_limit)
        offset = int_param(request, "offset", 0, 0, 10**9)
        records = view.page(offset, limit)
        return {
            "execution_time": "0.01 seconds",
            "count": view.total,
            "offset": offset,
            "limit": limit,
            "users": [{"user": record} for record in records],
            "hypermedia": {"pagination": self._links(request.path, view.total, offset, limit)},
        }

    @staticmethod
    def _links(path: str, total: int, offset: int, limit: int) -> dict[str, object]:
        """Return the vendor's pagination links (paths with their query) and page counts."""

        def link(at: int) -> str:
            return f"{path}?{urlencode({'limit': limit, 'offset': at})}"

        last = max(0, (total - 1) // limit * limit)
        return {
            "total_page_count": -(-total // limit),
            "total_item_count": total,
            "first_page": link(0),
            "last_page": link(last),
            "next_page": link(offset + limit) if offset + limit < total else None,
            "previous_page": link(max(0, offset - limit)) if offset > 0 else None,
        }


class _KeyPairStats(SimStats):
    """Stats that count either key of the pair appearing in a URL."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        super().__init__("")
        self._keys = keys

    def arrived(self, now: float, url: str, query_keys: list[str]) -> None:
        """Count the request; note it if any key is in its URL."""
        super().arrived(now, url, query_keys)
        if any(key in url for key in self._keys):
            self.secret_in_url += 1


class PartnerizeSimulator(VendorSimulator):
    """Simulates Partnerize users.

    `token` is `APPLICATION_KEY:USER_API_KEY` (the HTTP Basic pair); without a colon both
    keys are the token. Only HTTP Basic is accepted, as the vendor documents. Passwords are
    held apart from users and never returned; a create answers the new user's own API key.
    """

    vendor = "partnerize"
    credentials = "--token APPLICATION_KEY:USER_API_KEY, sent as Authorization: Basic"
    given_names = _GIVEN
    family_names = _FAMILY
    listing: ClassVar[ListingStyle] = PartnerizeListing()
    users_path = "/user"
    id_key = "user_id"
    schema = USER_SCHEMA
    invalid_status = 400

    def new_token(self) -> str:
        """Return a fresh `APPLICATION_KEY:USER_API_KEY` pair."""
        return f"{secrets.token_urlsafe(12)}:{secrets.token_urlsafe(12)}"

    def configure(self) -> None:
        """Split the token into the key pair (without a colon, both keys are the token)."""
        app_key, _, user_key = self.token.partition(":")
        self.application_key, self.user_api_key = app_key, user_key or app_key

    def new_stats(self) -> SimStats:
        """Return statistics that catch either key of the pair in a URL."""
        return _KeyPairStats((self.token, self.application_key, self.user_api_key))

    def reset(self) -> None:
        """Restore seeded users; passwords of created users are forgotten."""
        super().reset()
        self.passwords: dict[str, str] = {}
        self.api_keys: dict[str, str] = {}  # each created user's own key, as the create answered

    def authorized(self, request: web.Request) -> bool:
        """Accept only `Authorization: Basic base64(application_key:user_api_key)`."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        return _basic_pair(header[6:]) == (self.application_key, self.user_api_key)

    def error_body(self, status: int, message: str, code: str) -> object:
        """Return the vendor's v1 error body: `{"error": {"message": ..., "type": "429"}}`."""
        return {"error": {"message": message, "type": str(status)}}

    def wrap(self, user: Record) -> object:
        """Return `{"user": {...}}`; write bodies are bare objects, as the reference sends."""
        return {"user": user}

    def allocate_id(self) -> str:
        """Return a fresh user id."""
        while (candidate := user_id(self._next_id)) in self.users:
            self._next_id += 1
        self._next_id += 1
        return candidate

    def connection(self) -> SimConnection:
        """Return the application key and user API key pair."""
        return SimConnection(
            secrets={"application_key": self.application_key, "user_api_key": self.user_api_key}
        )

    def user_for(self, person: SimPerson) -> Record:
        """Return an active standard user for this person."""
        return {
            "user_id": user_id(500_000 + person.index),
            "status": "active",
            "role": "standard",
            "firstname": person.given_name,
            "lastname": person.family_name,
            "email": person.email,
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`, with vendor-only fields (phone, country)."""
        name = self.seed_name(index, rng)
        zone = rng.randrange(len(_TIMEZONES))
        stamp = f"2023-{index % 12 + 1:02d}-{index % 28 + 1:02d}T08:00:00Z"
        return {
            "user_id": user_id(index + 1),
            "firstname": name.given,
            "lastname": name.family,
            "email": name.email("partners.example"),
            "status": rng.choices(STATUSES, weights=(92, 8))[0],
            "role": rng.choice(("standard", "standard", "standard", "admin")),
            "timezone": _TIMEZONES[zone],
            "locale": _LOCALES[zone],
            "phone": f"+44 20 7946 {index % 10000:04d}",
            "country": _COUNTRIES[zone],
            "created_at": stamp,
            "updated_at": stamp,
        }

    def routes(self) -> list[web.RouteDef]:
        """Return the user routes; `/user/self` comes before `/user/{id}` so it matches."""
        return [
            web.get("/user/self", self.handle_self),
            web.get("/user", self.handle_list),
            web.post("/user", self.handle_create),
            web.get("/user/{id}", self.handle_get),
            web.put("/user/{id}", self.handle_update),
            web.delete("/user/{id}", self.handle_delete),
        ]

    async def handle_self(self, request: web.Request) -> web.Response:
        """Return the user the keys belong to."""
        return json_response(
            {"user": {"user_id": "1l1", "email": "api-owner@partners.example", "role": "admin"}}
        )

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a user: firstname, lastname, email and a strong password are required."""
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        password = str(fields.pop("password"))
        if not strong_enough(password):
            raise VendorError(400, "password does not meet the policy", "invalid")
        self._check_email(fields, None)
        stamp = _now()
        user = self.add_user(
            {
                "user_id": self.allocate_id(),
                **_PUT_DEFAULTS,
                **fields,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        uid = str(user["user_id"])
        self.passwords[uid] = password
        self.api_keys[uid] = secrets.token_hex(16)
        return json_response(self.wrap({**user, "user_api_key": self.api_keys[uid]}))

    async def handle_update(self, request: web.Request) -> web.Response:
        """Replace a user: omitted fields are reset, a given password is changed."""
        stored = self._stored(request)
        uid = str(stored["user_id"])
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=False)
        password = fields.pop("password", None)
        if isinstance(password, str) and not strong_enough(password):
            raise VendorError(400, "password does not meet the policy", "invalid")
        self._check_email(fields, uid)
        user = {
            "user_id": uid,
            **_PUT_DEFAULTS,
            **fields,
            "created_at": stored["created_at"],
            "updated_at": _now(),
        }
        self.users[uid] = user
        if isinstance(password, str):
            self.passwords[uid] = password
        return json_response(self.wrap(user))

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user."""
        uid = str(self._stored(request)["user_id"])
        del self.users[uid]
        self.passwords.pop(uid, None)
        return json_response({"status": "success", "message": "User deleted."})

    def _check_email(self, fields: Record, uid: str | None) -> None:
        """Refuse an email that is not one, or that another user holds (409)."""
        email = fields.get("email")
        if email is None:
            return
        if not isinstance(email, str) or "@" not in email:
            raise VendorError(400, "email is not valid", "invalid")
        if uid is not None and _same_email(self.users[uid].get("email"), email):
            return  # a user keeping their own email cannot take another's: no scan of every user
        holder = next(
            (other for other in self.users.values() if _same_email(other.get("email"), email)),
            None,
        )
        if holder is not None and holder["user_id"] != uid:
            raise VendorError(409, "email already exists", "conflict")


def _same_email(stored: object, email: str) -> bool:
    """Tell whether a stored email is this one, ignoring case."""
    return isinstance(stored, str) and stored.casefold() == email.casefold()


def _basic_pair(encoded: str) -> tuple[str | None, str | None]:
    """Decode HTTP Basic credentials into (user, password)."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)
