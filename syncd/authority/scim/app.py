"""The SCIM 2.0 service provider: an aiohttp app under /scim/v2, behind a bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import sqlalchemy.exc as sa_exc
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError
from scim2_models import SCIMException

from graph.db import Database, transient_fault
from syncd.authority.scim.discovery import discovery_routes
from syncd.authority.scim.kinds import KINDS, Kind
from syncd.authority.scim.protocol import (
    MAX_BODY,
    BadRequest,
    exception_response,
    scim_error,
    validation_error,
)
from syncd.authority.scim.service import PREFIX, ScimService
from syncd.authority.sink import PeopleSink

log = structlog.get_logger("syncd.scim")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(token: str) -> Middleware:
    expected = token.encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            response = scim_error(401, "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="syncd"'
            return response
        return await handler(request)

    return authenticate


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure answers as a SCIM Error; nothing reaches the client as a traceback."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return exc.response
    except SCIMException as exc:
        return exception_response(exc)
    except ValidationError as exc:
        return validation_error(exc)
    except sa_exc.IntegrityError:
        return scim_error(409, "the resource conflicts with a stored one", "uniqueness")
    except web.HTTPMethodNotAllowed as exc:
        return scim_error(405, f"{exc.method} is not allowed here")
    except web.HTTPNotFound:
        return scim_error(404, f"no endpoint at {request.path}")
    except web.HTTPException as exc:
        return scim_error(exc.status, exc.reason)
    except Exception as exc:
        if (fault := transient_fault(exc)) is not None:
            # The IdP retries a 503 that says when: the graph is busy or briefly unreachable.
            log.warning("scim.database_busy", reason=fault)
            response = scim_error(503, f"the database is busy ({fault}); retry shortly")
            response.headers["Retry-After"] = "2"
            return response
        log.exception("scim.error", method=request.method, path=request.path)
        return scim_error(500, "internal error; see the syncd log")


def _search(service: ScimService) -> Callable[[list[Kind]], Handler]:
    def over(kinds: list[Kind]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await service.search(kinds, request)

        return handle

    return over


def _resource_routes(service: ScimService, kind: Kind) -> list[web.RouteDef]:
    def bind(
        method: Callable[[Kind, web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await method(kind, request)

        return handle

    base = f"{PREFIX}/{kind.endpoint}"
    search = _search(service)
    return [
        web.get(base, bind(service.query), allow_head=False),
        web.post(f"{base}/.search", search([kind])),
        web.post(base, bind(service.create)),
        web.get(f"{base}/{{id}}", bind(service.get), allow_head=False),
        web.put(f"{base}/{{id}}", bind(service.replace)),
        web.patch(f"{base}/{{id}}", bind(service.patch)),
        web.delete(f"{base}/{{id}}", bind(service.delete)),
    ]


def scim_app(db: Database, sink: PeopleSink, token: str, *, actor: str = "idp") -> web.Application:
    """The SCIM app: Users, Groups and discovery under /scim/v2, all behind the token."""
    if not token:
        raise ValueError("the SCIM bearer token must not be empty")
    app = web.Application(middlewares=[_bearer(token), _errors], client_max_size=MAX_BODY)
    service = ScimService(db, sink, actor)
    for kind in KINDS.values():
        app.add_routes(_resource_routes(service, kind))
    app.add_routes(discovery_routes(PREFIX))
    app.router.add_post(f"{PREFIX}/.search", _search(service)(list(KINDS.values())))
    return app
