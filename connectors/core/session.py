"""The one aiohttp session every connector shares; its owner opens and closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

USER_AGENT = "syncd/0.1 (+identity sync)"


def new_session(*, connections: int = 100) -> aiohttp.ClientSession:
    """Create the shared session: no cookies, no proxy from the environment, no auth."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300),
        # Cookies set by one vendor must never ride along on another connector's requests.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        trust_env=False,
    )


@asynccontextmanager
async def open_session(*, connections: int = 100) -> AsyncIterator[aiohttp.ClientSession]:
    """Open the shared session for the duration of the block, then close it."""
    session = new_session(connections=connections)
    try:
        yield session
    finally:
        await session.close()
