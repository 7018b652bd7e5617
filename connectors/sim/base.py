"""The vendor simulator base: users in memory, a rate limit, latency, faults, `/_sim/`."""

from __future__ import annotations

import asyncio
import copy
import math
import random
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import ClassVar
from urllib.parse import unquote_plus

import anyio
import orjson
from aiohttp import web

from connectors.sim.errors import VendorError
from connectors.sim.listing import ListingStyle, ListingView, Record
from connectors.sim.names import FAMILY_NAMES, GIVEN_NAMES, SeedName
from connectors.sim.ratelimit import TokenBucket
from connectors.sim.schema import Schema
from connectors.sim.settings import SettingsError, SimSettings
from connectors.sim.stats import SimStats
from connectors.sim.users import Select, Users

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTROL_PREFIX = "/_sim/"
CLIENT_GONE = 499  # recorded for a request the client gave up on before it was answered
_BODY_HEAD = b'{"users": ['
_BODY_PADDING = b" " * 65_536  # JSON whitespace: the body is never complete JSON


def json_response(body: object, status: int = 200) -> web.Response:
    """Return a JSON response."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


@dataclass(frozen=True, slots=True)
class SimConnection:
    """What a connector needs to talk to one simulator: its secrets and settings."""

    secrets: dict[str, str]
    settings: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimPerson:
    """A person as the fleet seeds them into any vendor."""

    index: int
    employee_id: str
    email: str
    given_name: str
    family_name: str
    title: str | None = None

    @property
    def full_name(self) -> str:
        """Return "Given Family"."""
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True, slots=True)
class SimView:
    """A stored user read the same way whatever the vendor: email, title, active."""

    email: str | None
    title: object
    active: bool


class VendorSimulator(ABC):
    """An aiohttp app that behaves like one vendor's user API.

    A vendor is a small subclass: `vendor`, `listing` (its pagination), `wrapper_key`,
    `authorized` (which headers, the accepted token) and `seed_user`; `configure` takes its
    own constructor keywords; override `apply_update`, `new_user` or `routes` where the
    vendor's semantics differ.
    """

    vendor: ClassVar[str]
    credentials: ClassVar[str]  # how the accepted token is sent, for `syncd sim --help`
    listing: ClassVar[ListingStyle]
    users_path: ClassVar[str] = "/users"
    id_key: ClassVar[str] = "id"
    wrapper_key: ClassVar[str | None] = None  # single-user bodies are {wrapper_key: user}
    unique_email: ClassVar[bool] = True  # creating a second user with an email is a 409
    schema: ClassVar[Schema | None] = None  # what a write body may hold; None: anything
    invalid_status: ClassVar[int] = 422  # the status of a body the schema rejects
    # A server-side limit is on unless a test turns it off; real vendors all have one.
    default_rate: ClassVar[float | None] = 50.0
    default_retry_after: ClassVar[str] = "none"  # no reference documents Retry-After
    given_names: ClassVar[tuple[str, ...]] = GIVEN_NAMES  # what seeded users are called
    family_names: ClassVar[tuple[str, ...]] = FAMILY_NAMES

    def __init__(
        self,
        *,
        users: int = 0,
        seed: int = 0,
        token: str | None = None,
        settings: SimSettings | None = None,
        **options: object,
    ) -> None:
        self.token = token or self.new_token()
        self.seed = seed
        self.user_count = users
        self.settings = settings or SimSettings(
            rate=self.default_rate, retry_after=self.default_retry_after
        )
        self._initial_settings = copy.deepcopy(self.settings)
        self.users: MutableMapping[str, Record] = Users(self.id_key)
        self.configure(**options)
        self.reset()

    # -- what a vendor declares ------------------------------------------------------------

    def new_token(self) -> str:
        """Return the accepted token when none is given."""
        return secrets.token_urlsafe(16)

    def configure(self) -> None:  # noqa: B027 - a vendor without options needs nothing here
        """Take the vendor's own constructor keywords, once the token and seed are set."""

    def new_stats(self) -> SimStats:
        """Return fresh statistics that know which secrets must never be in a URL."""
        return SimStats(self.token)

    @abstractmethod
    def authorized(self, request: web.Request) -> bool:
        """Tell whether the request carries the vendor's accepted credentials."""

    @abstractmethod
    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return the stored form of seeded user number `index` (its id included)."""

    def seed_name(self, index: int, rng: random.Random) -> SeedName:
        """Draw seeded user number `index`'s name: given, then family, from the vendor's pools."""
        return SeedName(rng.choice(self.given_names), rng.choice(self.family_names), index + 1)

    def connection(self) -> SimConnection:
        """Return the secrets and settings a connector needs to talk to this simulator."""
        return SimConnection(secrets={"api_key": self.token})

    def view(self, user: Record) -> SimView:
        """Read a stored user's email, title and whether it is active."""
        email = user.get("email")
        return SimView(
            email=email if isinstance(email, str) else None,
            title=user.get("title"),
            active=user.get("status", "active") == "active",
        )

    @abstractmethod
    def user_for(self, person: SimPerson) -> Record:
        """Return the stored form of an active user for this person (the fleet seeds these)."""

    def new_user(self, fields: Record) -> Record:
        """Return the stored form of a user created through the API."""
        return {self.id_key: self.allocate_id(), **fields}

    def apply_update(self, stored: Record, fields: Record) -> Record:
        """Return a stored user after an update; the default merges the given fields."""
        return {**stored, **fields, self.id_key: stored[self.id_key]}

    def changed_by_control(self, user: Record, created: bool) -> None:  # noqa: B027
        """A user was stored through `/_sim/users`; vendors that send webhooks announce it."""

    def error_body(self, status: int, message: str, code: str) -> object:
        """Return the vendor's error body; vendors override this with their own shape."""
        return {"error": message}

    def unwrap(self, body: object) -> Record:
        """Return the user fields inside a request body."""
        if self.wrapper_key is not None:
            if not isinstance(body, dict) or set(body) != {self.wrapper_key}:
                raise VendorError(400, f"expected a JSON object with one key {self.wrapper_key!r}")
            body = body[self.wrapper_key]
        if not isinstance(body, dict):
            raise VendorError(400, "expected a JSON object")
        return dict(body)

    def check(self, fields: Record, *, creating: bool) -> None:
        """Refuse a write body the vendor would refuse (unknown fields, wrong types, missing)."""
        if self.schema is not None:
            problem = self.schema.problem(fields, creating=creating)
            if problem is not None:
                raise VendorError(self.invalid_status, problem, "invalid")

    def wrap(self, user: Record) -> object:
        """Return the response body for one user."""
        return {self.wrapper_key: user} if self.wrapper_key is not None else user

    def routes(self) -> list[web.RouteDef]:
        """Return the vendor routes; the default is list/get/create/update/delete on users."""
        one = f"{self.users_path}/{{id}}"
        return [
            web.get(self.users_path, self.handle_list),
            web.post(self.users_path, self.handle_create),
            web.get(one, self.handle_get),
            web.put(one, self.handle_update),
            web.patch(one, self.handle_update),
            web.delete(one, self.handle_delete),
        ]

    # -- state -----------------------------------------------------------------------------

    def allocate_id(self) -> str:
        """Return a fresh user id."""
        while (candidate := f"u{self._next_id:06d}") in self.users:
            self._next_id += 1
        self._next_id += 1
        return candidate

    def add_user(self, user: Record) -> Record:
        """Store a user exactly as given, allocating an id if it has none."""
        if not user.get(self.id_key):
            user = {self.id_key: self.allocate_id(), **user}
        self.users[str(user[self.id_key])] = user
        return user

    def reset(self) -> None:
        """Restore the seeded users and initial settings, and clear the statistics."""
        self.users.clear()
        self._next_id = 1
        rng = random.Random(self.seed)  # noqa: S311
        for index in range(self.user_count):
            self.add_user(self.seed_user(index, rng))
        self._next_id = self.user_count + 1
        self.settings = copy.deepcopy(self._initial_settings)
        self.stats = self.new_stats()
        self._faults_injected = 0
        # Simulated traffic and data, not security: a seeded generator keeps runs repeatable.
        self._rng = random.Random(self.seed)  # noqa: S311
        self._bucket: TokenBucket | None = None

    # -- the app ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """Build the aiohttp application: vendor routes plus the `/_sim/` control API."""
        app = web.Application(middlewares=[self._vendor_behaviour])
        app.add_routes(self.routes())
        app.add_routes(
            [
                web.get(CONTROL_PREFIX + "users", self._sim_users),
                web.post(CONTROL_PREFIX + "users", self._sim_add_users),
                web.get(CONTROL_PREFIX + "stats", self._sim_stats),
                web.get(CONTROL_PREFIX + "writes", self._sim_writes),
                web.put(CONTROL_PREFIX + "config", self._sim_config),
                web.get(CONTROL_PREFIX + "config", self._sim_get_config),
                web.post(CONTROL_PREFIX + "reset", self._sim_reset),
            ]
        )
        return app

    @web.middleware
    async def _vendor_behaviour(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Apply rate limit, latency, faults and auth to vendor requests; count them."""
        if request.path.startswith(CONTROL_PREFIX):
            try:
                return await handler(request)
            except VendorError as error:
                return self._error_response(error)
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else request.path
        self.stats.arrived(
            anyio.current_time(), unquote_plus(request.path_qs), list(request.query.keys())
        )
        try:
            response = await self._answer(request, handler)
        except VendorError as error:
            response = self._error_response(error)
        except web.HTTPException as exc:
            if exc.status < 400:
                self.stats.answered(request.method, path, exc.status)
                raise
            response = self._error_response(VendorError(exc.status, exc.text or exc.reason))
        except asyncio.CancelledError:
            self.stats.answered(request.method, path, CLIENT_GONE)
            raise
        self.stats.answered(request.method, path, response.status)
        if request.method not in ("GET", "HEAD"):
            self.stats.wrote(request.method, request.path, response.status, await request.read())
        return response

    def _error_response(self, error: VendorError) -> web.Response:
        """Render a refusal in the vendor's error shape."""
        return self.error_response(error)

    def error_response(self, error: VendorError) -> web.Response:
        """Return the vendor's answer to a refusal: `error_body` as JSON unless overridden."""
        return json_response(self.error_body(error.status, error.message, error.code), error.status)

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one vendor request the way the settings say: auth first, then the limit."""
        if not self.authorized(request):
            raise VendorError(401, "unauthorized", "unauthorized")
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        if self.settings.latency_ms > 0:
            await anyio.sleep(self.settings.latency_ms / 1000)
        fault = await self._fault(request)
        if fault is not None:
            return fault
        return await handler(request)

    def _throttle(self) -> web.Response | None:
        """Return a 429 if the token bucket is empty."""
        rate = self.settings.rate
        if rate is None or rate <= 0:
            return None
        now = anyio.current_time()
        burst = self.settings.burst or max(1.0, rate)
        if self._bucket is None or (self._bucket.rate, self._bucket.burst) != (rate, burst):
            self._bucket = TokenBucket(rate, burst, now)
        if self._bucket.take(now):
            return None
        wait = self._bucket.wait(now)
        headers = {}
        if self.settings.retry_after == "seconds":
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif self.settings.retry_after == "date":
            headers["Retry-After"] = formatdate(math.ceil(time.time() + wait), usegmt=True)
        response = self._error_response(VendorError(429, "rate limited", "rate_limited"))
        response.headers.update(headers)
        return response

    async def _fault(self, request: web.Request) -> web.StreamResponse | None:
        """Inject at most one request fault; return its response, if it replaces the answer."""
        faults = self.settings.faults
        if faults.unauthorized:
            return self._error_response(VendorError(401, "unauthorized", "unauthorized"))
        if faults.body_endless or faults.body_bytes is not None:
            return await self._big_body(request)
        if faults.limit is not None and self._faults_injected >= faults.limit:
            return None
        roll = self._rng.random()
        for share, kind in (
            (faults.server_error_share, "error"),
            (faults.timeout_share, "timeout"),
            (faults.reset_share, "reset"),
            (faults.malformed_share, "malformed"),
        ):
            if roll < share:
                self._faults_injected += 1
                return await self._inject(kind, request)
            roll -= share
        return None

    async def _inject(self, kind: str, request: web.Request) -> web.StreamResponse | None:
        """Produce one fault."""
        faults = self.settings.faults
        if kind == "error":
            status = faults.server_error_status
            return self._error_response(VendorError(status, "unavailable", "unavailable"))
        if kind == "timeout":
            await anyio.sleep(faults.timeout_delay)
            return None  # answer normally, long after the client gave up
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=CLIENT_GONE)  # never sent: the connection is gone
        return web.Response(
            body=b'{"users": [{"id": "u0', status=200, content_type="application/json"
        )

    async def _big_body(self, request: web.Request) -> web.StreamResponse:
        """Answer 200 with a body of `body_bytes` (or without end), written chunk by chunk."""
        faults = self.settings.faults
        remaining = None if faults.body_endless else faults.body_bytes
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        if remaining is not None and faults.body_declared:
            response.content_length = remaining
        await response.prepare(request)
        try:
            piece = _BODY_HEAD
            while remaining is None or remaining > 0:
                if remaining is not None:
                    piece = piece[:remaining]
                    remaining -= len(piece)
                await response.write(piece)
                piece = _BODY_PADDING
            await response.write_eof()
        except ConnectionError:
            pass  # the client stopped reading, as it should
        return response

    # -- vendor handlers -------------------------------------------------------------------

    async def handle_list(self, request: web.Request) -> web.Response:
        """List users in the vendor's pagination style."""
        return json_response(self.listing.respond(request, self.listing_view()))

    def listing_view(self, key: Hashable = (), select: Select = list) -> ListingView:
        """Return what a listing request sees: the users `select` keeps, in its order.

        The selection is built once per `key` until the users change; `key` names what
        `select` depends on besides the users.
        """
        if not isinstance(self.users, Users):
            raise TypeError(f"{self.vendor} keeps its users elsewhere and lists them itself")
        return ListingView(self.users.listed(key, select), self.settings.faults)

    async def handle_get(self, request: web.Request) -> web.Response:
        """Return one user or 404."""
        return json_response(self.wrap(self._stored(request)))

    async def handle_create(self, request: web.Request) -> web.Response:
        """Create a user; 409 if its email is taken."""
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=True)
        email = fields.get("email")
        if self.unique_email and isinstance(email, str) and self._email_taken(email):
            raise VendorError(409, "email already exists", "conflict")
        user = self.add_user(self.new_user(fields))
        return json_response(self.wrap(user), status=201)

    async def handle_update(self, request: web.Request) -> web.Response:
        """Update a user per the vendor's semantics."""
        stored = self._stored(request)
        fields = self.unwrap(await self._body(request))
        self.check(fields, creating=False)
        user = self.apply_update(stored, fields)
        self.users[str(user[self.id_key])] = user
        return json_response(self.wrap(user))

    async def handle_delete(self, request: web.Request) -> web.Response:
        """Delete a user."""
        stored = self._stored(request)
        del self.users[str(stored[self.id_key])]
        return web.Response(status=204)

    def _stored(self, request: web.Request) -> Record:
        """Return the user named in the path, or raise 404."""
        user = self.users.get(request.match_info["id"])
        if user is None:
            raise VendorError(404, "not found", "not_found")
        return user

    def _email_taken(self, email: str) -> bool:
        """Tell whether any user has this email, ignoring case."""
        wanted = email.casefold()
        return any(
            isinstance(user.get("email"), str) and str(user["email"]).casefold() == wanted
            for user in self.users.values()
        )

    async def _body(self, request: web.Request) -> object:
        """Return the request's JSON body; 415 unless it is declared JSON, 400 if malformed."""
        if request.content_type != "application/json":
            raise VendorError(415, "Content-Type must be application/json", "unsupported_media")
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise VendorError(400, "malformed JSON", "malformed") from None

    # -- /_sim/ control API ----------------------------------------------------------------

    async def _sim_users(self, request: web.Request) -> web.Response:
        """Return every user as the vendor stores it."""
        return json_response({"users": list(self.users.values())})

    async def _sim_add_users(self, request: web.Request) -> web.Response:
        """Store users exactly as given: `{"users": [...]}` or a bare list."""
        body = await self._body(request)
        users = body.get("users") if isinstance(body, dict) else body
        if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
            raise web.HTTPBadRequest(text="expected a list of user objects")
        added = []
        for user in users:
            known = str(user.get(self.id_key)) in self.users
            added.append(self.add_user(dict(user)))
            self.changed_by_control(added[-1], created=not known)
        return json_response({"added": len(added), "ids": [u[self.id_key] for u in added]})

    async def _sim_stats(self, request: web.Request) -> web.Response:
        """Return the request statistics."""
        return json_response(self.stats.to_json())

    async def _sim_writes(self, request: web.Request) -> web.Response:
        """Return every write answered, oldest first (bodies as digests)."""
        return json_response({"writes": list(self.stats.writes)})

    async def _sim_get_config(self, request: web.Request) -> web.Response:
        """Return the current settings."""
        return json_response(self.settings.to_json())

    async def _sim_config(self, request: web.Request) -> web.Response:
        """Change settings (rate, burst, retry_after, latency_ms, faults) in part."""
        body = await self._body(request)
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        try:
            self.settings.update(body)
        except SettingsError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        self._bucket = None
        self._faults_injected = 0
        return json_response(self.settings.to_json())

    async def _sim_reset(self, request: web.Request) -> web.Response:
        """Restore seeded users and initial settings; clear statistics."""
        self.reset()
        return json_response({"users": len(self.users)})
