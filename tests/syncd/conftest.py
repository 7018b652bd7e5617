"""Fixtures shared by the daemon's subprocess tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from connectors.sim import serve
from connectors.sim.base import VendorSimulator
from tests.syncd.test_daemon import USED
from tests.syncd.test_engine import SIMS


@pytest.fixture
async def sims() -> AsyncIterator[tuple[dict[str, VendorSimulator], dict[str, str]]]:
    """The daemon tests' three vendor simulators on loopback, and their URLs by connector."""
    running = {name: SIMS[name]() for name in USED}
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(sim)) for name, sim in running.items()}
        yield running, urls
