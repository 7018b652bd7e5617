"""Vendor ids in URL paths: one quoted segment, never the collection."""

from __future__ import annotations

import aiohttp
import pytest

from connectors.core.errors import InvalidIdentifierError
from connectors.core.paths import segment
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import sim_get


def test_a_segment_is_quoted_and_dot_segments_are_refused() -> None:
    assert segment("acme", "a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f"
    assert segment("acme", "..a") == "..a"
    for bad in ("", ".", ".."):
        with pytest.raises(InvalidIdentifierError):
            segment("acme", bad)


async def test_writes_with_odd_ids_never_reach_the_collection(
    connector: ExampleConnector,
    simulator: ExampleSimulator,
    session: aiohttp.ClientSession,
    url: str,
) -> None:
    for bad in ("", ".", ".."):
        with pytest.raises(InvalidIdentifierError):
            await connector.update_account(bad, {"title": "x"})
        with pytest.raises(InvalidIdentifierError):
            await connector.deactivate_account(bad)
    assert (await sim_get(session, url, "stats"))["requests"] == 0
    for odd in ("a/b", "x?y", "x#y", "%2e%2e", "../users"):
        assert await connector.get_account(odd) is None  # no such user: 404
    routes = (await sim_get(session, url, "stats"))["by_route"]
    paths = {item["path"] for item in routes}
    assert paths and "/users" not in paths and "/" not in paths, paths
