"""The SCIM 2.0 simulator: scim2-server's protocol and in-memory storage behind our middleware."""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiohttp import web
from scim2_models import ScimProvider
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.applications.base import VERSION_PREFIX
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import ROUTES
from scim2_server.service import ScimService
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from connectors.sim.base import SimConnection, SimPerson, SimView, VendorSimulator
from connectors.sim.listing import Record
from connectors.vendors.scim.store import ScimUserStore

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_RESULTS = 100  # a larger `count` is answered with this many (RFC 7644 §3.4.2.4)
_GIVEN = ("Amara", "Bo", "Chen", "Dagny", "Emeka", "Fiona", "Goran", "Hana", "Ines", "Jonas")
_FAMILY = ("Achebe", "Berg", "Costa", "Dalton", "Engel", "Faure", "Grieg", "Haddad")
_TITLES = ("Engineer", "Designer", "Analyst", "Manager", None)
_DEPARTMENTS = ("Sales", "Support", "Engineering", "Finance")


def _provider() -> ScimProvider:
    """Describe the server: RFC 7643's schemas and resource types, results capped."""
    config = load_default_service_provider_config()
    if config.filter is not None:
        config.filter.max_results = MAX_RESULTS
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


PROVIDER = _provider()
# The cursors this server issues are sealed with this; no real secret is involved.
SERVICE = ScimService(PROVIDER, secret="scim-simulator")  # noqa: S106
USER_TYPE = SERVICE.get_resource_type("User")
USER_MODEL: Any = PROVIDER.model_for_endpoint(str(USER_TYPE.endpoint))


class ScimSimulator(VendorSimulator):
    """A SCIM 2.0 service provider: every SCIM request is served by scim2-server.

    The middleware adds the Bearer check, rate limit, latency, faults and statistics; the
    listing faults (`repeat_page`, `truncate_after`) are applied around `GET /Users`.
    The SCIM root is the simulator's URL, with or without `/v2`.
    """

    vendor = "scim"
    credentials = "Authorization: Bearer TOKEN"
    given_names = _GIVEN
    family_names = _FAMILY
    users_path = "/Users"

    def reset(self) -> None:
        """Start from an empty SCIM storage, then seed it."""
        self.users = ScimUserStore(USER_TYPE, USER_MODEL)
        self.scim = ASGIApplication(AsyncInMemoryStorage(self.users.storage), PROVIDER, SERVICE)
        super().reset()

    def authorized(self, request: web.Request) -> bool:
        """Accept `Authorization: Bearer TOKEN` (the scheme name in any case, RFC 6750)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token == self.token

    def connection(self) -> SimConnection:
        """Return the bearer token; the base URL is the SCIM root."""
        return SimConnection(secrets={"token": self.token})

    def view(self, user: Record) -> SimView:
        """Read a user: the primary email (else the userName), title, active."""
        email = _primary_email(user) or user.get("userName")
        return SimView(
            email=email if isinstance(email, str) else None,
            title=user.get("title"),
            active=user.get("active") is not False,
        )

    def user_for(self, person: SimPerson) -> Record:
        """Return an active user for this person, as an IdP would provision it."""
        return {
            "schemas": [USER_SCHEMA],
            "id": f"u{person.index + 1:06d}",
            "externalId": person.employee_id,
            "userName": person.email,
            "name": {"givenName": person.given_name, "familyName": person.family_name},
            "displayName": person.full_name,
            "emails": [{"value": person.email, "type": "work", "primary": True}],
            "title": person.title,
            "active": True,
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`; some log in with a name, not their email."""
        name = self.seed_name(index, rng)
        number = index + 1
        email = name.email("corp.example")
        short = f"{name.given[0].lower()}{name.family.lower()}{number}"
        login = short if rng.random() < 0.1 else email
        return {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "id": f"u{number:06d}",
            "externalId": f"E{number:05d}",
            "userName": login,
            "name": {"givenName": name.given, "familyName": name.family},
            "displayName": name.full,
            "emails": [{"value": email, "type": "work", "primary": True}],
            "title": rng.choice(_TITLES),
            "locale": rng.choice(("en-US", "de-DE", "fr-FR")),
            "active": rng.random() >= 0.07,
            ENTERPRISE_SCHEMA: {"department": rng.choice(_DEPARTMENTS)},
        }

    def error_body(self, status: int, message: str, code: str) -> object:
        """Return the SCIM error message (RFC 7644 §3.12): status as a string, detail."""
        return {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": message}

    def routes(self) -> list[web.RouteDef]:
        """Return scim2-server's routes for each resource type, at the root and under /v2."""
        endpoints = [str(rt.endpoint).strip("/") for rt in PROVIDER.resource_types]
        paths: set[tuple[str, str]] = set()
        for route in ROUTES:
            if "{endpoint}" in route.pattern:
                paths.update(
                    (route.method, route.pattern.replace("{endpoint}", e)) for e in endpoints
                )
            else:
                paths.add((route.method, route.pattern))
        return [
            web.route(method, (prefix + path).rstrip("/") or "/", self.handle_scim)
            for method, path in sorted(paths)
            for prefix in ("", VERSION_PREFIX)
        ]

    async def handle_scim(self, request: web.Request) -> web.Response:
        """Serve one SCIM request through scim2-server."""
        path = ASGIApplication.split_path(request.path)
        listing = request.method == "GET" and path.rstrip("/") == self.users_path
        query = self._faulted_query(dict(request.query)) if listing else dict(request.query)
        prefix = VERSION_PREFIX if request.path.startswith(VERSION_PREFIX) else ""
        scim_request = ScimRequest(
            method=request.method,
            base_url=f"{request.scheme}://{request.host}{prefix}",
            path=path,
            query=query,
            headers=list(request.headers.items()),
            body=await request.read(),
        )
        answer = await self.scim.serve(scim_request)
        if listing:
            self._truncate(answer, query)
        body = b"" if answer.body is None else orjson.dumps(answer.body)
        return web.Response(status=int(answer.status), body=body, headers=answer.headers)

    def _faulted_query(self, query: dict[str, str]) -> dict[str, str]:
        """Apply `repeat_page`: the page after it is served from the repeated page's index."""
        repeat = self.settings.faults.repeat_page
        start = _number(query.get("startIndex"), 1)
        count = min(_number(query.get("count"), MAX_RESULTS), MAX_RESULTS)
        if repeat is not None and count > 0 and (start - 1) // count == repeat + 1:
            query["startIndex"] = str(start - count)
        return query

    def _truncate(self, answer: ScimResponse, query: dict[str, str]) -> None:
        """Apply `truncate_after`: users past it are left out, the total stays as it was."""
        keep = self.settings.faults.truncate_after
        resources = answer.body.get("Resources") if answer.body is not None else None
        if keep is None or answer.body is None or not isinstance(resources, list):
            return
        start = _number(query.get("startIndex"), 1) - 1
        answer.body["Resources"] = resources[: max(0, keep - start)]
        answer.body["itemsPerPage"] = len(answer.body["Resources"])


def _primary_email(user: Record) -> str | None:
    """Return the primary email's value, or the first one's."""
    emails = user.get("emails")
    found = (
        [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
        if isinstance(emails, list)
        else []
    )
    found.sort(key=lambda e: e.get("primary") is not True)
    return str(found[0]["value"]) if found else None


def _number(raw: str | None, default: int) -> int:
    """Return a query number, or the default when it is absent or not a number."""
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
