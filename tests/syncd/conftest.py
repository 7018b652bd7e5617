"""Fixtures shared by the daemon's subprocess tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.sim.base import VendorSimulator
from connectors.sim.fleet import simulator_fleet
from tests.syncd.processes import Processes, stop
from tests.syncd.test_daemon import USED
from tests.syncd.test_engine import TOKEN


@pytest.fixture
async def sims() -> AsyncIterator[tuple[dict[str, VendorSimulator], dict[str, str]]]:
    """The daemon tests' three vendor simulators on loopback, and their URLs by connector."""
    async with simulator_fleet(USED, token=TOKEN) as fleet:
        yield fleet.simulators, fleet.urls


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start syncd processes; whichever still runs when the test ends is killed."""
    started = Processes()
    yield started
    for process in started.started:
        stop(process)
