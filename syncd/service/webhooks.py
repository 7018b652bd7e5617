"""The webhook listener: vendors' events, checked by a shared secret, become hints."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from syncd.config import WEBHOOK_HEADER, Config, resolve_secret
from syncd.service.hints import IGNORED, MALFORMED, TOO_LARGE, UNAUTHORIZED, Hint, hint_from

# connector, hint (None: the event named nobody) -> outcome
Accept = Callable[[str, Hint | None], str]
Observe = Callable[[str, str], None]  # connector, outcome (refusals of a known connector)
_STRANGER = hashlib.sha256(secrets.token_bytes(32)).digest()  # what an unknown connector "has"


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """One connector's webhook: its secret and where the vendor sends it."""

    secret: str
    carried_in: str = "header"  # "header" or "path"
    header: str = WEBHOOK_HEADER

    @property
    def digest(self) -> bytes:
        """The secret's SHA-256, compared instead of the secret (the same length always)."""
        return hashlib.sha256(self.secret.encode()).digest()


def webhook_routes(
    config: Config, environ: Mapping[str, str] | None = None
) -> dict[str, WebhookRoute]:
    """Resolve every connector's webhook secret; a ConfigError names the key it cannot read."""
    return {
        name: WebhookRoute(
            resolve_secret(f"connectors.{name}.webhook.secret", hook.secret, environ),
            hook.carried_in,
            hook.header,
        )
        for name, item in config.connectors.items()
        if (hook := item.webhook) is not None
    }


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"status": message}, status=status)


def webhook_app(
    routes: Mapping[str, WebhookRoute],
    accept: Accept,
    observe: Observe,
    *,
    max_body_bytes: int = 256 * 1024,
) -> web.Application:
    """The app: POST /webhooks/{connector} (secret in a header) or .../{connector}/{secret}."""

    def presented(request: web.Request, route: WebhookRoute | None) -> str:
        """The secret the request carries where its connector expects it ("" if elsewhere)."""
        in_path = request.match_info.get("secret")
        if route is None:
            return in_path or ""
        if route.carried_in == "path":
            return in_path or ""
        return "" if in_path is not None else request.headers.get(route.header, "")

    async def receive(request: web.Request) -> web.Response:
        name = request.match_info["connector"]
        route = routes.get(name)
        given = hashlib.sha256(presented(request, route).encode()).digest()
        # The same hash and comparison whether or not the connector exists.
        valid = hmac.compare_digest(given, route.digest if route is not None else _STRANGER)
        if route is None:
            return _answer(404, "not found")
        if not valid:
            observe(name, UNAUTHORIZED)
            return _answer(401, "unauthorized")
        if request.content_length is not None and request.content_length > max_body_bytes:
            observe(name, TOO_LARGE)
            return _answer(413, "body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            observe(name, TOO_LARGE)
            return _answer(413, "body too large")
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            observe(name, MALFORMED)
            return _answer(400, "not JSON")
        outcome = accept(name, hint_from(event))
        return _answer(202, "ignored" if outcome == IGNORED else "accepted")

    app = web.Application(client_max_size=max_body_bytes)
    app.add_routes(
        [
            web.post("/webhooks/{connector}", receive),
            web.post("/webhooks/{connector}/{secret}", receive),
        ]
    )
    return app
