"""A connector built by hand refuses a hostname label that would send its key elsewhere."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from connectors import ConnectorConfigError
from connectors.vendors.influitive.connector import InfluitiveConnector
from connectors.vendors.thought_industries.connector import ThoughtIndustriesConnector


@pytest.mark.parametrize(
    ("cls", "key"), [(InfluitiveConnector, "hub"), (ThoughtIndustriesConnector, "subdomain")]
)
async def test_a_label_that_is_not_one_dns_label_is_refused(
    session: aiohttp.ClientSession, cls: type[InfluitiveConnector], key: str
) -> None:
    build: dict[str, Any] = {"name": "x", "session": session, "secrets": {"api_key": "k"}}
    cls(**build, **{key: "acme"})
    for bad in ("evil.example/x?", "evil.example#", "a.b", "-a", "a" * 64, ""):
        with pytest.raises(ConnectorConfigError, match=f"{key} must be one DNS label"):
            cls(**build, **{key: bad})
