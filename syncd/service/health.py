"""The health server: liveness, readiness, Prometheus metrics and a JSON status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson
from aiohttp import web

from syncd.service.metrics import CONTENT_TYPE, Metrics


@dataclass(frozen=True)
class Check:
    """One readiness condition: whether it holds, and a short reason."""

    ok: bool
    reason: str  # short, no secrets, no emails


class HealthSource(Protocol):
    """What the health server asks of the daemon."""

    async def readiness(self) -> dict[str, Check]:
        """Return each readiness check by name, e.g. `database`, `connector:influitive`."""
        ...

    async def status(self) -> dict[str, object]:
        """Return a JSON-safe summary per connector."""
        ...

    async def refresh_metrics(self) -> None:
        """Bring the gauges up to date before a scrape."""
        ...


def _failure(error: Exception) -> str:
    """Name an exception by its class only: its message could carry data."""
    return f"error: {type(error).__name__}"


def _json(data: object, status: int = 200) -> web.Response:
    """Return data as a JSON response."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class _Handlers:
    """The four endpoints, over one source and one set of metrics."""

    def __init__(self, source: HealthSource, metrics: Metrics) -> None:
        self.source = source
        self.metrics = metrics

    async def livez(self, request: web.Request) -> web.Response:
        """Answer while the event loop does; checks nothing external."""
        return _json({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Answer 200 when every check holds, else 503, with every check and its reason."""
        try:
            checks = await self.source.readiness()
        except Exception as error:
            checks = {"source": Check(ok=False, reason=_failure(error))}
        ready = all(check.ok for check in checks.values())
        body = {
            "ready": ready,
            "checks": {
                name: {"ok": check.ok, "reason": check.reason} for name, check in checks.items()
            },
        }
        return _json(body, status=200 if ready else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Refresh the gauges and answer in the Prometheus text format."""
        try:
            await self.source.refresh_metrics()
        except Exception as error:
            return web.Response(text=_failure(error), status=503)
        response = web.Response(body=self.metrics.render())
        # Set as a header: aiohttp's content_type argument refuses the version parameter.
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def status(self, request: web.Request) -> web.Response:
        """Answer with the source's status summary as JSON."""
        try:
            body = orjson.dumps(await self.source.status())
        except Exception as error:
            return _json({"error": _failure(error)}, status=503)
        return web.Response(body=body, content_type="application/json")


def health_app(source: HealthSource, metrics: Metrics) -> web.Application:
    """Build the health application: /livez, /readyz, /metrics and /status."""
    handlers = _Handlers(source, metrics)
    app = web.Application()
    app.router.add_get("/livez", handlers.livez)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics_page)
    app.router.add_get("/status", handlers.status)
    return app
