"""The plumbing every probe shares: a plain aiohttp session, a base URL, fixed headers."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp


@dataclass
class PlainClient:
    """A client of plain aiohttp requests that sends the same headers on every one."""

    session: aiohttp.ClientSession
    base: str
    headers: dict[str, str]
