"""A vendor's response body is read up to a cap, in bounded memory, and never retried past it."""

from __future__ import annotations

import tracemalloc
import zlib

import aiohttp
import pytest
from aiohttp import web

from connectors import MalformedResponseError, ResponseTooLargeError
from connectors.core.http import DEFAULT_MAX_RESPONSE_BYTES
from connectors.sim import serve
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import TOKEN, configure, make_connector, sim_get

MiB = 1024 * 1024
CAP = 1 * MiB


async def _list_with_cap(session: aiohttp.ClientSession, url: str, cap: int) -> int:
    """List through a connector capped at `cap` bytes; return the traced memory peak."""
    connector = make_connector(session, url, timeout=20.0)
    connector.http.max_response_bytes = cap
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError) as caught:
            [account async for account in connector.list_accounts()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"example: GET /users -> response larger than {cap} bytes"
    return peak


@pytest.mark.parametrize("declared", [False, True])
async def test_a_huge_body_fails_in_bounded_memory(
    session: aiohttp.ClientSession, url: str, declared: bool
) -> None:
    await configure(session, url, faults={"body_bytes": 64 * MiB, "body_declared": declared})
    peak = await _list_with_cap(session, url, CAP)
    assert peak < 8 * MiB  # the whole body would be 64 MiB
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 1  # too large once is too large again: not retried


async def test_an_endless_body_fails_in_bounded_memory(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, faults={"body_endless": True})
    peak = await _list_with_cap(session, url, CAP)
    assert peak < 8 * MiB


@pytest.mark.parametrize("declared", [False, True])
async def test_a_body_of_exactly_the_cap_is_read(
    session: aiohttp.ClientSession, url: str, declared: bool
) -> None:
    # Exactly the cap is allowed through (and is then only malformed JSON); one byte more is not.
    await configure(session, url, faults={"body_bytes": CAP, "body_declared": declared})
    connector = make_connector(session, url)
    connector.http.max_response_bytes = CAP
    with pytest.raises(MalformedResponseError) as caught:
        [account async for account in connector.list_accounts()]
    assert not isinstance(caught.value, ResponseTooLargeError)
    await configure(session, url, faults={"body_bytes": CAP + 1})
    with pytest.raises(ResponseTooLargeError):
        [account async for account in connector.list_accounts()]


async def test_the_default_cap_is_32_mib_and_must_be_positive(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make_connector(session, url)
    assert connector.http.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 32 * MiB
    assert len([account async for account in connector.list_accounts()]) == 250
    with pytest.raises(ValueError, match="max_response_bytes must be positive"):
        connector.http.max_response_bytes = 0


class _GzipBomb(ExampleSimulator):
    """Answers every listing with 64 KiB of gzip that inflates to 64 MiB."""

    def routes(self) -> list[web.RouteDef]:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [packer.compress(b'{"users": [')]
        parts += [packer.compress(b" " * MiB) for _ in range(64)]
        bomb = b"".join(parts) + packer.flush()

        async def answer(request: web.Request) -> web.Response:
            return web.Response(
                body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )

        return [web.get(self.users_path, answer)]


async def test_a_compressed_body_is_capped_as_it_inflates(session: aiohttp.ClientSession) -> None:
    async with serve(_GzipBomb(token=TOKEN)) as url:
        peak = await _list_with_cap(session, url, CAP)
    assert peak < 8 * MiB
