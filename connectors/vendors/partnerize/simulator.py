"""The Partnerize simulator: two keys, `page` + `count` (max 100), PUT resets omitted fields."""

from __future__ import annotations

import base64
import binascii
import random
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import SimConnection, SimPerson, VendorSimulator, json_response
from connectors.sim.listing import ListingStyle, ListingView, Record
from connectors.sim.settings import SimSettings
from connectors.sim.stats import SimStats

_GIVEN = ("Amara", "Bjorn", "Chiara", "Dev", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas")
_FAMILY = ("Okafor", "Lindqvist", "Rossi", "Patel", "Yilmaz", "Haddad", "Novak", "Sato")
_TIMEZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin")
_LOCALES = ("en_GB", "en_US", "ja_JP", "de_DE")
_CURRENCIES = ("GBP", "USD", "JPY", "EUR")
STATUSES = frozenset({"active", "inactive"})
REQUIRED_ON_CREATE = ("firstname", "lastname", "email", "password")
_SYSTEM_FIELDS = frozenset({"user_id", "created_at", "updated_at"})
_PUT_DEFAULTS: Record = {"status": "active", "role": "standard"}
_ID_BASE = 1000


def _now() -> str:
    """Return the current time as the vendor writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def strong_enough(password: str) -> bool:
    """Tell whether a password meets the (undocumented, so strict) policy."""
    return (
        len(password) >= 12
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(c.isdigit() for c in password)
        and any(not c.isalnum() for c in password)
    )


def _strict_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """Read an integer parameter; 400 outside [low, high], as the vendor rejects it."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between {low} and {high}")
    return value


@dataclass(frozen=True, kw_only=True)
class PartnerizeListing(ListingStyle):
    """`?page=N&count=SIZE` (SIZE at most 100, else 400); the body's `count` is the total."""

    default_size: int = 100
    max_size: int = 100

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return page N of SIZE and the total."""
        number = _strict_int(request, "page", 1, 1, 10**9)
        size = _strict_int(request, "count", self.default_size, 1, self.max_size)
        return {"users": view.page((number - 1) * size, size), "count": view.total}


STAMP = "2024-01-01T00:00:00Z"  # when fleet-seeded users were created


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
    keys are the token. Keys are accepted as headers, HTTP Basic or (as the vendor allows)
    query parameters, which the stats then report. Passwords are held apart from users and
    never returned.
    """

    vendor = "partnerize"
    listing: ClassVar[ListingStyle] = PartnerizeListing()
    users_path = "/user"
    id_key = "user_id"

    def __init__(
        self,
        *,
        users: int = 0,
        seed: int = 0,
        token: str | None = None,
        settings: SimSettings | None = None,
    ) -> None:
        pair = token or f"{secrets.token_urlsafe(12)}:{secrets.token_urlsafe(12)}"
        app_key, _, user_key = pair.partition(":")
        self.application_key, self.user_api_key = app_key, user_key or app_key
        self.passwords: dict[str, str] = {}
        self.auth_seen: Counter[str] = Counter()
        super().__init__(users=users, seed=seed, token=pair, settings=settings)

    def reset(self) -> None:
        """Restore seeded users; passwords of created users are forgotten."""
        super().reset()
        self.passwords.clear()
        self.stats = _KeyPairStats((self.token, self.application_key, self.user_api_key))

    def authorized(self, request: web.Request) -> bool:
        """Accept the key pair as headers, as HTTP Basic, or as query parameters."""
        expected = (self.application_key, self.user_api_key)
        headers = request.headers
        if "X-Application-Key" in headers or "X-User-Api-Key" in headers:
            style, given = (
                "headers",
                (
                    headers.get("X-Application-Key"),
                    headers.get("X-User-Api-Key"),
                ),
            )
        elif headers.get("Authorization", "").startswith("Basic "):
            style, given = "basic", _basic_pair(headers["Authorization"][6:])
        else:
            style = "query"
            given = (request.query.get("application_key"), request.query.get("user_api_key"))
        if given != expected:
            return False
        self.auth_seen[style] += 1
        return True

    def allocate_id(self) -> str:
        """Return a fresh numeric user id."""
        while (candidate := str(_ID_BASE + self._next_id)) in self.users:
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
            "user_id": str(500_000 + person.index),
            "status": "active",
            "role": "standard",
            "firstname": person.given_name,
            "lastname": person.family_name,
            "email": person.email,
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`, with vendor-only fields (phone, currency)."""
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        zone = rng.randrange(len(_TIMEZONES))
        stamp = f"2023-{index % 12 + 1:02d}-{index % 28 + 1:02d}T08:00:00Z"
        return {
            "user_id": str(_ID_BASE + index + 1),
            "firstname": given,
            "lastname": family,
            "email": f"{given.lower()}.{family.lower()}.{index + 1}@partners.example",
            "status": rng.choices(("active", "inactive"), weights=(92, 8))[0],
            "role": rng.choice(("standard", "standard", "standard", "admin")),
            "timezone": _TIMEZONES[zone],
            "locale": _LOCALES[zone],
            "phone": f"+44 20 7946 {index % 10000:04d}",
            "default_currency": _CURRENCIES[zone],
            "created_at": stamp,
            "updated_at": stamp,
        }

    def wrap(self, user: Record) -> object:
        """Return `{"user": {...}}`."""
        return {"user": user}

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
            {"user": {"user_id": "1", "email": "api-owner@partners.example", "role": "admin"}}
        )

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a user: firstname, lastname, email and a strong password are required."""
        fields = self.unwrap(await self._body(request))
        missing = [key for key in REQUIRED_ON_CREATE if not fields.get(key)]
        if missing:
            return json_response({"error": f"missing {', '.join(missing)}"}, status=400)
        password = fields.pop("password")
        if not isinstance(password, str) or not strong_enough(password):
            return json_response({"error": "password does not meet the policy"}, status=400)
        problem = self._invalid(fields, None)
        if problem is not None:
            return json_response({"error": problem}, status=problem_status(problem))
        stamp = _now()
        fields = {key: value for key, value in fields.items() if key not in _SYSTEM_FIELDS}
        user = self.add_user(
            {
                "user_id": self.allocate_id(),
                **_PUT_DEFAULTS,
                **fields,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        self.passwords[str(user["user_id"])] = password
        return json_response(self.wrap(user), status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Replace a user: omitted fields are reset, a given password is changed."""
        stored = self._stored(request)
        user_id = str(stored["user_id"])
        fields = self.unwrap(await self._body(request))
        password = fields.pop("password", None)
        if password is not None and (not isinstance(password, str) or not strong_enough(password)):
            return json_response({"error": "password does not meet the policy"}, status=400)
        problem = self._invalid(fields, user_id)
        if problem is not None:
            return json_response({"error": problem}, status=problem_status(problem))
        fields = {key: value for key, value in fields.items() if key not in _SYSTEM_FIELDS}
        user = {
            "user_id": user_id,
            **_PUT_DEFAULTS,
            **fields,
            "created_at": stored["created_at"],
            "updated_at": _now(),
        }
        self.users[user_id] = user
        if isinstance(password, str):
            self.passwords[user_id] = password
        return json_response(self.wrap(user))

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user."""
        stored = self._stored(request)
        user_id = str(stored["user_id"])
        del self.users[user_id]
        self.passwords.pop(user_id, None)
        return json_response({"status": "success", "message": "User deleted."})

    def _invalid(self, fields: Record, user_id: str | None) -> str | None:
        """Return why these fields are rejected, or None."""
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            return f"status must be one of {', '.join(sorted(STATUSES))}"
        email = fields.get("email")
        if email is not None and not (isinstance(email, str) and "@" in email):
            return "email is not valid"
        if isinstance(email, str):
            wanted = email.casefold()
            for other_id, other in self.users.items():
                other_email = other.get("email")
                if (
                    other_id != user_id
                    and isinstance(other_email, str)
                    and other_email.casefold() == wanted
                ):
                    return "email already exists"
        return None


def problem_status(problem: str) -> int:
    """Return the status for a rejected write: 409 for a taken email, else 400."""
    return 409 if problem == "email already exists" else 400


def _basic_pair(encoded: str) -> tuple[str | None, str | None]:
    """Decode HTTP Basic credentials into (user, password)."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)
