"""The daemon's SCIM listener: the [scim] table's token, TLS and address, served."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import structlog

from graph.db import Database
from syncd.authority.scim.app import scim_app
from syncd.authority.scim.service import PREFIX
from syncd.authority.sink import PeopleSink
from syncd.config import ConfigError, ScimConfig, resolve_secret
from syncd.service.listeners import serve_app

log = structlog.get_logger("syncd.scim")


def tls_context(settings: ScimConfig) -> ssl.SSLContext | None:
    """A server TLS context from tls_cert and tls_key, or None when neither is set."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"scim.tls_cert: cannot load {settings.tls_cert} with {settings.tls_key}: "
            f"{getattr(exc, 'reason', None) or exc.strerror or exc}"
        ) from None
    return context


@asynccontextmanager
async def scim_listener(
    settings: ScimConfig | None,
    db: Database,
    sink: PeopleSink,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[str | None]:
    """Serve SCIM while inside (yielding its base URL), or nothing without a [scim] table."""
    if settings is None:
        yield None
        return
    token = resolve_secret("scim.token", settings.token, environ)
    app = scim_app(db, sink, token, actor=settings.actor)
    async with serve_app(
        app, settings.host, settings.port, name="scim", ssl_context=tls_context(settings)
    ) as url:
        log.info("scim.listening", url=f"{url}{PREFIX}", actor=settings.actor)
        yield f"{url}{PREFIX}"
