"""Serve an aiohttp app on a host and port: the health, SCIM and webhook listeners."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from yarl import URL

from syncd.boundary import Unavailable, reason


@asynccontextmanager
async def serve_app(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = "health",
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[str]:
    """Serve app on host and port (0: any free one) and yield its base URL."""
    # No access log: aiohttp would print every request to stderr, unstructured.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise Unavailable(
                f"the {name} server cannot listen on {host}:{port}: {reason(exc)} "
                f"(set [{name}] port to a free port, or stop what holds it)"
            ) from None
        bound_host, bound_port = runner.addresses[0][:2]
        scheme = "http" if ssl_context is None else "https"
        yield str(URL.build(scheme=scheme, host=bound_host, port=bound_port))
    finally:
        await runner.cleanup()
